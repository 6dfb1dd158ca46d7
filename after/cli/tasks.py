"""What the task commands of the CLI build and print. Pure: documents in, documents or text out."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from after.core.dates import format_date, parse_date, parse_duration
from after.core.invalid import InvalidTask
from after.core.task import Document, Status, validate

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


def new_task(worker: str, job: str, arguments: list[str], date: float, timeout: str | None = None,
             task_id: str | None = None) -> Document:
    doc: Document = {
        "_id": task_id or uuid.uuid4().hex,
        "worker": worker,
        "date": format_date(date),
        "job": {"name": job, "arguments": [parse_argument(argument) for argument in arguments]},
        "status": Status.WAITING.value,
    }
    if timeout is not None:
        doc["timeout"] = timeout
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
    return [str(doc.get("_id")), str(doc.get("worker")), str(doc.get("status")), str(doc.get("date")),
            str(job.get("name")), str(note)[:60]]


def table(docs: list[Document]) -> str:
    rows = [["ID", "WORKER", "STATUS", "DATE", "JOB", "RESULT"], *(summary_row(doc) for doc in docs)]
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
                     for row in rows)
