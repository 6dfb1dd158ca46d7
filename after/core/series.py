"""The policies of ``repeat``, ``retry`` and ``missed``/``grace``, plugged into ``after.core.policies``.

Pure functions over the validated task, the run and ``now``. What they decide is written by the worker
in the same revision that records the run (``after.core.transitions.finish``), so an occurrence is never
left run without its record and its successor:

- ``MissedRuns`` (when a task comes due late): with ``missed: "skip"``, an occurrence later than its
  ``grace`` is skipped (recorded, the job does not run); several missed occurrences are judged by the
  latest of them. With ``run_once`` (the default for repeating tasks) it runs, once, however late.
  A task without ``repeat`` is only ever skipped when it says ``missed: "skip"`` itself: overdue single
  tasks run, oldest due first, as they always did.
- ``Retries`` (after a failed or timed-out run): the same occurrence again after a backoff
  (``after.core.retry``), until ``retries`` are used up; the occurrence is kept in ``occurrence``, so the
  series goes on from it, not from the retry's date. A retry that would fall at or after the series'
  next occurrence is not made: that occurrence runs instead.
- ``Repeats`` (after any run or skip): the next occurrence after the one that ran, ``attempts`` from 0,
  ``R<n>`` counted down; the occurrences that passed while the task was late are counted with the run
  (``missed``: coalesced into it, or skipped). When the series is over the task ends ``done`` (or
  ``err``: the last run failed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from after.core.dates import format_date
from after.core.missed import Missed
from after.core.policies import AfterRun, Again, Policies, Ran, Settle, Skip, WhenDue, Why
from after.core.recurrence import Interval, count_between, counted_down, latest_until, next_after, to_ms
from after.core.retry import retry_delay
from after.core.task import Status, Task


@dataclass(frozen=True)
class Defaults:
    """The worker's defaults for tasks that do not say (``[worker] missed`` and ``missed_grace``)."""

    missed: Missed = Missed.RUN_ONCE
    grace: float = 300.0


def occurrence_of(task: Task, started: float) -> float:
    """The occurrence a run stands for: a retry's own, else the latest one due when the run started
    (a late run covers every occurrence it missed), and never before the task's date."""
    if task.occurrence is not None:
        return task.occurrence
    if task.repeat is None:
        return task.due
    return latest_until(task.repeat, started, task.due)


class MissedRuns:
    def __init__(self, defaults: Defaults) -> None:
        self.defaults = defaults

    def when_due(self, task: Task, now: float) -> WhenDue | None:
        missed = task.missed or (self.defaults.missed if task.repeat is not None else None)
        if missed is not Missed.SKIP or task.occurrence is not None:  # a retry is not a missed run
            return None
        grace = task.grace if task.grace is not None else self.defaults.grace
        late = now - occurrence_of(task, now)
        if late <= grace:
            return None
        return Skip(f"missed: {late:.3f} s after its time, more than its grace of {grace:g} s (missed: skip)")

    def after_run(self, task: Task, ran: Ran, now: float) -> AfterRun | None:
        return None


class Retries:
    def when_due(self, task: Task, now: float) -> WhenDue | None:
        return None

    def after_run(self, task: Task, ran: Ran, now: float) -> AfterRun | None:
        retry = task.retry
        if retry is None or ran.ok or ran.skipped or ran.attempt > retry.retries:
            return None
        occurrence = occurrence_of(task, ran.started)
        date = now + retry_delay(retry, ran.attempt, f"{task.id}/{format_date(occurrence)}")
        following = next_after(task.repeat, occurrence) if task.repeat is not None else None
        if following is not None and following <= date:
            return None  # the next occurrence comes first: it runs instead (``Repeats``)
        notes = {"retry": f"attempt {ran.attempt + 1} of {retry.retries + 1} at {format_date(date)}"}
        return Again(date, Why.RETRY, {"occurrence": format_date(occurrence)}, notes=notes)


class Repeats:
    def __init__(self, defaults: Defaults) -> None:
        self.defaults = defaults

    def when_due(self, task: Task, now: float) -> WhenDue | None:
        return None

    def after_run(self, task: Task, ran: Ran, now: float) -> AfterRun | None:
        series = task.repeat
        if series is None:
            return None
        occurrence = occurrence_of(task, ran.started)
        notes: dict[str, Any] = {"occurrence": format_date(occurrence)}
        missed = count_between(series, task.due, occurrence)
        if missed:
            notes["missed"] = missed
            skipping = ran.skipped or (task.missed or self.defaults.missed) is Missed.SKIP
            notes["missed_were"] = "skipped" if skipping else "coalesced into this run"
        following = next_after(series, occurrence)
        if following is None:
            return Settle(Status.DONE if ran.ok else Status.ERR, {**notes, "series": "ended"})
        fields: dict[str, Any] = {"occurrence": None}
        if isinstance(series, Interval):
            fields["repeat"] = counted_down(series, to_ms(following))
        return Again(following, Why.REPEAT, fields, new_occurrence=True, notes=notes)


def task_policies(defaults: Defaults | None = None) -> Policies:
    """The policies every worker runs with: missed runs, then retries, then repeats."""
    defaults = defaults or Defaults()
    return Policies([MissedRuns(defaults), Retries(), Repeats(defaults)])
