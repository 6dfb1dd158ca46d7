"""Acknowledgement latency: a client's PUT of a new task to the worker's ``scheduled`` answer.

A worker is started and ready. A follower thread opens the database's continuous ``_changes`` feed
(from the sequence before the first PUT) filtered to ``{"worker": ..., "status": "scheduled"}``:
``filter=_selector`` with the selector POSTed as the body on Apache CouchDB, in the ``selector=`` URL
parameter on pouchdb-server (which crashes on the POSTed form); both with ``Accept-Encoding:
identity`` and a one-second heartbeat. It notes when each task's first ``scheduled`` revision arrives.
Eight client threads PUT new tasks (dated a few minutes ahead, inside the horizon, so the worker answers
``scheduled`` and not ``running``), one every 10 ms in turn (100 tasks/s), each with its own keep-alive
connection. The figure is the arrival of ``scheduled`` minus the moment the client's PUT returned (its
201); the notes give the same from the moment the PUT was sent. The server is not polled.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx

from after.core.dates import format_date
from after.store.couch.transport import no_delay_transport
from bench.common import (
    WORKER,
    Context,
    Row,
    deployment,
    distribution,
    latency_rows,
    noop_task,
    start_ready,
    summary,
)
from bench.db import HEADERS
from tests.server import ServerKind, TestServer

TARGET = 50.0
CLIENTS = 8
AHEAD = 180.0  # seconds: a few minutes ahead, inside the default horizon of 300 s
SELECTOR = {"worker": WORKER, "status": "scheduled"}
Sent = tuple[float, float]  # when a PUT was sent and when it returned (time.time())


class Follower(threading.Thread):
    """Follows the feed; ``seen`` maps a task id to the ``time.time()`` its row arrived."""

    def __init__(self, server: TestServer, database: str, since: str) -> None:
        super().__init__(name="changes-follower", daemon=True)
        self.server, self.database, self.since = server, database, since
        self.seen: dict[str, float] = {}
        self.connected = threading.Event()
        self.stopping = threading.Event()
        self.error: BaseException | None = None

    def request(self) -> dict[str, Any]:
        params = {"feed": "continuous", "since": self.since, "heartbeat": "1000", "filter": "_selector"}
        if self.server.kind == ServerKind.POUCHDB:  # pouchdb-server crashes on a POSTed selector
            return {"method": "GET", "params": {**params, "selector": json.dumps(SELECTOR)}}
        return {"method": "POST", "params": params, "json": {"selector": SELECTOR}}

    def run(self) -> None:
        timeout = httpx.Timeout(10.0, read=30.0)
        url = f"{self.server.url}/{self.database}/_changes"
        try:
            with httpx.Client(auth=self.server.auth, headers=HEADERS, timeout=timeout) as client, \
                    client.stream(url=url, **self.request()) as response:
                response.raise_for_status()
                self.connected.set()
                for line in response.iter_lines():
                    arrived = time.time()
                    if self.stopping.is_set():
                        return
                    if line.strip():
                        self.record(line, arrived)
        except BaseException as error:  # reported by the benchmark thread
            self.error = error
            self.connected.set()

    def record(self, line: str, arrived: float) -> None:
        row = json.loads(line)
        if "id" in row:
            self.seen.setdefault(str(row["id"]), arrived)


def put_paced(server: TestServer, database: str, ids: list[str], rate: float) -> dict[str, Sent]:
    """PUT one task per id, one every 1/rate s over ``CLIENTS`` threads; id -> (sent, returned)."""
    times: dict[str, Sent] = {}
    first = time.monotonic() + 0.1

    def client(offset: int) -> None:
        with httpx.Client(auth=server.auth, headers=HEADERS, timeout=30.0,
                          transport=no_delay_transport()) as http:
            for index in range(offset, len(ids), CLIENTS):
                time.sleep(max(0.0, first + index / rate - time.monotonic()))
                doc = noop_task(ids[index], format_date(time.time() + AHEAD))
                sent = time.time()
                http.put(f"{server.url}/{database}/{ids[index]}", json=doc).raise_for_status()
                times[ids[index]] = (sent, time.time())

    threads = [threading.Thread(target=client, args=(offset,)) for offset in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return times


def wait_seen(follower: Follower, ids: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not all(task_id in follower.seen for task_id in ids):
        if follower.error is not None:
            raise RuntimeError(f"the changes feed failed: {follower.error!r}")
        if time.monotonic() > deadline:
            missing = [task_id for task_id in ids if task_id not in follower.seen]
            raise RuntimeError(f"{len(missing)} tasks never showed scheduled, e.g. {missing[:3]}")
        time.sleep(0.2)


def measure(context: Context, count: int, rate: float) -> tuple[list[float], list[float], float]:
    """Latencies in ms from PUT returned and from PUT sent, and the achieved PUT rate."""
    ids = [f"ack-{index:05d}" for index in range(count)]
    with deployment(context, "ack") as (deploy, db):
        process, _ = start_ready(deploy)
        follower = Follower(context.server, deploy.database, db.update_seq())
        follower.start()
        if not follower.connected.wait(15.0) or follower.error is not None:
            raise RuntimeError(f"the changes feed did not open: {follower.error!r}")
        started = time.monotonic()
        times = put_paced(context.server, deploy.database, ids, rate)
        achieved = count / (time.monotonic() - started)
        wait_seen(follower, ids, 120.0)
        follower.stopping.set()
        process.terminate()
    returned = [(follower.seen[task_id] - times[task_id][1]) * 1000.0 for task_id in ids]
    sent = [(follower.seen[task_id] - times[task_id][0]) * 1000.0 for task_id in ids]
    return returned, sent, achieved


def run(context: Context) -> list[Row]:
    rate, seconds = 100.0, (5.0 if context.quick else 20.0)
    count = int(rate * seconds)
    returned, sent, achieved = measure(context, count, rate)
    config = f"{count} new tasks, {rate:g}/s for {seconds:g} s, {AHEAD:g} s ahead"
    rows = latency_rows("ack", context.kind, config, returned, None, target=TARGET)
    put_ms = [one - other for one, other in zip(sent, returned, strict=True)]
    rows[0].notes += [
        f"from PUT returned: {distribution(returned, TARGET)}",
        "from PUT sent: p50 {:.1f}, p99 {:.1f}, max {:.1f} ms; ".format(*summary(sent))
        + distribution(sent, TARGET),
        f"the PUT itself: {distribution(put_ms)}; {achieved:.0f} PUTs/s achieved over {CLIENTS} clients"]
    if achieved < 0.9 * rate:
        rows[0].notes.append(f"the clients fell behind: {achieved:.0f} PUTs/s instead of {rate:g}")
    return rows
