"""Throughput: tasks per second through acknowledge, claim, the no-op job and the result write.

With no worker running, N ``waiting`` noop tasks dated in the past (a few minutes ago, 10 ms apart,
so "oldest due first" has an order to follow) are written with ``_bulk_docs`` and the ``after/live``
view is queried once so its index is built (timed separately: that is the server's cost, not the
worker's). Then a worker starts. Each task takes three revision-guarded writes (``waiting`` ->
``scheduled``, the claim -> ``running``, the result -> ``done``). The benchmark reads the worker's log
every 20 ms and notes when it reports ready and when the N-th "task ...: done" line appears; that line
is logged after the result write succeeded. Three rates are reported:

- main figure: N / (last done seen - ready seen): the worker's whole pipeline after its first read;
- N / (last done seen - process spawn): the same including Python start-up and the reconciling read;
- N / (max result.ended - min result.started) from the documents: the jobs' span (it excludes the
  acknowledgements before the first start and the last result write).
"""

from __future__ import annotations

import re
import time
from typing import Any

from after.model import format_date, parse_date
from bench.common import (
    FINISHED,
    READY,
    WORKER,
    Context,
    Row,
    deployment,
    fetch,
    noop_task,
    wait_for,
)
from bench.latency import SETTINGS
from bench.memory import warm_view
from tests.integration.deployment import Deployment

TARGET = 1000.0


def write_overdue(deploy: Deployment, count: int) -> tuple[list[str], float, float]:
    """The overdue tasks; their ids, the seconds the write took and the index build took."""
    first = time.time() - 300.0
    docs = [noop_task(f"tp-{index:06d}", format_date(first + index * 0.01)) for index in range(count)]
    started = time.monotonic()
    deploy.add(docs)
    written = time.monotonic() - started
    return [str(doc["_id"]) for doc in docs], written, warm_view(deploy)


def timed_run(deploy: Deployment, count: int) -> dict[str, float]:
    spawned = time.monotonic()
    process = deploy.start_worker(WORKER)
    ready = spawned + wait_for(process, READY, 1, 120.0, "the worker to be ready", poll=0.02)
    done = spawned + wait_for(process, FINISHED, count, 600.0, f"{count} tasks done", poll=0.02)
    process.terminate()
    lines = len(re.findall(r"task \S+: done\b", process.output()))
    return {"spawned": spawned, "ready": ready, "done": done, "done_lines": lines}


def measure(context: Context, count: int, concurrency: int) -> dict[str, Any]:
    settings = {**SETTINGS, "concurrency": concurrency}
    with deployment(context, f"throughput-{concurrency}", **settings) as deploy:
        ids, written, indexed = write_overdue(deploy, count)
        times = timed_run(deploy, count)
        docs = fetch(deploy, ids)
    not_done = [doc["_id"] for doc in docs if doc.get("status") != "done"]
    if not_done:
        raise RuntimeError(f"{len(not_done)} tasks did not end done, e.g. {not_done[:3]}")
    starts = [parse_date(doc["result"]["started"]) for doc in docs]
    ends = [parse_date(doc["result"]["ended"]) for doc in docs]
    return {
        "pipeline": count / (times["done"] - times["ready"]),
        "with_startup": count / (times["done"] - times["spawned"]),
        "jobs": count / max(max(ends) - min(starts), 1e-3),
        "seconds": times["done"] - times["ready"],
        "startup": times["ready"] - times["spawned"],
        "note": f"{count} overdue tasks written in {written:.2f} s, live view index built in {indexed:.2f} s "
                f"(before the worker started)",
    }


def run(context: Context) -> list[Row]:
    count = 1000 if context.quick else 5000
    rows = []
    for concurrency in (4, 32):
        result = measure(context, count, concurrency)
        value = (f"{result['pipeline']:,.0f} tasks/s ({count} in {result['seconds']:.2f} s after ready); "
                 f"{result['with_startup']:,.0f}/s from spawn (ready after {result['startup']:.2f} s); "
                 f"jobs' span {result['jobs']:,.0f}/s")
        rows.append(Row("throughput", f"{count} overdue tasks, concurrency {concurrency}", value=value,
                        target=f">= {TARGET:,.0f} tasks/s", met=result["pipeline"] >= TARGET,
                        notes=[result["note"]]))
    return rows
