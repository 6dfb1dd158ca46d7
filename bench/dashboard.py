"""The dashboard with many tasks, its screenshot, and the presence documents' share of a worker's writes.

    python -m bench.dashboard                   100,000 tasks on Apache CouchDB: the first view, in Chromium
    python -m bench.dashboard --server pouchdb  the same on pouchdb-server (its JavaScript views build slowly)
    python -m bench.dashboard --tasks 20000 --screenshot docs/dashboard.png     the README's picture
    python -m bench.dashboard --presence        presence writes against a worker's other writes

Not part of ``make bench`` (it needs Chromium: ``make browser-deps``). The tasks are what After's workers
would have left behind (``history``): several worker names on several hosts (one process gone, one
stopped), a week of done tasks with their lateness, failures with reasons and output, canceled tasks,
scheduled ones for the week ahead, running ones with their claims, a few waiting. They are loaded with
``_bulk_docs`` and validation off (``initialize(store, Validation.NONE)``, then ``initialize`` again), and
every index the page reads is built before the page is opened (a cold index build is CouchDB's cost, not
the page's). The figure is the page's own: from its login (or reload) to the full first view on screen
(``window.afterDashboard.firstRenderMs``), the median of a few reloads beside the first.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from after.core.dates import format_date
from after.core.task import Document
from after.initialize import Validation, initialize
from after.monitoring.dashboard.queries import recent_results
from after.store.couch.client import CouchStore
from after.store.types import Unavailable
from after.worker.presence import PREFIX, Report, presence_document
from bench.prepare import batches
from tests.browser.browser import browser_missing, chromium, client_user, log_in, page_url, wait_until_ready
from tests.integration.deployment import Deployment
from tests.server import ServerKind, TestServer, missing, start_server

DAY = 86400.0
# worker name: (jobs, processes as (host, pid, state))
WORKERS: dict[str, tuple[list[str], list[tuple[str, int, str]]]] = {
    "manobi": (["start_campaign", "send_digest"], [("app-1", 2311, "running"), ("app-2", 1874, "running")]),
    "billing": (["charge_card", "invoice_pdf"], [("app-1", 2398, "running")]),
    "reports": (["nightly_report", "compact_couchdb"],
                [("batch-1", 911, "running"), ("batch-2", 4410, "gone")]),
    "mailer": (["webhook"], [("app-2", 3301, "stopped")]),
}
FAILURES = [
    ("exit code 1: smtp relay refused the message",
     "connecting to mx.example.org:25\n550 relay not permitted"),
    ("timeout after PT10M: the job's process tree was killed", "rendering page 412 of 1600"),
    ("HTTP 503 from https://hooks.example.org/after",
     "POST https://hooks.example.org/after\n503 Unavailable"),
    ("exit code 2: card declined (insufficient funds)", "charging customer 88412\ndeclined: 51"),
]


def presence(now: float) -> list[Document]:
    docs = []
    for worker, (_, processes) in WORKERS.items():
        for host, pid, state in processes:
            seen = now - (120 if state == "gone" else 3600 if state == "stopped" else 1.5)
            report = Report(node="http://couch-1:5984", connected=True, done=4000 + pid, failed=pid % 37,
                            armed=12, running=(f"{worker}-run-{pid}",), lateness_ms=2.5)
            docs.append(presence_document(worker, host, pid, now - 3 * DAY, seen, report,
                                          stopped=state == "stopped"))
    return docs


def lateness_ms(rng: random.Random) -> float:
    spike = rng.random() < 0.01
    return round(rng.uniform(400, 4000) if spike else rng.lognormvariate(math.log(3.0), 0.9), 3)


def result(worker: str, started: float, late: float, outcome: str, rng: random.Random,
           **extra: Any) -> Document:
    host, pid, _ = rng.choice(WORKERS[worker][1])
    return {"by": {"worker": worker, "host": host, "pid": pid, "started": started - DAY},
            "started": format_date(started), "ended": format_date(started + rng.uniform(0.05, 20)),
            "lateness_ms": late, "outcome": outcome, "exit_code": 0 if outcome == "done" else 1,
            "reason": None, "output": "", **extra}


def task(worker: str, rng: random.Random, now: float, index: int) -> Document:
    """One task as a worker left it; the mix of statuses is a busy week's."""
    job = rng.choice(WORKERS[worker][0])
    doc: Document = {"_id": f"{worker}-{index:06d}", "worker": worker,
                     "job": {"name": job, "arguments": [index]}}
    draw = rng.random()
    recent = rng.random() < 0.03  # the last hour: what the lateness chart shows
    started = now - (rng.uniform(0, 3600) if recent else rng.uniform(3600, 7 * DAY))
    late = lateness_ms(rng)
    due = started - late / 1000.0
    if draw < 0.06:
        date = now + rng.uniform(30, 7 * DAY)
        doc.update(status="scheduled", date=format_date(date), due=format_date(date))
    elif draw < 0.0605:
        date = now + rng.uniform(5, 7 * DAY)
        doc.update(status=rng.choice(["waiting", "reschedule"]), date=format_date(date))
    elif draw < 0.072:
        doc.update(status="canceled", date=format_date(due), due=format_date(due))
    elif draw < 0.092:
        reason, output = rng.choice(FAILURES)
        doc.update(status="err", date=format_date(due), due=format_date(due), attempts=1,
                   result=result(worker, started, late, "failed", rng, reason=reason, output=output))
    else:
        doc.update(status="done", date=format_date(due), due=format_date(due), attempts=1,
                   result=result(worker, started, late, "done", rng, output=f"{job}: ok"))
    return doc


def running(now: float) -> Iterator[Document]:
    for worker, (jobs, processes) in WORKERS.items():
        for host, pid, state in processes:
            if state != "running":
                continue
            for number in range(2):
                at = now - 20 - 40 * number
                claim = {"by": {"worker": worker, "host": host, "pid": pid, "started": 0},
                         "at": format_date(at - 1), "lease_until": format_date(now + 60)}
                yield {"_id": f"{worker}-run-{pid}-{number}", "worker": worker, "status": "running",
                       "job": {"name": jobs[0], "arguments": []}, "date": format_date(at),
                       "due": format_date(at), "attempts": 1, "claim": claim}


def history(count: int, now: float, seed: int = 11) -> Iterator[Document]:
    rng = random.Random(seed)
    names = list(WORKERS)
    weights = [0.45, 0.3, 0.2, 0.05]
    yield from presence(now)
    yield from running(now)
    for index in range(count):
        yield task(rng.choices(names, weights)[0], rng, now, index)


def built(read: Callable[[], object], timeout: float = 1800.0) -> None:
    """Run a read until it answers: CouchDB gives up on a request after 60 s while an index builds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            read()
            return
        except Unavailable:
            if time.monotonic() > deadline:
                raise


def load(server: TestServer, count: int) -> CouchStore:
    database = f"dash-{uuid.uuid4().hex[:8]}"
    store = CouchStore(server.url, database, server.admin, server.password, timeout=600.0)
    initialize(store, Validation.NONE)
    started = time.monotonic()
    for batch in batches(history(count, time.time())):
        failed = [result for result in store.bulk_write(batch) if not result.ok]
        assert not failed, failed[:3]
    print(f"loaded {count:,} tasks in {time.monotonic() - started:.0f} s", flush=True)
    initialize(store)
    started = time.monotonic()
    built(store.status_counts)  # every index the page reads, built now
    for worker in WORKERS:
        if not store.server().erlang_queries:
            built(lambda: store.tasks(worker, "err", 1))  # noqa: B023 (called at once)
        built(lambda: list(store.live_tasks(worker, time.time(), 10)))  # noqa: B023
    built(lambda: recent_results(store, "manobi", time.time() - 3600, time.time(), 1))
    if store.server().erlang_queries:
        failures = f"{store.db_path}/_design/after-dashboard/_view/failures"
        built(lambda: store.json("GET", failures, params={"limit": "1"}))
    print(f"indexes built in {time.monotonic() - started:.0f} s", flush=True)
    return store


def liven(store: CouchStore) -> None:
    """Before the screenshot: the processes write their presence again, and a few tasks change (live)."""
    now = time.time()
    fresh = {str(doc["_id"]): doc for doc in presence(now)}
    store.bulk_write([{**fresh[str(doc["_id"])], "_rev": doc["_rev"]} for doc in store.documents(PREFIX)])
    changed = []
    picked = store.tasks("manobi", "scheduled", 4) + store.tasks("billing", "scheduled", 2)
    for number, doc in enumerate(picked):
        ran = result(str(doc["worker"]), now - 25, 1.5 + number, "done", random.Random(number), output="ok")
        changed.append({**doc, "status": "done", "result": ran})
    store.bulk_write(changed)


def first_view(store: CouchStore, server: TestServer, screenshot: Path | None, reloads: int = 5) -> None:
    name, password = client_user(server)
    with chromium() as driver:
        log_in(driver, page_url(store), name, password)
        first = float(driver.execute_script("return window.afterDashboard.firstRenderMs"))
        times, walls = [], []
        for _ in range(reloads):
            started = time.monotonic()
            driver.refresh()
            times.append(wait_until_ready(driver))  # the page's own figure, from its navigation
            walls.append(1000 * (time.monotonic() - started))  # seen from here (polled every 50 ms)
        each = ", ".join(f"{t:.0f}" for t in times)
        print(f"first view: {first:.0f} ms after the login form's submit; reloads: median "
              f"{statistics.median(times):.0f} ms, max {max(times):.0f} ms ({each}; from the driver's "
              f"refresh: median {statistics.median(walls):.0f} ms)", flush=True)
        if screenshot is not None:
            liven(store)
            time.sleep(3.0)
            driver.execute_script("document.querySelector('details').open = true")
            height = int(driver.execute_script("return document.body.scrollHeight"))
            driver.set_window_size(1440, height + 120)
            driver.save_screenshot(str(screenshot))
            print(f"screenshot: {screenshot}")


def presence_share(server: TestServer, tasks: int) -> None:
    """The throughput scenario (overdue noop tasks, one worker process): its writes, presence apart."""
    deployment = Deployment(server, Path(tempfile.mkdtemp(prefix="after-presence-")), concurrency=4)
    try:
        worker = deployment.start_worker("manobi")
        worker.wait_ready()
        started = time.monotonic()
        past = time.time() - 300
        deployment.add([{"_id": f"t{index:05d}", "worker": "manobi", "date": format_date(past + index / 100),
                         "job": {"name": "noop", "arguments": []}, "status": "waiting"}
                        for index in range(tasks)])
        deployment.wait_status([f"t{index:05d}" for index in range(tasks)], "done", timeout=600)
        elapsed = time.monotonic() - started
        worker.terminate()
        generation = lambda doc: int(str(doc["_rev"]).split("-")[0])  # noqa: E731
        task_writes = sum(generation(doc) - 1 for doc in deployment.store.tasks("manobi", limit=tasks + 10))
        presence_writes = sum(generation(doc) for doc in deployment.store.documents(PREFIX))
        share = presence_writes / (presence_writes + task_writes)
        print(f"{tasks} tasks in {elapsed:.1f} s: the worker wrote {task_writes} task revisions and "
              f"{presence_writes} presence revisions: presence is {100 * share:.2f}% of its writes",
              flush=True)
    finally:
        deployment.stop_all()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", choices=[kind.value for kind in ServerKind], default="couchdb")
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--screenshot", type=Path)
    parser.add_argument("--presence", action="store_true", help="measure the presence share of writes")
    options = parser.parse_args(argv)
    kind = ServerKind(options.server)
    reason = missing(kind) or (None if options.presence else browser_missing())
    if reason:
        print(f"cannot run: {reason}")
        return 1
    with start_server(kind=kind) as server:
        if options.presence:
            presence_share(server, options.tasks if options.tasks != 100_000 else 5000)
            return 0
        store = load(server, options.tasks)
        first_view(store, server, options.screenshot)
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
