"""The live-tasks read on every store: what the worker reconciles from and loads its horizon with.

On Apache CouchDB it is answered from Mango indexes on ``due`` (armed tasks) and on the client's
``date`` string (new ones), whatever offset that string carries; these cases pin the edges of that:
dates whose local day differs from their UTC day, armed tasks, and documents whose date no range can
place (missing, not a string, not a date), which must still be found so the worker can answer ``err``.
"""

from __future__ import annotations

from typing import Any

from after.contracts import Store
from after.core.dates import format_date, parse_date
from after.core.task import Document
from after.store.couch.design import design_document


def task(doc_id: str, date: Any = "2011-10-12", status: str = "waiting", worker: str = "manobi",
         **extra: Any) -> Document:
    doc: Document = {"_id": doc_id, "worker": worker, "status": status,
                     "job": {"name": "start_campaign", "arguments": []}, **extra}
    if date is not ...:
        doc["date"] = date
    return doc


def armed(doc_id: str, date: str, status: str = "scheduled") -> Document:
    return task(doc_id, date, status=status, due=format_date(parse_date(date)))


def ids(store: Store, until: str | None = None, page_size: int = 500) -> list[str]:
    bound = parse_date(until) if until is not None else None
    return [str(doc["_id"]) for doc in store.live_tasks("manobi", bound, page_size)]


def without_validation(store: Store) -> None:
    """Documents validate_doc_update would refuse, as a deployment without validation lets in."""
    assert store.install_design(design_document(validate=False)) is True


def test_offsets_that_move_the_day_are_placed_by_their_instant(store: Store) -> None:
    store.bulk_write([
        task("east", "2011-10-13T01:00:00+14:00"),  # 2011-10-12T11:00Z: its local day is the next one
        task("west", "2011-10-11T20:00:00-10:00"),  # 2011-10-12T06:00Z: its local day is the one before
        task("late-west", "2011-10-12T20:00:00-10:00"),  # 2011-10-13T06:00Z: after the bound
        armed("armed-east", "2011-10-13T01:30:00+14:00"),  # 11:30Z
        armed("armed-late", "2011-10-12T13:00:00Z", status="running"),
    ])
    assert ids(store, "2011-10-12T12:00:00Z") == ["west", "east", "armed-east"]
    assert ids(store, "2011-10-12T12:00:00Z", page_size=1) == ["west", "east", "armed-east"]
    assert ids(store) == ["west", "east", "armed-east", "armed-late", "late-west"]


def test_far_future_tasks_are_not_read_before_the_horizon_reaches_them(store: Store) -> None:
    store.bulk_write([task(f"far-{number}", f"20{30 + number}-01-01") for number in range(5)]
                     + [task("near", "2011-10-12"), armed("near-armed", "2011-10-12T00:00:01Z")])
    assert ids(store, "2011-10-12T00:00:01Z") == ["near", "near-armed"]
    assert ids(store, "2031-06-01") == ["near", "near-armed", "far-0", "far-1"]


def test_tasks_without_a_usable_date_are_found_first_whatever_the_bound(store: Store) -> None:
    without_validation(store)
    store.bulk_write([
        task("no-date", ...), task("null-date", None), task("number-date", 20111012),
        task("words", "next tuesday"), task("object-date", {"day": 12}), task("list-date", ["2011"]),
        task("armed-without-due", "2011-10-12", status="scheduled"),
        task("armed-odd-due", "2011-10-12", status="running", due="soon"),
        task("ok", "2011-10-12"), task("done-words", "whenever", status="done"),
        task("unknown-status", "2000-01-01", status="later"), task("list-status", "2011-10-12", status=["x"]),
        {**task("no-status", "2011-10-12"), "status": None}, task("ended", "2000-01-01", status="err"),
    ])
    odd = {"no-date", "null-date", "number-date", "words", "object-date", "list-date"}
    found = ids(store, "2000-01-01")
    assert set(found) == odd | {"unknown-status"}  # a status not After's is answered err, like a bad date
    everything = ids(store)
    assert set(everything[:len(odd)]) == odd
    assert set(everything[len(odd):]) == {"armed-without-due", "armed-odd-due", "ok", "unknown-status",
                                          "list-status", "no-status"}


def test_armed_tasks_by_their_date_not_by_a_stale_bound(store: Store) -> None:
    store.bulk_write([armed("a", "2011-10-12T08:00:00Z"), armed("b", "2011-10-12T08:00:00.001Z"),
                      armed("c", "2011-10-12T07:59:59.999Z", status="running")])
    assert ids(store, "2011-10-12T08:00:00Z") == ["c", "a"]
