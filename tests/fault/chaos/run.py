"""One run of a scenario: a database, the ``stamp`` job, worker processes, tasks, and their figures.

Every job is ``stamp``: it appends the task, the real time (never a skewed clock), the host and its
worker process to ``starts.log``, and when asked to sleep, to ``ends.log`` once it slept, or to
``stops.log`` when it was stopped (SIGTERM) before. The figures are counted by ``figures.count``.
"""

from __future__ import annotations

import contextlib
import re
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from after.core.dates import format_date
from after.core.task import Document
from after.initialize import Validation, initialize
from after.store.couch.client import CouchStore
from tests.cluster import CouchDBCluster
from tests.fault.chaos.figures import Figures, Start, count, read_starts
from tests.fault.chaos.processes import Worker
from tests.hosts import Host
from tests.integration.deployment import Deployment, WorkerProcess
from tests.server import ERLANG_INI, ServerKind, TestServer, start_server

REAL_NOW = "$(env -u LD_PRELOAD -u FAKETIME date +%s.%N)"  # a skewed job's children see the real time
STAMP = f"""#!/bin/sh
# the task, the real time, the host (its UTS namespace) and the worker process that started the job
line() ( echo "$AFTER_TASK_ID {REAL_NOW} $(cat /proc/sys/kernel/hostname) $PPID" )
line >> {{starts}}
if [ -n "$1" ]; then
    trap 'line >> {{stops}}; exit 143' TERM
    sleep "$1"
    line >> {{ends}}
fi
"""


class Run:
    """A database on ``server`` (one node, or a cluster), the ``stamp`` job, and worker processes."""

    def __init__(self, server: TestServer | CouchDBCluster, directory: Path, **worker: Any) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.server, self.directory = server, directory
        self.deployment = Deployment(server, directory, **worker)  # type: ignore[arg-type]
        if isinstance(server, CouchDBCluster):  # the harness survives any one node's loss too
            self.deployment.store.close()
            self.deployment.store = CouchStore(list(reversed(server.urls)), self.deployment.database,
                                               server.admin, server.password)
        initialize(self.deployment.store, Validation.AUTO)  # Erlang where the server has it
        self.logs = {name: directory / f"{name}.log" for name in ("starts", "ends", "stops")}
        for path in self.logs.values():
            path.touch()
        self.deployment.install("stamp", STAMP.format(**self.logs))
        self.dates: dict[str, float] = {}
        self.ahead: set[str] = set()  # tasks whose date was ahead when written: their lateness counts
        self.began = time.time()

    @property
    def store(self) -> CouchStore:
        return self.deployment.store

    @property
    def workers(self) -> list[WorkerProcess]:
        return self.deployment.workers

    def config(self, urls: Sequence[str] | None) -> Path:
        if not urls:
            return self.deployment.config
        path = self.directory / f"after-{len(self.workers)}.toml"
        listed = "urls = [" + ", ".join(f'"{url}"' for url in urls) + "]"
        path.write_text(re.sub(r'url = "[^"]*"', listed, self.deployment.config.read_text(), count=1))
        return path

    def start(self, urls: Sequence[str] | None = None, host: Host | None = None, skew: float = 0.0,
              environment: dict[str, str] | None = None) -> Worker:
        log = self.directory / f"worker-{len(self.workers)}{'-' + host.name if host else ''}.log"
        worker = Worker("manobi", self.config(urls), log, host, skew, environment)
        self.workers.append(worker)
        return worker

    def wait_members(self, workers: Sequence[WorkerProcess], count: int, timeout: float = 60.0) -> None:
        """Until each process knows ``count`` live processes (their presence documents)."""
        self.deployment.wait_until(
            lambda: all(f"processes of worker manobi: {count} " in worker.output() for worker in workers),
            timeout, f"{len(workers)} processes to see {count}")

    def add(self, prefix: str, count: int, first: float, spread: float = 0.0,
            arguments: list[Any] | None = None) -> list[str]:
        """``count`` tasks due ``first`` seconds from now and on, evenly over ``spread`` seconds."""
        now = time.time()
        ids = [f"{prefix}{number:05d}" for number in range(count)]
        docs: list[Document] = []
        for number, task_id in enumerate(ids):
            date = now + first + (spread * number / count if count else 0.0)
            self.dates[task_id] = date
            if date > now:
                self.ahead.add(task_id)
            docs.append({"_id": task_id, "worker": "manobi", "date": format_date(date),
                         "job": {"name": "stamp", "arguments": arguments or []}, "status": "waiting"})
        self.deployment.add(docs)
        return ids

    def documents(self, ids: Sequence[str]) -> dict[str, Document]:
        found: dict[str, Document] = {}
        for start in range(0, len(ids), 200):
            for doc in self.store.get_many(list(ids[start:start + 200])):
                if doc is not None:
                    found[str(doc["_id"])] = doc
        return found

    def wait_done(self, ids: Sequence[str], timeout: float) -> bool:
        """Until every task is ``done`` (True) or ``timeout`` s passed (False); a busy server is retried."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):  # a server restarting or a node down: ask again
                counts = self.store.status_counts("manobi").get("manobi", {})
                docs = self.documents(ids) if counts.get("done", 0) >= len(ids) else {}
                if sum(1 for doc in docs.values() if doc.get("status") == "done") == len(ids):
                    return True
            time.sleep(1.0)
        return False

    def wait_settled(self, ids: Sequence[str], timeout: float) -> list[str]:
        """Documents still with conflicting leaves after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        left = [task_id for task_id, doc in self.documents(ids).items() if doc.get("_conflicts")]
        while left and time.monotonic() < deadline:
            time.sleep(1.0)
            left = [task_id for task_id, doc in self.documents(left).items() if doc.get("_conflicts")]
        return left

    def starts(self, kind: str = "starts") -> dict[str, list[Start]]:
        """The job's record of ``starts`` (or ``ends``, ``stops``), by task."""
        return read_starts(self.logs[kind].read_text())

    def tally(self, scenario: str, ids: Sequence[str], settle: float = 30.0) -> Figures:
        """The figures of a run whose tasks are ``ids`` (after waiting ``settle`` s for conflicts)."""
        unsettled = self.wait_settled(ids, settle)
        figures = count(scenario, ids, self.documents(ids), self.starts(), self.dates, self.ahead)
        figures.conflicts = len(unsettled)
        if unsettled:
            figures.examples["conflicts"] = unsettled[:5]
        figures.seconds = time.time() - self.began
        return figures

    def runs_by_label(self, ids: Sequence[str]) -> Counter[str]:
        """Which process wrote each task's result."""
        return Counter(str((doc.get("result") or {}).get("by", "")) for doc in self.documents(ids).values())

    def close(self) -> None:
        self.deployment.stop_all()


@contextlib.contextmanager
def running(run: Run) -> Iterator[Run]:
    try:
        yield run
    finally:
        run.close()


def rotated(urls: Sequence[str], first: int) -> list[str]:
    return list(urls[first:]) + list(urls[:first])


def server_on(kind: ServerKind, address: str = "127.0.0.1") -> TestServer:
    """A server of ``kind`` listening on ``address`` (a bridge address for hosts), Erlang query server on."""
    directory = Path(tempfile.mkdtemp(prefix=f"after-chaos-{kind}-"))
    options = {"ini": ERLANG_INI} if kind == ServerKind.COUCHDB else {}
    return start_server(directory, kind=kind, host=address, **options)
