"""Per-task policies: what happens when a task comes due late, and after its job has run.

A policy is a pair of pure functions over the validated task and ``now``; it answers None when it has
nothing to say about a task, and the first answer of ``Policies`` wins. The default (no policy) is the
one-shot task of the original design: it runs however late, and ends ``done`` or ``err`` with its
job. Repeating tasks, retries with backoff and missed-run grace are policies; the worker asks
``Policies`` at a task's start (``when_due``) and builds its finish write from ``after_run``
(``after.core.transitions.finish``), so a new policy touches this module and the fields it reads.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from after.core.task import Status, Task


@dataclass(frozen=True)
class Run:
    """Its job runs now."""


@dataclass(frozen=True)
class Skip:
    """Its job does not run this time (it is too late, say): recorded as a run that did not start."""

    reason: str


class Why(enum.StrEnum):
    """Why a task runs again; recorded with the run (``result.again``)."""

    REPEAT = "repeat"  # its next occurrence
    RETRY = "retry"  # the same occurrence, after a failure


@dataclass(frozen=True)
class Settle:
    """The task is over: it ends with this status."""

    status: Status
    notes: Mapping[str, Any] = field(default_factory=dict)  # recorded with the run


@dataclass(frozen=True)
class Again:
    """The task runs again at ``date`` (epoch seconds): it is ``scheduled`` for then, in the same write
    that records the run (one revision: a crash never leaves a run recorded without its next date)."""

    date: float
    why: Why
    fields: Mapping[str, Any] = field(default_factory=dict)  # top-level fields written too; None: removed
    new_occurrence: bool = False  # ``attempts`` counts from 0 again
    notes: Mapping[str, Any] = field(default_factory=dict)  # recorded with the run


WhenDue = Run | Skip
AfterRun = Settle | Again


@dataclass(frozen=True)
class Ran:
    """How a run ended, as far as policies care."""

    ok: bool  # the job succeeded
    started: float  # epoch seconds; for a skipped run, when it was skipped
    attempt: int  # the attempt this was, from 1 (of the occurrence, for a repeating task)
    skipped: bool = False  # the job did not run (``Skip``)


class Policy(Protocol):
    def when_due(self, task: Task, now: float) -> WhenDue | None:
        """Whether the task's job runs now that it is due (``now`` may be long after its date)."""

    def after_run(self, task: Task, ran: Ran, now: float) -> AfterRun | None:
        """What becomes of the task once a run ended."""


class Policies:
    """The policies in force, asked in order; with none, every task is a one-shot task."""

    def __init__(self, policies: Sequence[Policy] = ()) -> None:
        self.policies = tuple(policies)

    def when_due(self, task: Task, now: float) -> WhenDue:
        for policy in self.policies:
            answer = policy.when_due(task, now)
            if answer is not None:
                return answer
        return Run()

    def after_run(self, task: Task, ran: Ran, now: float) -> AfterRun:
        for policy in self.policies:
            answer = policy.after_run(task, ran, now)
            if answer is not None:
                return answer
        return Settle(Status.DONE if ran.ok else Status.ERR)


ONE_SHOT = Policies()
