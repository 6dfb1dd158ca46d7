"""What flows between the worker's loop and its I/O threads: events in, requests out."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from after.jobs import Outcome
from after.model import Document
from after.transitions import Transform


@dataclass(frozen=True)
class Changed:
    """A document from the changes feed (or re-read after a conflict)."""

    doc: Document


@dataclass(frozen=True)
class Loaded:
    """Live tasks due up to ``until`` (epoch s), read from the view; ``reconnect`` means a full reconcile."""

    docs: list[Document]
    until: float
    reconnect: bool


@dataclass(frozen=True)
class Connection:
    up: bool
    reason: str = ""
    node: str = ""  # the CouchDB URL in use (a cluster's nodes can be several)


@dataclass(frozen=True)
class Written:
    """The answer to a WriteRequest: ``doc`` is what was written, or the latest revision when not.

    ``failure`` says why a write could not be made at all (CouchDB refused it, or building it failed),
    as opposed to a write that no longer applies (the document changed): the loop answers the task
    with ``err`` and that reason.
    """

    request: WriteRequest
    ok: bool
    doc: Document | None
    failure: str | None = None


@dataclass(frozen=True)
class Finished:
    task_id: str
    run_id: str
    outcome: Outcome
    started: float  # wall clock, epoch seconds
    ended: float


@dataclass(frozen=True)
class Peers:
    """The live processes of this worker name (their presence ids), read from CouchDB."""

    members: tuple[str, ...]


@dataclass(frozen=True)
class Wake:
    """Nothing but a nudge (a signal arrived)."""


Event = Changed | Loaded | Connection | Written | Finished | Peers | Wake


def never(doc: Document) -> bool:
    return False


@dataclass(frozen=True)
class WriteRequest:
    """Write ``transform(doc)``; after a 409, re-read and apply ``transform`` to the fresh document.

    ``applied`` recognises a write that already took effect (an answer lost to a broken connection).
    """

    task_id: str
    purpose: str  # acknowledge, reject, cancel, claim, renew, release, finish
    base: Document
    transform: Transform
    applied: Callable[[Document], bool] = field(default=never, compare=False)
    fresh: bool = False  # read the document anew before the first try (a takeover: see every branch)
