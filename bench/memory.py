"""Memory and start-up: the worker's RSS with many far-future tasks in its database, which it must not
hold, and the time from its start to ready.

For each size, a fresh database gets that many ``waiting`` noop tasks dated 30 to 365 days ahead (far
beyond the horizon), loaded with ``_bulk_docs`` while write-time validation is off, after which
``after init`` puts validation back. Then the worker starts once with a long read timeout, reports
ready and is stopped: its first reads build whatever indexes they use, whatever the store names them
("index build + first start"). A second start, with the default settings, is measured: the seconds
from spawn to its ``ready`` line, and its RSS (psutil, = VmRSS) once four one-second samples agree
within 0.25 MB. VmHWM (the peak) is shown in the notes: a worker that loaded everything and freed it
again would show it there.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import psutil

from after.core.dates import format_date
from after.core.task import Document
from bench.common import WORKER, Context, Row, deployment, noop_task, start_ready
from bench.prepare import load, warm_up

DAY = 86400.0
LOAD_BUDGET = 30 * 60.0  # seconds of loading before the size is cut (and the cut reported)
START_TIMEOUT = 600.0
SETTLE_LIMIT = 30.0
MB = 1024 * 1024
RSS_LIMIT, RSS_SPREAD, READY_TARGET = 80.0, 10.0, 2.0


def far_future(count: int) -> Iterator[Document]:
    now = time.time()
    spread = 335 * DAY / max(1, count)
    for index in range(count):
        yield noop_task(f"far-{index:08d}", format_date(now + 30 * DAY + index * spread))


def vm_hwm(pid: int) -> float:
    """VmHWM (the peak RSS) of a process, in MB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key == "VmHWM":
                return int(rest.split()[0]) / 1024.0
    return 0.0


def settled_rss(pid: int, window: int = 4, tolerance: float = 0.25) -> tuple[float, float]:
    """RSS (psutil) once ``window`` one-second samples agree within ``tolerance`` MB; and VmHWM."""
    process = psutil.Process(pid)
    samples: list[float] = []
    deadline = time.monotonic() + SETTLE_LIMIT
    while time.monotonic() < deadline:
        samples.append(process.memory_info().rss / MB)
        recent = samples[-window:]
        if len(recent) == window and max(recent) - min(recent) <= tolerance:
            break
        time.sleep(1.0)
    return samples[-1], vm_hwm(pid)


ZONES = ("UTC", "Europe/Lisbon", "America/New_York", "Asia/Kolkata")


def recurring(count: int) -> Iterator[Document]:
    """Repeating tasks whose next runs spread over the coming day, a minute from now on: one in two a
    cron expression (daily, in one of four time zones), the others a daily ISO 8601 interval. Those due
    while the worker is measured run (noop) and move a day ahead; only those due within the horizon
    (five minutes: about 35) belong in the worker's memory."""
    start = time.time() + 60.0
    for index in range(count):
        date = start + index * DAY / max(1, count)
        task = noop_task(f"rec-{index:08d}", format_date(date))
        if index % 2:
            local = datetime.fromtimestamp(date, ZoneInfo(ZONES[index % len(ZONES)]))
            task["repeat"] = {"cron": f"{local.minute} {local.hour} * * *", "tz": ZONES[index % len(ZONES)]}
        else:
            task["repeat"] = f"R/{format_date(date)}/P1D"
        yield task


def measure(context: Context, size: int, tasks: Callable[[int], Iterator[Document]] = far_future,
            name: str = "memory") -> dict[str, Any]:
    with deployment(context, f"{name}-{size}") as (deploy, db):
        written, load_seconds = load(db, deploy.store, tasks(size), budget=LOAD_BUDGET)
        first_seconds = warm_up(deploy, WORKER)
        process, ready_seconds = start_ready(deploy, timeout=START_TIMEOUT, poll=0.02)
        rss, peak = settled_rss(process.pid)
        armed = process.output().split(" ready: ", 1)[-1].split(" tasks armed", 1)[0]
        process.terminate()
    note = (f"{written:,} tasks loaded in {load_seconds:.1f} s ({written / max(load_seconds, 1e-9):,.0f} "
            f"docs/s, validation off); index build + first start {first_seconds:.1f} s; second start "
            f"ready in {ready_seconds:.2f} s with {armed} tasks armed; RSS {rss:.1f} MB, peak (VmHWM) "
            f"{peak:.1f} MB")
    context.note(name, note)
    return {"size": written, "asked": size, "rss": rss, "peak": peak, "note": note, "ready": ready_seconds,
            "first": first_seconds}


def size_rows(context: Context, result: dict[str, Any], large: bool, met: bool) -> list[Row]:
    cut = "" if result["size"] == result["asked"] else f" (cut from {result['asked']:,}: load budget)"
    config = f"{result['size']:,} far-future tasks{cut}"
    rss = Row("memory", context.kind, config, "RSS MB", result["rss"], notes=[result["note"]])
    ready = Row("memory", context.kind, config, "start to ready s", result["ready"], digits=2)
    first = Row("memory", context.kind, config, "index build + first start s", result["first"], digits=2)
    if large:
        rss.target, rss.met = f"< {RSS_LIMIT:g} MB, sizes within {RSS_SPREAD:g} MB", met
        ready.target, ready.met = f"<= {READY_TARGET:g} s", result["ready"] <= READY_TARGET
    return [rss, ready, first]


def run(context: Context) -> list[Row]:
    sizes = (1_000, 10_000) if context.quick else (10_000, int(context.options.get("memory_size", 1_000_000)))
    results = [measure(context, size) for size in sizes]
    small, large = results[0], results[-1]
    growth = large["rss"] - small["rss"]
    met = abs(growth) <= RSS_SPREAD and all(result["rss"] < RSS_LIMIT for result in results)
    rows = size_rows(context, small, False, met) + size_rows(context, large, True, met)
    rows[3].notes.append(f"RSS {growth:+.1f} MB against {small['size']:,} tasks")
    return rows


def run_recurring(context: Context) -> list[Row]:
    """``memory-recurring`` (issue 10): RSS with 1,000 and with 10,000 repeating tasks (flat: the worker
    holds the horizon's tasks only), and 10,000 single far-future tasks for reference."""
    sizes = (100, 1_000) if context.quick else (1_000, 10_000)
    small, large = (measure(context, size, recurring, f"memory-recurring-{size}") for size in sizes)
    single = measure(context, sizes[-1], far_future, "memory-recurring-single")
    growth = large["rss"] - small["rss"]
    met = abs(growth) <= RSS_SPREAD and large["rss"] < RSS_LIMIT
    rows, name = [], "memory-recurring"
    for result, target in ((small, ""), (large, f"< {RSS_LIMIT:g} MB, sizes within {RSS_SPREAD:g} MB")):
        config = f"{result['size']:,} recurring tasks (cron in 4 zones, daily intervals; next runs in a day)"
        rows.append(Row(name, context.kind, config, "RSS MB", result["rss"], notes=[result["note"]],
                        target=target, met=met if target else None))
        rows.append(Row(name, context.kind, config, "start to ready s", result["ready"], digits=2))
    rows[2].notes.append(f"RSS {growth:+.1f} MB against {small['size']:,} recurring tasks; "
                         f"{single['size']:,} single far-future tasks: {single['rss']:.1f} MB")
    return rows
