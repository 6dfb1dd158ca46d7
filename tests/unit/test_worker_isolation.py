"""One bad document never costs a good one (issue 7): refused writes, broken transforms, bounded claims.

The worker loop runs on the in-memory store and a fake clock (``tests.unit.test_worker.Harness``).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence
from typing import Any

from after.core.dates import format_date
from after.core.task import Document
from after.core.writes import WriteRequest
from after.store.memory import MemoryStore
from after.store.types import StoreError, WriteResult
from after.worker.budget import ClaimBudget
from after.worker.events import Event, Written
from after.worker.io.writer import StoreWriter
from tests.unit.test_worker import START, Harness


class RefusingStore(MemoryStore):
    """Refuses (as validate_doc_update would) any write of a document whose ``refuse`` field is set,
    unless it is After's err answer; ``sink`` makes a whole request fail while that document is in it."""

    def __init__(self, sink: bool = False) -> None:
        super().__init__()
        self.sink = sink

    def bulk_write(self, docs: Sequence[Document]) -> list[WriteResult]:
        bad = [doc for doc in docs if doc.get("refuse") and doc.get("status") != "err"]
        if bad and self.sink:
            raise StoreError("HTTP 400 (bad_request: invalid UTF-8 JSON)")
        results = super().bulk_write([doc for doc in docs if doc not in bad])
        by_id = {result.id: result for result in results}
        return [by_id[str(doc["_id"])] if doc not in bad else
                WriteResult(str(doc["_id"]), error="forbidden", reason="no, not this one") for doc in docs]


def put(store: MemoryStore, task_id: str, offset: float = 0.0, **fields: Any) -> None:
    store.put({"_id": task_id, "worker": "manobi", "date": format_date(START + offset),
               "job": {"name": "record", "arguments": []}, "status": "waiting", **fields})


def test_a_write_couchdb_refuses_ends_that_task_err_and_its_batch_is_written() -> None:
    for sink in (False, True):
        store = RefusingStore(sink=sink)
        MemoryStore.bulk_write(store, [{"_id": "refused", "worker": "manobi", "date": format_date(START),
                                        "job": {"name": "record"}, "status": "waiting", "refuse": True}])
        for number in range(5):
            put(store, f"good{number}")
        harness = Harness(store)
        harness.settle()
        assert sorted(harness.ran) == [f"good{number}" for number in range(5)]
        doc = harness.doc("refused")
        assert doc["status"] == "err" and "CouchDB refused it" in doc["result"]["reason"], sink
        assert "no, not this one" in doc["result"]["reason"] or "bad_request" in doc["result"]["reason"]


def test_a_transform_that_raises_fails_its_own_request_only() -> None:
    store, inbox = MemoryStore(), queue.Queue[Event]()
    for task_id in ("a", "b", "c"):
        store.put({"_id": task_id, "worker": "manobi"})
    writer = StoreWriter(store, "manobi", inbox, threading.Event())

    def broken(doc: Document) -> Document | None:
        raise ValueError("a bug in a transform")

    for task_id in ("a", "b", "c"):
        transform = broken if task_id == "b" else (lambda doc: {**doc, "status": "x"})
        writer.submit(WriteRequest(task_id, "claim", store.get(task_id) or {}, transform))
    writer.flush()
    answers = drain(inbox)
    assert answers["a"].ok and answers["c"].ok
    assert not answers["b"].ok and "ValueError: a bug in a transform" in str(answers["b"].failure)
    assert [(store.get(task_id) or {}).get("status") for task_id in "abc"] == ["x", None, "x"]


def drain(inbox: queue.Queue[Event]) -> dict[str, Written]:
    found: dict[str, Written] = {}
    while not inbox.empty():
        answer = inbox.get_nowait()
        if isinstance(answer, Written):
            found[answer.request.task_id] = answer
    return found


def test_bad_worker_fields_written_without_validation_end_err_with_the_reason() -> None:
    store = MemoryStore()
    put(store, "attempts", attempts="three")
    put(store, "history", history={"not": "a list"}, status="scheduled", due=format_date(START))
    put(store, "good")
    harness = Harness(store)
    harness.settle()
    assert harness.ran == ["good"]
    assert "attempts must be a whole number" in harness.doc("attempts")["result"]["reason"]
    assert "history must be a list" in harness.doc("history")["result"]["reason"]


def test_the_claim_budget_follows_how_long_jobs_run() -> None:
    budget = ClaimBudget(concurrency=4)
    assert budget.allowed(busy=0) == 400  # 4 slots x 0.1 s / a first guess of 1 ms
    assert budget.allowed(busy=0, write_seconds=0.45) == 1000  # and while 2 writes' time passes (at most)
    for _ in range(40):
        budget.ran(600.0)  # ten-minute jobs
    assert budget.allowed(busy=4) == 1 and budget.allowed(busy=1) == 4  # free slots, plus one
    for _ in range(80):
        budget.ran(0.0002)
    assert budget.allowed(busy=0) == 1000  # no-op jobs: as many as a process may hold


def test_a_process_with_slow_jobs_claims_only_what_it_can_start_soon() -> None:
    store = MemoryStore()
    for number in range(50):
        put(store, f"t{number:02d}", offset=-100.0 + number)
    harness = Harness(store, concurrency=2)
    harness.worker.state.budget.mean_run = 60.0  # jobs here have taken a minute each
    harness.worker.state.ports.runner.busy = lambda: 2  # type: ignore[method-assign]  # both slots taken
    harness.worker.state.ports.runner.free = lambda: 0  # type: ignore[method-assign]
    harness.settle()
    running = [task_id for task_id in (f"t{number:02d}" for number in range(50))
               if harness.doc(task_id)["status"] == "running"]
    assert running == ["t00"]  # oldest due first, and no more than it can start next


def test_a_watching_process_takes_over_within_a_tick_when_the_claimant_dies_on_its_host() -> None:
    store = MemoryStore()
    put(store, "t", offset=-5.0, status="running", attempts=1,
        claim={"by": {"worker": "manobi", "host": "host", "pid": 7, "started": 1.0},
               "at": format_date(START - 5.0), "lease_until": format_date(START + 55.0)})
    harness = Harness(store)
    alive = {7}
    harness.worker.state.ports.is_dead = lambda by: by.get("pid") not in alive
    harness.settle()
    harness.advance(2.0)
    assert harness.ran == []  # its lease holds and its process lives
    alive.clear()
    harness.advance(1.5)
    doc = harness.doc("t")
    assert harness.ran == ["t"] and doc["status"] == "done" and doc["attempts"] == 2
    assert doc["history"][0]["outcome"] == "interrupted"


def test_a_stand_in_for_an_unreadable_document_ends_err_with_its_text_kept() -> None:
    from after.core.task import unreadable_stand_in

    store = MemoryStore()
    harness = Harness(store)  # before the task: it comes as the stand-in alone, not also from the index
    put(store, "deep")
    rev = (store.get("deep") or {})["_rev"]
    harness.worker.state.loaded_until = START + 300.0
    text = '{"worker": "manobi", "job": {"arguments": ' + "[" * 2000 + "]" * 2000 + "}}"
    stand_in = unreadable_stand_in("deep", rev, {"worker": "manobi", "status": "waiting"}, text)
    harness.worker.documents.observe(stand_in, harness.clock.now())
    harness.settle()
    doc = harness.doc("deep")
    assert doc["status"] == "err" and "nested deeper than its JSON parser goes" in doc["result"]["reason"]
    assert doc["unreadable"]["text"] == text[:16384] and doc["unreadable"]["truncated"] is False
    assert harness.ran == []
