"""The worker's loop: a state machine over the tasks of one worker name, fed events, taking ``now``.

It does no I/O itself. Documents arrive as events (changes feed, index reads, write answers, job
completions); writes leave as ``WriteRequest`` transforms to the writer, jobs to the runner. Deadlines
live in a ``WallTimer`` on the monotonic clock. A task is claimed ``claim_ahead`` seconds before its
date (a revision-guarded write with a lease), then started at its date. The parts:

- ``documents``: what a revision means (answer, arm, watch, let go)
- ``claiming``, ``starting``, ``leases``: claims, job starts and results, lease renewal and fencing
- ``horizon``: which tasks are in memory; ``stopping``: the stop sequence; ``answers``: write answers
- ``state`` and ``lifecycle``: the tasks in hand and the one table of their phases
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading

from after.config import WorkerConfig
from after.contracts import Clock
from after.core.clock import Instant
from after.core.policies import ONE_SHOT, Policies
from after.core.transitions import Owner
from after.worker.answers import Answers
from after.worker.claiming import Claiming
from after.worker.documents import Documents
from after.worker.events import Changed, Connection, Event, Finished, Loaded, Peers, Wake, Written
from after.worker.horizon import Horizon
from after.worker.leases import Leases
from after.worker.lifecycle import Phase, TimerKind
from after.worker.presence import Report
from after.worker.starting import Starting
from after.worker.state import Ports, WorkerState
from after.worker.stopping import Stopping

log = logging.getLogger("after.worker")
TICK = 1.0
EVENTS_PER_STEP = 200  # then due timers are checked again


class Worker:
    def __init__(self, owner: Owner, settings: WorkerConfig, ports: Ports, now: Instant,
                 inbox: queue.Queue[Event] | None = None, policies: Policies = ONE_SHOT) -> None:
        self.state = state = WorkerState(owner, settings, ports, now)
        self.inbox: queue.Queue[Event] = inbox if inbox is not None else queue.Queue()
        self.documents = Documents(state)
        self.leases = Leases(state, self.documents)
        self.claiming = Claiming(state, self.documents, self.leases)
        self.starting = Starting(state, self.leases, policies)
        self.horizon = Horizon(state, self.documents)
        self.stopping = Stopping(state, self.claiming)
        self.answers = Answers(state, self.documents, self.claiming, self.leases)
        self.next_tick = now.mono
        self.report = Report()  # what the presence document says; rebuilt every tick

    def run(self, clock: Clock, stop: threading.Event, hurry: threading.Event | None = None) -> None:
        """Loop until ``stop`` is set and the stop sequence has finished (``hurry``: stop jobs now)."""
        while True:
            event: Event | None = None
            with contextlib.suppress(queue.Empty):
                event = self.inbox.get(timeout=self.wait_time(clock.now()))
            now = clock.now()
            if stop.is_set() and not self.state.stopping:
                self.stopping.begin(now)
            if hurry is not None and hurry.is_set():
                self.stopping.hurry(now)
            self.step(now, event)
            if self.state.stopping and self.stopping.stopped(now):
                return

    def wait_time(self, now: Instant) -> float:
        deadline = self.state.timer.next_deadline()
        until = min(self.next_tick, deadline if deadline is not None else self.next_tick)
        return max(0.0, until - now.mono)

    def step(self, now: Instant, event: Event | None = None) -> None:
        """Start what is due, then handle ``event`` and queued events (a bounded number), then the rest.

        Due jobs come first, so a task never waits for its start behind a backlog of feed echoes.
        """
        self.fire_due(now)
        if event is not None:
            self.handle(event, now)
        for _ in range(EVENTS_PER_STEP):
            try:
                self.handle(self.inbox.get_nowait(), now)
            except queue.Empty:
                break
        self.fire_due(now)
        self.claiming.issue(now)
        if now.mono >= self.next_tick:
            self.next_tick = now.mono + TICK
            self.housekeeping(now)
        self.state.ports.notifier.watchdog()

    def handle(self, event: Event, now: Instant) -> None:
        """Handle one event; a failure is logged and the loop goes on (one bad document never stops it)."""
        try:
            match event:
                case Changed(doc):
                    self.documents.observe_safely(doc, now)
                case Loaded():
                    self.horizon.loaded(event, now)
                case Written():
                    self.answers.written(event, now)
                case Finished():
                    self.starting.finished(event, now)
                case Peers(members):
                    self.peers(members, now)
                case Connection(up, reason, node):
                    self.connection(up, reason, node)
                case Wake():
                    pass
        except Exception:
            log.exception("internal error while handling %s; the worker goes on", type(event).__name__)

    def fire_due(self, now: Instant) -> None:
        for kind, task_id in self.state.timer.pop_due(now):
            self.fire(kind, task_id, now)
        self.starting.dispatch(now)

    def fire(self, kind: TimerKind, task_id: str, now: Instant) -> None:
        state = self.state
        entry = state.entries.get(task_id)
        if entry is None:
            return
        if kind in (TimerKind.CLAIM, TimerKind.LEASE) and entry.phase in (Phase.ARMED, Phase.WATCHING):
            state.make_ready(task_id, entry)
        elif kind == TimerKind.HELP and entry.phase == Phase.DEFERRED:  # nobody answered it: we do
            state.forget(task_id)
            self.documents.observe(entry.doc, now, helping=True)
        elif kind == TimerKind.START and entry.phase == Phase.CLAIMED:
            state.runs_next(task_id, entry)

    def housekeeping(self, now: Instant) -> None:
        self.horizon.keep(now)
        self.leases.keep(now)
        self.state.ports.starts.compact(self.leases.held)
        self.state.ports.notifier.status(self.state.status_line())
        self.report = self.state.report()

    def peers(self, members: tuple[str, ...], now: Instant) -> None:
        sharing = self.state.sharing
        if sharing.update(members):
            log.info("processes of worker %s: %d (%s)", self.state.name, len(sharing.members),
                     ", ".join(sharing.members))
            self.documents.reshare(now)

    def connection(self, up: bool, reason: str, node: str) -> None:
        state = self.state
        if up and (not state.connected or (node and node != state.node)):
            log.info("CouchDB connected: %s", node or "(in memory)")
        elif not up and (state.connected or reason != state.down_reason):  # lost, or a new reason
            log.warning("CouchDB unreachable: %s", reason)
        state.connected = up
        state.down_reason = "" if up else reason
        state.node = node or state.node
