"""The writer's answers (``Written``), dispatched on the write's purpose."""

from __future__ import annotations

import logging

from after.core.clock import Instant
from after.core.task import ARM_STATUSES, Status, status_of
from after.core.transitions import reject
from after.core.writes import Purpose
from after.worker.claiming import Claiming
from after.worker.documents import Documents
from after.worker.events import Written
from after.worker.leases import Leases
from after.worker.lifecycle import JobStop
from after.worker.state import WorkerState, stop_job

log = logging.getLogger("after.worker")
RE_ARM = ARM_STATUSES | {Status.CANCEL, Status.SCHEDULED}


class Answers:
    def __init__(self, state: WorkerState, documents: Documents, claiming: Claiming, leases: Leases) -> None:
        self.state = state
        self.documents = documents
        self.ours = {Purpose.CLAIM: claiming.claimed, Purpose.RENEW: leases.renewed}

    def written(self, event: Written, now: Instant) -> None:
        purpose, task_id = event.request.purpose, event.request.task_id
        entry = self.state.entries.get(task_id)
        if event.failure is not None:
            self.failed(task_id, event, now)
        elif purpose in self.ours:
            if entry is not None:
                self.ours[purpose](task_id, entry, event, now)
        elif purpose in (Purpose.FINISH, Purpose.RELEASE):
            self.settled(task_id, event, now)
        elif event.ok and event.doc is not None:
            self.state.counters.record(purpose)
            if purpose == Purpose.ACKNOWLEDGE:
                self.documents.observe(event.doc, now)
        elif event.doc is not None:
            self.documents.observe(event.doc, now)

    def failed(self, task_id: str, event: Written, now: Instant) -> None:
        """A write CouchDB refused, or that could not be built: the task ends ``err`` with the reason.

        If even that answer is refused, the revision is left alone (and logged) until someone changes it.
        """
        state = self.state
        entry = state.entries.get(task_id)
        if entry is not None:
            stop_job(task_id, entry, JobStop.UNKEPT)  # it must not go on under a claim we cannot keep
        state.forget(task_id)
        doc = event.doc if event.doc is not None else event.request.base
        if event.request.purpose == Purpose.REJECT:
            log.error("task %s: CouchDB refused even its err answer (%s); leaving revision %s as it is",
                      task_id, event.failure, doc.get("_rev"), extra={"task_id": task_id})
            state.refused[task_id] = str(doc.get("_rev"))
            return
        reason = str(event.failure)
        log.warning("task %s: %s", task_id, reason, extra={"task_id": task_id, "status": "err"})
        state.submit(task_id, Purpose.REJECT, doc, lambda d: reject(d, reason, now.wall))

    def settled(self, task_id: str, event: Written, now: Instant) -> None:
        """A result or a release was written (or no longer applies): the task leaves our hands."""
        state = self.state
        state.forget(task_id)
        if event.request.purpose == Purpose.FINISH and event.ok and event.doc is not None:
            status = status_of(event.doc)
            state.counters.record(str(status))
            log.info("task %s: %s", task_id, status, extra={"task_id": task_id, "status": status})
        if event.doc is not None and status_of(event.doc) in RE_ARM:  # a client change, or scheduled again
            self.documents.observe(event.doc, now)
