"""A task's ``missed`` and ``grace``: what becomes of an occurrence whose time passed while no worker
could run it (downtime, a backlog). The decision itself is ``after.core.series.MissedRuns``."""

from __future__ import annotations

import enum

from after.core.dates import parse_duration
from after.core.invalid import InvalidTask


class Missed(enum.StrEnum):
    RUN_ONCE = "run_once"  # run it late, once: several missed occurrences make one run (recorded)
    SKIP = "skip"  # run it only within ``grace`` of its time; else skip it (recorded)


MISSED_REASON = 'missed must be "run_once" or "skip"'


def parse_missed(value: object) -> Missed:
    if not isinstance(value, str) or value not in set(Missed):
        raise InvalidTask(MISSED_REASON)
    return Missed(value)


def parse_grace(value: object) -> float:
    return parse_duration(value, "grace")
