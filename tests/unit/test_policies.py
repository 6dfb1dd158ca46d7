"""The seam for per-task policies (``after.core.policies``): a policy plugged into the worker decides
what becomes of a task after a run, and whether a late task runs, without touching the worker."""

from __future__ import annotations

from after.core.dates import format_date, parse_date
from after.core.policies import ONE_SHOT, AfterRun, Again, Policies, Ran, Run, Settle, Skip, WhenDue, Why
from after.core.task import Status, Task, validate
from tests.unit.test_worker import START, Harness


class RetryOnceAMinuteLater:
    def when_due(self, task: Task, now: float) -> WhenDue | None:
        return None

    def after_run(self, task: Task, ran: Ran, now: float) -> AfterRun | None:
        return Again(task.due + 60.0, Why.RETRY) if not ran.ok and ran.attempt == 1 else None


class SkipWhenTenSecondsLate:
    def when_due(self, task: Task, now: float) -> WhenDue | None:
        return Skip(f"{now - task.due:.0f} s late, more than 10 s") if now - task.due > 10.0 else None

    def after_run(self, task: Task, ran: Ran, now: float) -> AfterRun | None:
        return None


def task(offset: float = 0.0) -> Task:
    return validate({"_id": "t", "worker": "manobi", "date": format_date(START + offset),
                     "job": {"name": "record"}, "status": "waiting"})


def test_without_policies_a_task_runs_however_late_and_settles_with_its_outcome() -> None:
    assert ONE_SHOT.when_due(task(), START + 86_400.0) == Run()
    assert ONE_SHOT.after_run(task(), Ran(ok=True, started=START, attempt=1), START) == Settle(Status.DONE)
    assert ONE_SHOT.after_run(task(), Ran(ok=False, started=START, attempt=3), START) == Settle(Status.ERR)


def test_the_first_policy_with_an_answer_wins() -> None:
    policies = Policies([SkipWhenTenSecondsLate(), RetryOnceAMinuteLater()])
    assert policies.when_due(task(), START + 11.0) == Skip("11 s late, more than 10 s")
    assert policies.when_due(task(), START + 9.0) == Run()
    assert policies.after_run(task(), Ran(ok=False, started=START, attempt=1), START) == \
        Again(START + 60.0, Why.RETRY)
    assert policies.after_run(task(), Ran(ok=False, started=START, attempt=2), START) == Settle(Status.ERR)


def test_a_retry_policy_in_the_worker_schedules_a_failed_task_again_then_lets_it_fail() -> None:
    harness = Harness(policies=Policies([RetryOnceAMinuteLater()]))
    harness.add("t", 0.0, job="fail")
    harness.advance(1.0)
    doc = harness.doc("t")
    assert doc["status"] == "scheduled" and parse_date(doc["date"]) == START + 60.0
    assert doc["result"]["outcome"] == "failed" and doc["result"]["again"] == "retry"
    harness.advance(60.0)
    doc = harness.doc("t")
    assert doc["status"] == "err" and doc["attempts"] == 2
    assert [run["outcome"] for run in doc["history"]] == ["failed", "failed"]


def test_a_grace_policy_in_the_worker_skips_a_late_task_without_running_its_job() -> None:
    harness = Harness(policies=Policies([SkipWhenTenSecondsLate()]))
    harness.add("late", -30.0)
    harness.add("on-time", 0.0)
    harness.advance(1.0)
    late = harness.doc("late")
    assert late["status"] == "err" and late["result"]["outcome"] == "skipped"
    assert late["result"]["reason"].endswith("late, more than 10 s")
    assert harness.ran == ["on-time"] and harness.doc("on-time")["status"] == "done"
