"""Leases: how long a claim is written for, its renewal while ours, the fence when renewals fail, and
the takeover of a claim whose process died.

A claim holds for ``lease`` seconds from when its write lands; while the task is ours (claimed or
running) it is renewed every third of that. A running job is stopped (fenced) shortly before its last
confirmed lease runs out, so it has stopped before another process, whose clock may run a few seconds
ahead, takes the task over.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from after.core.clock import Instant
from after.core.task import Status
from after.core.transitions import Transform, claim, claim_at, claim_expired, lease_end, renew
from after.core.writes import Purpose
from after.worker.documents import Documents
from after.worker.events import Written
from after.worker.lifecycle import IN_FLIGHT, OURS, JobStop, Phase, move
from after.worker.state import Entry, WorkerState, stop_job

log = logging.getLogger("after.worker")
FENCE_MARGIN = 5.0  # seconds (at most a quarter of the lease) before the lease ends that a job is stopped


class Leases:
    def __init__(self, state: WorkerState, documents: Documents) -> None:
        self.state = state
        self.documents = documents

    def length(self) -> float:
        """The lease to write: the configured length from when the write lands (it takes a while)."""
        lease = self.state.settings.lease
        return lease + min(lease, 2.0 * self.state.ports.writer.write_seconds())

    def claim(self, due: float) -> Transform:
        owner, ports = self.state.owner, self.state.ports
        return lambda doc: claim(doc, owner, ports.wall(), self.length(), due, ports.is_dead,
                                 started=ports.starts.evidence)

    def held(self) -> Iterator[tuple[str, str]]:
        """The claims this process may still hold (task id, the claim's ``at``): until a result or a
        release is written, a takeover may need to know whether their job started."""
        for task_id, entry in self.state.entries.items():
            if entry.phase in IN_FLIGHT and self.state.owner.owns(entry.doc):
                yield task_id, claim_at(entry.doc)

    def renewal(self) -> Transform:
        return lambda doc: renew(doc, self.state.owner, self.state.ports.wall(), self.length())

    def renew(self, task_id: str, entry: Entry, now: Instant) -> None:
        entry.renewed = now.mono
        self.state.submit(task_id, Purpose.RENEW, entry.doc, self.renewal())

    def keep(self, now: Instant) -> None:
        """Once a tick: renew our leases, fence jobs whose lease runs out, and take over at once a
        watched task whose process is known dead (on this host)."""
        state = self.state
        fence_at = min(FENCE_MARGIN, state.settings.lease / 4)
        for task_id, entry in list(state.entries.items()):
            if entry.phase == Phase.RUNNING and (lease_end(entry.doc) or 0.0) - now.wall < fence_at:
                self.fence(task_id, entry)
            if entry.phase in OURS and now.mono - entry.renewed >= state.settings.lease / 3:
                self.renew(task_id, entry, now)
            elif entry.phase == Phase.WATCHING and state.sharing.prefers_me(task_id) \
                    and claim_expired(entry.doc, now.wall, state.ports.is_dead):
                state.make_ready(task_id, entry)

    def fence(self, task_id: str, entry: Entry) -> None:
        """Our last confirmed lease is about to run out (renewals failed): stop the job, since another
        process may take the task over once it has; its result is still recorded."""
        if entry.job_stop in (JobStop.FENCED, JobStop.SHUTDOWN):
            return
        if stop_job(task_id, entry, JobStop.FENCED):
            log.warning("task %s: its lease could not be renewed and runs out; stopping its job",
                        task_id, extra={"task_id": task_id})

    def renewed(self, task_id: str, entry: Entry, event: Written, now: Instant) -> None:
        state = self.state
        if entry.phase not in OURS:
            return
        if event.ok and event.doc is not None:
            entry.doc = event.doc
            if entry.phase == Phase.RENEWING:  # renewed before its start: it may start now
                move(entry, Phase.CLAIMED)
                state.runs_next(task_id, entry)
        elif entry.phase in (Phase.CLAIMED, Phase.RENEWING):  # our claim is gone: taken over or changed
            self.documents.stand_back(task_id, event.doc, now)
        elif event.doc is not None and event.doc.get("status") == Status.RUNNING.value and \
                not state.owner.owns(event.doc) and stop_job(task_id, entry, JobStop.TAKEN_OVER):
            log.warning("task %s: another process took over its lease; stopping its job here", task_id,
                        extra={"task_id": task_id})  # it must not run in two places
