"""Jobs: named, installed automation. The contract between the worker and a job.

A job is resolved by name in a registry (``after.jobs.registry``): Python callables registered under
the entry-point group ``after.jobs`` and executables in jobs directories. The worker hands a job a
``JobContext`` and gets an ``Outcome`` back; a job never raises into the worker.

The worker's whole use of this package::

    registry = JobRegistry(config.job_paths)        # after.jobs.registry
    outcome = run_job(registry, context)            # resolves context.job_name; never raises
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Protocol

from after.model import Document

log = logging.getLogger(__name__)

UNKNOWN_JOB_NAMES_SHOWN = 20


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
    services: dict[str, Any] = field(default_factory=dict)  # e.g. "store" for compact_couchdb


@dataclass(frozen=True)
class Outcome:
    status: str  # "done" or "err"
    reason: str | None = None  # why it failed, in words a user can act on
    exit_code: int | None = None  # executables that exited on their own; None otherwise
    output: str = ""  # bounded tail of stdout and stderr (or a callable's return value / traceback)
    canceled: bool = False
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.status == "done"


class JobFailed(Exception):
    """Raised by a Python job to fail with exactly ``reason`` (no exception type, no traceback)."""

    def __init__(self, reason: str, output: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.output = output


class Job(Protocol):
    name: str

    def run(self, context: JobContext) -> Outcome:
        """Run to completion, honouring ``context.timeout`` and ``context.canceled``."""


class Registry(Protocol):
    def resolve(self, name: str) -> Job | None:
        """The installed job with this name, or None."""

    def names(self) -> list[str]:
        """Every installed job name, sorted."""


def run_job(registry: Registry, context: JobContext) -> Outcome:
    """Resolve ``context.job_name`` and run it; an unknown job or any failure becomes an err Outcome."""
    try:
        job = registry.resolve(context.job_name)
        if job is None:
            return Outcome("err", reason=unknown_job_reason(registry, context.job_name))
        return job.run(context)
    except Exception as error:  # a job must never take the worker down
        log.exception("job %s of task %s failed inside After", context.job_name, context.task_id)
        return Outcome("err", reason=f"internal error running job {context.job_name}: {error!r}")


def unknown_job_reason(registry: Registry, name: str) -> str:
    installed = registry.names()
    shown = ", ".join(installed[:UNKNOWN_JOB_NAMES_SHOWN]) or "none"
    more = ", ..." if len(installed) > UNKNOWN_JOB_NAMES_SHOWN else ""
    return f"unknown job {name!r} (installed: {shown}{more})"
