"""The changes follower: reconcile from the live tasks, then follow ``_changes``; report to the loop."""

from __future__ import annotations

import logging
import queue
import random
import threading

from after.contracts import Clock, Store
from after.store.types import Unauthorized, Unavailable
from after.worker.events import Changed, Connection, Event, Loaded

log = logging.getLogger("after.worker")


def node_of(store: Store) -> str:
    """The CouchDB URL a store talks to now (a cluster's node after a failover); "" for other stores."""
    return str(getattr(store, "url", ""))


class Backoff:
    """Exponential back-off with full jitter, reset on success."""

    def __init__(self, first: float = 0.2, limit: float = 15.0) -> None:
        self.first, self.limit, self.current = first, limit, first

    def next_delay(self) -> float:
        delay = random.uniform(self.current / 2, self.current)
        self.current = min(self.limit, self.current * 2)
        return delay

    def reset(self) -> None:
        self.current = self.first


class Follower:
    """Reconcile from the live view, then follow ``_changes``; on any failure back off and start over.

    The sequence to follow from is taken before the view is read, so nothing written meanwhile is
    missed; replays are harmless (the loop ignores older revisions).
    """

    def __init__(self, store: Store, worker: str, inbox: queue.Queue[Event], clock: Clock,
                 horizon: float, stop: threading.Event, heartbeat: float = 5.0) -> None:
        self.store, self.worker, self.inbox, self.clock = store, worker, inbox, clock
        self.horizon, self.stop, self.heartbeat = horizon, stop, heartbeat
        self.backoff = Backoff()
        self.since: str | None = None

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.follow_once()
            except (Unavailable, Unauthorized) as error:  # a wrong password is retried like a down server
                self.inbox.put(Connection(False, str(error), node_of(self.store)))
                self.stop.wait(self.backoff.next_delay())
            except Exception:
                log.exception("changes follower failed; restarting it")
                self.stop.wait(self.backoff.next_delay())

    def follow_once(self) -> None:
        since = self.since if self.since is not None else self.store.update_seq()
        until = self.clock.now().wall + self.horizon
        docs = list(self.store.live_tasks(self.worker, until))
        self.inbox.put(Connection(True, node=node_of(self.store)))
        self.inbox.put(Loaded(docs, until, reconnect=True))
        self.backoff.reset()
        for change in self.store.changes(self.worker, since, self.heartbeat):
            if self.stop.is_set():
                return
            if change is None:
                continue
            doc = change.doc if change.doc is not None else {"_id": change.id, "_deleted": change.deleted}
            self.inbox.put(Changed(doc))
            self.since = change.seq
