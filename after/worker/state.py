"""What the worker loop's parts share: the table of tasks in hand, its queues and timer, and its ports.

``WorkerState`` holds the data; the parts (``documents``, ``claiming``, ``leases``, ``starting``,
``horizon``, ``stopping``, ``answers``) hold the behaviour and all read and write this one state.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from after.config import WorkerConfig
from after.contracts import JobContext, Notifier, Registry, Runner, Services, StartJournal, Writer
from after.core.clock import Instant
from after.core.task import Document, Task
from after.core.timers import WallTimer
from after.core.transitions import Owner, Transform
from after.core.writes import Purpose, WriteRequest, never
from after.worker.budget import ClaimBudget
from after.worker.lifecycle import ARMED_COUNT, JobStop, Phase, TimerKind, move
from after.worker.presence import Report, presence_id
from after.worker.sharing import TaskSharing
from after.worker.starts import NoStarts


@dataclass
class Entry:
    """One task in hand: its latest document, its validated form (once armed), and where it is."""

    doc: Document
    due: float
    phase: Phase
    task: Task | None = None  # the validated task; None while deferred (not validated yet)
    run_id: str = ""
    context: JobContext | None = None
    renewed: float = 0.0  # monotonic time of the last claim or renewal
    job_stop: JobStop | None = None  # why its running job was asked to stop


def stop_job(task_id: str, entry: Entry, why: JobStop) -> bool:
    """Ask the running job of ``entry`` to stop; False when there is none (or it was stopped for that)."""
    if entry.phase != Phase.RUNNING or entry.context is None or entry.job_stop == why:
        return False
    if entry.job_stop != JobStop.SHUTDOWN:  # a job stopped for shutdown is released, whatever comes next
        entry.job_stop = why
    entry.context.canceled.set()
    return True


@dataclass
class Counters:
    """What this process finished, for STATUS= and its presence document."""

    done: int = 0
    failed: int = 0

    def record(self, outcome: str) -> None:
        """Count a status written (done, err) or a write purpose (reject: an invalid task)."""
        if outcome == "done":
            self.done += 1
        elif outcome in ("err", Purpose.REJECT):
            self.failed += 1


def status_line(entries: Iterable[Entry], counters: Counters, connected: bool, node: str = "") -> str:
    """One line of live counts for systemd's STATUS=, and the CouchDB node in use."""
    phases = [entry.phase for entry in entries]
    armed = sum(1 for phase in phases if phase in ARMED_COUNT)
    running = sum(1 for phase in phases if phase == Phase.RUNNING)
    couch = ("connected" if connected else "unreachable") + (f" at {node}" if node else "")
    finished = f"{counters.done} done, {counters.failed} failed"
    return f"{armed} armed, {running} running, {finished}; CouchDB {couch}"


@dataclass
class Ports:
    """The loop's collaborators, passed in by the builder (``after.worker.build``)."""

    writer: Writer
    runner: Runner
    registry: Registry
    notifier: Notifier
    services: Services = field(default_factory=Services)  # what Python jobs may use (the store)
    is_dead: Callable[[dict[str, Any]], bool] = lambda by: False  # is a claim's process known dead?
    wall: Callable[[], float] = time.time  # the clock leases are written with, read when writing
    starts: StartJournal = field(default_factory=NoStarts)  # which claims started their job (this host)


class WorkerState:
    """The tasks in hand and everything the loop's parts share about them."""

    def __init__(self, owner: Owner, settings: WorkerConfig, ports: Ports, now: Instant) -> None:
        self.owner, self.name, self.settings, self.ports = owner, owner.worker, settings, ports
        self.entries: dict[str, Entry] = {}
        self.timer: WallTimer[tuple[TimerKind, str]] = WallTimer(now)
        self.ready: list[tuple[float, str]] = []  # READY tasks, by due date
        self.runnable: list[tuple[float, str]] = []  # claimed and due, waiting for a free job slot
        self.budget = ClaimBudget(settings.concurrency)
        self.sharing = TaskSharing(presence_id(owner.worker, owner.host, owner.pid))
        self.counters = Counters()
        self.loaded_until: float | None = None  # tasks due up to here are in memory
        self.stopping = False
        self.connected = False
        self.down_reason = ""  # why CouchDB could not be used, as last logged
        self.node = ""  # the CouchDB URL in use
        self.last_lateness: float | None = None  # milliseconds, of the last job started
        self.refused: dict[str, str] = {}  # task id -> revision CouchDB would not let us answer

    def within_horizon(self, due: float) -> bool:
        return self.loaded_until is not None and due <= self.loaded_until

    def add(self, task_id: str, entry: Entry) -> Entry:
        """Put a task in hand (in one of ``lifecycle.ENTERING``), replacing what was there."""
        self.forget(task_id)
        self.entries[task_id] = entry
        return entry

    def forget(self, task_id: str) -> None:
        self.budget.release(task_id)
        if self.entries.pop(task_id, None) is not None:
            for kind in TimerKind:
                self.timer.cancel((kind, task_id))

    def at(self, kind: TimerKind, task_id: str, date: float) -> None:
        self.timer.at((kind, task_id), date)

    def make_ready(self, task_id: str, entry: Entry) -> None:
        """Its claim time has come: queue it for a claim, oldest due first."""
        move(entry, Phase.READY)
        heapq.heappush(self.ready, (entry.due, task_id))

    def runs_next(self, task_id: str, entry: Entry) -> None:
        """Queue a claimed, due task for a free job slot."""
        heapq.heappush(self.runnable, (entry.due, task_id))

    def submit(self, task_id: str, purpose: Purpose, doc: Document, transform: Transform,
               applied: Callable[[Document], bool] = never, fresh: bool = False) -> None:
        self.ports.writer.submit(WriteRequest(task_id, purpose, doc, transform, applied, fresh))

    def status_line(self) -> str:
        return status_line(self.entries.values(), self.counters, self.connected, self.node)

    def report(self) -> Report:
        """What this process says of itself in its presence document."""
        phases = [(task_id, entry.phase) for task_id, entry in self.entries.items()]
        return Report(node=self.node, connected=self.connected, done=self.counters.done,
                      failed=self.counters.failed,
                      armed=sum(1 for _, phase in phases if phase in ARMED_COUNT - {Phase.CLAIMING}),
                      running=tuple(task_id for task_id, phase in phases if phase == Phase.RUNNING),
                      lateness_ms=self.last_lateness)
