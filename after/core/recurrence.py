"""A task's ``repeat``: the series of occurrences it names, and which comes next. Pure code, no clock.

Two forms, checked the same way at write (``after.store.couch``):

- an ISO 8601 repeating interval, ``"R5/2026-12-01T08:00:00Z/PT1H"`` (five occurrences an hour apart
  from the start) or ``"R/2026-12-01T08:00:00Z/P1D"`` (no end). The period is a duration of weeks, days,
  hours, minutes and seconds (no months or years: a cron expression says "every month"), at least one
  second. Occurrences are ``start + k * period`` in exact milliseconds, whatever the time zone does.
  The worker counts the series down: after each occurrence it writes ``R<left>/<next>/<period>``.
- a cron expression with a time zone, ``{"cron": "0 8 * * 1-5", "tz": "Europe/Lisbon"}`` (``tz``
  defaults to UTC; any name of the tz database). The expression matches local wall-clock times, and
  DST is handled by these rules (as Vixie cron does):

  * a wall time that does not exist (in the gap when clocks go forward, 02:30 in New York on the
    second Sunday of March, 01:30 in Lisbon on the last Sunday of March) runs at the first instant after
    the gap, the moment the clocks jump; several such times (``*/15``) make one run there;
  * a wall time that happens twice (clocks go back: 01:30 in New York on the first Sunday of November)
    runs once, at its first occurrence; the second pass of that hour runs nothing.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, available_timezones

from after.core.cron import check_cron, next_wall, previous_wall
from after.core.dates import format_ms, parse_date_ms, parse_duration
from after.core.invalid import InvalidTask, type_name

INTERVAL_PATTERN = r"^R([0-9]{0,9})/([^/]+)/([^/]+)$"
INTERVAL_RE = re.compile(INTERVAL_PATTERN, re.ASCII)
MIN_PERIOD = 1.0
SHAPE = ('repeat must be an ISO 8601 repeating interval like "R5/2026-12-01T08:00:00Z/PT1H" or an '
         'object like {"cron": "0 8 * * 1-5", "tz": "Europe/Lisbon"}')
CRON_KEYS = ("cron", "tz")
MAX_STEPS = 1000  # wall-clock steps looked at for one answer (past a repeated hour of minutes, say)
MAX_COUNTED = 100  # missed cron occurrences counted one by one for the record, at most
ONE_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True)
class Interval:
    """``R<count>/<start>/<period>``; ``count`` None: no end. Milliseconds since the epoch."""

    count: int | None
    start_ms: int
    period_ms: int
    period_text: str

    def occurrence(self, index: int) -> int:
        return self.start_ms + index * self.period_ms

    def ended(self, index: int) -> bool:
        return self.count is not None and index >= self.count


@dataclass(frozen=True)
class Cron:
    expression: str  # five fields, as croniter reads them
    zone: str


Recurrence = Interval | Cron


@functools.cache
def zone_names() -> frozenset[str]:
    """The time zones a task may name (the same list is written into the validation functions)."""
    return frozenset(available_timezones())


def parse_repeat(value: object) -> Recurrence:
    """A task's ``repeat``, or InvalidTask with the reason."""
    if isinstance(value, str):
        return parse_interval(value)
    if not isinstance(value, dict):
        raise InvalidTask(f"{SHAPE}, not {type_name(value)}")
    if any(key not in CRON_KEYS for key in value):
        raise InvalidTask("repeat must have only the fields cron and tz")
    expression = check_cron(value.get("cron"))
    zone = value.get("tz")
    if zone is None:
        return Cron(expression, "UTC")
    if not isinstance(zone, str):
        raise InvalidTask(f'repeat.tz must be a time zone name like "Europe/Lisbon", not {type_name(zone)}')
    if zone not in zone_names():
        raise InvalidTask(f'repeat.tz {zone!r} is not a time zone of the tz database (like "Europe/Lisbon")')
    return Cron(expression, zone)


def parse_interval(text: str) -> Interval:
    match = INTERVAL_RE.fullmatch(text)
    if match is None:
        raise InvalidTask(f"repeat {text!r} is not an ISO 8601 repeating interval like "
                          '"R5/2026-12-01T08:00:00Z/PT1H"')
    count_text, start, period_text = match.groups()
    if count_text and int(count_text) == 0:
        raise InvalidTask(f"repeat {text!r} has no occurrences (R0)")
    start_ms = parse_date_ms(start)
    period = parse_duration(period_text, "repeat period")
    if period < MIN_PERIOD:
        raise InvalidTask("repeat period must be at least 1 second (PT1S)")
    return Interval(int(count_text) if count_text else None, start_ms, round(period * 1000.0), period_text)


def interval_text(count: int | None, start_ms: int, period_text: str) -> str:
    return f"R{'' if count is None else count}/{format_ms(start_ms)}/{period_text}"


def first_index_after(series: Interval, ms: int) -> int:
    """The index of the first occurrence strictly after ``ms`` (0 when ``ms`` is before the start)."""
    if ms < series.start_ms:
        return 0
    return (ms - series.start_ms) // series.period_ms + 1


def next_after(series: Recurrence, instant: float) -> float | None:
    """The first occurrence strictly after ``instant`` (epoch seconds); None when the series has ended."""
    if isinstance(series, Interval):
        index = first_index_after(series, to_ms(instant))
        return None if series.ended(index) else series.occurrence(index) / 1000.0
    return next_cron(series, instant)


def latest_until(series: Recurrence, instant: float, since: float) -> float:
    """The last occurrence in ``(since, instant]``; ``since`` when there is none."""
    if isinstance(series, Interval):
        index = first_index_after(series, to_ms(instant)) - 1
        if series.count is not None:
            index = min(index, series.count - 1)
        found = series.occurrence(index) / 1000.0 if index >= 0 else since
        return found if found > since else since
    zone = ZoneInfo(series.zone)
    wall = datetime.fromtimestamp(instant, zone).replace(tzinfo=None, microsecond=0) + ONE_MICROSECOND
    for _ in range(MAX_STEPS):
        wall = previous_wall(series.expression, wall)  # the first step: the latest at or before
        found = instant_of(wall, zone)
        if found <= since:
            return since
        if found <= instant:  # else a wall time in a DST gap, run after it: look further back
            return found
    return since


def count_between(series: Recurrence, since: float, until: float) -> int:
    """How many occurrences fall in ``(since, until]`` (for cron, at most ``MAX_COUNTED``)."""
    if until <= since:
        return 0
    if isinstance(series, Interval):
        low, high = first_index_after(series, to_ms(since)), first_index_after(series, to_ms(until))
        if series.count is not None:
            high = min(high, series.count)
        return max(0, high - low)
    count, at = 0, since
    while count < MAX_COUNTED:
        following = next_cron(series, at)
        if following is None or following > until:
            break
        count, at = count + 1, following
    return count


def counted_down(series: Interval, next_ms: int) -> str:
    """The interval as written once the occurrences before ``next_ms`` are over."""
    left = None if series.count is None else series.count - (next_ms - series.start_ms) // series.period_ms
    return interval_text(left, next_ms, series.period_text)


def to_ms(instant: float) -> int:
    return int(round(instant * 1000.0))


def next_cron(series: Cron, instant: float) -> float | None:
    """The first instant after ``instant`` at which the cron series runs, by the DST rules above."""
    zone = ZoneInfo(series.zone)
    wall = datetime.fromtimestamp(instant, zone).replace(tzinfo=None)
    for _ in range(MAX_STEPS):
        wall = next_wall(series.expression, wall)
        found = instant_of(wall, zone)
        if found > instant:
            return found
    return None


def instant_of(wall: datetime, zone: ZoneInfo) -> float:
    """Epoch seconds of a local wall time: its first occurrence when it happens twice, the end of the
    gap (the instant the clocks jump) when it does not exist."""
    first = wall.replace(tzinfo=zone, fold=0).timestamp()
    if datetime.fromtimestamp(first, zone).replace(tzinfo=None) == wall:
        return first
    # In a gap: fold=0 reads the wall time with the offset before the jump (an instant after the gap),
    # fold=1 with the offset after it (an instant before). The jump lies between, on a whole second.
    low, high = int(wall.replace(tzinfo=zone, fold=1).timestamp()), int(first)
    before = datetime.fromtimestamp(low, UTC).astimezone(zone).utcoffset()
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, UTC).astimezone(zone).utcoffset() == before:
            low = middle
        else:
            high = middle
    return float(high)
