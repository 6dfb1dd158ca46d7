"""The task document: statuses, the validated Task, the limits and the validation. Pure code, no I/O.

The same rules are enforced at write time by the design document's ``validate_doc_update``
(see ``after.store.couch.design``); ``tests/unit/test_validation.py`` runs one table against both.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from after.core.dates import CANONICAL_DATE_RE, format_ms, parse_date_ms, parse_date_text, parse_duration
from after.core.invalid import InvalidTask, type_name
from after.core.missed import Missed, parse_grace, parse_missed
from after.core.recurrence import Recurrence, parse_repeat
from after.core.retry import Retry, parse_retry

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
CLIENT_ROLE = "after_client"
MEMBER_ROLES = (WORKER_ROLE, CLIENT_ROLE)  # the database's members


NAME_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"


NAME_RE = re.compile(NAME_PATTERN, re.ASCII)


MAX_TASK_CHARS = 65536  # the whole document, the worker's fields included


MAX_CLIENT_CHARS = 49152  # what clients write: the rest is kept for the worker's own fields


MAX_DEPTH = 32  # levels of objects and lists, the document itself being the first


MAX_TIMEOUT = 366 * 86400.0


# Fields only the worker writes; not counted in MAX_CLIENT_CHARS, and type-checked at write.
WORKER_FIELDS = ("due", "claim", "attempts", "result", "history", "canceled", "unreadable", "occurrence")


# Not counted in the client's size: the worker's fields, the status (one word once valid, and it changes
# with the worker's answers), and CouchDB's own _rev and _revisions.
NOT_CLIENT_SIZE = (*WORKER_FIELDS, "status", "_rev", "_revisions")


META = ("_rev", "_revisions")


# The worker reads a document back with Python's JSON, which writes some numbers longer than CouchDB's
# JavaScript and Erlang did when they checked it at write (``1.0`` for ``1``): this much is tolerated.
READ_BACK_SLACK = 256


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
    repeat: Recurrence | None = None
    retry: Retry | None = None
    missed: Missed | None = None  # None: the worker's default (for repeating tasks)
    grace: float | None = None  # None: the worker's default
    occurrence: float | None = None  # the occurrence a retry belongs to; None: ``due``

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
    for name in ("canceled", "occurrence"):
        written = doc.get(name)
        if name in doc and not (isinstance(written, str) and CANONICAL_DATE_RE.fullmatch(written)):
            raise InvalidTask(f"{name} must be a date in UTC like 2011-10-12T08:30:00.000Z "
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
    policies = task_policies(doc)
    check_worker_fields(doc, Status(status), due_ms)
    # a pending retry's occurrence; a client's re-arm (waiting, schedule, reschedule) starts afresh
    occurrence = due_or_none(doc.get("occurrence")) if status not in ARM_STATUSES else None
    return Task(
        id=str(doc.get("_id", "")), rev=doc.get("_rev"), worker=worker, due=due_ms / 1000.0, job_name=name,
        arguments=arguments, status=Status(status), timeout=timeout, document=doc, **policies,
        occurrence=occurrence,
    )


def due_or_none(text: object) -> float | None:
    try:
        return parse_date_ms(text) / 1000.0 if text is not None else None
    except InvalidTask:
        return None


def task_policies(doc: Document) -> dict[str, Any]:
    """The optional controls ``repeat``, ``retry``, ``missed`` and ``grace`` (null: absent), checked."""
    def present(name: str) -> bool:
        return doc.get(name) is not None

    return {
        "repeat": parse_repeat(doc["repeat"]) if present("repeat") else None,
        "retry": parse_retry(doc["retry"]) if present("retry") else None,
        "missed": parse_missed(doc["missed"]) if present("missed") else None,
        "grace": parse_grace(doc["grace"]) if present("grace") else None,
    }
