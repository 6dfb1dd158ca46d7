"""Lateness (tasks spread over time) and burst (tasks due at the same instant), beside APScheduler.

A worker is started and waits until ready; then the tasks are written with ``_bulk_docs`` (status
``waiting``, job ``noop``) a few seconds ahead of their dates, so the worker learns of them through its
changes feed, acknowledges them, claims each ``claim_ahead`` seconds early and starts it at its date.
The figure is ``result.lateness_ms`` of every task: the job's start (wall clock, taken in the job
thread just before the callable runs) minus the task's date, as the worker wrote it. APScheduler runs
the same number of no-op jobs at the same offsets with a pool of the same size, right after.
"""

from __future__ import annotations

import time

from after.core.dates import format_date
from bench.common import (
    FINISHED,
    SETTINGS,
    Context,
    Deployed,
    Row,
    deployment,
    distribution,
    latency_rows,
    lateness,
    noop_task,
    start_ready,
    summary,
    wait_for,
)
from bench.peer import run_peer

LATENESS_TARGET = 5.0


def run_dated(deployed: Deployed, offsets: list[float], prefix: str) -> tuple[list[float], float]:
    """Start a worker; once it is ready, write one task per offset (seconds from then) and wait for all.

    Returns the lateness of every task in ms and the seconds the write took.
    """
    deploy, db = deployed
    process, _ = start_ready(deploy)
    now = time.time()
    dates = [now + offset for offset in offsets]
    docs = [noop_task(f"{prefix}-{index:05d}", format_date(date)) for index, date in enumerate(dates)]
    started = time.monotonic()
    for start in range(0, len(docs), 500):
        db.bulk(docs[start:start + 500])
    written = time.monotonic() - started
    if time.time() > min(dates) - SETTINGS["claim_ahead"]:
        raise RuntimeError(f"writing took {written:.1f} s: the first task was due before it could be claimed")
    timeout = max(dates) - time.time() + 120.0
    wait_for(process, FINISHED, len(docs), timeout, f"{len(docs)} tasks to finish", poll=0.25)
    process.terminate()
    return lateness(db.get_many([str(doc["_id"]) for doc in docs])), written


def peer_lateness(offsets: list[float], concurrency: int) -> list[float]:
    """APScheduler's lateness in ms for no-op jobs at these offsets from its start."""
    result = run_peer({"mode": "dated", "offsets": offsets, "concurrency": concurrency})
    return [(start - date) * 1000.0 for date, start in zip(result["dates"], result["starts"], strict=True)]


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
    count, span, lead = (400, 5.0, 5.0) if context.quick else (2000, 20.0, 5.0)
    floor = summary(sleeper_floor(count // 4, span / 4))
    offsets = [lead + index * span / count for index in range(count)]
    with deployment(context, "lateness") as deployed:
        values, written = run_dated(deployed, offsets, "late")
    peer = peer_lateness(offsets, SETTINGS["concurrency"])
    config = f"{count} tasks over {span:g} s, concurrency {SETTINGS['concurrency']}"
    rows = latency_rows("lateness", context.kind, config, values, peer, target=LATENESS_TARGET)
    rows[0].notes += [
        f"After: {distribution(values, LATENESS_TARGET)}; written in {written:.2f} s, {lead:g} s before the "
        f"first", f"APScheduler: {distribution(peer, LATENESS_TARGET)}",
        f"floor just before (one Python thread sleeping to {count // 4} deadlines over {span / 4:g} s, no "
        f"server): p50 {floor[0]:.2f}, p99 {floor[1]:.2f}, max {floor[2]:.2f} ms"]
    return rows


def run_burst(context: Context) -> list[Row]:
    count, lead = (300, 5.0) if context.quick else (1000, 5.0)
    rows = []
    for concurrency in (4, 32):
        with deployment(context, f"burst-{concurrency}", concurrency=concurrency) as deployed:
            values, written = run_dated(deployed, [lead] * count, f"burst{concurrency}")
        peer = peer_lateness([lead] * count, concurrency)
        default = concurrency == SETTINGS["concurrency"]
        config = f"{count} tasks due at once, concurrency {concurrency}" + (" (default)" if default else "")
        produced = latency_rows("burst", context.kind, config, values, peer, beat_peer=default)
        produced[0].notes += [f"After: {distribution(values)}; written in {written:.2f} s, {lead:g} s ahead",
                              f"APScheduler: {distribution(peer)}"]
        rows += produced
    return rows
