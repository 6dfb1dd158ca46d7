"""Lateness (tasks spread over time) and burst (tasks due at the same instant).

A worker is started and waits until ready; then the tasks are written with ``_bulk_docs`` (status
``waiting``, job ``noop``) a few seconds ahead of their dates, so the worker learns of them through its
changes feed, acknowledges them, claims each ``claim_ahead`` seconds early and starts it at its date.
The figure is ``result.lateness_ms`` of every task: the job's start (wall clock, taken in the job
thread just before the callable runs) minus the task's date, as the worker wrote it.
"""

from __future__ import annotations

import time
from typing import Any

from after.model import format_date
from bench.common import (
    FINISHED,
    Context,
    Row,
    deployment,
    fetch,
    lateness,
    noop_task,
    start_ready,
    summary,
    wait_for,
)
from tests.integration.deployment import Deployment

# Worker settings: the defaults of after.config, except a shorter grace for a quick stop.
SETTINGS: dict[str, Any] = {"concurrency": 4, "horizon": 300.0, "lease": 60.0, "claim_ahead": 1.0,
                            "grace": 5.0}
LATENESS_TARGET = 5.0
BURST_TARGET = 100.0


def run_dated(deploy: Deployment, offsets: list[float], prefix: str) -> tuple[list[float], float]:
    """Start a worker; once it is ready, write one task per offset (seconds from then) and wait for all.

    Returns the lateness of every task in ms and the seconds the write took.
    """
    process, _ = start_ready(deploy)
    now = time.time()
    dates = [now + offset for offset in offsets]
    docs = [noop_task(f"{prefix}-{index:05d}", format_date(date)) for index, date in enumerate(dates)]
    started = time.monotonic()
    deploy.add(docs)
    written = time.monotonic() - started
    if time.time() > min(dates) - SETTINGS["claim_ahead"]:
        raise RuntimeError(f"writing took {written:.1f} s: the first task was due before it could be claimed")
    timeout = max(dates) - time.time() + 120.0
    wait_for(process, FINISHED, len(docs), timeout, f"{len(docs)} tasks to finish", poll=0.25)
    process.terminate()
    return lateness(fetch(deploy, [str(doc["_id"]) for doc in docs])), written


def distribution(values: list[float], target: float) -> str:
    over = sum(1 for value in values if value > target)
    return (f"{len(values)} tasks; min {min(values):.2f} ms; {over} over {target:g} ms; "
            f"mean {sum(values) / len(values):.2f} ms")


def sleeper_floor(count: int, span: float) -> list[float]:
    """The machine's own noise: one Python thread sleeping until each deadline (no After, no server)."""
    first = time.monotonic() + 0.2
    late = []
    for index in range(count):
        deadline = first + index * span / count
        time.sleep(max(0.0, deadline - time.monotonic()))
        late.append((time.monotonic() - deadline) * 1000.0)
    return late


def run_lateness(context: Context) -> list[Row]:
    count, span, lead = (400, 5.0, 4.0) if context.quick else (2000, 20.0, 4.0)
    floor = summary(sleeper_floor(count // 2, span / 2))
    with deployment(context, "lateness", **SETTINGS) as deploy:
        offsets = [lead + index * span / count for index in range(count)]
        values, written = run_dated(deploy, offsets, "late")
    p50, p99, worst = summary(values)
    config = f"{count} tasks over {span:g} s, concurrency {SETTINGS['concurrency']}"
    note = f"{distribution(values, LATENESS_TARGET)}; written in {written:.2f} s, {lead:g} s before the first"
    return [
        Row("lateness", config, p50, p99, worst, target=f"p99 <= {LATENESS_TARGET:g} ms",
            met=p99 <= LATENESS_TARGET, notes=[note]),
        Row("lateness", f"floor: time.sleep() to {count // 2} deadlines over {span / 2:g} s, no After",
            *floor,
            notes=["the machine's scheduling noise at that moment: one Python thread, no server, no worker"]),
        Row("lateness", "reference: APScheduler 3.11, in memory (from issue 2, not run here)", p99=1.3),
        Row("lateness", "reference: systemd timers, AccuracySec=1us (from issue 2, not run here)", p99=25.0),
    ]


def run_burst(context: Context) -> list[Row]:
    count, lead = (300, 5.0) if context.quick else (1000, 5.0)
    rows = []
    for concurrency in (4, 32):
        settings = {**SETTINGS, "concurrency": concurrency}
        with deployment(context, f"burst-{concurrency}", **settings) as deploy:
            values, written = run_dated(deploy, [lead] * count, f"burst{concurrency}")
        p50, p99, worst = summary(values)
        note = f"{distribution(values, BURST_TARGET)}; written in {written:.2f} s, {lead:g} s ahead"
        rows.append(Row("burst", f"{count} tasks due at once, concurrency {concurrency}", p50, p99, worst,
                        target=f"p99 <= {BURST_TARGET:g} ms", met=p99 <= BURST_TARGET, notes=[note]))
    rows.append(Row("burst", "reference: APScheduler (from issue 2, not run here)", p99=50.0))
    return rows
