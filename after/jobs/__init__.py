"""Jobs: named, installed automation. The contract between the worker and a job.

A job is resolved by name in a registry (``after.jobs.registry``): Python callables registered under
the entry-point group ``after.jobs`` and executables in jobs directories. The worker hands a job a
``JobContext`` and gets an ``Outcome`` back; a job never raises into the worker.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Protocol

from after.model import Document


@dataclass
class JobContext:
    task_id: str
    worker: str
    job_name: str
    arguments: list[Any]
    document: Document  # the task document as claimed (sent to executables on stdin)
    attempt: int
    timeout: float  # seconds; the job is stopped (its whole process tree killed) after this
    output_limit: int  # characters of output kept in the document (the tail)
    canceled: threading.Event = field(default_factory=threading.Event)  # set when the task is canceled
    services: dict[str, Any] = field(default_factory=dict)  # e.g. "store" for compact_couchdb


@dataclass(frozen=True)
class Outcome:
    status: str  # "done" or "err"
    reason: str | None = None  # why it failed, in words a user can act on
    exit_code: int | None = None
    output: str = ""  # bounded tail of stdout and stderr
    canceled: bool = False
    timed_out: bool = False


class Job(Protocol):
    name: str

    def run(self, context: JobContext) -> Outcome:
        """Run to completion, honouring ``context.timeout`` and ``context.canceled``."""


class Registry(Protocol):
    def resolve(self, name: str) -> Job | None:
        """The installed job with this name, or None."""

    def names(self) -> list[str]:
        """Every installed job name, sorted."""
