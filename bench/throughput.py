"""Throughput: tasks per second through claim, the no-op job and the result write, with and without
write-time validation, beside APScheduler running as many overdue no-op jobs.

With no worker running, N ``waiting`` noop tasks dated in the past (300 s ago onwards, 10 ms apart, so
"oldest due first" has an order to follow) are loaded with ``_bulk_docs``, and a warm-up worker of
another name builds the indexes (timed apart: that is the server's cost, not the worker's). Then a
worker starts. An overdue task is claimed straight from ``waiting`` (``running``), then its result is
written (``done``): two revision-guarded writes. The benchmark reads the worker's log every 20 ms and
notes when the N-th "task ...: done" line appears (logged after the result write succeeded).

- main figure: N / (the N-th done line seen - the first job's ``result.started``): from the first job
  start (the worker's clock, after its first claim write) to the last result written;
- in the notes: the same from the ``ready`` line (seen in the log; the worker may log it only after
  it has handled a first batch, so it can come late), from the process spawn (Python start-up and the
  reconciling read included), and N / (max ``result.ended`` - min ``result.started``) (the jobs' span);
- APScheduler: N / (last job's "executed" event - ``start()``), the N jobs added before ``start()``.
"""

from __future__ import annotations

import time

from after.core.dates import format_date, parse_date
from after.core.task import Document
from bench.common import (
    FINISHED,
    READY,
    SETTINGS,
    WORKER,
    Context,
    Row,
    all_done,
    deployment,
    noop_task,
    wait_for,
)
from bench.peer import run_peer
from bench.prepare import load, warm_up
from tests.integration.deployment import Deployment

TARGETS = {True: 1000.0, False: 3000.0}  # by validation on / off
AGE, SPACING = 300.0, 0.01


def timed_run(deploy: Deployment, count: int) -> dict[str, float]:
    """Start a worker: when it reported ready, and when the ``count``-th task was done (monotonic and
    wall clock)."""
    spawned = time.monotonic()
    process = deploy.start_worker(WORKER)
    wait_for(process, READY, 1, 300.0, "the worker to be ready", poll=0.02)
    ready = time.monotonic()
    wait_for(process, FINISHED, count, 900.0, f"{count} tasks done", poll=0.02)
    done, done_wall = time.monotonic(), time.time()
    process.terminate()
    return {"spawned": spawned, "ready": ready, "done": done, "done_wall": done_wall}


def rates(times: dict[str, float], docs: list[Document]) -> dict[str, float]:
    """Tasks per second by each measure (see the module's docstring); every task must be done."""
    all_done(docs)
    count = len(docs)
    starts = [parse_date(doc["result"]["started"]) for doc in docs]
    ends = [parse_date(doc["result"]["ended"]) for doc in docs]
    return {
        "main": count / (times["done_wall"] - min(starts)),
        "after_ready": count / max(times["done"] - times["ready"], 1e-3),
        "from_spawn": count / (times["done"] - times["spawned"]),
        "jobs": count / max(max(ends) - min(starts), 1e-3),
        "seconds": times["done_wall"] - min(starts),
        "startup": times["ready"] - times["spawned"],
    }


def describe(rate: dict[str, float], count: int) -> str:
    return (f"After: {count} in {rate['seconds']:.2f} s from the first job start; "
            f"{rate['after_ready']:,.0f}/s from the ready line, {rate['from_spawn']:,.0f}/s from spawn "
            f"(ready after {rate['startup']:.2f} s); jobs' span {rate['jobs']:,.0f}/s")


def measure(context: Context, count: int, validation: bool) -> tuple[dict[str, float], str]:
    first = time.time() - AGE
    docs = [noop_task(f"tp-{index:06d}", format_date(first + index * SPACING)) for index in range(count)]
    with deployment(context, "throughput-" + ("on" if validation else "off")) as (deploy, db):
        _, written = load(db, deploy.store, docs, keep_off=not validation)
        indexed = warm_up(deploy)
        times = timed_run(deploy, count)
        finished = db.get_many([str(doc["_id"]) for doc in docs])
    setup = f"{count} overdue tasks loaded in {written:.2f} s; the warm-up worker ready in {indexed:.2f} s"
    return rates(times, finished), setup


def peer_rate(count: int) -> tuple[float, str]:
    result = run_peer({"mode": "overdue", "count": count, "concurrency": SETTINGS["concurrency"],
                       "age": AGE, "spacing": SPACING})
    seconds = max(result["ends"]) - result["started"]
    return count / seconds, f"APScheduler: {count} jobs in {seconds:.2f} s after start()"


def run(context: Context) -> list[Row]:
    count = 1000 if context.quick else 5000
    rows = []
    for validation in (True, False):
        rate, setup = measure(context, count, validation)
        peer, peer_note = peer_rate(count)
        target = TARGETS[validation]
        config = (f"{count} overdue tasks, validation {'on' if validation else 'off'}, "
                  f"concurrency {SETTINGS['concurrency']}")
        rows.append(Row("throughput", context.kind, config, "tasks/s", rate["main"], peer, digits=0,
                        target=f">= {target:,.0f} tasks/s", met=rate["main"] >= target,
                        notes=[describe(rate, count), peer_note, setup]))
    return rows
