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
from typing import Any

import psutil

from after.clock import Clock, SystemClock
from after.config import Config
from after.events import Event, Wake
from after.jobs import Registry
from after.jobs.registry import JobRegistry
from after.model import NAME_RE
from after.notify import Notifier, system_notifier
from after.plumbing import Follower, JobRunner, RoutedWriter, StoreWriter, WriteLatency
from after.presence_keeper import PresenceKeeper
from after.store import Store
from after.transitions import Owner
from after.worker import Worker
from after.worker_state import Ports

log = logging.getLogger("after.worker")
DRAIN_SECONDS = 10.0


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


def open_store(config: Config) -> Store:
    from after.couch import CouchStore

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
    inbox: queue.Queue[Event] = queue.Queue()
    owner = current_owner(name)
    give_up, follower_stop = threading.Event(), threading.Event()
    latency = WriteLatency()
    claims_writer = StoreWriter(store, name, inbox, give_up, latency=latency)
    urgent_writer = StoreWriter(store, name, inbox, give_up, latency=latency)
    answers_writer = StoreWriter(store, name, inbox, give_up, latency=latency)
    writer = RoutedWriter(claims_writer, urgent_writer, answers_writer)
    runner = JobRunner(config.worker.concurrency, inbox, clock)
    jobs = registry or JobRegistry(config.job_paths)
    ports = Ports(writer, runner, jobs, notifier or system_notifier(),
                  services={"store": store}, is_dead=dead_on_this_host(owner.host),
                  wall=lambda: clock.now().wall)
    worker = Worker(owner, config.worker, ports, clock.now(), inbox)
    follower = Follower(store, name, inbox, clock, config.worker.horizon, follower_stop)
    presence = PresenceKeeper(store, owner, inbox, clock, lambda: worker.report, follower_stop,
                              is_dead=ports.is_dead)
    restore = install_signal_handlers(stop, inbox)
    log.info("worker %s starting (pid %d, CouchDB %s, database %s)", name, owner.pid,
             " ".join(config.couchdb.urls), config.couchdb.database)
    presence.beat()  # the processes alive before the first tasks are read, so they are shared at once
    threads = [threading.Thread(target=claims_writer.run, name="after-writer", daemon=True),
               threading.Thread(target=urgent_writer.run, name="after-lease-writer", daemon=True),
               threading.Thread(target=answers_writer.run, name="after-answer-writer", daemon=True),
               threading.Thread(target=follower.run, name="after-follower", daemon=True),
               threading.Thread(target=presence.run, name="after-presence", daemon=True)]
    for thread in threads:
        thread.start()
    try:
        worker.run(clock, stop)
    finally:
        restore()
        follower_stop.set()
        drain(writer, give_up)
        presence.stopped()
        runner.shutdown()
        if isinstance(jobs, JobRegistry):
            jobs.close()
        store.close()
    log.info("worker %s stopped", name)
    return 0


def drain(writer: RoutedWriter, give_up: threading.Event) -> None:
    deadline = time.monotonic() + DRAIN_SECONDS
    while not writer.idle() and time.monotonic() < deadline:
        time.sleep(0.1)
    give_up.set()


def install_signal_handlers(stop: threading.Event, inbox: queue.Queue[Event]) -> Callable[[], None]:
    """SIGTERM and SIGINT start a clean stop; returns a function restoring the previous handlers."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(signum: int, frame: object) -> None:
        log.info("received %s", signal.Signals(signum).name)
        stop.set()
        inbox.put(Wake())

    previous = {number: signal.signal(number, handler) for number in (signal.SIGTERM, signal.SIGINT)}

    def restore() -> None:
        for number, old in previous.items():
            signal.signal(number, old)

    return restore
