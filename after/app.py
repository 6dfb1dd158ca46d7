"""The composition root: the one place where real parts (CouchDB, clock, jobs, systemd) are wired."""

from __future__ import annotations

import logging
import os
import queue
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from after.config import Config
from after.contracts import Clock, Notifier, Registry, StartJournal, Store
from after.core.clock import SystemClock
from after.core.task import NAME_RE
from after.core.transitions import Owner
from after.jobs.registry import JobRegistry
from after.systemd.notify import system_notifier
from after.worker.build import assemble
from after.worker.events import Event, Wake
from after.worker.io.starts import StartsFile, default_directory
from after.worker.io.writer import RoutedWriter
from after.worker.starts import NoStarts

log = logging.getLogger("after.worker")
DRAIN_SECONDS = 10.0
KEEP_JOURNALS = 3600.0  # seconds at least that a dead process's start journal is kept


def current_owner(worker: str) -> Owner:
    return Owner(worker, socket.gethostname(), os.getpid(), psutil.Process().create_time())


def dead_on_this_host(host: str) -> Callable[[dict[str, Any]], bool]:
    """A claim by a process of this host that no longer exists is dead: no need to wait for its lease."""

    def is_dead(by: dict[str, Any]) -> bool:
        if by.get("host") != host or not isinstance(by.get("pid"), int):
            return False
        try:
            started = float(psutil.Process(by["pid"]).create_time())
            return abs(started - float(by.get("started", 0))) > 0.01
        except psutil.NoSuchProcess:
            return True
        except (psutil.Error, TypeError, ValueError):
            return False

    return is_dead


def start_journal(config: Config, owner: Owner, is_dead: Callable[[dict[str, Any]], bool]) -> StartJournal:
    """This process's start journal (``after.worker.io.starts``), or none when its directory is unusable."""
    directory = Path(config.worker.runtime_dir) if config.worker.runtime_dir else default_directory()
    keep = max(KEEP_JOURNALS, 2 * config.worker.lease)
    try:
        return StartsFile(directory, owner, is_dead, psutil.boot_time(), keep)
    except OSError as error:
        log.warning("no start journal in %s (%s): a claim of a process that dies on this host will count as "
                    "a run that may have started", directory, error)
        return NoStarts()


def open_store(config: Config) -> Store:
    from after.store.couch.client import CouchStore

    return CouchStore.from_config(config.couchdb)


def run_worker(name: str, config: Config, store: Store | None = None, registry: Registry | None = None,
               notifier: Notifier | None = None, clock: Clock | None = None,
               stop: threading.Event | None = None) -> int:
    """Run the worker ``name`` in the foreground until SIGTERM/SIGINT (or ``stop``); return the exit code."""
    if not NAME_RE.fullmatch(name):
        raise ValueError(f"invalid worker name {name!r}: use 1-64 characters from A-Z a-z 0-9 _ . -")
    # Hand the GIL over every 0.5 ms instead of 5 ms: the loop waking at a deadline no longer waits
    # behind a thread encoding a large bulk write (the lateness benchmark's p99 was 6.8 ms).
    sys.setswitchinterval(0.0005)
    store = store or open_store(config)
    clock = clock or SystemClock()
    stop = stop or threading.Event()
    owner = current_owner(name)
    jobs = registry or JobRegistry(config.job_paths)
    is_dead = dead_on_this_host(owner.host)
    starts = start_journal(config, owner, is_dead)
    parts = assemble(owner, config.worker, store, jobs, notifier or system_notifier(), clock,
                     is_dead=is_dead, starts=starts)
    hurry = threading.Event()
    restore = install_signal_handlers(stop, hurry, parts.inbox)
    log.info("worker %s starting (pid %d, CouchDB %s, database %s, %s, %s)", name, owner.pid,
             " ".join(config.couchdb.urls), config.couchdb.database,
             f"user {config.couchdb.user!r}" if config.couchdb.user is not None else "no user",
             f"config {config.source}" if config.source is not None else "no config file")
    parts.presence.beat()  # the processes alive before the first tasks are read, so they are shared at once
    for thread in parts.threads():
        thread.start()
    try:
        parts.worker.run(clock, stop, hurry)
    finally:
        restore()
        parts.follower_stop.set()
        drain(parts.writer, parts.give_up)
        parts.presence.stopped()
        parts.runner.shutdown()
        if isinstance(jobs, JobRegistry):
            jobs.close()
        if isinstance(starts, StartsFile):
            starts.close()  # kept: claims left behind (writes not drained) may be taken over
        store.close()
    log.info("worker %s stopped", name)
    return 0


def drain(writer: RoutedWriter, give_up: threading.Event) -> None:
    deadline = time.monotonic() + DRAIN_SECONDS
    while not writer.idle() and time.monotonic() < deadline:
        time.sleep(0.1)
    give_up.set()


def install_signal_handlers(stop: threading.Event, hurry: threading.Event,
                            inbox: queue.Queue[Event]) -> Callable[[], None]:
    """SIGTERM and SIGINT start a clean stop, a second one (``hurry``) stops running jobs at once;
    returns a function restoring the previous handlers."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(signum: int, frame: object) -> None:
        log.info("received %s", signal.Signals(signum).name)
        (hurry if stop.is_set() else stop).set()
        inbox.put(Wake())

    previous = {number: signal.signal(number, handler) for number in (signal.SIGTERM, signal.SIGINT)}

    def restore() -> None:
        for number, old in previous.items():
            signal.signal(number, old)

    return restore
