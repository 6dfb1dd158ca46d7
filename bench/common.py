"""Shared pieces of the benchmarks: the server and deployments, waiting on workers, statistics, rows.

Every benchmark runs real worker processes (``python -m after.cli run NAME``) against a real
pouchdb-server on loopback, through ``tests.server`` and ``tests.integration.deployment``. The job is
the built-in ``noop`` (a Python callable), so the figures are After's, not process spawning's.
"""

from __future__ import annotations

import contextlib
import math
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from after.model import Document
from tests.integration.deployment import Deployment, WorkerProcess
from tests.server import TestServer

WORKER = "manobi"
READY = re.compile(r"worker \S+ ready")
FINISHED = re.compile(r"task \S+: (done|err)\b")
FETCH_CHUNK = 1000


@dataclass
class Row:
    """One line of the results table; ``None`` figures print as a dash."""

    benchmark: str
    configuration: str
    p50: float | None = None
    p99: float | None = None
    max: float | None = None
    value: str = ""
    target: str = ""
    met: bool | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class Context:
    """What every benchmark gets: the running server, a scratch directory, the size switch."""

    server: TestServer
    directory: Path
    quick: bool
    options: dict[str, Any] = field(default_factory=dict)
    setup_notes: list[str] = field(default_factory=list)

    def scratch(self, name: str) -> Path:
        path = self.directory / name
        path.mkdir(parents=True, exist_ok=True)
        return path


@contextlib.contextmanager
def deployment(context: Context, name: str, **worker: Any) -> Iterator[Deployment]:
    """A fresh database and config; every worker it started is killed on the way out, whatever happens."""
    deploy = Deployment(context.server, context.scratch(name), **worker)
    try:
        yield deploy
    finally:
        for process in deploy.workers:
            if process.alive():
                with contextlib.suppress(Exception):
                    process.terminate(timeout=10.0)
        deploy.stop_all()


def noop_task(task_id: str, date: str, status: str = "waiting") -> Document:
    return {"_id": task_id, "worker": WORKER, "date": date, "job": {"name": "noop", "arguments": []},
            "status": status}


def wait_for(process: WorkerProcess, pattern: re.Pattern[str], count: int, timeout: float,
             what: str, poll: float = 0.05) -> float:
    """Wait until the worker's log has ``count`` lines matching ``pattern``; returns the time it took.

    The log is read, not the database, so waiting puts no load on the server being measured.
    """
    started = time.monotonic()
    deadline = started + timeout
    while True:
        output = process.output()
        if len(pattern.findall(output)) >= count:
            return time.monotonic() - started
        if not process.alive():
            raise RuntimeError(f"worker exited with {process.process.returncode} waiting for {what}:\n"
                               f"{output[-3000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}:\n{output[-3000:]}")
        time.sleep(poll)


def start_ready(deploy: Deployment, timeout: float = 60.0) -> tuple[WorkerProcess, float]:
    """Start a worker and wait until it reports ready; returns it and the seconds that took."""
    process = deploy.start_worker(WORKER)
    return process, wait_for(process, READY, 1, timeout, "the worker to be ready")


def fetch(deploy: Deployment, task_ids: Sequence[str]) -> list[Document]:
    """The current documents, ``FETCH_CHUNK`` per request; a missing one is an error."""
    docs: list[Document] = []
    for start in range(0, len(task_ids), FETCH_CHUNK):
        chunk = task_ids[start:start + FETCH_CHUNK]
        for task_id, doc in zip(chunk, deploy.store.get_many(chunk), strict=True):
            if doc is None:
                raise RuntimeError(f"task {task_id} is missing")
            docs.append(doc)
    return docs


def lateness(docs: Sequence[Document]) -> list[float]:
    """``result.lateness_ms`` of every task that ended ``done``; others must not exist."""
    bad = [doc["_id"] for doc in docs if doc.get("status") != "done"]
    if bad:
        raise RuntimeError(f"{len(bad)} tasks did not end done, e.g. {bad[:3]}")
    return [float(doc["result"]["lateness_ms"]) for doc in docs]


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (``fraction`` in 0..1): a value that really occurred."""
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def summary(values: Sequence[float]) -> tuple[float, float, float]:
    return percentile(values, 0.50), percentile(values, 0.99), max(values)


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"
