"""The job registry: job names to runnable jobs.

A name resolves, first match wins, to
1. a callable registered with ``JobRegistry.register`` (library users, tests);
2. an executable regular file ``<dir>/<name>`` in the first jobs directory that has one (so an
   administrator can replace a built-in); a job found is remembered for one second (a stat of every
   directory cost 61 us, twice per task); a job installed while the worker runs is found at once,
   without a restart, and one removed or replaced is noticed within a second;
3. a Python callable under the entry-point group ``after.jobs`` (loaded on first use, then cached).

Names must match ``after.core.task.NAME_RE`` (and are not ``.`` or ``..``), so a task can never name a
path. An entry point that fails to load resolves to a job that fails with the import error as reason.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from after.contracts import Job, JobContext, Outcome
from after.core.task import NAME_RE
from after.jobs.executable import ExecutableJob
from after.jobs.python import CallableJob, JobFunction, Watchdog

log = logging.getLogger(__name__)

GROUP = "after.jobs"
RESOLVE_TTL = 1.0  # seconds a lookup in the jobs directories is remembered


def valid_name(name: str) -> bool:
    return bool(NAME_RE.match(name)) and name not in (".", "..")


@dataclass
class BrokenJob:
    """An installed job that cannot be loaded; running it reports why."""

    name: str
    reason: str

    def run(self, context: JobContext) -> Outcome:
        return Outcome("err", reason=self.reason)


class JobRegistry:
    """Registry of installed jobs; see the module docstring for the lookup order."""

    def __init__(self, paths: Sequence[Path | str], entry_points: bool = True) -> None:
        self.paths = tuple(Path(path) for path in paths)
        self.use_entry_points = entry_points
        self.registered: dict[str, Job] = {}
        self.loaded: dict[str, Job] = {}
        self.entry_point_table: dict[str, metadata.EntryPoint] | None = None
        self.lock = threading.Lock()
        self.watchdog = Watchdog()  # one timer thread for every callable's timeout
        self.resolved: dict[str, tuple[Job | None, float]] = {}  # name -> (job, monotonic expiry)

    def close(self) -> None:
        """Stop the timer thread of the Python callables' timeouts (the worker's last step)."""
        self.watchdog.stop()

    def register(self, name: str, function: JobFunction) -> None:
        """Register a Python callable ``function(context) -> str | None`` under ``name``."""
        if not valid_name(name):
            raise ValueError(f"job name {name!r} must be 1-64 characters from A-Z a-z 0-9 _ . -")
        if not callable(function):
            raise TypeError(f"job {name!r} must be callable, not {type(function).__name__}")
        self.registered[name] = CallableJob(name, function, self.watchdog)

    def resolve(self, name: str) -> Job | None:
        """The job for ``name``; a job found is remembered for ``RESOLVE_TTL`` seconds."""
        if not valid_name(name):
            return None
        if name in self.registered:
            return self.registered[name]
        now = time.monotonic()
        cached = self.resolved.get(name)
        if cached is not None and cached[1] > now:
            return cached[0]
        path = self.find_executable(name)
        job = ExecutableJob(name, path) if path is not None else self.entry_point_job(name)
        if job is not None:  # only what was found: a job installed now is found at once
            self.resolved[name] = (job, now + RESOLVE_TTL)
        return job

    def names(self) -> list[str]:
        found = set(self.registered) | set(self.entry_points())
        for directory in self.paths:
            found.update(name for name in list_dir(directory) if is_executable(directory / name))
        return sorted(name for name in found if valid_name(name))

    def find_executable(self, name: str) -> Path | None:
        for directory in self.paths:
            candidate = directory / name
            if is_executable(candidate):
                return candidate
        return None

    def entry_point_job(self, name: str) -> Job | None:
        entry = self.entry_points().get(name)
        if entry is None:
            return None
        with self.lock:
            if name not in self.loaded:
                self.loaded[name] = load(name, entry, self.watchdog)
            return self.loaded[name]

    def entry_points(self) -> dict[str, metadata.EntryPoint]:
        if not self.use_entry_points:
            return {}
        with self.lock:
            if self.entry_point_table is None:
                table: dict[str, metadata.EntryPoint] = {}
                for entry in metadata.entry_points(group=GROUP):
                    table.setdefault(entry.name, entry)  # first distribution on sys.path wins
                self.entry_point_table = table
            return self.entry_point_table


def load(name: str, entry: metadata.EntryPoint, watchdog: Watchdog) -> Job:
    try:
        function = entry.load()
    except Exception as error:  # any import-time failure; the worker must keep running
        log.error("job %s (%s) cannot be loaded: %r", name, entry.value, error)
        problem = f"{type(error).__name__}: {error}"
        return BrokenJob(name, f"job {name} ({entry.value}) cannot be loaded: {problem}")
    if not callable(function):
        return BrokenJob(name, f"job {name} ({entry.value}) is not callable")
    return CallableJob(name, function, watchdog)


def is_executable(path: Path) -> bool:
    """A regular file (symlinks followed) that this process may execute."""
    try:
        mode = path.stat().st_mode
    except (OSError, ValueError):
        return False
    return stat.S_ISREG(mode) and os.access(path, os.X_OK)


def list_dir(directory: Path) -> list[str]:
    try:
        return os.listdir(directory)
    except OSError as error:
        log.debug("jobs directory %s cannot be read: %s", directory, error)
        return []
