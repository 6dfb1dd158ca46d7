"""Worker processes of the fault scenarios: ``after run`` here or on a host, and a ``NOTIFY_SOCKET``."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.hosts import Host
from tests.integration.deployment import WorkerProcess
from tests.server import die_with_parent


class Worker(WorkerProcess):
    """An ``after run`` process on this machine or on a ``Host`` (its namespace, host name, clock).

    It gets SIGTERM when the process that started it dies, so a killed run leaks no worker (on a host,
    ``ip netns exec``, ``unshare`` and ``sh`` all exec: the signal reaches the worker itself)."""

    def __init__(self, name: str, config: Path, log: Path, host: Host | None = None, skew: float = 0.0,
                 environment: dict[str, str] | None = None) -> None:
        self.name, self.log, self.host, self.skew = name, log, host, skew
        argv = [sys.executable, "-m", "after.cli", "run", name, "--config", str(config)]
        env = {**os.environ, **(environment or {}), "PYTHONUNBUFFERED": "1"}
        if host is not None:
            argv, env = host.command(argv, skew, env)
        with log.open("ab") as output:
            self.process = subprocess.Popen(argv, stdout=output, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, env=env, preexec_fn=die_with_parent)

    @property
    def hostname(self) -> str:
        return self.host.hostname if self.host is not None else socket.gethostname()

    @property
    def label(self) -> str:
        """What the process writes as ``by`` in results and claims."""
        return f"{self.name}@{self.hostname}:{self.pid}"

    def lines(self, pattern: str) -> list[str]:
        return [line for line in self.output().splitlines() if re.search(pattern, line)]


class StatusSocket:
    """A ``NOTIFY_SOCKET`` to hand a worker: every sd_notify message it sends, with the time it came."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.messages: list[tuple[float, str]] = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.open = True
        self.thread = threading.Thread(target=self.receive, daemon=True)
        self.thread.start()

    def receive(self) -> None:
        while self.open:
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            for line in data.decode(errors="replace").splitlines():
                self.messages.append((time.time(), line))

    def statuses(self) -> list[tuple[float, str]]:
        return [(moment, line[len("STATUS="):]) for moment, line in list(self.messages)
                if line.startswith("STATUS=")]

    def close(self) -> None:
        self.open = False
        self.thread.join(2.0)
        self.sock.close()
        self.path.unlink(missing_ok=True)
