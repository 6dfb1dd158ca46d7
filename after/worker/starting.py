"""Starting jobs and taking their results: claimed, due tasks start in free job slots, earliest due
first; a finished job's result is written as its task's policies say (``after.core.policies``)."""

from __future__ import annotations

import heapq
import logging
import uuid

from after.contracts import JobContext
from after.core.clock import Instant
from after.core.policies import Policies, Skip
from after.core.task import Task
from after.core.transitions import attempts_of, claim_at, lease_end, release
from after.core.writes import Purpose
from after.jobs import unknown_job_reason
from after.worker.events import Finished
from after.worker.leases import Leases
from after.worker.lifecycle import JobStop, Phase, move
from after.worker.results import finish_request, interrupted_record, skipped_outcome, unknown_job_outcome
from after.worker.starts import Journaled
from after.worker.state import Entry, WorkerState

log = logging.getLogger("after.worker")


class Starting:
    def __init__(self, state: WorkerState, leases: Leases, policies: Policies) -> None:
        self.state = state
        self.leases = leases
        self.policies = policies

    def dispatch(self, now: Instant) -> None:
        """Start due claimed tasks while job slots are free, earliest due first.

        A job starts only under a lease with at least half its length left, so a process whose
        renewals lag (an overloaded server) renews first instead of racing another's takeover.
        """
        state = self.state
        while state.runnable and state.ports.runner.free() > 0:
            _, task_id = heapq.heappop(state.runnable)
            entry = state.entries.get(task_id)
            if entry is None or entry.phase != Phase.CLAIMED:
                continue
            if (lease_end(entry.doc) or 0.0) - now.wall < state.settings.lease / 2:
                move(entry, Phase.RENEWING)
                self.leases.renew(task_id, entry, now)
                continue
            self.start(task_id, entry, now)

    def start(self, task_id: str, entry: Entry, now: Instant) -> None:
        state, task = self.state, entry.task
        assert task is not None, "a claimed task was validated when it was armed or watched"
        state.budget.release(task_id)
        move(entry, Phase.RUNNING)
        entry.run_id = uuid.uuid4().hex
        entry.context = self.context(task_id, entry, task)
        job = state.ports.registry.resolve(task.job_name)
        when_due = self.policies.when_due(task, now.wall)
        if job is None or isinstance(when_due, Skip):
            outcome = skipped_outcome(when_due.reason) if isinstance(when_due, Skip) else \
                unknown_job_outcome(unknown_job_reason(state.ports.registry, task.job_name))
            log.warning("task %s: %s", task_id, outcome.reason, extra={"task_id": task_id, "status": "err"})
            self.finished(Finished(task_id, entry.run_id, outcome, now.wall, now.wall), now)
            return
        log.info("task %s: starting job %s", task_id, task.job_name,
                 extra={"task_id": task_id, "job": task.job_name, "status": "running"})
        noted = Journaled(job, state.ports.starts, task_id, claim_at(entry.doc))  # noted as it starts
        state.ports.runner.start(noted, entry.context, entry.run_id)

    def context(self, task_id: str, entry: Entry, task: Task) -> JobContext:
        settings = self.state.settings
        return JobContext(
            task_id=task_id, worker=self.state.name, job_name=task.job_name,
            arguments=list(task.arguments), document=entry.doc, attempt=max(1, attempts_of(entry.doc)),
            timeout=task.timeout or settings.default_timeout,
            output_limit=settings.output_limit, services=self.state.ports.services,
        )

    def finished(self, event: Finished, now: Instant) -> None:
        state = self.state
        entry = state.entries.get(event.task_id)
        if entry is None or entry.run_id != event.run_id or entry.task is None:
            return
        move(entry, Phase.FINISHING)
        state.budget.ran(event.ended - event.started)
        state.last_lateness = round((event.started - entry.due) * 1000.0, 3)
        if entry.job_stop == JobStop.SHUTDOWN:
            interrupted = interrupted_record(event, entry.doc, state.owner)
            state.submit(event.task_id, Purpose.RELEASE, entry.doc,
                         lambda d: release(d, state.owner, interrupted))
            return
        state.ports.writer.submit(finish_request(event, entry.doc, entry.task, state.owner, state.settings,
                                                 self.policies))
