"""Job outcomes as the records written into the task document (``result`` and ``history``)."""

from __future__ import annotations

from typing import Any

from after.config import WorkerConfig
from after.contracts import Outcome
from after.core.dates import format_date
from after.core.policies import Policies, Ran
from after.core.task import Document, Task
from after.core.transitions import Owner, attempts_of, finish, history_of
from after.core.writes import Purpose, WriteRequest
from after.worker.events import Finished


def unknown_job_outcome(reason: str) -> Outcome:
    return Outcome(status="err", reason=reason)


def skipped_outcome(reason: str) -> Outcome:
    return Outcome(status="err", reason=reason, skipped=True)


def outcome_word(outcome: Outcome) -> str:
    if outcome.status == "done":
        return "done"
    if outcome.skipped:
        return "skipped"
    if outcome.canceled:
        return "canceled"
    return "timeout" if outcome.timed_out else "failed"


def result_record(event: Finished, doc: Document, due: float, owner: Owner) -> dict[str, Any]:
    """Who ran it, when it started and ended, how late, the outcome and a bounded output tail."""
    outcome = event.outcome
    return {
        "run": event.run_id,
        "by": owner.label,
        "attempt": max(1, attempts_of(doc)),
        "started": format_date(event.started),
        "ended": format_date(event.ended),
        "lateness_ms": round((event.started - due) * 1000.0, 3),
        "outcome": outcome_word(outcome),
        "exit_code": outcome.exit_code,
        "reason": outcome.reason,
        "output": outcome.output,
    }


def interrupted_record(event: Finished, doc: Document, owner: Owner) -> dict[str, Any]:
    """A job stopped because the worker stopped: recorded in history, the task runs again later."""
    record = result_record(event, doc, event.started, owner)
    record.pop("output")
    record.pop("lateness_ms")
    record.update(outcome="interrupted", reason="the worker stopped before the job finished")
    return record


def recorded_run(doc: Document, run_id: str) -> bool:
    """Is the run already in the document, as its result or in its history?"""
    result = doc.get("result")
    if isinstance(result, dict) and result.get("run") == run_id:
        return True
    return any(isinstance(entry, dict) and entry.get("run") == run_id for entry in history_of(doc))


def finish_request(event: Finished, doc: Document, task: Task, owner: Owner, settings: WorkerConfig,
                   policies: Policies) -> WriteRequest:
    """The write of a run's result; what becomes of the task is its policies' answer."""
    record = result_record(event, doc, task.due, owner)
    ran = Ran(ok=event.outcome.ok, started=event.started, attempt=record["attempt"],
              skipped=event.outcome.skipped)
    then = policies.after_run(task, ran, event.ended)
    return WriteRequest(
        event.task_id, Purpose.FINISH, doc,
        lambda current: finish(current, owner, record, settings.history_limit, then),
        applied=lambda current: recorded_run(current, event.run_id),
    )
