"""Catch-up: overdue tasks after a restart run oldest-due first, and how fast.

A worker starts, reports ready and is stopped. While it is down, N tasks come due: they are written as
the worker had left them after accepting them (``status: scheduled`` with ``due``), dated from 600 s
to 60 s ago, with random ids in a shuffled order, so neither id nor write order is date order (loaded
with validation off, then ``after init`` again; a warm-up worker of another name builds the indexes
before the restart). The worker
is started again. Figures:

- tasks/s: N / (the N-th "task ...: done" log line - the first ``result.started``), as in throughput;
- out-of-order starts: the share of tasks whose ``result.started`` is later than that of a task due
  at least ``concurrency`` places after it (so jobs running side by side do not count); equal readings
  count as in order, ``result.started`` having millisecond resolution.

APScheduler gets the same N no-op jobs at the same dates, added in a shuffled order before
``start()``; its start readings are rounded to milliseconds for the order check, as After's are.
"""

from __future__ import annotations

import random
import time
import uuid

from after.core.dates import format_date, parse_date
from after.core.task import Document
from bench.common import (
    SETTINGS,
    Context,
    Row,
    deployment,
    noop_task,
    out_of_order,
    start_ready,
)
from bench.peer import run_peer
from bench.prepare import load, warm_up
from bench.throughput import describe, rates, timed_run

TARGET = 1000.0
AGE, NEWEST = 600.0, 60.0


def overdue_scheduled(count: int) -> list[Document]:
    spacing = (AGE - NEWEST) / count
    first = time.time() - AGE
    docs = []
    for index in range(count):
        date = format_date(first + index * spacing)
        docs.append({**noop_task(uuid.uuid4().hex, date, status="scheduled"), "due": date})
    random.Random(2).shuffle(docs)
    return docs


def run_after(context: Context, count: int) -> tuple[float, float, list[str]]:
    """Tasks/s (from the first job start), the out-of-order fraction, and notes."""
    docs = overdue_scheduled(count)
    with deployment(context, "catchup") as (deploy, db):
        first, _ = start_ready(deploy)
        first.terminate()
        _, written = load(db, deploy.store, docs)
        indexed = warm_up(deploy)
        times = timed_run(deploy, count)
        finished = db.get_many([str(doc["_id"]) for doc in docs])
    rate = rates(times, finished)
    dates = [parse_date(doc["date"]) for doc in finished]
    starts = [parse_date(doc["result"]["started"]) for doc in finished]
    late = out_of_order(dates, starts, SETTINGS["concurrency"])
    notes = [f"{describe(rate, count)}; {late} out of order",
             f"loaded in {written:.2f} s, the warm-up worker was ready in {indexed:.2f} s"]
    return rate["main"], late / count, notes


def run_apscheduler(count: int) -> tuple[float, float, str]:
    result = run_peer({"mode": "overdue", "count": count, "concurrency": SETTINGS["concurrency"],
                       "age": AGE, "spacing": (AGE - NEWEST) / count, "seed": 2})
    seconds = max(result["ends"]) - result["started"]
    starts = [round(start, 3) for start in result["starts"]]
    late = out_of_order(result["dates"], starts, SETTINGS["concurrency"])
    note = f"APScheduler: {count} in {seconds:.2f} s after start(), {late} out of order"
    return count / seconds, late / count, note


def run(context: Context) -> list[Row]:
    count = 2000 if context.quick else 10_000
    rate, late, notes = run_after(context, count)
    peer_rate, peer_late, peer_note = run_apscheduler(count)
    config = f"{count} overdue tasks after a restart, concurrency {SETTINGS['concurrency']}"
    return [
        Row("catch-up", context.kind, config, "tasks/s", rate, peer_rate, digits=0,
            target=f">= {TARGET:,.0f} tasks/s", met=rate >= TARGET, notes=[*notes, peer_note]),
        Row("catch-up", context.kind, config, "out-of-order starts %", late * 100.0, peer_late * 100.0,
            digits=2),
    ]
