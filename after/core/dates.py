"""Dates and durations as tasks write them (ISO 8601) and as the worker writes them (UTC, to the
millisecond). Pure code; the same rules in JavaScript and Erlang (``after.store.couch``)."""

from __future__ import annotations

import functools
import math
import re
from datetime import UTC, datetime, timedelta, timezone

from after.core.invalid import InvalidTask, type_name

# The instants a task may name: the years 1 to 9999 in UTC, which every part of After can represent.
MIN_INSTANT = -62135596800.0  # 0001-01-01T00:00:00Z


END_INSTANT = 253402300800.0  # 10000-01-01T00:00:00Z, excluded


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


DATE_PATTERN = (
    r"^(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?(Z|[+-]\d{2}(?::?\d{2})?)?)?$"
)


DATE_RE = re.compile(DATE_PATTERN, re.ASCII)


# What may surround a date or a duration (stripped before parsing): ASCII white space only, the same in
# Python, JavaScript and Erlang (their Unicode notions of white space differ).
SPACES = " \t\n\r\x0b\x0c"


NUMBER = r"(\d+(?:\.\d+)?)"


DURATION_PATTERN = rf"^P(?:{NUMBER}W)?(?:{NUMBER}D)?(?:T(?:{NUMBER}H)?(?:{NUMBER}M)?(?:{NUMBER}S)?)?$"


DURATION_RE = re.compile(DURATION_PATTERN, re.ASCII)


# What format_date writes (the worker's ``due``): sortable as a string.
CANONICAL_DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$"


CANONICAL_DATE_RE = re.compile(CANONICAL_DATE_PATTERN, re.ASCII)


def parse_date(text: object) -> float:
    """ISO 8601 date or date-time to seconds since the epoch (UTC), to the millisecond.

    A date alone means 00:00 UTC, a time without offset means UTC, offsets and fractions count
    (digits past the millisecond are dropped, as in JavaScript and Erlang).
    """
    return parse_date_ms(text) / 1000.0


def parse_date_ms(text: object) -> int:
    """``parse_date`` in whole milliseconds: exact, so the three languages agree to the millisecond."""
    if not isinstance(text, str):
        raise InvalidTask(f"date must be an ISO 8601 string, not {type_name(text)}")
    return parse_date_text(text)


@functools.lru_cache(maxsize=8192)
def parse_date_text(text: str) -> int:
    """``parse_date_ms`` for strings, remembered: the loop reads the same dates and leases again and again."""
    match = DATE_RE.fullmatch(text.strip(SPACES))
    if match is None:
        raise InvalidTask(f"date {text!r} is not ISO 8601 (for example 2011-10-12T08:30:00Z)")
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    try:
        moment = datetime(
            int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0),
            tzinfo=parse_offset(offset),
        )
    except ValueError as error:
        raise InvalidTask(f"date {text!r} is not a real date: {error}") from None
    instant = int(moment.timestamp()) * 1000 + (int((fraction + "00")[:3]) if fraction else 0)
    if not MIN_INSTANT * 1000 <= instant < END_INSTANT * 1000:
        raise InvalidTask(f"date {text!r} is out of range: in UTC it must fall in the years 1 to 9999")
    return instant


def parse_offset(offset: str | None) -> timezone:
    if offset is None or offset == "Z":
        return UTC
    sign = -1 if offset[0] == "-" else 1
    digits = offset[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:] or 0)
    if hours > 23 or minutes > 59:
        raise ValueError(f"offset {offset} out of range")
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def format_date(epoch: float) -> str:
    """Seconds since the epoch to the canonical form the worker writes: UTC, to the millisecond.

    Truncated to the millisecond (0.05 ms of floating-point error tolerated, so that a date read back
    from its canonical form writes the same text).
    """
    return format_ms(math.floor(epoch * 1000.0 + 0.05))


def format_ms(ms: int) -> str:
    """Always ``YYYY-MM-DDTHH:MM:SS.mmmZ`` (four-digit years: strftime writes year 1 as ``1``), so that
    canonical dates sort as strings, which the CouchDB indexes rely on."""
    moment = EPOCH + timedelta(milliseconds=ms)
    return (f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T{moment.hour:02d}:{moment.minute:02d}:"
            f"{moment.second:02d}.{moment.microsecond // 1000:03d}Z")


def canonical_date(text: object) -> str:
    """The canonical form of a task's date (what the worker writes as ``due``); raises InvalidTask."""
    return format_ms(parse_date_ms(text))


def parse_duration(value: object, name: str = "duration") -> float:
    """ISO 8601 duration (``PT30S``, ``P1DT2H``, ``P2W``) or a number of seconds, to seconds."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InvalidTask(f"{name} must be an ISO 8601 duration such as PT30S, not {type_name(value)}")
    if isinstance(value, str):
        stripped = value.strip(SPACES)
        match = DURATION_RE.fullmatch(stripped)
        if match is None or stripped in ("P", "PT") or stripped.endswith("T"):
            raise InvalidTask(f"{name} {value!r} is not an ISO 8601 duration such as PT30S or P1D")
        weeks, days, hours, minutes, seconds = (float(part or 0) for part in match.groups())
        value = (((weeks * 7 + days) * 24 + hours) * 60 + minutes) * 60 + seconds
    if value <= 0:
        raise InvalidTask(f"{name} must be longer than zero")
    return float(value)
