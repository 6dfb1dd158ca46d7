"""The horizon: the tasks due within ``horizon`` seconds are kept in memory, read from the live-task
index at start, after a reconnection, and again whenever the horizon comes within a quarter of its
length; the changes feed keeps them current in between."""

from __future__ import annotations

import logging

from after.core.clock import Instant
from after.worker.documents import Documents
from after.worker.events import Loaded
from after.worker.lifecycle import WAITING
from after.worker.state import WorkerState

log = logging.getLogger("after.worker")
LOAD_PATIENCE = 60.0  # seconds to wait for a horizon load before asking again


class Horizon:
    def __init__(self, state: WorkerState, documents: Documents) -> None:
        self.state = state
        self.documents = documents
        self.loading_since: float | None = None  # monotonic time a load was asked for
        self.reported_ready = False

    def keep(self, now: Instant) -> None:
        """Once a tick: ask for the next stretch of tasks when the horizon comes near."""
        state, horizon = self.state, self.state.settings.horizon
        pending = self.loading_since is not None and now.mono - self.loading_since < LOAD_PATIENCE
        if state.loaded_until is not None and not pending and not state.stopping and \
                state.loaded_until < now.wall + horizon * 0.75:
            self.loading_since = now.mono  # asked again after LOAD_PATIENCE if the answer never comes
            state.ports.writer.load(now.wall + horizon)

    def loaded(self, event: Loaded, now: Instant) -> None:
        """Tasks due up to ``event.until``; after a reconnection, what it leaves out is no longer live."""
        state = self.state
        self.loading_since = None
        if event.reconnect:
            seen = {str(doc.get("_id")) for doc in event.docs}
            for task_id, entry in list(state.entries.items()):
                if task_id not in seen and entry.phase in WAITING:
                    state.forget(task_id)
        state.loaded_until = max(event.until, state.loaded_until or event.until)
        for doc in event.docs:
            self.documents.observe_safely(doc, now)
        if not self.reported_ready:
            self.reported_ready = True
            state.ports.notifier.status(state.status_line())
            state.ports.notifier.ready()
            log.info("worker %s ready: %d tasks armed", state.name, len(state.entries))
