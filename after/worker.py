"""The worker's loop: a state machine over the tasks of one worker name, fed events, taking ``now``.

It does no I/O itself. Documents arrive as events (changes feed, view reads, write answers, job
completions); writes leave as ``WriteRequest`` transforms to the writer thread, jobs to the runner.
Deadlines live in a ``WallTimer`` on the monotonic clock. A task is claimed ``claim_ahead``
seconds before its date (a revision-guarded write with a lease), then started at its date.
"""

from __future__ import annotations

import contextlib
import heapq
import logging
import queue
import threading
import uuid
from collections.abc import Callable

from after.clock import Clock, Instant
from after.config import WorkerConfig
from after.events import (
    Changed,
    Connection,
    Event,
    Finished,
    Loaded,
    Peers,
    Wake,
    WriteRequest,
    Written,
    never,
)
from after.jobs import JobContext, unknown_job_reason
from after.model import (
    ARM_STATUSES,
    READ_BACK_SLACK,
    TERMINAL_STATUSES,
    Document,
    InvalidTask,
    Status,
    is_task,
    parse_duration,
    revision_generation,
    status_of,
    validate,
)
from after.presence import Report, presence_id
from after.scheduler import WallTimer
from after.task_sharing import HELP_DELAY, TaskSharing
from after.transitions import (
    TAKEOVER_MARGIN,
    Owner,
    Transform,
    acknowledge,
    attempts_of,
    cancel,
    claim,
    claim_expired,
    lease_end,
    reject,
    release,
    renew,
)
from after.worker_claims import ClaimBudget
from after.worker_results import finish_request, interrupted_record, unknown_job_outcome
from after.worker_state import IN_FLIGHT, Counters, Entry, Phase, Ports, status_line

log = logging.getLogger("after.worker")
TICK = 1.0
EVENTS_PER_STEP = 200  # then due timers are checked again
LOAD_PATIENCE = 60.0  # seconds to wait for a horizon load before asking again
# A running job is stopped this long before its last confirmed lease runs out (renewals failing), so it
# has stopped before another process, whose clock may run up to a few seconds ahead, takes it over.
FENCE_MARGIN = 5.0
CONFLICT_PATIENCE = 10.0  # seconds a conflicted claim is left to be settled before it is looked at again


class Worker:
    def __init__(self, owner: Owner, settings: WorkerConfig, ports: Ports, now: Instant,
                 inbox: queue.Queue[Event] | None = None) -> None:
        self.name = owner.worker
        self.owner = owner
        self.settings = settings
        self.ports = ports
        self.inbox: queue.Queue[Event] = inbox if inbox is not None else queue.Queue()
        self.entries: dict[str, Entry] = {}
        self.timer: WallTimer[tuple[str, str]] = WallTimer(now)
        self.ready: list[tuple[float, str]] = []  # claim times passed, waiting for a claim slot
        self.runnable: list[tuple[float, str]] = []  # claimed and due, waiting for a free job slot
        self.loaded_until: float | None = None  # tasks due up to here are in memory
        self.loading_since: float | None = None  # monotonic time a horizon load was asked for
        self.connected = False
        self.reported_ready = False
        self.stopping = False
        self.stop_deadline = 0.0
        self.next_tick = now.mono
        self.counters = Counters()
        self.budget = ClaimBudget(settings.concurrency)
        self.sharing = TaskSharing(presence_id(owner.worker, owner.host, owner.pid))
        self.report = Report()  # what the presence document says; rebuilt every tick
        self.node = ""  # the CouchDB URL in use
        self.last_lateness: float | None = None
        self.settling: set[tuple[str, str]] = set()  # (task id, revision) whose conflicts were sent to settle
        self.refused: dict[str, str] = {}  # task id -> revision CouchDB would not let us answer

    # ---- the loop -------------------------------------------------------------------------------

    def wait_time(self, now: Instant) -> float:
        deadline = self.timer.next_deadline()
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
        self.issue_claims(now)
        if now.mono >= self.next_tick:
            self.next_tick = now.mono + TICK
            self.housekeeping(now)
        self.ports.notifier.watchdog()

    def fire_due(self, now: Instant) -> None:
        for kind, task_id in self.timer.pop_due(now):
            self.fire(kind, task_id, now)
        self.dispatch(now)

    def run(self, clock: Clock, stop: threading.Event) -> None:
        """Loop until ``stop`` is set and the stop sequence has finished."""
        while True:
            event: Event | None = None
            with contextlib.suppress(queue.Empty):
                event = self.inbox.get(timeout=self.wait_time(clock.now()))
            now = clock.now()
            if stop.is_set() and not self.stopping:
                self.begin_stop(now)
            self.step(now, event)
            if self.stopping and self.stopped(now):
                return

    def handle(self, event: Event, now: Instant) -> None:
        """Handle one event; a failure is logged and the loop goes on (one bad document never stops it)."""
        try:
            self.dispatch_event(event, now)
        except Exception:
            log.exception("internal error while handling %s; the worker goes on", type(event).__name__)

    def dispatch_event(self, event: Event, now: Instant) -> None:
        match event:
            case Changed(doc):
                self.observe_safely(doc, now)
            case Loaded():
                self.loaded(event, now)
            case Written():
                self.written(event, now)
            case Finished():
                self.finished(event, now)
            case Peers(members):
                if self.sharing.update(members):
                    log.info("processes of worker %s: %d (%s)", self.name, len(self.sharing.members),
                             ", ".join(self.sharing.members))
            case Connection(up, reason, node):
                if up and (not self.connected or (node and node != self.node)):
                    log.info("CouchDB connected: %s", node or "(in memory)")
                elif self.connected and not up:
                    log.warning("CouchDB unreachable: %s", reason)
                self.connected = up
                self.node = node or self.node
            case Wake():
                pass

    # ---- documents ------------------------------------------------------------------------------

    def observe_safely(self, doc: Document, now: Instant) -> None:
        """``observe``, isolated: if handling one document raises, only that task is skipped.

        What a document can hold is answered by validation (``err`` with a reason); an exception here
        is a bug or the machine (an unreadable jobs directory), so the task is left as it is, logged,
        and looked at again when it changes or the horizon is loaded next.
        """
        try:
            self.observe(doc, now)
        except Exception:
            task_id = str(doc.get("_id"))
            log.exception("task %s: internal error while handling it; left as it is", task_id,
                          extra={"task_id": task_id})
            self.forget(task_id)

    def observe(self, doc: Document, now: Instant, helping: bool = False) -> None:
        """React to the current revision of a document, whatever its source.

        A document that asks for an answer (a client status, or an invalid one) is answered by the
        process this task prefers (``after.task_sharing``); the others look again ``HELP_DELAY``
        later and answer only if nobody did (``helping``).
        """
        task_id = str(doc.get("_id"))
        if task_id in self.refused:
            if self.refused[task_id] == doc.get("_rev"):
                return  # CouchDB would not take our answer to this revision: leave it as it is
            del self.refused[task_id]
        entry = self.entries.get(task_id)
        if entry and revision_generation(doc.get("_rev")) < revision_generation(entry.doc.get("_rev")):
            return  # an old revision replayed by the feed or a view read
        if doc.get("_conflicts"):  # any process settles: the same leaves give the very same write
            self.settle_conflicts(task_id, doc)
        if doc.get("_deleted") or not is_task(doc) or doc.get("worker") != self.name:
            if entry is not None:
                self.abandon(task_id, entry, "deleted or moved to another worker")
            return
        if entry is not None and entry.phase in IN_FLIGHT:
            self.observe_in_flight(task_id, entry, doc, now)
            return
        if status_of(doc) in TERMINAL_STATUSES:  # e.g. the echo of a result: nothing to check or do
            self.forget(task_id)
            return
        if not helping and status_of(doc) not in (Status.SCHEDULED, Status.RUNNING) and \
                not self.sharing.prefers_me(task_id):
            self.defer(task_id, doc, now)
            return
        try:
            task = validate(doc, slack=READ_BACK_SLACK)
        except InvalidTask as error:
            reason = error.reason
            self.forget(task_id)
            log.warning("task %s is invalid: %s", task_id, reason,
                        extra={"task_id": task_id, "status": "err"})
            self.submit(task_id, "reject", doc, lambda d: reject(d, reason, now.wall))
            return
        self.observe_valid(task_id, doc, task.status, task.due, task.job_name, now)

    def settle_conflicts(self, task_id: str, doc: Document) -> None:
        """Have the writer settle a document's conflicting leaves (``after.conflicts``), once a revision."""
        key = (task_id, str(doc.get("_rev")))
        if key not in self.settling:
            if len(self.settling) > 10_000:
                self.settling.clear()
            self.settling.add(key)
            self.ports.writer.resolve(task_id, doc)

    def defer(self, task_id: str, doc: Document, now: Instant) -> None:
        self.forget(task_id)
        self.entries[task_id] = Entry(doc, now.wall, Phase.DEFERRED)
        self.timer.at(("help", task_id), now.wall + HELP_DELAY)

    def observe_valid(self, task_id: str, doc: Document, status: Status, due: float, job: str,
                      now: Instant) -> None:
        if status == Status.CANCEL:
            self.forget(task_id)
            self.submit(task_id, "cancel", doc, lambda d: cancel(d, now.wall))
        elif status in ARM_STATUSES:
            self.forget(task_id)
            if self.ports.registry.resolve(job) is None:
                reason = self.unknown_job(job)
                log.warning("task %s: %s", task_id, reason, extra={"task_id": task_id, "status": "err"})
                self.submit(task_id, "reject", doc, lambda d: reject(d, reason, now.wall))
            elif due - self.settings.claim_ahead <= now.wall and not self.stopping:
                self.arm(task_id, doc, due, now, first=True)  # due already: claimed straight away
            else:
                self.submit(task_id, "acknowledge", doc, lambda d: acknowledge(d, self.owner),
                            applied=lambda d: d.get("status") == Status.SCHEDULED.value)
        elif status == Status.SCHEDULED:
            self.arm(task_id, doc, due, now)
        elif status == Status.RUNNING:
            self.watch(task_id, doc, due, now)

    def unknown_job(self, name: str) -> str:
        return unknown_job_reason(self.ports.registry, name)

    def observe_in_flight(self, task_id: str, entry: Entry, doc: Document, now: Instant) -> None:
        status = status_of(doc)
        if status == Status.RUNNING.value and self.owner.owns(doc):
            entry.doc = doc  # the echo of our own claim or renewal
        elif status == Status.CANCEL.value or status in ARM_STATUSES:
            entry.doc = doc
            self.interrupt(task_id, entry, doc, now)
        elif entry.phase == Phase.CLAIMED:  # taken over (or finished) by another process
            self.stand_back(task_id, doc, now)
        elif entry.phase == Phase.RUNNING:
            log.warning("task %s changed to %s by someone else while its job runs", task_id, status,
                        extra={"task_id": task_id, "status": status})

    def interrupt(self, task_id: str, entry: Entry, doc: Document, now: Instant) -> None:
        """The client canceled or rescheduled a task we hold."""
        canceling = doc.get("status") == Status.CANCEL.value
        if entry.phase == Phase.RUNNING and canceling and entry.context is not None:
            log.info("canceling the running job of task %s", task_id, extra={"task_id": task_id})
            entry.context.canceled.set()
        elif entry.phase == Phase.CLAIMED:
            self.stand_back(task_id, doc, now)
        # RUNNING and rescheduled: the job finishes; finish() keeps the client's status, then re-arms.
        # CLAIMING/FINISHING: the pending write conflicts, re-reads and settles it.

    def arm(self, task_id: str, doc: Document, due: float, now: Instant, first: bool = False) -> None:
        """Wait for the claim time: ``claim_ahead`` before the date, or later if another process is
        preferred for it (``first``: this process answered the task, so it claims it too)."""
        if self.loaded_until is None or due > self.loaded_until:
            self.forget(task_id)  # beyond the horizon: the view brings it back when it comes near
            return
        entry = self.entries.get(task_id)
        if entry is not None and entry.phase == Phase.ARMED and entry.due == due:
            entry.doc = doc
            return
        self.forget(task_id)
        self.entries[task_id] = Entry(doc, due, Phase.ARMED)
        claim_at = due - self.settings.claim_ahead if first else \
            self.sharing.claim_at(task_id, due, now.wall, self.settings.claim_ahead)
        self.timer.at(("claim", task_id), claim_at)

    def watch(self, task_id: str, doc: Document, due: float, now: Instant) -> None:
        """Another process holds the task: take it over when its lease runs out (the preferred process
        at once, the others ``HELP_DELAY`` later), or when its process is known dead."""
        self.forget(task_id)
        if self.loaded_until is None or due > self.loaded_until:
            return  # beyond the horizon: the view brings it back when it comes near
        self.entries[task_id] = Entry(doc, due, Phase.WATCHING)
        later = 0.0 if self.sharing.prefers_me(task_id) else HELP_DELAY
        claim_time = due - self.settings.claim_ahead + later  # not claimed before its date comes near
        if doc.get("_conflicts"):  # its branches disagree: settled first (the feed brings the outcome)
            self.timer.at(("lease", task_id), max(lease_end(doc) or 0.0, now.wall) + CONFLICT_PATIENCE)
        elif claim_expired(doc, now.wall, self.ports.is_dead):
            self.timer.at(("lease", task_id), max(now.wall + later, claim_time))
        else:
            lease_out = (lease_end(doc) or now.wall) + TAKEOVER_MARGIN + 0.05 + later
            self.timer.at(("lease", task_id), max(lease_out, claim_time))

    def forget(self, task_id: str) -> None:
        self.budget.release(task_id)
        if self.entries.pop(task_id, None) is not None:
            for kind in ("claim", "start", "lease", "help"):
                self.timer.cancel((kind, task_id))

    def stand_back(self, task_id: str, doc: Document | None, now: Instant) -> None:
        """Our claim is gone or unwanted: drop the task here and react to what it is now."""
        self.forget(task_id)
        if doc is not None:
            self.observe(doc, now)

    def abandon(self, task_id: str, entry: Entry, why: str) -> None:
        if entry.phase == Phase.RUNNING and entry.context is not None:
            log.info("task %s %s: stopping its job", task_id, why, extra={"task_id": task_id})
            entry.context.canceled.set()
        if entry.phase not in IN_FLIGHT:
            self.forget(task_id)

    # ---- timers, claims, starts -----------------------------------------------------------------

    def fire(self, kind: str, task_id: str, now: Instant) -> None:
        entry = self.entries.get(task_id)
        if entry is None:
            return
        if kind in ("claim", "lease") and entry.phase in (Phase.ARMED, Phase.WATCHING):
            self.make_ready(task_id, entry.due)
        elif kind == "help" and entry.phase == Phase.DEFERRED:  # nobody answered it: this process does
            self.forget(task_id)
            self.observe(entry.doc, now, helping=True)
        elif kind == "start" and entry.phase == Phase.CLAIMED:
            heapq.heappush(self.runnable, (entry.due, task_id))

    def make_ready(self, task_id: str, due: float) -> None:
        entry = self.entries.get(task_id)
        if entry is not None and not entry.queued:
            entry.queued = True
            heapq.heappush(self.ready, (due, task_id))

    def issue_claims(self, now: Instant) -> None:
        """Claim ready tasks, oldest due first, as far as the claim budget allows (``worker_claims``)."""
        if not self.ready or self.stopping:
            return
        room = self.budget.room(self.ports.runner.busy(), self.ports.writer.write_seconds())
        while self.ready and (room > 0 or self.ready[0][0] > now.wall):
            due, task_id = heapq.heappop(self.ready)
            entry = self.entries.get(task_id)
            if entry is None or entry.phase not in (Phase.ARMED, Phase.WATCHING) or entry.due != due:
                continue
            takeover = entry.phase == Phase.WATCHING
            entry.phase, entry.queued = Phase.CLAIMING, False
            if due <= now.wall:  # due: it counts; one claimed ahead of its date starts at that date
                self.budget.hold(task_id)
                room -= 1
            self.submit(task_id, "claim", entry.doc, self.claim_transform(due), applied=self.owned_running,
                        fresh=takeover)

    def lease(self) -> float:
        """The lease to write: the configured length from when the write lands (it takes a while)."""
        return self.settings.lease + min(self.settings.lease, 2.0 * self.ports.writer.write_seconds())

    def claim_transform(self, due: float) -> Transform:
        return lambda doc: claim(doc, self.owner, self.ports.wall(), self.lease(), due, self.ports.is_dead)

    def renew_transform(self) -> Transform:
        return lambda doc: renew(doc, self.owner, self.ports.wall(), self.lease())

    def dispatch(self, now: Instant) -> None:
        """Start due claimed tasks while job slots are free, earliest due first.

        A job starts only under a lease with at least half its length left, so a process whose
        renewals lag (an overloaded server) renews first instead of racing another's takeover.
        """
        while self.runnable and self.ports.runner.free() > 0:
            _, task_id = heapq.heappop(self.runnable)
            entry = self.entries.get(task_id)
            if entry is None or entry.phase != Phase.CLAIMED or entry.renewing_to_start:
                continue
            if (lease_end(entry.doc) or 0.0) - now.wall < self.settings.lease / 2:
                entry.renewing_to_start, entry.renewed = True, now.mono
                self.submit(task_id, "renew", entry.doc, self.renew_transform())
                continue
            self.start(task_id, entry, now)

    def owned_running(self, doc: Document) -> bool:
        return doc.get("status") == Status.RUNNING.value and self.owner.owns(doc)

    def start(self, task_id: str, entry: Entry, now: Instant) -> None:
        job_field = entry.doc.get("job")
        job_name = str(job_field.get("name")) if isinstance(job_field, dict) else ""
        job = self.ports.registry.resolve(job_name)
        self.budget.release(task_id)
        entry.phase = Phase.RUNNING
        entry.run_id = uuid.uuid4().hex
        entry.context = self.context(task_id, entry, job_name)
        if job is None:
            self.finished(Finished(task_id, entry.run_id, unknown_job_outcome(self.unknown_job(job_name)),
                                   now.wall, now.wall), now)
            return
        log.info("task %s: starting job %s", task_id, job_name,
                 extra={"task_id": task_id, "job": job_name, "status": "running"})
        self.ports.runner.start(job, entry.context, entry.run_id)

    def context(self, task_id: str, entry: Entry, job_name: str) -> JobContext:
        try:  # the document was validated when it was armed; only its timeout is needed here
            timeout = parse_duration(entry.doc["timeout"], "timeout") if entry.doc.get("timeout") \
                else self.settings.default_timeout
        except InvalidTask:
            timeout = self.settings.default_timeout
        job_field = entry.doc.get("job")
        arguments = job_field.get("arguments", []) if isinstance(job_field, dict) else []
        return JobContext(
            task_id=task_id, worker=self.name, job_name=job_name,
            arguments=list(arguments) if isinstance(arguments, list) else [], document=entry.doc,
            attempt=max(1, attempts_of(entry.doc)), timeout=timeout,
            output_limit=self.settings.output_limit, services=self.ports.services,
        )

    # ---- answers --------------------------------------------------------------------------------

    def written(self, event: Written, now: Instant) -> None:
        request, task_id = event.request, event.request.task_id
        entry = self.entries.get(task_id)
        if event.failure is not None:
            self.write_failed(task_id, entry, event, now)
        elif request.purpose == "claim":
            self.claimed(task_id, entry, event, now)
        elif request.purpose == "renew":
            self.renewed(task_id, entry, event, now)
        elif request.purpose in ("finish", "release"):
            self.settled(task_id, event, now)
        elif event.ok and event.doc is not None:
            self.counters.record(request.purpose)
            if request.purpose == "acknowledge":
                self.observe(event.doc, now)
        elif event.doc is not None:
            self.observe(event.doc, now)

    def write_failed(self, task_id: str, entry: Entry | None, event: Written, now: Instant) -> None:
        """A write CouchDB refused, or that could not be built: the task ends ``err`` with the reason.

        If even that answer is refused, the revision is left alone (and logged) until someone changes it.
        """
        if entry is not None and entry.phase == Phase.RUNNING and entry.context is not None:
            entry.context.canceled.set()  # it must not go on under a claim we cannot keep
        self.forget(task_id)
        doc = event.doc if event.doc is not None else event.request.base
        if event.request.purpose == "reject":
            log.error("task %s: CouchDB refused even its err answer (%s); leaving revision %s as it is",
                      task_id, event.failure, doc.get("_rev"), extra={"task_id": task_id})
            self.refused[task_id] = str(doc.get("_rev"))
            return
        reason = str(event.failure)
        self.submit(task_id, "reject", doc, lambda d: reject(d, reason, now.wall))

    def claimed(self, task_id: str, entry: Entry | None, event: Written, now: Instant) -> None:
        if entry is None or entry.phase != Phase.CLAIMING:
            return
        if not event.ok or event.doc is None:
            self.stand_back(task_id, event.doc, now)
            return
        entry.doc, entry.phase, entry.renewed = event.doc, Phase.CLAIMED, now.mono
        if self.stopping:
            self.release_claim(task_id, entry)
        elif entry.due <= now.wall:
            heapq.heappush(self.runnable, (entry.due, task_id))
        else:
            self.timer.at(("start", task_id), entry.due)

    def renewed(self, task_id: str, entry: Entry | None, event: Written, now: Instant) -> None:
        if entry is None or entry.phase not in (Phase.CLAIMED, Phase.RUNNING):
            return
        waiting, entry.renewing_to_start = entry.renewing_to_start, False
        if event.ok and event.doc is not None:
            entry.doc = event.doc
            if waiting:
                heapq.heappush(self.runnable, (entry.due, task_id))
        elif entry.phase == Phase.CLAIMED:  # our claim is gone: somebody took over or the client changed it
            self.stand_back(task_id, event.doc, now)
        elif entry.context is not None and event.doc is not None and \
                event.doc.get("status") == Status.RUNNING.value and not self.owner.owns(event.doc):
            log.warning("task %s: another process took over its lease; stopping its job here", task_id,
                        extra={"task_id": task_id})
            entry.context.canceled.set()  # it must not run in two places

    def finished(self, event: Finished, now: Instant) -> None:
        entry = self.entries.get(event.task_id)
        if entry is None or entry.run_id != event.run_id:
            return
        entry.phase = Phase.FINISHING
        self.budget.ran(event.ended - event.started)
        self.last_lateness = round((event.started - entry.due) * 1000.0, 3)
        if entry.shutdown:
            interrupted = interrupted_record(event, entry.doc, self.owner)
            self.submit(event.task_id, "release", entry.doc,
                        lambda d: release(d, self.owner, interrupted))
            return
        self.ports.writer.submit(finish_request(event, entry.doc, entry.due, self.owner, self.settings))

    def settled(self, task_id: str, event: Written, now: Instant) -> None:
        self.entries.pop(task_id, None)
        self.budget.release(task_id)
        if event.request.purpose == "finish" and event.ok and event.doc is not None:
            status = status_of(event.doc)
            self.counters.record(str(status))
            log.info("task %s: %s", task_id, status, extra={"task_id": task_id, "status": status})
        if event.doc is not None and status_of(event.doc) in ARM_STATUSES | {Status.CANCEL.value}:
            self.observe(event.doc, now)

    def loaded(self, event: Loaded, now: Instant) -> None:
        self.loading_since = None
        if event.reconnect:
            seen = {str(doc.get("_id")) for doc in event.docs}
            for task_id, entry in list(self.entries.items()):
                if task_id not in seen and entry.phase in (Phase.ARMED, Phase.WATCHING, Phase.DEFERRED):
                    self.forget(task_id)
        self.loaded_until = max(event.until, self.loaded_until or event.until)
        for doc in event.docs:
            self.observe_safely(doc, now)
        if not self.reported_ready:
            self.reported_ready = True
            self.ports.notifier.status(self.status_line())
            self.ports.notifier.ready()
            log.info("worker %s ready: %d tasks armed", self.name, len(self.entries))

    # ---- housekeeping and stop ------------------------------------------------------------------

    def housekeeping(self, now: Instant) -> None:
        horizon = self.settings.horizon
        load_pending = self.loading_since is not None and now.mono - self.loading_since < LOAD_PATIENCE
        if self.loaded_until is not None and not load_pending and \
                self.loaded_until < now.wall + horizon * 0.75 and not self.stopping:
            self.loading_since = now.mono  # asked again after LOAD_PATIENCE if the answer never comes
            self.ports.writer.load(now.wall + horizon)
        for task_id, entry in list(self.entries.items()):
            if entry.phase == Phase.RUNNING and not entry.fenced and \
                    (lease_end(entry.doc) or 0.0) - now.wall < min(FENCE_MARGIN, self.settings.lease / 4):
                self.fence(task_id, entry)
            if entry.phase in (Phase.CLAIMED, Phase.RUNNING) and \
                    now.mono - entry.renewed >= self.settings.lease / 3:
                entry.renewed = now.mono
                self.submit(task_id, "renew", entry.doc, self.renew_transform())
            elif entry.phase == Phase.WATCHING and not entry.queued and self.sharing.prefers_me(task_id) \
                    and claim_expired(entry.doc, now.wall, self.ports.is_dead):
                self.make_ready(task_id, entry.due)  # its process died (on this host): no need to wait
        self.ports.notifier.status(self.status_line())
        self.report = self.reported()

    def fence(self, task_id: str, entry: Entry) -> None:
        """Our last confirmed lease is about to run out (renewals failed): stop the job, since another
        process may take the task over once it has; its result is still recorded."""
        entry.fenced = True
        if entry.context is not None:
            log.warning("task %s: its lease could not be renewed and runs out; stopping its job",
                        task_id, extra={"task_id": task_id})
            entry.context.canceled.set()

    def status_line(self) -> str:
        return status_line(self.entries.values(), self.counters, self.connected, self.node)

    def reported(self) -> Report:
        """What this process says of itself in its presence document."""
        phases = [(task_id, entry.phase) for task_id, entry in self.entries.items()]
        return Report(node=self.node, connected=self.connected, done=self.counters.done,
                      failed=self.counters.failed,
                      armed=sum(1 for _, phase in phases if phase in (Phase.ARMED, Phase.CLAIMED)),
                      running=tuple(task_id for task_id, phase in phases if phase == Phase.RUNNING),
                      lateness_ms=self.last_lateness)

    def begin_stop(self, now: Instant) -> None:
        log.info("stopping: no new claims; %d jobs running", self.ports.runner.busy())
        self.stopping = True
        self.ports.notifier.stopping()
        self.stop_deadline = now.mono + self.settings.grace
        self.ready.clear()
        for task_id, entry in list(self.entries.items()):
            if entry.phase in (Phase.ARMED, Phase.WATCHING, Phase.DEFERRED):
                self.forget(task_id)
            elif entry.phase == Phase.CLAIMED:
                self.timer.cancel(("start", task_id))
                self.release_claim(task_id, entry)

    def release_claim(self, task_id: str, entry: Entry) -> None:
        self.budget.release(task_id)
        entry.phase = Phase.FINISHING
        self.submit(task_id, "release", entry.doc, lambda d: release(d, self.owner))

    def stopped(self, now: Instant) -> bool:
        if now.mono >= self.stop_deadline:
            for entry in self.entries.values():
                if entry.phase == Phase.RUNNING and entry.context is not None and not entry.shutdown:
                    entry.shutdown = True
                    entry.context.canceled.set()
        return not any(entry.phase in IN_FLIGHT for entry in self.entries.values()) and \
            self.ports.writer.idle()

    def submit(self, task_id: str, purpose: str, doc: Document, transform: Transform,
               applied: Callable[[Document], bool] = never, fresh: bool = False) -> None:
        self.ports.writer.submit(WriteRequest(task_id, purpose, doc, transform, applied, fresh))

