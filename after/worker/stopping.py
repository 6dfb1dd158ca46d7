"""The stop sequence: no new claims, unstarted claims given back, running jobs given ``grace``
seconds to finish, then stopped and released (they run again after a restart). A second stop request
(``hurry``: a second Ctrl-C or SIGTERM) ends the grace at once."""

from __future__ import annotations

import logging

from after.core.clock import Instant
from after.worker.claiming import Claiming
from after.worker.lifecycle import IN_FLIGHT, WAITING, JobStop, Phase
from after.worker.state import WorkerState, stop_job

log = logging.getLogger("after.worker")


class Stopping:
    def __init__(self, state: WorkerState, claiming: Claiming) -> None:
        self.state = state
        self.claiming = claiming
        self.deadline = 0.0  # monotonic time the running jobs are stopped at

    def begin(self, now: Instant) -> None:
        state = self.state
        running = state.ports.runner.busy()
        if running:
            log.info("stopping: no new claims; waiting up to %.0f s for %d running jobs "
                     "(stop again, e.g. a second Ctrl-C, to stop them now)", state.settings.grace, running)
        else:
            log.info("stopping: no new claims, no job running")
        state.stopping = True
        state.ports.notifier.stopping()
        self.deadline = now.mono + state.settings.grace
        state.ready.clear()
        for task_id, entry in list(state.entries.items()):
            if entry.phase in WAITING:
                state.forget(task_id)
            elif entry.phase in (Phase.CLAIMED, Phase.RENEWING):
                self.claiming.release(task_id, entry)

    def hurry(self, now: Instant) -> None:
        """A second request to stop: running jobs are stopped now, and released."""
        if now.mono < self.deadline:
            log.info("stopping now: %d running jobs are stopped and released", self.state.ports.runner.busy())
            self.deadline = now.mono

    def stopped(self, now: Instant) -> bool:
        """True once nothing is in flight and every write is done; stops jobs when the grace is over."""
        state = self.state
        if now.mono >= self.deadline:
            for task_id, entry in state.entries.items():
                if entry.job_stop != JobStop.SHUTDOWN:
                    stop_job(task_id, entry, JobStop.SHUTDOWN)
        return not any(entry.phase in IN_FLIGHT for entry in state.entries.values()) and \
            state.ports.writer.idle()
