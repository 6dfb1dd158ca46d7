"""Hostile documents against the worker loop on the in-memory store (issue 7, item 4).

The in-memory store validates nothing at write, so every generated document reaches the worker. For
each generated batch (some documents written before the worker starts, the rest while it runs), the
worker loop runs on a fake clock for ``RUN`` seconds, then:

- every valid task (``after.core.task.validate``) due within the run ends ``done`` and its job ran once;
  a valid ``cancel`` ends ``canceled``; one due later is not run and not answered ``err``;
- every invalid task ends ``err`` with a reason, and its job never runs;
- a document that is not a task, another worker's, already ended, or held by a live claim is untouched;
- the loop never raises and logs no error, and a fresh task added after the mix runs on time.

``tests.hostile`` has the generator and the oracle. The run is reproducible (``derandomize``); set
``AFTER_HYPOTHESIS_EXAMPLES`` for a longer, randomized search.
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from after.contracts import JobContext
from after.core.dates import format_date
from after.core.task import MAX_TASK_CHARS, Document, json_chars
from after.store.memory import MemoryStore
from tests.hostile import (
    JOBS,
    Expected,
    Hostile,
    Near,
    Written,
    batches,
    expect,
    known_bug,
    materialize,
    nested,
)
from tests.unit.test_worker import START, Harness

RUN = 40.0  # seconds of fake time the worker runs after the mix is written
STEP = 0.5
LATENESS = 0.5  # a fresh task must start within this much of its date (the fake clock steps 0.5 s)
EXAMPLES = int(os.environ.get("AFTER_HYPOTHESIS_EXAMPLES", "0"))


class Errors(logging.Handler):
    """Collects what After logs at ERROR or above (an internal error swallowed is still a bug)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def __enter__(self) -> Errors:
        logging.getLogger("after").addHandler(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        logging.getLogger("after").removeHandler(self)


class Recorder:
    """The jobs ``record`` and ``noop``: both count their runs per task id."""

    def __init__(self) -> None:
        self.runs: dict[str, int] = {}

    def __call__(self, context: JobContext) -> str:
        self.runs[context.task_id] = self.runs.get(context.task_id, 0) + 1
        return "ran"


def run_batch(batch: list[Hostile], before: int) -> list[str]:
    """Write ``batch`` (the first ``before`` documents before the worker starts), run, return the problems."""
    written = materialize(batch, START, prefix="h")
    store = MemoryStore()
    store.create_database()
    revs: dict[str, str] = {}
    for item in written[:before]:
        revs[item.id] = store.put(item.doc)
    recorder = Recorder()
    harness = Harness(store)
    for name in JOBS:
        harness.registry.register(name, recorder)
    with Errors() as errors:
        try:
            harness.settle()
            for item in written[before:]:
                revs[item.id] = store.put(item.doc)
            harness.settle()
            harness.advance(RUN, step=1.0)
            horizon = START + harness.settings.horizon
            problems = [problem for index, item in enumerate(written)
                        if (problem := check(item, store, revs[item.id], recorder.runs.get(item.id, 0),
                                             horizon if index < before else None))]
            harness.add("fresh", RUN + 3.0)
            harness.advance(5.0, step=STEP)
        finally:
            stop_watchdogs(harness)
    fresh = harness.doc("fresh")
    if fresh.get("status") != "done" or not 0 <= fresh["result"]["lateness_ms"] <= LATENESS * 1000:
        problems.append(f"the fresh task after the mix: {summary(fresh)}")
    problems.extend(f"logged {record.levelname}: {record.getMessage()}"
                    + (f"\n{logging.Formatter().formatException(record.exc_info)}" if record.exc_info else "")
                    for record in errors.records)
    return problems


def stop_watchdogs(harness: Harness) -> None:
    """Each registered callable starts a timer thread for its timeouts on its first run, never stopped: a
    thousand examples would leave a thousand threads behind."""
    for job in harness.registry.registered.values():
        scheduler = getattr(getattr(job, "watchdog", None), "scheduler", None)
        if scheduler is not None:
            scheduler.stop()


def check(item: Written, store: MemoryStore, rev: str, runs: int, unread_after: float | None) -> str | None:
    """What is wrong with ``item`` after the run, or None."""
    # The oracle reads the document as the worker did: with its first revision.
    expected = expect({**item.doc, "_rev": rev}, START, START + RUN, registry=JOBS, unread_after=unread_after)
    if known_bug({**item.doc, "_rev": rev}, "memory", validation=False):
        return None
    final = store.get(item.id)
    assert final is not None
    wrong = verdict(expected, final, rev, runs)
    if wrong is None:
        return None
    shown = item.text if len(item.text) < 600 else item.text[:300] + f"... ({len(item.text)} characters)"
    return (f"{item.id}: expected {expected.outcome} ({expected.why}), {wrong}; now {summary(final)}"
            f"\n  {shown}")


def verdict(expected: Expected, final: Document, rev: str | None, runs: int) -> str | None:
    wrong = verdict_of(expected, final, rev, runs)
    if wrong and expected.alternative and verdict_of(expected.alternative, final, rev, runs) is None:
        return None
    return wrong


def verdict_of(expected: Expected, final: Document, rev: str | None, runs: int) -> str | None:
    status = final.get("status")
    if expected.outcome == "untouched":
        return None if final.get("_rev") == rev and runs == 0 else f"changed, ran {runs} times"
    if expected.outcome == "done":
        return None if status == "done" and runs == 1 else f"ran {runs} times"
    if expected.outcome == "canceled":
        return None if status == "canceled" and runs == 0 else f"ran {runs} times"
    if expected.outcome == "later":
        return None if status not in ("done", "err") and runs == 0 else f"ran {runs} times"
    result = final.get("result")
    reason = result.get("reason") if isinstance(result, dict) else None
    if status == "err" and isinstance(reason, str) and reason and runs == 0:
        return None
    return f"ran {runs} times"


def summary(doc: Document) -> str:
    result = doc.get("result")
    reason = result.get("reason") if isinstance(result, dict) else None
    text = reason if not isinstance(reason, str) or len(reason) < 300 else reason[:300] + "..."
    return f"status {str(doc.get('status'))[:40]!r}, reason {text!r}"


# make check: a fixed search (derandomize), well under a minute. AFTER_HYPOTHESIS_EXAMPLES=N: N random ones.
SETTINGS: dict[str, Any] = {
    "max_examples": EXAMPLES or 120,
    "derandomize": not EXAMPLES,
    "deadline": None,
    "database": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large,
                              HealthCheck.large_base_example],
}


@settings(**SETTINGS)
@given(batch=batches(max_size=20), split=st.floats(0.0, 1.0))
def test_hostile_batches_end_as_the_table_says_and_the_worker_stays_on_time(batch: list[Hostile],
                                                                          split: float) -> None:
    problems = run_batch(batch, before=int(len(batch) * split))
    assert not problems, "\n".join(problems)


def test_the_shapes_the_generator_makes_reach_the_worker() -> None:
    """The oracle is not vacuous: a fixed batch holds every outcome."""
    valid = {"worker": "manobi", "job": {"name": "record", "arguments": []}, "status": "waiting"}
    batch = [
        Hostile({**valid, "date": Near(-5.0)}),
        Hostile({**valid, "date": Near(-5.0), "status": "cancel"}),
        Hostile({**valid, "date": "9999-01-01"}),
        Hostile({**valid, "date": "next tuesday"}),
        Hostile({**valid, "date": "2011-10-12", "worker": "other"}),
        Hostile({"date": "2011-10-12", "note": "not a task"}),
    ]
    written = materialize(batch, START, prefix="s")
    outcomes = [expect(item.doc, START, START + RUN, registry=JOBS).outcome for item in written]
    assert outcomes == ["done", "canceled", "later", "err", "untouched", "untouched"]
    assert not run_batch(batch, before=3)


@pytest.mark.parametrize("levels", [32, 33])
def test_nesting_at_the_limit(levels: int) -> None:
    doc = {"worker": "manobi", "date": Near(-1.0), "status": "waiting",
           "job": {"name": "noop", "arguments": [nested(levels - 3)]}}
    assert not run_batch([Hostile(doc)], before=0)


# ---- regression tests: documents the search found, shrunk, each a bug fixed since -----------------------

def test_regression_a_far_future_date_with_milliseconds_is_acknowledged_not_failed() -> None:
    harness = Harness()
    harness.settle()
    harness.store.put({"_id": "far", "worker": "manobi", "date": "9999-06-15T12:00:00.228Z",
                       "job": {"name": "record"}, "status": "waiting"})
    harness.settle()
    doc = harness.doc("far")
    assert doc["status"] == "scheduled", doc.get("result")


def test_regression_a_document_nested_1500_deep_ends_err_on_the_memory_store() -> None:
    from tests.hostile import Deep

    store = MemoryStore()
    store.put({"_id": "deep", "worker": "manobi", "date": "2011-10-12", "status": "waiting",
               "job": {"name": "record", "arguments": [Deep(1497).python()]}})
    harness = Harness(store)
    harness.settle()
    doc = harness.doc("deep")
    assert doc["status"] == "err" and "nested" in doc["result"]["reason"]


def test_regression_running_tasks_dated_far_ahead_do_not_hold_the_claims_of_due_ones() -> None:
    harness = Harness(concurrency=2)
    harness.worker.state.budget.mean_run = 60.0  # jobs here take a minute: 3 claims held at once at most
    harness.settle()
    for number in range(3):  # as an admin (or a restored backup) left them: running, their claim expired
        harness.store.put({"_id": f"far{number}", "worker": "manobi", "date": "9999-01-01",
                           "due": "9999-01-01T00:00:00.000Z", "status": "running", "job": {"name": "record"},
                           "attempts": 1, "claim": {"by": {"worker": "manobi", "host": "elsewhere", "pid": 9,
                                                           "started": 1.0},
                                                    "at": format_date(START - 600),
                                                    "lease_until": format_date(START - 500)}})
    harness.settle()
    harness.add("due", 1.0)
    harness.advance(5.0)
    assert harness.doc("due")["status"] == "done"


def test_regression_the_memory_store_stores_or_refuses_any_id() -> None:
    from after.store.types import StoreError

    store = MemoryStore()
    with contextlib.suppress(StoreError):  # refused, as a server may (Apache CouchDB: 400 invalid UTF-8)
        store.put({"_id": "h0000-\ud800", "worker": "manobi"})


def test_regression_a_long_canceled_field_ends_err_with_its_reason() -> None:
    """``canceled`` is the worker's: a long one (written by an admin) left the worker no room to write."""
    harness = Harness()
    harness.settle()
    doc = {"_id": "big", "worker": "manobi", "date": format_date(START + 2.0), "status": "waiting",
           "job": {"name": "record", "arguments": []}, "canceled": ""}
    doc["canceled"] = "x" * (MAX_TASK_CHARS - 60 - json_chars(doc))  # 65476 characters, as it is written
    harness.store.put(doc)
    harness.settle()
    harness.advance(4.0)
    assert harness.doc("big")["status"] == "err" and harness.ran == []
    assert "canceled must be a date" in harness.doc("big")["result"]["reason"]
