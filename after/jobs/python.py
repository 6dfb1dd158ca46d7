"""Python callable jobs: ``function(context) -> str | None``.

The callable runs in a helper daemon thread so that the worker's thread can honour the timeout and
cancellation. A Python callable cannot be killed: when it runs past its timeout, or does not return
soon after the task is canceled, ``context.canceled`` is set (a cooperative callable checks it and
stops) and the thread is abandoned; it keeps running until it returns on its own.

The return value (a str, or None for no output) becomes the bounded output. ``raise JobFailed(reason)``
fails with exactly that reason; any other exception fails with ``"ValueError: message"`` as the reason
and the traceback tail as output.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

from after.jobs import JobContext, JobFailed, Outcome
from after.jobs.executable import deadline_after, format_seconds

log = logging.getLogger(__name__)

JobFunction = Callable[[JobContext], str | None]

CANCEL_GRACE = 1.0  # seconds a canceled callable gets to notice context.canceled and return
TICK = 0.1  # how often a waiting run checks for cancellation


@dataclass
class CallableJob:
    name: str
    function: JobFunction

    def run(self, context: JobContext) -> Outcome:
        result: list[Outcome] = []
        finished = threading.Event()

        def target() -> None:
            result.append(call(self.function, context))
            finished.set()

        thread = threading.Thread(target=target, name=f"job {self.name} {context.task_id}", daemon=True)
        thread.start()
        stop = wait(finished, context)
        if stop is None and context.canceled.is_set():  # it returned because it was canceled
            stop = "canceled"
        if stop is None:
            return result[0]
        output = result[0].output if result else ""
        if stop == "canceled":
            return Outcome("err", reason="canceled", output=output, canceled=True)
        log.warning("job %s of task %s timed out; its thread is abandoned (a callable cannot be killed)",
                    self.name, context.task_id)
        context.canceled.set()  # ask a cooperative callable to stop
        reason = f"timed out after {format_seconds(context.timeout)} s"
        return Outcome("err", reason=reason, timed_out=True)


def wait(finished: threading.Event, context: JobContext) -> str | None:
    """None when the callable returned, else "timeout" or "canceled" (after a short grace)."""
    deadline = deadline_after(context.timeout)
    while not finished.is_set():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return "timeout"
        if context.canceled.is_set():
            finished.wait(min(CANCEL_GRACE, remaining))
            return "canceled"
        finished.wait(min(remaining, TICK))
    return None


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
