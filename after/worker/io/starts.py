"""The start journal in a file: one line per job started, appended by the process that holds the claim.

A process's journal is ``<directory>/<worker>.<pid>.<start time in ms>.starts``. Just before a job
starts, its thread appends ``["<task id>", "<the claim's at>"]`` with one ``write()`` (``O_APPEND``,
no fsync: a SIGKILL does not lose what is in the page cache). When another process of the worker on
this host takes over a claim whose process is dead, it reads that process's journal: the claim's line
is there, the job started; it is not, it never started (``StartEvidence``).

Where nothing can be known, the answer is UNKNOWN and the takeover counts the claim as a run that may
have started: a claim of another host, a journal that is missing (deleted, never written, a directory
that was not ours), and a process that started before the last boot (a machine crash may have lost the
page cache). The directory (``[worker] runtime_dir``) is ``$RUNTIME_DIRECTORY`` under systemd
(``RuntimeDirectory=after``, a tmpfs emptied at boot), else ``/run/after`` when writable, else a
directory of the user's under the temporary directory.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from after.core.task import NAME_RE
from after.core.transitions import Owner, StartEvidence

log = logging.getLogger("after.worker")
SUFFIX = ".starts"
COMPACT_LINES = 4096  # notes of claims no longer held before the journal is rewritten without them
BOOT_MARGIN = 2.0  # seconds: psutil's boot time moves a little; a process this close to it is "before"
CACHE_SIZE = 16  # dead processes' journals kept parsed (they do not change)
IsDead = Callable[[dict[str, Any]], bool]


def default_directory(environ: Mapping[str, str] = os.environ, run: Path = Path("/run/after")) -> Path:
    """``$RUNTIME_DIRECTORY`` (systemd), else ``/run/after`` when writable, else ``$TMPDIR/after-<uid>``."""
    runtime = environ.get("RUNTIME_DIRECTORY", "").split(":")[0]
    if runtime:
        return Path(runtime)
    if os.access(run, os.W_OK | os.X_OK):
        return run
    return Path(tempfile.gettempdir()) / f"after-{os.getuid()}"


def journal_name(worker: str, pid: int, started: float) -> str:
    return f"{worker}.{pid}.{int(started * 1000)}{SUFFIX}"


def process_of(name: str) -> dict[str, Any] | None:
    """The process a journal's file name stands for, as a claim's ``by`` names it (without the host)."""
    if not name.endswith(SUFFIX):
        return None
    parts = name[:-len(SUFFIX)].rsplit(".", 2)
    if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit():
        return None
    return {"worker": parts[0], "pid": int(parts[1]), "started": int(parts[2]) / 1000}


def own_directory(directory: Path) -> None:
    """Create ``directory`` (0700) if missing; refuse one that another user owns or could write to."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    found = directory.stat()
    if found.st_uid != os.getuid() or found.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise PermissionError(f"{directory} is not this user's alone (owner uid {found.st_uid}, "
                              f"mode {stat.filemode(found.st_mode)})")


class StartsFile:
    """This process's start journal, and the reader of other (dead) processes' journals on this host."""

    def __init__(self, directory: Path, owner: Owner, is_dead: IsDead, boot_time: float, keep: float,
                 wall: Callable[[], float] = time.time) -> None:
        own_directory(directory)
        self.directory, self.owner, self.is_dead, self.boot_time = directory, owner, is_dead, boot_time
        self.keep, self.wall = keep, wall
        self.path = directory / journal_name(owner.worker, owner.pid, owner.started)
        self.fd: int | None = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self.lock = threading.Lock()
        self.lines = self.kept = 0  # lines in our journal; how many the last compaction kept
        self.cache: dict[Path, tuple[tuple[int, int], frozenset[tuple[str, str]]]] = {}
        self.swept = 0.0
        self.sweep()

    def record(self, task_id: str, claim_at: str) -> None:
        line = (json.dumps([task_id, claim_at]) + "\n").encode()
        with self.lock:
            if self.fd is None:
                return
            try:
                if os.write(self.fd, line) == len(line):
                    self.lines += 1
                    return
                error: OSError = OSError("short write")
            except OSError as failed:
                error = failed
            self.broken(error)

    def broken(self, error: OSError) -> None:
        """A start could not be noted: remove the journal, so that takeovers know nothing (UNKNOWN)
        rather than wrongly learn that this start never happened."""
        log.error("cannot write the start journal %s (%s): removing it; a takeover of this process's "
                  "claims will count each as a run that may have started", self.path, error)
        self.close()
        try:
            self.path.unlink(missing_ok=True)
        except OSError as failed:
            log.error("cannot remove the start journal %s either: %s", self.path, failed)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def evidence(self, task_id: str, claim_field: dict[str, Any]) -> StartEvidence:
        by, at = claim_field.get("by"), claim_field.get("at")
        path = self.journal_of(by)
        if path is None or not isinstance(at, str):
            return StartEvidence.UNKNOWN
        starts = self.read(path)
        if starts is None:
            return StartEvidence.UNKNOWN
        return StartEvidence.STARTED if (task_id, at) in starts else StartEvidence.NOT_STARTED

    def journal_of(self, by: object) -> Path | None:
        """The journal of the claim's process, if it ran on this host since the last boot."""
        if not isinstance(by, dict) or by.get("host") != self.owner.host:
            return None
        worker, pid, started = by.get("worker"), by.get("pid"), by.get("started")
        if not isinstance(worker, str) or not NAME_RE.fullmatch(worker) or type(pid) is not int \
                or not isinstance(started, int | float) or isinstance(started, bool):
            return None
        if not started > self.boot_time + BOOT_MARGIN:  # before the last boot: its journal may be short
            return None
        return self.directory / journal_name(worker, pid, float(started))

    def read(self, path: Path) -> frozenset[tuple[str, str]] | None:
        try:
            found = path.stat()
            key = (found.st_mtime_ns, found.st_size)
            with self.lock:
                cached = self.cache.get(path)
            if cached is not None and cached[0] == key:
                return cached[1]
            text = path.read_bytes().decode(errors="replace")
        except OSError:
            return None
        starts = frozenset(parse_lines(text))
        with self.lock:
            if len(self.cache) >= CACHE_SIZE:
                self.cache.pop(next(iter(self.cache)))
            self.cache[path] = (key, starts)
        return starts

    def compact(self, held: Callable[[], Iterable[tuple[str, str]]]) -> None:
        """Rewrite our journal with the claims still held, once there are many notes of others.

        A rename replaces the file, so a kill at any moment leaves either journal, both complete."""
        if self.wall() - self.swept > self.keep:
            self.sweep()
        with self.lock:
            if self.fd is None or self.lines - self.kept < COMPACT_LINES:
                return
            try:
                keep = set(held())
                lines = [line for line in parse_lines(self.path.read_text(errors="replace"))
                         if line in keep]
                temporary = self.path.with_name(self.path.name + ".new")
                temporary.write_text("".join(json.dumps(list(line)) + "\n"
                                             for line in lines))
                os.replace(temporary, self.path)
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
            except OSError as error:
                log.warning("cannot compact the start journal %s: %s", self.path, error)
                self.kept = self.lines  # not again before as many new notes
                return
            os.close(self.fd)
            self.fd, self.lines, self.kept = fd, len(lines), len(lines)

    def sweep(self) -> None:
        """Remove the journals of dead processes once nothing can need them: older than ``keep``
        (their claims were taken over long ago, or will be counted as runs that may have started)."""
        now = self.swept = self.wall()
        try:
            names = os.listdir(self.directory)
        except OSError:
            return
        for name in names:
            process = process_of(name.removesuffix(".new"))
            path = self.directory / name
            if process is None or path == self.path:
                continue
            try:
                old = path.stat().st_mtime < now - self.keep
                if old and self.is_dead({**process, "host": self.owner.host}):
                    path.unlink()
            except OSError:
                continue


def parse_lines(text: str) -> Iterable[tuple[str, str]]:
    """The notes of a journal; a line cut short by a kill (or anything else unreadable) is skipped."""
    for line in text.splitlines():
        try:
            found = json.loads(line)
        except ValueError:
            continue
        if isinstance(found, list) and len(found) == 2 and all(isinstance(item, str) for item in found):
            yield found[0], found[1]
