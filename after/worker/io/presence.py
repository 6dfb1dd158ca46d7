"""The thread that keeps this process's presence document and tells the loop who else is alive.

Every ``INTERVAL`` seconds it writes the process's presence (``after.worker.presence``) and reads the presence
documents of its worker name; the live ones reach the loop as a ``Peers`` event (for task sharing).
Now and then it deletes documents of processes long gone. On stop it marks the document ``stopped``.
A failure is logged and tried again at the next beat: presence never holds up the worker.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

from after.contracts import Clock, Store
from after.core.task import Document
from after.core.transitions import Owner
from after.store.types import Conflict, StoreError
from after.worker.events import Event, Peers
from after.worker.presence import (
    INTERVAL,
    Report,
    forgotten,
    live_members,
    prefix_of,
    presence_document,
    process_of,
)

log = logging.getLogger("after.worker")
REAP_EVERY = 60  # beats between two looks for forgotten documents


class PresenceKeeper:
    def __init__(self, store: Store, owner: Owner, inbox: queue.Queue[Event], clock: Clock,
                 report: Callable[[], Report], stop: threading.Event,
                 is_dead: Callable[[dict[str, Any]], bool] = lambda by: False) -> None:
        self.store, self.owner, self.inbox, self.clock = store, owner, inbox, clock
        self.report, self.stop, self.is_dead = report, stop, is_dead
        self.rev: str | None = None
        self.beats = 0

    def run(self) -> None:
        while not self.stop.wait(INTERVAL):
            self.beat()

    def beat(self) -> None:
        """Write this process's presence, then tell the loop which processes are alive."""
        self.beats += 1
        try:
            self.write(stopped=False)
            docs = self.store.documents(prefix_of(self.owner.worker))
            alive = [doc for doc in docs if not self.is_dead(process_of(doc))]
            self.inbox.put(Peers(tuple(live_members(alive, self.clock.now().wall))))
            if self.beats % REAP_EVERY == 1:
                self.reap(docs)
        except StoreError as error:
            log.debug("presence not written: %s", error)
        except Exception:
            log.exception("presence failed; trying again in %.0f s", INTERVAL)

    def write(self, stopped: bool) -> None:
        doc = presence_document(self.owner.worker, self.owner.host, self.owner.pid, self.owner.started,
                                self.clock.now().wall, self.report(), stopped=stopped)
        for _ in range(3):
            if self.rev is not None:
                doc["_rev"] = self.rev
            try:
                self.rev = self.store.put(doc)
                return
            except Conflict:  # written before by this process (a lost answer), or read back after a restart
                current = self.store.get(str(doc["_id"]))
                self.rev = str(current["_rev"]) if current else None
                doc.pop("_rev", None)

    def reap(self, docs: list[Document]) -> None:
        old = forgotten(docs, self.clock.now().wall)
        if old:
            self.store.bulk_write([{"_id": doc["_id"], "_rev": doc["_rev"], "_deleted": True} for doc in old])
            log.info("deleted %d presence documents of processes gone for a day", len(old))

    def stopped(self) -> None:
        """The clean stop: the document says ``stopped`` (shown as such until it is forgotten)."""
        try:
            self.write(stopped=True)
        except StoreError as error:
            log.debug("presence not marked stopped: %s", error)
