"""Executable jobs: lateness measured from inside the job, beside APScheduler running the same script.

The job is a bash script in the jobs directory whose first command reads the clock
(``$EPOCHREALTIME``, a bash builtin: no process is forked for it) and appends it with
``$AFTER_TASK_ID`` to a file. Tasks are written as in the lateness benchmark (a worker ready, then
``_bulk_docs`` a few seconds ahead); the figure is the script's own reading minus the task's date, so
it includes everything between the worker's timer and the script's first line: the claim, the fork and
exec of bash. APScheduler runs the same script with ``subprocess.run`` from a job of its thread pool
at the same offsets. The notes give ``result.lateness_ms`` as the worker wrote it (taken before spawning).
"""

from __future__ import annotations

import time
from pathlib import Path

from after.core.dates import format_date, parse_date
from bench.common import (
    FINISHED,
    SETTINGS,
    Context,
    Row,
    all_done,
    deployment,
    distribution,
    latency_rows,
    noop_task,
    start_ready,
    wait_for,
)
from bench.peer import run_peer

TARGET = 10.0
JOB = "clock"
SCRIPT = """#!/bin/bash
now=$EPOCHREALTIME
echo "$AFTER_TASK_ID ${{now/,/.}}" >> {log}
"""


def readings(log: Path) -> dict[str, float]:
    """Task id -> the script's clock reading, from its log."""
    found = {}
    for line in log.read_text().splitlines():
        task_id, _, reading = line.partition(" ")
        found[task_id] = float(reading)
    return found


def run_after(context: Context, offsets: list[float]) -> tuple[list[float], list[float]]:
    """Lateness in ms from inside the job, and as the worker wrote it."""
    with deployment(context, "executable") as (deploy, db):
        log = deploy.directory / "clock.log"
        deploy.install(JOB, SCRIPT.format(log=log))
        process, _ = start_ready(deploy)
        now = time.time()
        docs = [noop_task(f"exe-{index:05d}", format_date(now + offset), job=JOB)
                for index, offset in enumerate(offsets)]
        db.bulk(docs)
        wait_for(process, FINISHED, len(docs), max(offsets) + 120.0, f"{len(docs)} jobs", poll=0.25)
        process.terminate()
        finished = db.get_many([str(doc["_id"]) for doc in docs])
        read = readings(log)
    all_done(finished)
    inside = [(read[doc["_id"]] - parse_date(doc["date"])) * 1000.0 for doc in finished]
    return inside, [float(doc["result"]["lateness_ms"]) for doc in finished]


def run_peer_script(context: Context, offsets: list[float]) -> list[float]:
    directory = context.scratch("executable-peer")
    log, script = directory / "clock.log", directory / JOB
    log.write_text("")
    script.write_text(SCRIPT.format(log=log))
    script.chmod(0o755)
    ids = [f"peer-{index:05d}" for index in range(len(offsets))]
    result = run_peer({"mode": "script", "offsets": offsets, "concurrency": SETTINGS["concurrency"],
                       "script": str(script), "ids": ids})
    read = readings(log)
    return [(read[task_id] - date) * 1000.0 for task_id, date in result["dates"].items()]


def run(context: Context) -> list[Row]:
    count, span, lead = (100, 2.0, 5.0) if context.quick else (300, 4.0, 5.0)
    offsets = [lead + index * span / count for index in range(count)]
    inside, written = run_after(context, offsets)
    peer = run_peer_script(context, offsets)
    config = f"{count} script tasks over {span:g} s, concurrency {SETTINGS['concurrency']}"
    rows = latency_rows("executable", context.kind, config, inside, peer, target=TARGET)
    rows[0].notes += [f"After, from inside the job: {distribution(inside, TARGET)}",
                      f"After, result.lateness_ms (before the spawn): {distribution(written)}",
                      f"APScheduler, from inside the job: {distribution(peer, TARGET)}"]
    return rows
