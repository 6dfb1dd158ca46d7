"""Cron expressions as a task's ``repeat`` names them: the grammar After accepts, checked the same way in
Python, JavaScript and Erlang (``after.store.couch``), and the next matching wall-clock time.

Five fields (minute, hour, day of month, month, day of week) separated by spaces or tabs, or one of the
macros in ``MACROS``. A field is a comma-separated list of items; an item is ``*``, a value, or a range
``a-b``, each optionally followed by a step ``/n`` (``*/15``, ``1-5``, ``9-17/2``). Months and days of the
week may be named by their first three letters (``jan``, ``mon``, any case); day of week 0 and 7 are
Sunday. As in every cron, when both day fields are restricted a day matching either one matches. An
expression that can never match (``0 0 30 2 *``) is refused. Wall-clock stepping is croniter's
(``croniter(expression, naive_datetime).get_next(datetime)``), on naive local times: the time zone and
its DST transitions are applied by ``after.core.recurrence``, not by croniter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from croniter import croniter  # type: ignore[import-untyped]  # no stubs in Debian or typeshed's 1.3

from after.core.dates import SPACES
from after.core.invalid import InvalidTask, type_name

MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


@dataclass(frozen=True)
class Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()  # names[i] stands for low + i (months) or i (days)
    first_name: int = 0  # the value of names[0]


FIELDS = (
    Field("minute", 0, 59),
    Field("hour", 0, 23),
    Field("day-of-month", 1, 31),
    Field("month", 1, 12, MONTHS, 1),
    Field("day-of-week", 0, 7, DAYS, 0),
)
MACROS = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
}
ITEM_PATTERN = r"^(\*|[0-9A-Za-z]+(?:-[0-9A-Za-z]+)?)(?:/([0-9]+))?$"
ITEM_RE = re.compile(ITEM_PATTERN, re.ASCII)
SEPARATOR_PATTERN = "[ \t]+"
# The longest month each month can be: February has a 29th in leap years.
MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
EXAMPLE = '"0 8 * * 1-5"'


def cron_fields(value: object) -> list[str]:
    """The five fields of a cron expression (a macro replaced), or InvalidTask with the reason."""
    if not isinstance(value, str):
        raise InvalidTask(f"repeat.cron must be a string like {EXAMPLE}, not {type_name(value)}")
    text = value.strip(SPACES)
    fields = re.split(SEPARATOR_PATTERN, MACROS.get(text.lower(), text))
    if len(fields) != len(FIELDS):
        raise InvalidTask(f"repeat.cron {value!r} must have 5 fields (minute hour day-of-month month "
                          "day-of-week) or be one of @hourly @daily @weekly @monthly @yearly")
    return fields


def field_value(text: str, spec: Field) -> int | None:
    if text.isdigit():
        return int(text)
    lowered = text.lower()
    return spec.names.index(lowered) + spec.first_name if lowered in spec.names else None


def expand_field(text: str, spec: Field) -> set[int] | None:
    """The values a field matches; None when it is not valid."""
    values: set[int] = set()
    for item in text.split(","):
        match = ITEM_RE.fullmatch(item)
        if match is None:
            return None
        base, step_text = match.groups()
        parts: list[int | None] = [spec.low, spec.high] if base == "*" else \
            [field_value(part, spec) for part in base.split("-")]
        low, high = parts[0], parts[-1]
        if step_text is not None and len(parts) == 1:
            return None
        step = int(step_text) if step_text is not None else 1
        if low is None or high is None or not spec.low <= low <= high <= spec.high \
                or not 1 <= step <= spec.high:
            return None
        values.update(range(low, high + 1, step))
    return values


def named(spec: Field) -> str:
    """What a field's reason adds after its range: the names it takes."""
    return " or jan-dec" if spec.names is MONTHS else " or sun-sat" if spec.names else ""


def check_cron(value: object) -> str:
    """The expression as croniter reads it (five fields), or InvalidTask with the reason."""
    fields = cron_fields(value)
    sets = []
    for text, spec in zip(fields, FIELDS, strict=True):
        values = expand_field(text, spec)
        if values is None:
            raise InvalidTask(f"repeat.cron {value!r}: the {spec.name} field {text!r} is not valid "
                              f"(values {spec.low}-{spec.high}{named(spec)}, ranges a-b, steps */n or a-b/n)")
        sets.append(values)
    days, months = sets[2], sets[3]
    if fields[4] == "*" and min(days) > max(MONTH_DAYS[month - 1] for month in months):
        raise InvalidTask(f"repeat.cron {value!r} never runs: no month it names has day {min(days)}")
    return " ".join(fields)


def next_wall(expression: str, after: datetime) -> datetime:
    """The first wall-clock time after ``after`` (naive) that ``expression`` (checked) matches."""
    found: datetime = croniter(expression, after).get_next(datetime)
    return found


def previous_wall(expression: str, before: datetime) -> datetime:
    """The last wall-clock time before ``before`` (naive) that ``expression`` matches."""
    found: datetime = croniter(expression, before).get_prev(datetime)
    return found
