"""`after list`: a row per after@ instance (systemd state, psutil figures, task counts), the table. Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from after.systemd.systemctl import worker_name

# Task statuses shown as columns, in the order of a task's life.
COUNTED = ("scheduled", "running", "done", "err")
COLUMNS = ("WORKER", "STATE", "PID", "UPTIME", "MEMORY", "CPU", *(status.upper() for status in COUNTED))



@dataclass(frozen=True)
class ProcessStats:
    """A worker's process tree: resident memory (bytes), CPU time (seconds), start (epoch seconds)."""

    rss: int
    cpu: float
    started: float


def row(
    state: Mapping[str, str],
    stats: ProcessStats | None,
    counts: Mapping[str, Mapping[str, int]] | None,
    now: float,
) -> dict[str, Any]:
    """The JSON shape of one instance; None where a figure is unknown (not running, CouchDB unreachable)."""
    worker = worker_name(state.get("Id", ""))
    pid = int(state.get("MainPID") or 0)
    mine = None if counts is None else counts.get(worker, {})
    tasks = None if mine is None else {status: mine.get(status, 0) for status in COUNTED}
    if tasks is not None and mine is not None:
        tasks["waiting"] = sum(mine.get(status, 0) for status in ("waiting", "schedule", "reschedule"))
    return {
        "worker": worker,
        "unit": state.get("Id", ""),
        "state": state.get("ActiveState", "unknown"),
        "substate": state.get("SubState", "unknown"),
        "pid": pid or None,
        "uptime": None if stats is None else round(max(0.0, now - stats.started), 1),
        "memory": None if stats is None else stats.rss,
        "cpu": None if stats is None else round(stats.cpu, 2),
        "tasks": tasks,
    }


def duration(seconds: float | None) -> str:
    """3d04h, 2h05m, 7m12s, 42s."""
    if seconds is None:
        return "-"
    total = int(seconds)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def size(octets: int | None) -> str:
    """Memory in binary units: 31.2M."""
    if octets is None:
        return "-"
    value = float(octets)
    for unit in ("B", "K", "M", "G"):
        if value < 1024 or unit == "G":
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1024
    return f"{value:.1f}G"


def cells(item: Mapping[str, Any]) -> list[str]:
    tasks = item["tasks"]
    state = item["state"]
    if item["substate"] not in ("running", "dead"):
        state = f"{state}/{item['substate']}"
    return [
        item["worker"], state, str(item["pid"] or "-"), duration(item["uptime"]), size(item["memory"]),
        "-" if item["cpu"] is None else f"{item['cpu']:.1f}s",
        *("-" if tasks is None else str(tasks[status]) for status in COUNTED),
    ]


def table(items: Sequence[Mapping[str, Any]]) -> str:
    rows = [list(COLUMNS), *(cells(item) for item in items)]
    widths = [max(len(line[column]) for line in rows) for column in range(len(COLUMNS))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
                     for line in rows)
