"""The writer's settlement of conflicting leaves (``after.worker.io.settling``) against a store that has
them, as a CouchDB cluster does: what it deletes, what it merges, what it looks at again later."""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence

from after.core.task import Document
from after.store.types import WriteResult
from after.worker.events import Event
from after.worker.io.reconnecting import Reconnecting
from after.worker.io.settling import ConflictSettler, ResolveRequest
from tests.unit.test_sharing import NOW, claim_field, leaf


class LeavesStore:
    """Just what settling reads: a winner and its losing leaves, by revision; writes are recorded."""

    def __init__(self, winner: Document, losers: Sequence[Document]) -> None:
        self.winner, self.leaves = winner, {str(doc["_rev"]): doc for doc in losers}
        self.written: list[Document] = []

    def revisions(self, doc_id: str, revs: Sequence[str]) -> list[Document]:
        return [self.leaves[rev] for rev in revs if rev in self.leaves]

    def get(self, doc_id: str) -> Document | None:
        return self.winner

    def bulk_write(self, docs: list[Document]) -> list[WriteResult]:
        self.written.extend(docs)
        for doc in docs:
            if doc.get("_deleted"):
                self.leaves.pop(str(doc["_rev"]), None)
        self.winner = {**self.winner, "_conflicts": sorted(self.leaves)}
        return [WriteResult(str(doc["_id"]), rev="9-z") for doc in docs]


def settler(store: LeavesStore, wall: list[float]) -> ConflictSettler:
    inbox: queue.Queue[Event] = queue.Queue()
    give_up = threading.Event()
    retrying = Reconnecting(store, inbox, give_up)  # type: ignore[arg-type]
    return ConflictSettler(store, retrying, store.bulk_write, lambda: wall[0], give_up)  # type: ignore[arg-type]


def test_an_expired_losing_claim_is_deleted_and_a_live_one_is_looked_at_again_after_its_lease() -> None:
    live = leaf("3-a", "running", claim=claim_field("p1", NOW + 50))
    winner = leaf("3-b", "running", claim=claim_field("p2", NOW + 50), _conflicts=["3-a"])
    store, wall = LeavesStore(winner, [live]), [NOW]
    parts = settler(store, wall)
    parts.settle(ResolveRequest("t", winner))
    assert store.written == []  # a live owner's branch is left alone
    assert [task for _, task in parts.later] == ["t"]
    parts.recheck()
    assert store.written == []  # not yet: its lease runs
    wall[0] = NOW + 60
    parts.recheck()
    assert store.written == [{"_id": "t", "_rev": "3-a", "_deleted": True}]
    assert parts.later == [] and store.leaves == {}


def test_an_ended_task_keeps_the_losing_branchs_run_in_its_history() -> None:
    run = {"run": "r1", "outcome": "done", "by": "manobi@a:1"}
    other = {"run": "r0", "outcome": "done", "by": "manobi@b:2"}
    winner = leaf("5-x", "done", result=run, history=[run], _conflicts=["4-c"])
    store = LeavesStore(winner, [leaf("4-c", "done", result=other, history=[other])])
    settler(store, [NOW]).settle(ResolveRequest("t", winner))
    merged, deletion = store.written
    assert [entry["run"] for entry in merged["history"]] == ["r1", "r0"]
    assert deletion == {"_id": "t", "_rev": "4-c", "_deleted": True}
