"""The one place where the service verbs touch the machine: run systemctl/journalctl, read /proc
(psutil), read and write clean marks, ask CouchDB for task counts. Tests replace ``System`` with a fake."""

from __future__ import annotations

import logging
import os
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn, Protocol

from after.systemd.instances import ProcessStats

log = logging.getLogger(__name__)
BOOTED_MARK = Path("/run/systemd/system")


class CommandMissing(RuntimeError):
    pass


@dataclass(frozen=True)
class Completed:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


class System(Protocol):
    def booted(self) -> bool: ...
    def run(self, argv: Sequence[str]) -> Completed: ...
    def replace(self, argv: Sequence[str]) -> NoReturn: ...
    def stats(self, pid: int) -> ProcessStats | None: ...
    def read_text(self, path: Path) -> str | None: ...
    def write_text(self, path: Path, text: str) -> None: ...
    def task_counts(self, config: str | None) -> dict[str, dict[str, int]] | None: ...
    def now(self) -> float: ...


class RealSystem:
    def booted(self) -> bool:
        """sd_booted(3): systemd is PID 1 when /run/systemd/system exists."""
        return BOOTED_MARK.is_dir()

    def run(self, argv: Sequence[str]) -> Completed:
        log.debug("running %s", argv)
        try:
            result = subprocess.run(list(argv), capture_output=True, text=True, check=False)
        except FileNotFoundError:
            raise CommandMissing(f"{argv[0]} is not installed") from None
        return Completed(tuple(argv), result.returncode, result.stdout, result.stderr)

    def replace(self, argv: Sequence[str]) -> NoReturn:
        """Become the command (journalctl with its pager, --follow and Ctrl-C)."""
        try:
            os.execvp(argv[0], list(argv))
        except FileNotFoundError:
            raise CommandMissing(f"{argv[0]} is not installed") from None

    def stats(self, pid: int) -> ProcessStats | None:
        import psutil

        try:
            main = psutil.Process(pid)
            tree = [main, *main.children(recursive=True)]
            rss = sum(process.memory_info().rss for process in tree)
            cpu = sum(sum(process.cpu_times()[:2]) for process in tree)
            return ProcessStats(rss=rss, cpu=cpu, started=main.create_time())
        except psutil.Error:
            return None

    def read_text(self, path: Path) -> str | None:
        try:
            return path.read_text()
        except FileNotFoundError:
            return None

    def write_text(self, path: Path, text: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def task_counts(self, config: str | None) -> dict[str, dict[str, int]] | None:
        """{worker: {status: count}} from CouchDB, or None when it cannot be read (config, network...)."""
        from after import config as settings
        from after.store.couch.client import CouchStore

        try:
            store = CouchStore.from_config(settings.load(config).couchdb)
            try:
                return store.status_counts()
            finally:
                store.close()
        except Exception as error:  # the table shows "-": an unreachable CouchDB is not an error here
            log.debug("no task counts: %s", error)
            return None

    def now(self) -> float:
        return time.time()
