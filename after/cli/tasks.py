"""What the task commands of the CLI build and print. Pure: documents in, documents or text out."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from after.core.dates import format_date, parse_date, parse_duration
from after.core.invalid import InvalidTask
from after.core.recurrence import Interval, next_after, parse_repeat
from after.core.task import LIVE_STATUSES, Document, Status, validate

DELAY_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?$")
DELAY_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def parse_delay(text: str) -> float:
    """``90``, ``90s``, ``5m``, ``2h``, ``1d``, ``250ms`` or an ISO 8601 duration (``PT5M``) in seconds."""
    match = DELAY_RE.match(text.strip())
    if match:
        return float(match.group(1)) * DELAY_UNITS[match.group(2) or "s"]
    return parse_duration(text, "delay")


def parse_argument(text: str) -> Any:
    """A command-line argument is JSON when it parses as JSON (``2``, ``true``, ``[1]``), else a string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def when(now: float, at: str | None, delay: str | None) -> float:
    if at is not None and delay is not None:
        raise InvalidTask("give either --at or --in, not both")
    if at is not None:
        return parse_date(at)
    return now + (parse_delay(delay) if delay is not None else 0.0)


def iso_duration(seconds: float) -> str:
    """Seconds as an ISO 8601 duration: ``PT1H``, ``P1DT30M``, ``PT0.5S``."""
    days, rest = divmod(seconds, 86400.0)
    hours, rest = divmod(rest, 3600.0)
    minutes, rest = divmod(rest, 60.0)
    time = "".join(f"{value:g}{unit}" for value, unit in ((hours, "H"), (minutes, "M"), (rest, "S")) if value)
    return "P" + (f"{days:g}D" if days else "") + (f"T{time}" if time else "")


def series(now: float, date: float | None, every: str | None, times: int | None, cron: str | None,
           tz: str | None) -> tuple[float, Any]:
    """The first date and the ``repeat`` of ``after add``'s options (``repeat`` None: a single task).

    ``--every`` repeats from the date (default now), ``--times`` of them (default: no end); ``--cron``
    runs first at its next time after now unless ``--at``/``--in`` say when.
    """
    if every is not None and cron is not None:
        raise InvalidTask("give either --every or --cron, not both")
    if (times is not None and every is None) or (tz is not None and cron is None):
        raise InvalidTask("--times goes with --every, and --tz with --cron")
    if every is not None:
        start = now if date is None else date
        count = "" if times is None else str(times)
        return start, f"R{count}/{format_date(start)}/{iso_duration(parse_delay(every))}"
    if cron is None:
        return (now if date is None else date), None
    repeat: Document = {"cron": cron, **({"tz": tz} if tz is not None else {})}
    first = next_after(parse_repeat(repeat), now) if date is None else date
    return (now if first is None else first), repeat


def policies(retry: int | None, retry_delay: str | None, missed: str | None, grace: str | None) -> Document:
    """The optional ``retry``, ``missed`` and ``grace`` fields of ``after add``'s options."""
    fields: Document = {}
    if retry_delay is not None and retry is None:
        raise InvalidTask("--retry-delay goes with --retry")
    if retry is not None:
        fields["retry"] = retry if retry_delay is None else \
            {"retries": retry, "delay": iso_duration(parse_delay(retry_delay))}
    if missed is not None:
        fields["missed"] = missed
    if grace is not None:
        fields["grace"] = iso_duration(parse_delay(grace))
    return fields


def new_task(worker: str, job: str, arguments: list[str], date: float, timeout: str | None = None,
             task_id: str | None = None, repeat: Any = None, extra: Document | None = None) -> Document:
    doc: Document = {
        "_id": task_id or uuid.uuid4().hex,
        "worker": worker,
        "date": format_date(date),
        "job": {"name": job, "arguments": [parse_argument(argument) for argument in arguments]},
        "status": Status.WAITING.value,
    }
    if timeout is not None:
        doc["timeout"] = timeout
    if repeat is not None:
        doc["repeat"] = repeat
    doc.update(extra or {})
    validate(doc)
    return doc


def with_status(doc: Document, status: Status, date: float | None = None) -> Document:
    new = {**doc, "status": status.value}
    if date is not None:
        new["date"] = format_date(date)
    return new


def summary_row(doc: Document) -> list[str]:
    result = doc.get("result") or {}
    job = doc.get("job")
    job = job if isinstance(job, dict) else {}
    note = result.get("reason") or result.get("outcome") or ""
    return [str(doc.get("_id")), str(doc.get("worker")), str(doc.get("status")), next_run(doc),
            str(job.get("name")), repeat_summary(doc), str(note)[:60]]


def next_run(doc: Document) -> str:
    """When the task runs next: its date while it is live, ``-`` once it ended."""
    return str(doc.get("date")) if doc.get("status") in LIVE_STATUSES else "-"


def repeat_summary(doc: Document) -> str:
    """``every PT1H, 4 left``, ``0 8 * * 1-5 Europe/Lisbon``, ``retry 2/5``; ``-`` for a single task."""
    parts = []
    try:
        repeat = parse_repeat(doc["repeat"]) if doc.get("repeat") is not None else None
    except InvalidTask:
        repeat, parts = None, ["(invalid repeat)"]
    if isinstance(repeat, Interval):
        parts.append(f"every {repeat.period_text}" + (f", {repeat.count} left" if repeat.count else ""))
    elif repeat is not None:
        parts.append(f"{repeat.expression} {repeat.zone}")
    if "occurrence" in doc:
        parts.append(f"retry of {doc['occurrence']}")
    return ", ".join(parts) or "-"


def table(docs: list[Document]) -> str:
    rows = [["ID", "WORKER", "STATUS", "NEXT", "JOB", "REPEAT", "RESULT"],
            *(summary_row(doc) for doc in docs)]
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
                     for row in rows)
