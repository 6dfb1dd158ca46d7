"""One contract suite for every Store: MemoryStore and CouchStore, on Apache CouchDB and on pouchdb-server,
must agree."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from after.contracts import Store
from after.core.dates import parse_date
from after.core.task import Document
from after.store.couch.client import CouchStore
from after.store.couch.design import DESIGN_ID, design_document
from after.store.memory import MemoryStore
from after.store.types import Change, Conflict

HEARTBEAT = 0.2


def task(doc_id: str, date: str = "2011-10-12", worker: str = "manobi", status: str = "waiting",
         **extra: Any) -> Document:
    return {"_id": doc_id, "worker": worker, "date": date, "status": status,
            "job": {"name": "start_campaign", "arguments": [2, 3, "teste"]}, **extra}


def ids(docs: Iterator[Document] | list[Document]) -> list[str]:
    return [str(doc["_id"]) for doc in docs]


def take(feed: Iterator[Change | None], changes: int, limit: int = 50) -> list[Change]:
    """The next ``changes`` changes, skipping heartbeats; gives up after ``limit`` items."""
    found: list[Change] = []
    for _, item in zip(range(limit), feed, strict=False):
        if item is not None:
            found.append(item)
            if len(found) == changes:
                break
    return found


def fresh_like(store: Store, request: pytest.FixtureRequest) -> Store:
    """A store of the same kind on a database that does not exist yet."""
    if isinstance(store, MemoryStore):
        return MemoryStore()
    server = request.getfixturevalue(f"{request.node.callspec.params['store']}_server")
    return CouchStore(server.url, f"fresh-{uuid.uuid4().hex[:12]}", server.admin, server.password)


def test_create_database_is_idempotent(store: Store, request: pytest.FixtureRequest) -> None:
    assert store.create_database() is False  # the fixture initialized it
    fresh = fresh_like(store, request)
    assert fresh.create_database() is True
    assert fresh.create_database() is False
    fresh.close()


def test_put_get_round_trip(store: Store) -> None:
    doc = task("t1")
    rev = store.put(doc)
    assert rev.startswith("1-")
    assert store.get("t1") == {**doc, "_rev": rev}
    assert store.get("missing") is None
    rev2 = store.put({**doc, "_rev": rev, "status": "cancel"})
    assert rev2.startswith("2-")
    assert store.get("t1") == {**doc, "_rev": rev2, "status": "cancel"}
    store.put({"_id": "t1", "_rev": rev2, "_deleted": True})
    assert store.get("t1") is None


def test_put_without_id_gets_one(store: Store) -> None:
    store.put({"note": "not a task"})
    assert store.tasks() == []


@pytest.mark.parametrize("stale", [True, False], ids=["stale-rev", "missing-rev"])
def test_put_with_stale_or_missing_rev_conflicts(store: Store, stale: bool) -> None:
    rev = store.put(task("t1"))
    store.put({**task("t1"), "_rev": rev, "status": "cancel"})
    with pytest.raises(Conflict):
        store.put({**task("t1"), "_rev": rev} if stale else task("t1"))
    assert store.get("t1")["status"] == "cancel"  # type: ignore[index]


def test_bulk_write_reports_each_document(store: Store) -> None:
    store.put(task("old"))
    results = store.bulk_write([task("a"), task("old", status="cancel"), task("b")])
    assert [result.id for result in results] == ["a", "old", "b"]
    assert [result.ok for result in results] == [True, False, True]
    assert results[1].error == "conflict"
    assert results[0].rev is not None and results[0].rev.startswith("1-")
    assert store.get("b") is not None and store.get("old")["status"] == "waiting"  # type: ignore[index]


def test_changes_after_update_seq_are_filtered_to_the_worker(store: Store) -> None:
    store.put(task("before"))
    other_rev = store.put(task("other", worker="someone_else"))
    seq = store.update_seq()
    assert isinstance(seq, str)
    store.put(task("mine"))
    store.put(task("theirs", worker="someone_else"))
    store.put({"_id": "other", "_rev": other_rev, "_deleted": True})
    changes = take(store.changes("manobi", seq, heartbeat=HEARTBEAT), 2)
    assert [(change.id, change.deleted) for change in changes] == [("mine", False), ("other", True)]
    assert changes[0].doc is not None and changes[0].doc["status"] == "waiting"
    assert all(isinstance(change.seq, str) for change in changes)


def test_changes_resume_from_a_change_seq(store: Store) -> None:
    seq = store.update_seq()
    store.put(task("one"))
    store.put(task("two"))
    first = take(store.changes("manobi", seq, heartbeat=HEARTBEAT), 1)[0]
    assert first.id == "one"
    resumed = take(store.changes("manobi", first.seq, heartbeat=HEARTBEAT), 1)
    assert [change.id for change in resumed] == ["two"]


def test_changes_stream_live_and_heartbeat_when_idle(store: Store) -> None:
    feed = store.changes("manobi", store.update_seq(), heartbeat=HEARTBEAT)
    started = time.monotonic()
    assert next(feed) is None
    assert time.monotonic() - started < HEARTBEAT * 5
    writer = threading.Timer(HEARTBEAT, lambda: store.put(task("late")))
    writer.start()
    try:
        assert [change.id for change in take(feed, 1, limit=20)] == ["late"]
    finally:
        writer.join()


def write_invalid_task(store: Store, doc: Document) -> None:
    """A task validate_doc_update would refuse, as written before the design document existed."""
    design = store.get(DESIGN_ID)
    assert design is not None
    store.put({"_id": DESIGN_ID, "_rev": design["_rev"], "_deleted": True})
    store.put(doc)
    assert store.install_design(design_document()) is True


DATED = [  # (id, date) in due order
    ("a-date-only", "2011-10-12"),
    ("b-offset", "2011-10-12T10:00:00+02:00"),  # 08:00Z
    ("c-fraction", "2011-10-12T08:00:00.250Z"),
    ("d-space", "2011-10-12 08:00:01"),
    ("e-compact-offset", "2011-10-12T04:00:00-0530"),  # 09:30Z
    ("f-later", "2011-10-13T00:00:00Z"),
    ("g-much-later", "2012-01-01"),
]


def test_live_tasks_by_due_with_invalid_dates_first(store: Store) -> None:
    store.bulk_write([task(doc_id, date) for doc_id, date in reversed(DATED)])
    store.bulk_write([task("x-done", "2000-01-01", status="done"), task("x-err", "2000-01-01", status="err"),
                      task("x-canceled", "2000-01-01", status="canceled"),
                      task("x-other-worker", "2000-01-01", worker="someone_else")])
    write_invalid_task(store, task("z-invalid", "2011-02-30"))
    expected = ["z-invalid", *(doc_id for doc_id, _ in DATED)]
    assert ids(store.live_tasks("manobi")) == expected
    for page_size in (1, 2, 3, 7, 8):
        assert ids(store.live_tasks("manobi", page_size=page_size)) == expected


def test_live_tasks_pages_of_two_over_seven_with_equal_dates(store: Store) -> None:
    dates = ["2011-10-12T08:00:00Z"] * 3 + ["2011-10-11", "2011-10-13", "2011-10-12T08:00:00.001Z",
                                            "2011-01-01"]
    store.bulk_write([task(f"t{index}", date) for index, date in enumerate(dates)])
    assert ids(store.live_tasks("manobi", page_size=2)) == ["t6", "t3", "t0", "t1", "t2", "t5", "t4"]


def test_live_tasks_until_bounds_the_due_date(store: Store) -> None:
    store.bulk_write([task(doc_id, date) for doc_id, date in DATED])
    until = parse_date("2011-10-12T08:00:00.250Z")
    expected = ["a-date-only", "b-offset", "c-fraction"]
    assert ids(store.live_tasks("manobi", until=until)) == expected
    assert ids(store.live_tasks("manobi", until=until, page_size=1)) == expected
    assert ids(store.live_tasks("manobi", until=parse_date("2000-01-01"))) == []
    assert ids(store.live_tasks("nobody")) == []


def test_live_tasks_include_every_live_status(store: Store) -> None:
    statuses = ["waiting", "schedule", "reschedule", "cancel", "scheduled", "running"]
    store.bulk_write([task(status, status=status) for status in statuses])
    assert sorted(ids(store.live_tasks("manobi"))) == sorted(statuses)


def test_tasks_filters_by_worker_and_status(store: Store) -> None:
    store.bulk_write([
        task("a1", "2011-10-13", worker="a"), task("a2", "2011-10-12", worker="a", status="done"),
        task("a3", "2011-10-11", worker="a"), task("b1", "2011-10-10", worker="b", status="done"),
        {"_id": "plain", "title": "not a task"},
    ])
    assert ids(store.tasks()) == ["a3", "a2", "a1", "b1"]
    assert ids(store.tasks(worker="a", status="waiting")) == ["a3", "a1"]
    assert ids(store.tasks(status="done")) == ["a2", "b1"]
    assert ids(store.tasks(worker="b")) == ["b1"]
    assert ids(store.tasks(worker="a", limit=2)) == ["a3", "a2"]
    assert store.tasks(worker="nobody") == []


def test_status_counts(store: Store) -> None:
    store.bulk_write([task("a1", worker="a"), task("a2", worker="a", status="done"), task("a3", worker="a"),
                      task("b1", worker="b", status="cancel"), {"_id": "plain", "title": "not a task"}])
    assert store.status_counts() == {"a": {"waiting": 2, "done": 1}, "b": {"cancel": 1}}
    assert store.status_counts("a") == {"a": {"waiting": 2, "done": 1}}
    assert store.status_counts("nobody") == {}


def test_install_design_is_idempotent(store: Store) -> None:
    design = design_document()
    assert store.install_design(design) is False
    changed = {**design, "views": {**design["views"], "extra": {"map": "function (doc) {}"}}}
    assert store.install_design(changed) is True
    assert store.install_design(changed) is False
    assert store.install_design(design) is True
    stored = store.get(DESIGN_ID)
    assert stored is not None and stored["_rev"].startswith("3-")


def test_compact_does_not_raise(store: Store) -> None:
    store.put(task("t1"))
    store.compact()
