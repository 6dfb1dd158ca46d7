"""The peer: APScheduler 3.11's BackgroundScheduler, in memory, with the same jobs at the same offsets.

``run_peer(spec)`` runs ``python -m bench.peer`` (a fresh interpreter of its own, like After's worker)
right before or after the After run it is compared with, hands it a JSON spec on stdin and returns
the JSON it prints. The scheduler has a thread pool of the benchmark's concurrency, a memory job
store, UTC, no misfire limit (``misfire_grace_time=None``, so overdue jobs run rather than being
skipped) and no coalescing. Every job first records ``time.time()``, the same clock reading After
takes in its job thread before the callable runs. Modes:

- ``dated``: one no-op job per offset (seconds from the peer's start, dates rounded to milliseconds
  as After's are); returns the dates and the start readings.
- ``overdue``: ``count`` no-op jobs dated ``age`` seconds ago onwards, ``spacing`` apart, added in a
  shuffled order before ``start()``; returns dates, start readings, end readings (the executor's
  "executed" event) and when ``start()`` was called.
- ``script``: as ``dated``, each job running an executable (``subprocess.run``, no shell) with
  ``AFTER_TASK_ID`` set, as After runs an executable job; the script records its own start.
"""

from __future__ import annotations

import json
import logging
import os
import random
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from typing import Any

TIMEOUT = 600.0


def run_peer(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one APScheduler measurement in a process of its own; its JSON result."""
    done = subprocess.run([sys.executable, "-m", "bench.peer"], input=json.dumps(spec), text=True,
                          capture_output=True, timeout=TIMEOUT + 60.0, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"APScheduler peer failed ({done.returncode}): {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


class Recorder:
    """Start readings by job index, and a count of finished jobs that wakes the waiting thread."""

    def __init__(self, count: int) -> None:
        self.starts = [0.0] * count
        self.ends = [0.0] * count
        self.finished = 0
        self.lock = threading.Lock()
        self.all_done = threading.Event()
        if count == 0:
            self.all_done.set()

    def noop(self, index: int) -> None:
        self.starts[index] = time.time()

    def executed(self, event: Any) -> None:
        now = time.time()
        index = int(event.job_id)
        with self.lock:
            self.ends[index] = now
            self.finished += 1
            if self.finished == len(self.starts):
                self.all_done.set()


def scheduler(concurrency: int, recorder: Recorder) -> Any:
    from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MISSED
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.schedulers.background import BackgroundScheduler

    chosen = BackgroundScheduler(
        executors={"default": ThreadPoolExecutor(concurrency)},
        job_defaults={"misfire_grace_time": None, "coalesce": False, "max_instances": 1},
        timezone=UTC,
    )
    chosen.add_listener(recorder.executed, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR | EVENT_JOB_MISSED)
    return chosen


def add_jobs(chosen: Any, dates: list[float], job: Any, order: list[int]) -> None:
    for index in order:
        chosen.add_job(job, "date", run_date=datetime.fromtimestamp(dates[index], UTC), args=[index],
                       id=str(index))


def run(chosen: Any, recorder: Recorder, dates: list[float], job: Any, order: list[int]) -> float:
    """Add the jobs, start, wait until all ran; returns when ``start()`` was called."""
    add_jobs(chosen, dates, job, order)
    started = time.time()
    chosen.start()
    timeout = max([*dates, started]) - time.time() + TIMEOUT
    finished = recorder.all_done.wait(timeout)
    chosen.shutdown(wait=True)
    if not finished:
        raise RuntimeError(f"only {recorder.finished} of {len(dates)} jobs ran within {timeout:.0f} s")
    return started


def dated(spec: dict[str, Any]) -> dict[str, Any]:
    now = time.time()
    dates = [round(now + offset, 3) for offset in spec["offsets"]]
    recorder = Recorder(len(dates))
    run(scheduler(spec["concurrency"], recorder), recorder, dates, recorder.noop, list(range(len(dates))))
    return {"dates": dates, "starts": recorder.starts}


def overdue(spec: dict[str, Any]) -> dict[str, Any]:
    count, now = spec["count"], time.time()
    dates = [round(now - spec["age"] + index * spec["spacing"], 3) for index in range(count)]
    order = list(range(count))
    random.Random(spec.get("seed", 1)).shuffle(order)
    recorder = Recorder(count)
    started = run(scheduler(spec["concurrency"], recorder), recorder, dates, recorder.noop, order)
    return {"dates": dates, "starts": recorder.starts, "ends": recorder.ends, "started": started}


def script(spec: dict[str, Any]) -> dict[str, Any]:
    now = time.time()
    dates = [round(now + offset, 3) for offset in spec["offsets"]]
    ids = spec["ids"]
    recorder = Recorder(len(dates))

    def job(index: int) -> None:
        recorder.noop(index)
        subprocess.run([spec["script"]], env={**os.environ, "AFTER_TASK_ID": ids[index]},
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, check=False)

    run(scheduler(spec["concurrency"], recorder), recorder, dates, job, list(range(len(dates))))
    return {"dates": dict(zip(ids, dates, strict=True))}


MODES = {"dated": dated, "overdue": overdue, "script": script}


def main() -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    spec = json.load(sys.stdin)
    result = MODES[spec["mode"]](spec)
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
