"""The worker loop's vocabulary: task phases, what it keeps per task, and the ports it drives."""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from after.events import WriteRequest
from after.jobs import Job, JobContext, Registry
from after.model import Document
from after.notify import Notifier


class Phase(enum.Enum):
    DEFERRED = "deferred"  # another process of this worker name answers it; looked at again later
    ARMED = "armed"  # waiting for its claim time
    WATCHING = "watching"  # claimed by another process; we watch its lease
    CLAIMING = "claiming"
    CLAIMED = "claimed"  # ours, waiting for its date
    RUNNING = "running"
    FINISHING = "finishing"  # result or release being written


IN_FLIGHT = {Phase.CLAIMING, Phase.CLAIMED, Phase.RUNNING, Phase.FINISHING}


@dataclass
class Entry:
    doc: Document
    due: float
    phase: Phase
    run_id: str = ""
    context: JobContext | None = None
    renewed: float = 0.0  # monotonic time of the last claim or renewal
    shutdown: bool = False
    renewing_to_start: bool = False  # its lease is renewed before the job starts
    queued: bool = False  # waiting in the loop's ready queue for a claim
    fenced: bool = False  # its job was stopped because its lease could not be renewed


class Writer(Protocol):
    def submit(self, request: WriteRequest) -> None: ...

    def load(self, until: float) -> None: ...

    def resolve(self, task_id: str, doc: Document) -> None: ...

    def idle(self) -> bool: ...

    def write_seconds(self) -> float: ...


class Runner(Protocol):
    def start(self, job: Job, context: JobContext, run_id: str) -> None: ...

    def busy(self) -> int: ...

    def free(self) -> int: ...


@dataclass
class Counters:
    """What this process finished, for STATUS=."""

    done: int = 0
    failed: int = 0

    def record(self, outcome: str) -> None:
        """Count a status written (done, err) or a write purpose (reject: an invalid task)."""
        if outcome == "done":
            self.done += 1
        elif outcome in ("err", "reject"):
            self.failed += 1


def status_line(entries: Iterable[Entry], counters: Counters, connected: bool, node: str = "") -> str:
    """One line of live counts for systemd's STATUS=, and the CouchDB node in use."""
    phases = [entry.phase for entry in entries]
    armed = sum(1 for phase in phases if phase in (Phase.ARMED, Phase.CLAIMED, Phase.CLAIMING))
    running = sum(1 for phase in phases if phase == Phase.RUNNING)
    couch = ("connected" if connected else "unreachable") + (f" at {node}" if node else "")
    finished = f"{counters.done} done, {counters.failed} failed"
    return f"{armed} armed, {running} running, {finished}; CouchDB {couch}"


@dataclass
class Ports:
    writer: Writer
    runner: Runner
    registry: Registry
    notifier: Notifier
    services: dict[str, Any] = field(default_factory=dict)
    is_dead: Callable[[dict[str, Any]], bool] = lambda by: False  # is a claim's process known dead?
    wall: Callable[[], float] = time.time  # the clock leases are written with, read when writing
