"""Jobs: named, installed automation. The contract between the worker and a job.

A job is resolved by name in a registry (``after.jobs.registry``): Python callables registered under
the entry-point group ``after.jobs`` and executables in jobs directories. The worker hands a job a
``JobContext`` and gets an ``Outcome`` back (both in ``after.contracts``); a job never raises into the
worker. The contracts ``Job`` and ``Registry`` are in ``after.contracts``.

The worker's whole use of this package::

    registry = JobRegistry(config.job_paths)        # after.jobs.registry
    outcome = run_job(registry, context)            # resolves context.job_name; never raises
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from after.contracts import JobContext, Outcome, Services

if TYPE_CHECKING:
    from after.contracts import Registry

__all__ = ["JobContext", "JobFailed", "Outcome", "Services", "run_job", "unknown_job_reason"]
log = logging.getLogger(__name__)


UNKNOWN_JOB_NAMES_SHOWN = 20


class JobFailed(Exception):
    """Raised by a Python job to fail with exactly ``reason`` (no exception type, no traceback)."""

    def __init__(self, reason: str, output: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.output = output


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
