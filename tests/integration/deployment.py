"""Real worker processes against the real server: a config, a jobs directory, helpers to wait."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from after.core.dates import format_date
from after.core.task import Document
from after.initialize import initialize
from after.store.couch.client import CouchStore
from after.store.types import Unavailable
from tests.server import TestServer

RECORD = """#!/bin/sh
echo "$AFTER_TASK_ID" >> {log}
"""
SLEEPY = """#!/bin/sh
echo $$ > {directory}/$AFTER_TASK_ID.pid
sleep "$1"
echo "$AFTER_TASK_ID" >> {log}
"""


class WorkerProcess:
    def __init__(self, name: str, config: Path, log: Path) -> None:
        self.name = name
        self.log = log
        with log.open("ab") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "after.cli", "run", name, "--config", str(config)],
                stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def terminate(self, timeout: float = 30.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()

    def alive(self) -> bool:
        return self.process.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until the worker says it is ready (connected, following its feed): tests whose task dates are
        a few seconds ahead count them from there, not from a process start that load can slow down."""
        deadline = time.monotonic() + timeout
        while f"worker {self.name} ready" not in self.output():
            if not self.alive() or time.monotonic() > deadline:
                raise AssertionError(f"worker {self.name} not ready (exit code {self.process.poll()}):\n"
                                     f"{self.output()[-3000:]}")
            time.sleep(0.05)


class Deployment:
    """One database, one config file, one jobs directory; workers started on demand."""

    def __init__(self, server: TestServer, directory: Path, **worker: Any) -> None:
        self.server = server
        self.directory = directory
        self.database = f"it-{uuid.uuid4().hex[:10]}"
        self.store = CouchStore(server.url, self.database, server.admin, server.password)
        initialize(self.store)
        self.jobs = directory / "jobs.d"
        self.jobs.mkdir(parents=True, exist_ok=True)
        self.ran_log = directory / "ran.log"
        self.ran_log.touch()
        self.install("record", RECORD.format(log=self.ran_log))
        self.install("sleepy", SLEEPY.format(directory=directory, log=self.ran_log))
        self.config = directory / "after.toml"
        self.write_config({"concurrency": 8, "lease": 10.0, "claim_ahead": 1.0, "grace": 5.0, **worker})
        self.workers: list[WorkerProcess] = []

    def write_config(self, worker: dict[str, Any]) -> None:
        (self.directory / "couchdb.password").write_text(self.server.password)
        settings = "\n".join(f"{key} = {value!r}" for key, value in worker.items())
        self.config.write_text(
            f'[couchdb]\nurl = "{self.server.url}"\ndatabase = "{self.database}"\n'
            f'user = "{self.server.admin}"\npassword_file = "couchdb.password"\n'
            f"[worker]\n{settings}\n[jobs]\npaths = [\"{self.jobs}\"]\n")

    def install(self, name: str, script: str) -> None:
        path = self.jobs / name
        path.write_text(script)
        path.chmod(0o755)

    def start_worker(self, name: str = "manobi") -> WorkerProcess:
        worker = WorkerProcess(name, self.config, self.directory / f"worker-{len(self.workers)}.log")
        self.workers.append(worker)
        return worker

    def stop_all(self) -> None:
        for worker in self.workers:
            if worker.alive():
                worker.kill()
        self.store.close()

    def task(self, task_id: str, offset: float, job: str = "record", arguments: list[Any] | None = None,
             worker: str = "manobi", **fields: Any) -> Document:
        return {"_id": task_id, "worker": worker, "date": format_date(time.time() + offset),
                "job": {"name": job, "arguments": arguments or []}, "status": "waiting", **fields}

    def add(self, docs: list[Document]) -> None:
        for start in range(0, len(docs), 500):
            results = self.store.bulk_write(docs[start:start + 500])
            assert all(result.ok for result in results), [r for r in results if not r.ok][:3]

    def doc(self, task_id: str) -> Document:
        doc = self.store.get(task_id)
        assert doc is not None, task_id
        return doc

    def ran(self) -> Counter[str]:
        return Counter(line for line in self.ran_log.read_text().split() if line)

    def statuses(self, task_ids: list[str]) -> Counter[str]:
        found = Counter(str(self.doc(task_id).get("status")) for task_id in task_ids)
        return found

    def wait_until(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                logs = "\n".join(worker.output()[-3000:] for worker in self.workers)
                raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{logs}")
            time.sleep(0.5)

    def wait_status(self, task_ids: list[str], status: str, timeout: float = 30.0) -> None:
        def reached() -> bool:
            try:  # the count view first: one cheap request while most tasks are not there yet
                counts = self.store.status_counts().get("manobi", {})
                if counts.get(status, 0) < len(task_ids):
                    return False
                return all(self.doc(task_id)["status"] == status for task_id in task_ids)
            except Unavailable:  # a busy (or restarting) server: ask again later
                return False

        self.wait_until(reached, timeout, f"{len(task_ids)} tasks {status}")
