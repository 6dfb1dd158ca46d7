"""A task's ``retry``: how often a failed or timed-out run is tried again, and when. Pure code.

``"retry": 5`` retries five times with the defaults; the object form says everything::

    "retry": {"retries": 5, "delay": "PT10S", "factor": 2, "max_delay": "PT10M", "jitter": "PT1S"}

The n-th retry waits ``min(delay * factor ** (n - 1), max_delay)`` after the failed run ended, plus a
jitter in ``[0, jitter)`` that is derived from the task's id, its occurrence and the attempt (the same
inputs give the same date: no random state, and two workers computing it agree). Durations are ISO 8601
(or seconds); checked the same way at write (``after.store.couch``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from after.core.dates import parse_duration
from after.core.invalid import InvalidTask, type_name

MAX_RETRIES = 100
MAX_FACTOR = 100
RETRY_KEYS = ("retries", "delay", "factor", "max_delay", "jitter")
SHAPE = ('retry must be a whole number of retries from 0 to 100, or an object like '
         '{"retries": 5, "delay": "PT10S", "factor": 2, "max_delay": "PT10M", "jitter": "PT1S"}')
DEFAULT_DELAY = 10.0
DEFAULT_FACTOR = 2.0
DEFAULT_MAX_DELAY = 3600.0


@dataclass(frozen=True)
class Retry:
    retries: int
    delay: float = DEFAULT_DELAY
    factor: float = DEFAULT_FACTOR
    max_delay: float = DEFAULT_MAX_DELAY
    jitter: float = 0.0


def whole(value: object, high: int) -> int | None:
    """``value`` as a whole number in 0..high (``5`` or ``5.0``), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= high:
        return None
    return int(value) if float(value).is_integer() else None


def parse_retry(value: object) -> Retry:
    """A task's ``retry``, or InvalidTask with the reason."""
    if not isinstance(value, dict):
        retries = whole(value, MAX_RETRIES)
        if retries is None:
            raise InvalidTask(SHAPE + ("" if isinstance(value, int | float) and not isinstance(value, bool)
                                       else f", not {type_name(value)}"))
        return Retry(retries)
    if any(key not in RETRY_KEYS for key in value):
        raise InvalidTask("retry must have only the fields retries, delay, factor, max_delay and jitter")
    retries = whole(value.get("retries"), MAX_RETRIES)
    if retries is None:
        raise InvalidTask("retry.retries must be a whole number from 0 to 100")
    delay = parse_duration(value["delay"], "retry.delay") if "delay" in value else DEFAULT_DELAY
    factor = value.get("factor", DEFAULT_FACTOR)
    if isinstance(factor, bool) or not isinstance(factor, int | float) or not 1 <= factor <= MAX_FACTOR:
        raise InvalidTask("retry.factor must be a number from 1 to 100")
    most = parse_duration(value["max_delay"], "retry.max_delay") if "max_delay" in value \
        else max(DEFAULT_MAX_DELAY, delay)
    jitter = parse_duration(value["jitter"], "retry.jitter") if "jitter" in value else 0.0
    return Retry(retries, delay, float(factor), most, jitter)


def retry_delay(retry: Retry, failed_attempt: int, seed: str) -> float:
    """Seconds from the end of attempt ``failed_attempt`` (from 1) to the next attempt."""
    exponent = min(failed_attempt - 1, 1000)
    try:
        base = min(retry.delay * retry.factor ** exponent, retry.max_delay)
    except OverflowError:
        base = retry.max_delay
    return base + retry.jitter * spread(f"{seed}/{failed_attempt}")


def spread(text: str) -> float:
    """A number in [0, 1) fixed by ``text``."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") / 2.0 ** 64
