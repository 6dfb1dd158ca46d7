"""Claims: READY tasks are claimed oldest due first, as far as the claim budget (``worker.budget``)
allows; a claim that lands makes the task ours until its date, one that does not leaves it to others."""

from __future__ import annotations

import heapq

from after.core.clock import Instant
from after.core.task import Document, Status, status_of
from after.core.transitions import release
from after.core.writes import Purpose
from after.worker.documents import Documents
from after.worker.events import Written
from after.worker.leases import Leases
from after.worker.lifecycle import Phase, TimerKind, move
from after.worker.state import Entry, WorkerState


class Claiming:
    def __init__(self, state: WorkerState, documents: Documents, leases: Leases) -> None:
        self.state = state
        self.documents = documents
        self.leases = leases

    def issue(self, now: Instant) -> None:
        """Claim ready tasks, oldest due first, as far as the claim budget allows."""
        state = self.state
        if not state.ready or state.stopping:
            return
        room = state.budget.room(state.ports.runner.busy(), state.ports.writer.write_seconds())
        while state.ready and (room > 0 or state.ready[0][0] > now.wall):
            due, task_id = heapq.heappop(state.ready)
            entry = state.entries.get(task_id)
            if entry is None or entry.phase != Phase.READY or entry.due != due:
                continue
            move(entry, Phase.CLAIMING)
            if due <= now.wall:  # due: it counts; one claimed ahead of its date starts at that date
                state.budget.hold(task_id)
                room -= 1
            takeover = status_of(entry.doc) == Status.RUNNING  # read it afresh: see every branch
            state.submit(task_id, Purpose.CLAIM, entry.doc, self.leases.claim(due), applied=self.owned,
                         fresh=takeover)

    def owned(self, doc: Document) -> bool:
        return doc.get("status") == Status.RUNNING.value and self.state.owner.owns(doc)

    def claimed(self, task_id: str, entry: Entry, event: Written, now: Instant) -> None:
        state = self.state
        if entry.phase != Phase.CLAIMING:
            return
        if not event.ok or event.doc is None:
            self.documents.stand_back(task_id, event.doc, now)
            return
        move(entry, Phase.CLAIMED)
        entry.doc, entry.renewed = event.doc, now.mono
        if state.stopping:
            self.release(task_id, entry)
        elif entry.due <= now.wall:
            state.runs_next(task_id, entry)
        else:
            state.at(TimerKind.START, task_id, entry.due)

    def release(self, task_id: str, entry: Entry) -> None:
        """Give a claim back unstarted (the worker stops): ``scheduled`` again, no attempt counted."""
        state = self.state
        state.budget.release(task_id)
        state.timer.cancel((TimerKind.START, task_id))
        move(entry, Phase.FINISHING)
        state.submit(task_id, Purpose.RELEASE, entry.doc, lambda d: release(d, state.owner))
