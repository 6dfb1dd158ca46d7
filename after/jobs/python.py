"""Python callable jobs: ``function(context) -> str | None``.

The callable runs in the worker's job thread: no thread is started per run (that cost 173 us a
job, more than the rest of a no-op task). A Python callable cannot be killed, so its timeout and a
cancel are cooperative: at the deadline, or when the task is canceled, ``context.canceled`` is set;
a well-behaved callable checks it and returns, and the task ends ``err`` (timed out, or canceled).
Until it returns, it holds its job slot. One watchdog thread per registry keeps every deadline.

The return value (a str, or None for no output) becomes the bounded output. ``raise JobFailed(reason)``
fails with exactly that reason; any other exception fails with ``"ValueError: message"`` as the reason
and the traceback tail as output.
"""

from __future__ import annotations

import logging
import math
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

from after.contracts import JobContext, Outcome
from after.core.timers import Scheduler
from after.jobs import JobFailed
from after.jobs.executable import format_seconds

log = logging.getLogger(__name__)

JobFunction = Callable[[JobContext], str | None]


class Watchdog:
    """One lazily started timer thread that sets ``canceled`` on callables past their timeout."""

    def __init__(self) -> None:
        self.scheduler: Scheduler | None = None
        self.lock = threading.Lock()

    def running(self) -> Scheduler:
        with self.lock:
            if self.scheduler is None:
                self.scheduler = Scheduler().start()
            return self.scheduler

    def stop(self) -> None:
        """Stop the timer thread, if it ever started (a new one starts if a job runs again)."""
        with self.lock:
            scheduler, self.scheduler = self.scheduler, None
        if scheduler is not None:
            scheduler.stop()


@dataclass
class CallableJob:
    name: str
    function: JobFunction
    watchdog: Watchdog = field(default_factory=Watchdog, repr=False)

    def run(self, context: JobContext) -> Outcome:
        expired = threading.Event()
        handle = None
        if math.isfinite(context.timeout):
            handle = self.watchdog.running().after(context.timeout, expire, context, expired)
        outcome = call(self.function, context)
        if handle is not None:
            self.watchdog.running().cancel(handle)
        if expired.is_set():
            log.warning("job %s of task %s ran past its timeout", self.name, context.task_id)
            reason = f"timed out after {format_seconds(context.timeout)} s"
            return Outcome("err", reason=reason, output=outcome.output, timed_out=True)
        if context.canceled.is_set():
            return Outcome("err", reason="canceled", output=outcome.output, canceled=True)
        return outcome


def expire(context: JobContext, expired: threading.Event) -> None:
    expired.set()
    context.canceled.set()  # ask the callable to stop


def call(function: JobFunction, context: JobContext) -> Outcome:
    limit = max(0, context.output_limit)
    try:
        value = function(context)
    except JobFailed as failure:
        return Outcome("err", reason=failure.reason, output=tail(failure.output, limit))
    except BaseException as error:  # this thread is ours: report, never propagate
        reason = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        return Outcome("err", reason=reason, output=tail(traceback.format_exc(), limit))
    return Outcome("done", output=tail("" if value is None else str(value), limit))


def tail(text: str, limit: int) -> str:
    return text[-limit:] if limit else ""
