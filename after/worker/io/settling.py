"""``ConflictSettler``: the writer's settlement of a document's conflicting leaves (a CouchDB
cluster), with the merge decided by ``after.core.conflicts``; leaves whose claims may still be live are
looked at again once their leases ran out."""

from __future__ import annotations

import heapq
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from after.contracts import Store
from after.core.conflicts import resolution
from after.core.task import Document
from after.core.transitions import TAKEOVER_MARGIN, fit, lease_end
from after.store.types import StoreError, WriteResult
from after.worker.io.reconnecting import Reconnecting

log = logging.getLogger("after.worker")
LATER_LIMIT = 10_000  # documents waiting for a second look, at most


@dataclass(frozen=True)
class ResolveRequest:
    """Settle the conflicting leaves of a document (``after.core.conflicts``); ``doc`` is its winner."""

    task_id: str
    doc: Document


class ConflictSettler:
    """Deletes the losing leaves After wrote, their runs merged into the winner first."""

    def __init__(self, store: Store, retrying: Reconnecting, bulk_write: Callable[[list[Document]],
                 Sequence[WriteResult]], wall: Callable[[], float], give_up: threading.Event) -> None:
        self.store, self.retrying, self.bulk_write = store, retrying, bulk_write
        self.wall, self.give_up = wall, give_up
        self.later: list[tuple[float, str]] = []  # (wall time, task id): conflicts to settle again

    def settle(self, request: ResolveRequest) -> None:
        conflicts = request.doc.get("_conflicts")
        revs = [str(rev) for rev in conflicts] if isinstance(conflicts, list) else []
        losers = self.retrying(lambda: self.store.revisions(request.task_id, revs))
        merged, deletions = resolution(request.doc, losers, self.wall())
        writes = ([fit(merged)] if merged is not None else []) + deletions
        if writes:
            results = self.retrying(lambda: self.bulk_write(writes))
            done = sum(1 for result in results if result.ok)
            log.info("task %s: settled %d of %d conflicting revisions", request.task_id,
                     done - (1 if merged is not None else 0), len(revs), extra={"task_id": request.task_id})
        deleted = {str(deletion["_rev"]) for deletion in deletions}
        leases = [lease_end(leaf) or 0.0 for leaf in losers if str(leaf.get("_rev")) not in deleted]
        if leases and len(self.later) < LATER_LIMIT:  # claims that may still be live: look again later
            heapq.heappush(self.later, (max(leases) + TAKEOVER_MARGIN + 1.0, request.task_id))

    def recheck(self) -> None:
        """Settle again the conflicts left for later whose time came, from a fresh read."""
        while self.later and self.later[0][0] <= self.wall() and not self.give_up.is_set():
            _, task_id = heapq.heappop(self.later)
            try:
                doc = self.store.get(task_id)
                if doc is not None and doc.get("_conflicts"):
                    self.settle(ResolveRequest(task_id, doc))
            except StoreError as error:
                log.debug("conflicts of task %s not settled now: %s", task_id, error)
