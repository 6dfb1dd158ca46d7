"""``Reconnecting``: a store action retried while CouchDB is unavailable, with backoff, telling the
worker's loop when the connection is lost and when it is back (``Connection`` events)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import TypeVar

from after.contracts import Store
from after.store.types import Unavailable
from after.worker.events import Connection, Event
from after.worker.io.follower import Backoff, node_of

T = TypeVar("T")


class GiveUp(Exception):
    """The worker is stopping and CouchDB stays unreachable."""


class Reconnecting:
    """Runs store actions until they get an answer; raises ``GiveUp`` once the worker is stopping."""

    def __init__(self, store: Store, inbox: queue.Queue[Event], give_up: threading.Event) -> None:
        self.store, self.inbox, self.give_up = store, inbox, give_up
        self.backoff = Backoff()

    def __call__(self, action: Callable[[], T]) -> T:
        failed = False
        while True:
            try:
                result = action()
            except Unavailable as error:
                if self.give_up.is_set():
                    raise GiveUp() from error
                failed = True
                self.inbox.put(Connection(False, str(error), node_of(self.store)))
                self.give_up.wait(self.backoff.next_delay())
                continue
            if failed:
                self.backoff.reset()
                self.inbox.put(Connection(True, node=node_of(self.store)))
            return result
