"""``after list``: every worker process on every host, from the presence documents in CouchDB, joined with
the systemd units of this host (``after.systemd.instances`` rows). Pure: documents and rows in,
rows and text out.

A process and a unit are the same when the presence document's host is this host and its pid the unit's
main pid. A unit with no such document (stopped, failed, or not able to reach CouchDB) is a row of its
own; so is every process that no unit of this host runs (other hosts, ``after run`` in a terminal).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from after.core.task import Document
from after.systemd.instances import duration, size
from after.worker.presence import describe

COLUMNS = ("WORKER", "HOST", "PID", "STATE", "SEEN", "UNIT", "UPTIME", "MEMORY", "CPU", "DONE", "FAILED",
           "ARMED", "RUNNING", "NODE", "VERSION")
PROCESS_COUNTS = ("done", "failed", "armed", "running")
UNIT_FIELDS = ("unit", "unit_state", "uptime", "memory", "cpu")


def process_row(doc: Document, now: float) -> dict[str, Any]:
    """One process as its presence document says: ``after.worker.presence.describe`` and a few more fields."""
    row = describe(doc, now)
    counts = row.get("counts")
    row["counts"] = {name: counts.get(name) for name in PROCESS_COUNTS} if isinstance(counts, dict) else None
    row.update(started=doc.get("started"), connected=doc.get("connected"), lateness_ms=doc.get("lateness_ms"),
               running_tasks=list(doc.get("running") or []), last_seen=doc.get("last_seen"))
    row.update(dict.fromkeys(UNIT_FIELDS))
    return row


def unit_fields(item: Mapping[str, Any]) -> dict[str, Any]:
    """The systemd part of an ``after.systemd.instances.row``."""
    state = str(item.get("state", "unknown"))
    substate = str(item.get("substate", "unknown"))
    shown = state if substate in ("running", "dead") else f"{state}/{substate}"
    return {"unit": item.get("unit"), "unit_state": shown, "uptime": item.get("uptime"),
            "memory": item.get("memory"), "cpu": item.get("cpu")}


def unit_only_row(item: Mapping[str, Any], host: str) -> dict[str, Any]:
    """A local unit with no presence document: what systemd knows."""
    row: dict[str, Any] = {"worker": item.get("worker"), "host": host, "pid": item.get("pid"), "state": None,
                           "seen_ago": None, "node": None, "counts": None, "version": None, "started": None,
                           "connected": None, "lateness_ms": None, "running_tasks": [], "last_seen": None}
    row.update(unit_fields(item))
    return row


def merge(presence: Sequence[Document], local: Sequence[Mapping[str, Any]], host: str, now: float,
          tasks: Mapping[str, Mapping[str, int]] | None = None) -> list[dict[str, Any]]:
    """Every process and every local unit once, by worker, host and pid. ``tasks`` (the task counts by
    worker and status, None when unknown) is added to each row as ``tasks``, as before."""
    rows = [process_row(doc, now) for doc in presence]
    by_pid = {row["pid"]: row for row in rows if row["host"] == host and isinstance(row["pid"], int)}
    for item in local:
        pid = item.get("pid")
        row = by_pid.get(pid) if isinstance(pid, int) else None
        if row is not None and row["worker"] == item.get("worker"):
            row.update(unit_fields(item))
        else:
            rows.append(unit_only_row(item, host))
    for row in rows:
        row["tasks"] = None if tasks is None else dict(tasks.get(str(row["worker"]), {}))
    rows.sort(key=lambda row: (str(row["worker"]), str(row["host"]), row["pid"] or 0))
    return rows


def seen(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds:.0f}s ago" if seconds < 90 else f"{duration(seconds)} ago"


def cells(row: Mapping[str, Any]) -> list[str]:
    counts = row["counts"] or {}
    number = [str(counts[name]) if counts.get(name) is not None else "-" for name in PROCESS_COUNTS]
    return [
        str(row["worker"]), str(row["host"]), str(row["pid"] or "-"), row["state"] or "-",
        seen(row["seen_ago"]),
        row["unit_state"] or "-", duration(row["uptime"]), size(row["memory"]),
        "-" if row["cpu"] is None else f"{row['cpu']:.1f}s", *number, str(row["node"] or "-"),
        str(row["version"] or "-"),
    ]


def table(rows: Sequence[Mapping[str, Any]]) -> str:
    lines = [list(COLUMNS), *(cells(row) for row in rows)]
    widths = [max(len(line[column]) for line in lines) for column in range(len(COLUMNS))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
                     for line in lines)

