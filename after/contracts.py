"""The contracts between After's parts, in one place: each is a ``Protocol`` implemented elsewhere.

- ``Clock``: wall and monotonic time (defined beside ``SystemClock`` and ``FakeClock`` in
  ``after.core.clock``, the bottom layer, and listed here).
- ``Store``: what the worker and the command line need from CouchDB (``after.store.memory.MemoryStore``,
  ``after.store.couch.client.CouchStore``); its data and errors are in ``after.store.types``.
- ``Job`` and ``Registry``: named, installed jobs (``after.jobs``), with what a job gets
  (``JobContext``, ``Services``) and gives back (``Outcome``).
- ``Notifier``: systemd's notify protocol (``after.systemd.notify``).
- ``Writer`` and ``Runner``: the worker loop's I/O threads (``after.worker.io``).
- ``StartJournal``: which claims started their job, for takeovers on the same host
  (``after.worker.io.starts.StartsFile``; ``after.worker.starts`` has the fakes).

The worker loop, the command line and the composition root (``after.app``) depend on these, never on
the implementations, so that tests pass in fakes and the daemon the real parts.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from after.core.clock import Clock
from after.core.task import Document
from after.core.transitions import StartEvidence
from after.core.writes import WriteRequest
from after.store.types import Change, WriteResult

__all__ = ["Clock", "Job", "JobContext", "Notifier", "Outcome", "Registry", "Runner", "Services",
           "StartJournal", "Store", "Writer"]


class Store(Protocol):
    def create_database(self) -> bool:
        """Create the database if missing; True when it was created."""

    def install_design(self, design: Document) -> bool:
        """Create or update a design document (``design["_id"]``); True when it changed."""

    def get(self, doc_id: str) -> Document | None:
        """The current revision of a document, or None when missing or deleted."""

    def get_many(self, doc_ids: Sequence[str]) -> list[Document | None]:
        """The current revisions of many documents in one request, in order (None: missing or deleted)."""

    def revisions(self, doc_id: str, revs: Sequence[str]) -> list[Document]:
        """Those of ``revs`` (a document's conflicting leaves, its ``_conflicts``) that exist."""

    def put(self, doc: Document) -> str:
        """Write ``doc`` (with ``_id``, and ``_rev`` when updating); return the new revision.

        Raises Conflict on a stale or missing ``_rev`` and Forbidden when validation refuses it.
        """

    def bulk_write(self, docs: Sequence[Document]) -> list[WriteResult]:
        """Write many documents in one request; each gets its own result, in order."""

    def update_seq(self) -> str:
        """The current end of the changes feed, an opaque string."""

    def documents(self, prefix: str) -> list[Document]:
        """The documents whose id starts with ``prefix`` (presence documents), by id."""

    def live_tasks(
        self, worker: str, until: float | None = None, page_size: int = 500
    ) -> Iterator[Document]:
        """The worker's live tasks (statuses the worker must act on), oldest due first.

        ``until`` (epoch seconds) bounds the due date; invalid dates sort first. Paginated.
        """

    def tasks(
        self, worker: str | None = None, status: str | None = None, limit: int = 100
    ) -> list[Document]:
        """Task documents for listing, filtered by worker and status."""

    def status_counts(self, worker: str | None = None) -> dict[str, dict[str, int]]:
        """Number of tasks by worker, then by status."""

    def changes(self, worker: str, since: str, heartbeat: float = 10.0) -> Iterator[Change | None]:
        """Follow changes of the worker's documents (and deletions) after ``since``, forever.

        Yields None at least every ``heartbeat`` seconds while idle. Raises Unavailable when the
        connection is lost; the caller reconnects from the last sequence it processed.
        """

    def compact(self) -> None:
        """Ask the server to compact the database."""

    def close(self) -> None:
        """Release connections."""


@dataclass(frozen=True)
class Services:
    """What the worker lends to jobs written in Python; each is None where the worker has none."""

    store: Store | None = None  # the worker's CouchDB store (``compact_couchdb``)


@dataclass
class JobContext:
    task_id: str
    worker: str
    job_name: str
    arguments: list[Any]
    document: Document  # the task document as claimed (sent to executables on stdin)
    attempt: int
    timeout: float  # seconds (math.inf for none); the job is stopped (process tree killed) after this
    output_limit: int  # characters of output kept in the document (the tail)
    # Set when the job must stop: the task was canceled, or a Python callable ran past its timeout
    # (it cannot be killed, so it is asked to stop and abandoned). Callables may check it cooperatively.
    canceled: threading.Event = field(default_factory=threading.Event)
    services: Services = field(default_factory=Services)
    # Called by a job that says so (``notes_its_start``) at the last moment before its work starts (an
    # executable: just before its process is forked); the worker notes the start in its start journal.
    starting: Callable[[], None] = field(default=lambda: None)


@dataclass(frozen=True)
class Outcome:
    status: str  # "done" or "err"
    reason: str | None = None  # why it failed, in words a user can act on
    exit_code: int | None = None  # executables that exited on their own; None otherwise
    output: str = ""  # bounded tail of stdout and stderr (or a callable's return value / traceback)
    canceled: bool = False
    timed_out: bool = False
    skipped: bool = False  # the job did not run: a policy said so (``after.core.policies.Skip``)

    @property
    def ok(self) -> bool:
        return self.status == "done"


class Job(Protocol):
    name: str

    def run(self, context: JobContext) -> Outcome:
        """Run to completion, honouring ``context.timeout`` and ``context.canceled``."""


class Registry(Protocol):
    def resolve(self, name: str) -> Job | None:
        """The installed job with this name, or None."""

    def names(self) -> list[str]:
        """Every installed job name, sorted."""


class Notifier(Protocol):
    def ready(self) -> None:
        """READY=1: the worker finished its first reconcile."""

    def status(self, text: str) -> None:
        """STATUS=...: one line of live counts."""

    def watchdog(self) -> None:
        """WATCHDOG=1: called by the loop each time it makes progress; rate-limited inside."""

    def stopping(self) -> None:
        """STOPPING=1."""


class Writer(Protocol):
    """Writes to CouchDB for the worker loop, off its thread; answers come back as events."""

    def submit(self, request: WriteRequest) -> None:
        """Write ``request.transform(request.base)``; a ``Written`` event tells what became of it."""

    def load(self, until: float) -> None:
        """Read the live tasks due up to ``until``; a ``Loaded`` event brings them."""

    def resolve(self, task_id: str, doc: Document) -> None:
        """Settle the conflicting leaves of ``doc`` (a cluster wrote two branches)."""

    def idle(self) -> bool:
        """True when nothing is queued or being written."""

    def write_seconds(self) -> float:
        """How long a write takes now (an average), for leases and the claim budget."""


class Runner(Protocol):
    """Runs jobs off the loop's thread; a ``Finished`` event brings each outcome."""

    def start(self, job: Job, context: JobContext, run_id: str) -> None:
        """Run ``job`` now (the caller checked ``free``)."""

    def busy(self) -> int:
        """Jobs running now."""

    def free(self) -> int:
        """Jobs that may start now without queueing."""

    def shutdown(self) -> None:
        """Stop taking jobs (running ones are stopped through their contexts)."""


class StartJournal(Protocol):
    """This process's notes of the jobs it starts, and what a dead process's notes say (same host).

    A claim is named by its task id and its ``at``. ``record`` is called in the job's thread just
    before the job starts; ``evidence`` by a takeover of a claim whose process is known dead.
    """

    def record(self, task_id: str, claim_at: str) -> None:
        """Note that the claim (``task_id``, ``claim_at``) starts its job now; never raises."""

    def evidence(self, task_id: str, claim_field: dict[str, Any]) -> StartEvidence:
        """Whether the claim ``claim_field`` of ``task_id``, held by a dead process, started its job."""

    def compact(self, held: Callable[[], Iterable[tuple[str, str]]]) -> None:
        """Drop the notes of claims no longer held, when there are many (``held()``: those still ours)."""
