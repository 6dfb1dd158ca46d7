"""What a task document means to this process: answer it, arm it, watch another's claim, or let it go.

Every revision the loop sees (changes feed, horizon reads, write answers) comes through ``observe``.
"""

from __future__ import annotations

import logging

from after.core.clock import Instant
from after.core.invalid import InvalidTask
from after.core.task import (
    ARM_STATUSES,
    READ_BACK_SLACK,
    TERMINAL_STATUSES,
    Document,
    Status,
    Task,
    is_task,
    revision_generation,
    status_of,
    validate,
)
from after.core.transitions import TAKEOVER_MARGIN, acknowledge, cancel, claim_expired, lease_end, reject
from after.core.writes import Purpose
from after.jobs import unknown_job_reason
from after.worker.lifecycle import IN_FLIGHT, JobStop, Phase, TimerKind
from after.worker.sharing import HELP_DELAY
from after.worker.state import Entry, WorkerState, stop_job

log = logging.getLogger("after.worker")
CONFLICT_PATIENCE = 10.0  # seconds a conflicted claim is left to be settled before it is looked at again


class Documents:
    def __init__(self, state: WorkerState) -> None:
        self.state = state
        self.settling: set[tuple[str, str]] = set()  # (task id, revision) whose conflicts were sent to settle

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
            self.state.forget(task_id)

    def observe(self, doc: Document, now: Instant, helping: bool = False) -> None:
        """React to the current revision of a document, whatever its source.

        A document that asks for an answer (a client status, or an invalid one) is answered by the
        process this task prefers (``after.worker.sharing``); the others look again ``HELP_DELAY``
        later and answer only if nobody did (``helping``).
        """
        state, task_id = self.state, str(doc.get("_id"))
        refused = state.refused.get(task_id)
        if refused is not None:
            if refused == doc.get("_rev"):
                return  # CouchDB would not take our answer to this revision: leave it as it is
            del state.refused[task_id]
        entry = state.entries.get(task_id)
        if entry and revision_generation(doc.get("_rev")) < revision_generation(entry.doc.get("_rev")):
            return  # an old revision replayed by the feed or a view read
        if doc.get("_conflicts"):  # any process settles: the same leaves give the very same write
            self.settle_conflicts(task_id, doc)
        if doc.get("_deleted") or not is_task(doc) or doc.get("worker") != state.name:
            if entry is not None:
                self.abandon(task_id, entry)
        elif entry is not None and entry.phase in IN_FLIGHT:
            self.observe_in_flight(task_id, entry, doc, now)
        elif status_of(doc) in TERMINAL_STATUSES:  # e.g. the echo of a result: nothing to check or do
            state.forget(task_id)
        elif not helping and status_of(doc) not in (Status.SCHEDULED, Status.RUNNING) and \
                not state.sharing.prefers_me(task_id):
            state.add(task_id, Entry(doc, now.wall, Phase.DEFERRED))
            state.at(TimerKind.HELP, task_id, now.wall + HELP_DELAY)
        else:
            self.answer(task_id, doc, now)

    def answer(self, task_id: str, doc: Document, now: Instant) -> None:
        try:
            task = validate(doc, slack=READ_BACK_SLACK)
        except InvalidTask as error:
            self.reject(task_id, doc, error.reason, now)
            return
        status, state = task.status, self.state
        if status == Status.CANCEL:
            state.forget(task_id)
            state.submit(task_id, Purpose.CANCEL, doc, lambda d: cancel(d, now.wall))
        elif status in ARM_STATUSES:
            state.forget(task_id)
            if state.ports.registry.resolve(task.job_name) is None:
                self.reject(task_id, doc, unknown_job_reason(state.ports.registry, task.job_name), now)
            elif task.due - state.settings.claim_ahead <= now.wall and not state.stopping:
                self.arm(task_id, task, now, first=True)  # due already: claimed straight away
            else:
                state.submit(task_id, Purpose.ACKNOWLEDGE, doc, lambda d: acknowledge(d, state.owner),
                             applied=lambda d: d.get("status") == Status.SCHEDULED.value)
        elif status == Status.SCHEDULED:
            self.arm(task_id, task, now)
        elif status == Status.RUNNING:
            self.watch(task_id, task, now)

    def reject(self, task_id: str, doc: Document, reason: str, now: Instant) -> None:
        self.state.forget(task_id)
        log.warning("task %s rejected: %s", task_id, reason, extra={"task_id": task_id, "status": "err"})
        self.state.submit(task_id, Purpose.REJECT, doc, lambda d: reject(d, reason, now.wall))

    def settle_conflicts(self, task_id: str, doc: Document) -> None:
        """Have the writer settle a document's conflicting leaves (``after.core.conflicts``), once a
        revision."""
        key = (task_id, str(doc.get("_rev")))
        if key not in self.settling:
            if len(self.settling) > 10_000:
                self.settling.clear()
            self.settling.add(key)
            self.state.ports.writer.resolve(task_id, doc)

    def observe_in_flight(self, task_id: str, entry: Entry, doc: Document, now: Instant) -> None:
        status, owner = status_of(doc), self.state.owner
        if status == Status.RUNNING.value and owner.owns(doc):
            entry.doc = doc  # the echo of our own claim or renewal
        elif status == Status.CANCEL.value and entry.phase == Phase.RUNNING:
            entry.doc = doc
            if stop_job(task_id, entry, JobStop.CANCELED):
                log.info("canceling the running job of task %s", task_id, extra={"task_id": task_id})
        elif status == Status.CANCEL.value or status in ARM_STATUSES:
            entry.doc = doc  # running and rescheduled: the job finishes, and the finish keeps the
            if entry.phase in (Phase.CLAIMED, Phase.RENEWING):  # client's status, then re-arms
                self.stand_back(task_id, doc, now)
            # CLAIMING/FINISHING: the pending write conflicts, re-reads and settles it
        elif entry.phase in (Phase.CLAIMED, Phase.RENEWING):  # taken over (or finished) by another process
            self.stand_back(task_id, doc, now)
        elif entry.phase == Phase.RUNNING:
            log.warning("task %s changed to %s by someone else while its job runs", task_id, status,
                        extra={"task_id": task_id, "status": status})

    def arm(self, task_id: str, task: Task, now: Instant, first: bool = False) -> None:
        """Wait for the claim time: ``claim_ahead`` before the date, or later if another process is
        preferred for it (``first``: this process answered the task, so it claims it too)."""
        state = self.state
        if not state.within_horizon(task.due):
            state.forget(task_id)  # beyond the horizon: the view brings it back when it comes near
            return
        entry = state.entries.get(task_id)
        if entry is not None and entry.phase in (Phase.ARMED, Phase.READY) and entry.due == task.due:
            entry.doc, entry.task = task.document, task
            return
        state.add(task_id, Entry(task.document, task.due, Phase.ARMED, task))
        claim_ahead = state.settings.claim_ahead
        claim_at = task.due - claim_ahead if first else \
            state.sharing.claim_at(task_id, task.due, now.wall, claim_ahead)
        state.at(TimerKind.CLAIM, task_id, claim_at)

    def reshare(self, now: Instant) -> None:
        """The live processes changed: claim the scheduled tasks in hand by the new preferences. A
        process that joins gets the tasks it is preferred for now (the others, which armed them
        while it was not there, step back to helping late), and those of a process that left are
        claimed by their new preferred process on time."""
        state, claim_ahead = self.state, self.state.settings.claim_ahead
        for task_id, entry in state.entries.items():
            if entry.phase == Phase.ARMED and status_of(entry.doc) == Status.SCHEDULED:
                state.at(TimerKind.CLAIM, task_id, state.sharing.claim_at(task_id, entry.due, now.wall,
                                                                          claim_ahead))

    def watch(self, task_id: str, task: Task, now: Instant) -> None:
        """Another process holds the task: take it over when its lease runs out (the preferred process
        at once, the others ``HELP_DELAY`` later), or when its process is known dead."""
        state, doc = self.state, task.document
        state.forget(task_id)
        if not state.within_horizon(task.due):
            return  # beyond the horizon: the view brings it back when it comes near
        state.add(task_id, Entry(doc, task.due, Phase.WATCHING, task))
        later = 0.0 if state.sharing.prefers_me(task_id) else HELP_DELAY
        claim_time = task.due - state.settings.claim_ahead + later  # not claimed before its date is near
        if doc.get("_conflicts"):  # its branches disagree: settled first (the feed brings the outcome)
            takeover = max(lease_end(doc) or 0.0, now.wall) + CONFLICT_PATIENCE
        elif claim_expired(doc, now.wall, state.ports.is_dead):
            takeover = max(now.wall + later, claim_time)
        else:
            takeover = max((lease_end(doc) or now.wall) + TAKEOVER_MARGIN + 0.05 + later, claim_time)
        state.at(TimerKind.LEASE, task_id, takeover)

    def stand_back(self, task_id: str, doc: Document | None, now: Instant) -> None:
        """Our claim is gone or unwanted: drop the task here and react to what it is now."""
        self.state.forget(task_id)
        if doc is not None:
            self.observe(doc, now)

    def abandon(self, task_id: str, entry: Entry) -> None:
        """The document was deleted or moved to another worker."""
        if stop_job(task_id, entry, JobStop.GONE):
            log.info("task %s deleted or moved to another worker: stopping its job", task_id,
                     extra={"task_id": task_id})
        if entry.phase not in IN_FLIGHT:
            self.state.forget(task_id)
