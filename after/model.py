"""The task document: statuses, dates, durations and validation. Pure code, no I/O.

The same rules are enforced at write time by the design document's ``validate_doc_update``
(see ``after.design``); ``tests/unit/test_validation.py`` runs one table against both.
"""

from __future__ import annotations

import functools
import json
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum
from typing import Any

Document = dict[str, Any]


class Status(StrEnum):
    WAITING = "waiting"
    SCHEDULE = "schedule"
    RESCHEDULE = "reschedule"
    CANCEL = "cancel"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    CANCELED = "canceled"
    DONE = "done"
    ERR = "err"


CLIENT_STATUSES = frozenset({Status.WAITING, Status.SCHEDULE, Status.RESCHEDULE, Status.CANCEL})
WORKER_STATUSES = frozenset(set(Status) - CLIENT_STATUSES)
# Statuses the worker still has to act on; the "live" view indexes exactly these.
LIVE_STATUSES = frozenset(CLIENT_STATUSES | {Status.SCHEDULED, Status.RUNNING})
TERMINAL_STATUSES = frozenset({Status.DONE, Status.ERR, Status.CANCELED})
# Client statuses that ask for the task to be armed (as opposed to canceled).
ARM_STATUSES = frozenset({Status.WAITING, Status.SCHEDULE, Status.RESCHEDULE})

WORKER_ROLE = "after_worker"
NAME_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
NAME_RE = re.compile(NAME_PATTERN, re.ASCII)
MAX_TASK_CHARS = 65536  # the whole document, the worker's fields included
MAX_CLIENT_CHARS = 49152  # what clients write: the rest is kept for the worker's own fields
MAX_DEPTH = 32  # levels of objects and lists, the document itself being the first
MAX_TIMEOUT = 366 * 86400.0
# Fields only the worker writes; not counted in MAX_CLIENT_CHARS, and type-checked at write.
WORKER_FIELDS = ("due", "claim", "attempts", "result", "history", "canceled", "unreadable")
# The instants a task may name: the years 1 to 9999 in UTC, which every part of After can represent.
MIN_INSTANT = -62135596800.0  # 0001-01-01T00:00:00Z
END_INSTANT = 253402300800.0  # 10000-01-01T00:00:00Z, excluded
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Not counted in the client's size: the worker's fields, the status (one word once valid, and it changes
# with the worker's answers), and CouchDB's own _rev and _revisions.
NOT_CLIENT_SIZE = (*WORKER_FIELDS, "status", "_rev", "_revisions")
META = ("_rev", "_revisions")
# The worker reads a document back with Python's JSON, which writes some numbers longer than CouchDB's
# JavaScript and Erlang did when they checked it at write (``1.0`` for ``1``): this much is tolerated.
READ_BACK_SLACK = 256

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


class InvalidTask(ValueError):
    """A task document the worker cannot run; ``reason`` is written to the document."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


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


def type_name(value: object) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            type(None): "null", int: "a number", float: "a number"}.get(type(value), "a value")


UNREADABLE = "unreadable"  # the stand-in's field: why, and the document's text
UNREADABLE_TEXT_LIMIT = 16384


def unreadable_stand_in(doc_id: str, rev: str | None, fields: Document, text: str) -> Document:
    """What the stores hand out for a document they cannot parse (nested deeper than Python goes).

    It keeps the document's id, revision, worker and status (read apart, through ``_find`` fields) and
    its text; the worker answers it with ``err``, which replaces the document by this stand-in, so the
    client's content survives as text in ``unreadable.text`` (the first 16 KiB).
    """
    reason = ("After cannot read this document: it is nested deeper than its JSON parser goes; "
              f"its text is kept in {UNREADABLE}.text")
    doc: Document = {"_id": doc_id, **({"_rev": rev} if rev else {})}
    doc.update({key: fields[key] for key in ("worker", "status") if isinstance(fields.get(key), str)})
    doc[UNREADABLE] = {"reason": reason, "text": text[:UNREADABLE_TEXT_LIMIT],
                       "truncated": len(text) > UNREADABLE_TEXT_LIMIT}
    return doc


def unreadable_reason(doc: Document) -> str | None:
    marker = doc.get(UNREADABLE)
    if isinstance(marker, dict) and isinstance(marker.get("reason"), str):
        return str(marker["reason"])
    return None


def status_of(doc: Document) -> str | None:
    """The status if it is a string: a list or an object written there cannot even be looked up in a set."""
    status = doc.get("status")
    return status if isinstance(status, str) else None


def is_task(doc: Document) -> bool:
    """A document with neither ``worker`` nor ``job`` is not a task and is ignored."""
    return not str(doc.get("_id", "")).startswith("_design/") and ("worker" in doc or "job" in doc)


@dataclass(frozen=True)
class Task:
    id: str
    rev: str | None
    worker: str
    due: float
    job_name: str
    arguments: list[Any]
    status: Status
    timeout: float | None = None
    document: Document = field(default_factory=dict, repr=False, compare=False)

    @property
    def generation(self) -> int:
        return revision_generation(self.rev)


def revision_generation(rev: str | None) -> int:
    """The number before the dash in a CouchDB ``_rev``; 0 for none."""
    if not rev:
        return 0
    head = rev.split("-", 1)[0]
    return int(head) if head.isdigit() else 0


def nesting_depth(value: object, limit: int) -> int:
    """Levels of objects and lists in ``value`` (a scalar: 0), counted iteratively up to ``limit + 1``."""
    depth, stack = 0, [(value, 1)]
    while stack and depth <= limit:
        item, level = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is not None:
            depth = max(depth, level)
            stack.extend((child, level + 1) for child in children)
    return depth


def json_chars(doc: Document, leave_out: tuple[str, ...] = ()) -> int:
    """Characters of ``doc`` as compact JSON (code points, as JavaScript's check counts them)."""
    kept = {key: value for key, value in doc.items() if key not in leave_out} if leave_out else doc
    return len(json.dumps(kept, separators=(",", ":"), ensure_ascii=False))


def check_shape(doc: Document, slack: int = 0) -> None:
    """Depth and size first: what the worker could not parse, or its own writes would push over the limit.

    ``slack``: characters tolerated over the limits (the worker's reading of what CouchDB accepted).
    """
    if nesting_depth(doc, MAX_DEPTH) > MAX_DEPTH:
        raise InvalidTask(f"task document is nested deeper than {MAX_DEPTH} levels of objects and lists")
    size = json_chars(doc, META)
    if size > MAX_TASK_CHARS + slack:
        raise InvalidTask(f"task document is {size} characters; the limit is {MAX_TASK_CHARS}")
    size = json_chars(doc, NOT_CLIENT_SIZE)
    if size > MAX_CLIENT_CHARS + slack:
        raise InvalidTask(f"task document is {size} characters without the worker's fields; "
                          f"the limit is {MAX_CLIENT_CHARS}")


def check_worker_fields(doc: Document, status: Status, due_ms: int) -> None:
    """What the worker writes (and reads back) has the type it writes, whoever wrote it."""
    attempts = doc.get("attempts", 0)
    if isinstance(attempts, bool) or not isinstance(attempts, int | float) or not attempts >= 0 \
            or (isinstance(attempts, float) and not attempts.is_integer()):
        raise InvalidTask("attempts must be a whole number, at least 0 (it is written by the worker)")
    for name, kind, word in (("history", list, "a list"), ("claim", dict, "an object"),
                             ("result", dict, "an object")):
        if name in doc and not isinstance(doc[name], kind):
            raise InvalidTask(f"{name} must be {word} (it is written by the worker)")
    canceled = doc.get("canceled")
    if "canceled" in doc and not (isinstance(canceled, str) and CANONICAL_DATE_RE.fullmatch(canceled)):
        raise InvalidTask("canceled must be a date in UTC like 2011-10-12T08:30:00.000Z "
                          "(it is written by the worker)")
    if status in (Status.SCHEDULED, Status.RUNNING) and "due" in doc:
        written = doc["due"]
        if not isinstance(written, str) or not CANONICAL_DATE_RE.fullmatch(written) \
                or parse_date_text(written) != due_ms:
            raise InvalidTask(f"due must be the task's date in UTC ({format_ms(due_ms)}); "
                              "it is written by the worker")


def validate(doc: Document, slack: int = 0) -> Task:
    """Check a task document and return it as a Task, or raise InvalidTask with a reason.

    The same rules as ``validate_doc_update`` (``slack``: characters tolerated over the size limits,
    for the worker reading back what CouchDB accepted at write).
    """
    unreadable = unreadable_reason(doc)
    if unreadable is not None:
        raise InvalidTask(unreadable)
    check_shape(doc, slack)
    worker = doc.get("worker")
    if not isinstance(worker, str) or not NAME_RE.fullmatch(worker):
        raise InvalidTask("worker must be a name of 1-64 characters from A-Z a-z 0-9 _ . -")
    job = doc.get("job")
    if not isinstance(job, dict):
        raise InvalidTask('job must be an object like {"name": "start_campaign", "arguments": []}')
    name = job.get("name")
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise InvalidTask("job.name must be a name of 1-64 characters from A-Z a-z 0-9 _ . -")
    arguments = job.get("arguments", [])
    if not isinstance(arguments, list):
        raise InvalidTask(f"job.arguments must be a list, not {type_name(arguments)}")
    if "date" not in doc:
        raise InvalidTask("date is missing (ISO 8601, for example 2011-10-12T08:30:00Z)")
    due_ms = parse_date_ms(doc["date"])
    status = doc.get("status")
    if not isinstance(status, str) or status not in set(Status):
        raise InvalidTask("status must be one of " + ", ".join(sorted(CLIENT_STATUSES)))
    timeout = parse_duration(doc["timeout"], "timeout") if doc.get("timeout") is not None else None
    if timeout is not None and timeout > MAX_TIMEOUT:
        raise InvalidTask("timeout must be at most 366 days (P366D)")
    check_worker_fields(doc, Status(status), due_ms)
    return Task(
        id=str(doc.get("_id", "")), rev=doc.get("_rev"), worker=worker, due=due_ms / 1000.0, job_name=name,
        arguments=arguments, status=Status(status), timeout=timeout, document=doc,
    )
