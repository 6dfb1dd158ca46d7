"""Shared pieces of the benchmarks: rows, the context, deployments, waiting on workers, statistics.

Every benchmark runs real worker processes (``python -m after.cli run NAME``) against a real server on
loopback (Apache CouchDB 3.5.0 and pouchdb-server, one after the other), through ``tests.server`` and
``tests.integration.deployment``. The job is the built-in ``noop`` (a Python callable) unless a
benchmark says otherwise, so the figures are After's, not process spawning's.
"""

from __future__ import annotations

import contextlib
import math
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from after.core.task import Document
from bench.db import Database
from tests.integration.deployment import Deployment, WorkerProcess
from tests.server import TestServer

WORKER = "manobi"
READY = re.compile(r"worker \S+ ready")
FINISHED = re.compile(r"task \S+: (done|err)\b")
# Worker settings: the defaults of after.config, except a shorter grace for a quick stop.
SETTINGS: dict[str, Any] = {"concurrency": 4, "horizon": 300.0, "lease": 60.0, "claim_ahead": 1.0,
                            "grace": 5.0}


@dataclass
class Row:
    """One figure of one benchmark on one server, with APScheduler's beside it when there is one.

    ``after`` and ``peer`` are numbers (``digits`` decimals); ``value`` is text shown instead of a
    missing After figure (a skip, a failure). ``ratio`` is After / APScheduler.
    """

    benchmark: str
    server: str
    configuration: str
    figure: str = ""
    after: float | None = None
    peer: float | None = None
    value: str = ""
    target: str = ""
    met: bool | None = None
    digits: int = 1
    notes: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float | None:
        if self.after is None or self.peer is None or self.peer == 0:
            return None
        return self.after / self.peer


@dataclass
class Context:
    """What every benchmark gets: one running server, a scratch directory, the size switch."""

    server: TestServer
    directory: Path
    quick: bool
    options: dict[str, Any] = field(default_factory=dict)
    setup_notes: list[str] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return str(self.server.kind.value)

    def scratch(self, name: str) -> Path:
        path = self.directory / f"{self.kind}-{name}"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def note(self, benchmark: str, text: str) -> None:
        self.setup_notes.append(f"{benchmark} ({self.kind}): {text}")


class Deployed(NamedTuple):
    """A deployment (database, config, jobs directory, workers) and the benchmark's client for it."""

    deploy: Deployment
    db: Database


@contextlib.contextmanager
def deployment(context: Context, name: str, **worker: Any) -> Iterator[Deployed]:
    """A fresh database (``after init`` done) and config; every worker it started is stopped on the
    way out, whatever happens. Worker settings are ``SETTINGS`` updated with ``worker``."""
    deploy = Deployment(context.server, context.scratch(name), **{**SETTINGS, **worker})
    db = Database(context.server, deploy.database)
    try:
        yield Deployed(deploy, db)
    finally:
        for process in deploy.workers:
            if process.alive():
                with contextlib.suppress(Exception):
                    process.terminate(timeout=10.0)
        deploy.stop_all()
        db.close()


def noop_task(task_id: str, date: str, status: str = "waiting", job: str = "noop") -> Document:
    return {"_id": task_id, "worker": WORKER, "date": date, "job": {"name": job, "arguments": []},
            "status": status}


def wait_for(process: WorkerProcess, pattern: re.Pattern[str], count: int, timeout: float,
             what: str, poll: float = 0.05) -> float:
    """Wait until the worker's log has ``count`` lines matching ``pattern``; returns the time it took.

    The log is read, not the database, so waiting puts no load on the server being measured; it is
    read incrementally (only what was appended since the last look), so a long log costs no more.
    """
    started = time.monotonic()
    deadline = started + timeout
    found, offset, partial = 0, 0, b""
    while True:
        with process.log.open("rb") as log:
            log.seek(offset)
            chunk = log.read()
        offset += len(chunk)
        lines = (partial + chunk).split(b"\n")
        partial = lines.pop()
        found += sum(1 for line in lines if pattern.search(line.decode(errors="replace")))
        if found >= count:
            return time.monotonic() - started
        if not process.alive():
            why = f"worker exited with {process.process.returncode}"
        elif time.monotonic() > deadline:
            why = f"timed out after {timeout:.0f} s"
        else:
            time.sleep(poll)
            continue
        raise RuntimeError(f"{why} waiting for {what}:\n{process.output()[-3000:]}")


def start_ready(deploy: Deployment, timeout: float = 60.0, poll: float = 0.05) -> tuple[WorkerProcess, float]:
    """Start a worker and wait until it reports ready; returns it and the seconds from spawn to ready."""
    process = deploy.start_worker(WORKER)
    return process, wait_for(process, READY, 1, timeout, "the worker to be ready", poll=poll)


def all_done(docs: Sequence[Document]) -> None:
    bad = [doc["_id"] for doc in docs if doc.get("status") != "done"]
    if bad:
        raise RuntimeError(f"{len(bad)} tasks did not end done, e.g. {bad[:3]}")


def lateness(docs: Sequence[Document]) -> list[float]:
    """``result.lateness_ms`` of every task that ended ``done``; others must not exist."""
    all_done(docs)
    return [float(doc["result"]["lateness_ms"]) for doc in docs]


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (``fraction`` in 0..1): a value that really occurred."""
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def summary(values: Sequence[float]) -> tuple[float, float, float]:
    return percentile(values, 0.50), percentile(values, 0.99), max(values)


def distribution(values: Sequence[float], over: float | None = None) -> str:
    """A one-line description of a set of latencies in ms, for the notes."""
    text = f"{len(values)} values; min {min(values):.2f} ms; mean {sum(values) / len(values):.2f} ms"
    if over is not None:
        text += f"; {sum(1 for value in values if value > over)} over {over:g} ms"
    return text


def latency_rows(benchmark: str, server: str, configuration: str, after: Sequence[float],
                 peer: Sequence[float] | None, target: float | None = None,
                 beat_peer: bool = False) -> list[Row]:
    """p50, p99 and max of After's latencies in ms beside the peer's; the target applies to p99.

    ``target`` is a bound in ms; ``beat_peer`` makes the target "no worse than APScheduler's p99".
    """
    mine, theirs = summary(after), summary(peer) if peer else (None, None, None)
    rows = [Row(benchmark, server, configuration, f"{name} ms", value, other)
            for name, value, other in zip(("p50", "p99", "max"), mine, theirs, strict=True)]
    p99 = rows[1]
    if target is not None:
        p99.target, p99.met = f"<= {target:g} ms", mine[1] <= target
    elif beat_peer and theirs[1] is not None:
        p99.target, p99.met = "<= APScheduler's p99", mine[1] <= theirs[1]
    return rows


def out_of_order(dates: Sequence[float], starts: Sequence[float], slack: int) -> int:
    """How many tasks started after a task due at least ``slack`` places later had started.

    Tasks are taken in date order; ``slack`` allows for the jobs that run side by side (concurrency):
    a task may start up to ``slack`` places out of line without counting. Equal start readings count
    as in order (``result.started`` has millisecond resolution).
    """
    by_date = [start for _, start in sorted(zip(dates, starts, strict=True))]
    later_min = math.inf
    count = 0
    for index in range(len(by_date) - 1, -1, -1):
        ahead = index + slack
        if ahead < len(by_date):
            later_min = min(later_min, by_date[ahead])
        if by_date[index] > later_min:
            count += 1
    return count


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"
