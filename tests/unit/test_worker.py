"""The worker's loop on an in-memory store and a fake clock: what a user sees in the documents."""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any

import pytest

from after.config import WorkerConfig
from after.contracts import Job, JobContext, StartJournal
from after.core.clock import FakeClock
from after.core.dates import format_date
from after.core.policies import Policies
from after.core.task import Document, revision_generation
from after.core.transitions import Owner
from after.core.writes import WriteRequest
from after.jobs.registry import JobRegistry
from after.store.memory import MemoryStore
from after.systemd.notify import RecordingNotifier
from after.worker.build import assemble
from after.worker.events import Changed, Event, Finished, Loaded, Written
from after.worker.io.writer import StoreWriter

START = 1_800_000_000.0


class InlineRunner:
    """Runs a job at once, in the caller's thread, and reports like the real runner."""

    def __init__(self, inbox: queue.Queue[Event], clock: FakeClock) -> None:
        self.inbox, self.clock = inbox, clock

    def start(self, job: Job, context: JobContext, run_id: str) -> None:
        started = self.clock.now().wall
        outcome = job.run(context)
        self.inbox.put(Finished(context.task_id, run_id, outcome, started, self.clock.now().wall))

    def busy(self) -> int:
        return 0

    def free(self) -> int:
        return 1

    def shutdown(self) -> None:
        pass


class Harness:
    def __init__(self, store: MemoryStore | None = None, clock: FakeClock | None = None, pid: int = 100,
                 policies: Policies | None = None, starts: StartJournal | None = None,
                 **settings: Any) -> None:
        self.store = store or MemoryStore()
        self.store.create_database()
        self.clock = clock or FakeClock(wall=START, mono=50.0)
        self.ran: list[str] = []
        self.registry = JobRegistry([], entry_points=False)
        self.registry.register("record", self.record)
        self.registry.register("fail", self.fail)
        self.notifier = RecordingNotifier()
        self.settings = WorkerConfig(**{"claim_ahead": 1.0, "lease": 30.0, "horizon": 300.0, **settings})
        self.parts = assemble(Owner("manobi", "host", pid, 1.0), self.settings, self.store, self.registry,
                              self.notifier, self.clock, runner=lambda inbox: InlineRunner(inbox, self.clock),
                              policies=policies, starts=starts)
        self.worker, self.inbox = self.parts.worker, self.parts.inbox
        self.seq = self.store.update_seq()
        until = self.clock.now().wall + self.settings.horizon
        self.inbox.put(Loaded(list(self.store.live_tasks("manobi", until)), until, reconnect=True))

    def record(self, context: JobContext) -> str:
        self.ran.append(context.task_id)
        return f"ran {context.arguments}"

    def fail(self, context: JobContext) -> None:
        raise RuntimeError("disk full")

    def settle(self, rounds: int = 20) -> None:
        """Step until nothing is left to do: the loop, the writer, and the changes feed."""
        for _ in range(rounds):
            self.worker.step(self.clock.now())
            self.parts.flush()
            for change in self.store.pending_changes("manobi", int(self.seq)):
                self.seq = change.seq
                assert change.doc is not None
                self.inbox.put(Changed(change.doc))
            if self.inbox.empty() and self.parts.writer.idle():
                self.worker.step(self.clock.now())
                if self.inbox.empty():
                    return

    def advance(self, seconds: float, step: float = 0.25) -> None:
        moved = 0.0
        while moved < seconds:
            self.clock.advance(min(step, seconds - moved))
            moved += step
            self.settle()

    def add(self, task_id: str, offset: float, job: str = "record", status: str = "waiting",
            **fields: Any) -> None:
        doc = {"_id": task_id, "worker": "manobi", "date": format_date(START + offset),
               "job": {"name": job, "arguments": [1, "two"]}, "status": status, **fields}
        self.store.put(doc)

    def doc(self, task_id: str) -> Document:
        doc = self.store.get(task_id)
        assert doc is not None
        return doc


def test_a_waiting_task_is_scheduled_then_runs_at_its_date_and_ends_done() -> None:
    harness = Harness()
    harness.add("t1", 5.0)
    harness.settle()
    assert harness.doc("t1")["status"] == "scheduled"
    assert harness.doc("t1")["due"] == format_date(START + 5.0)
    harness.advance(4.5)
    assert harness.ran == []
    harness.advance(1.0)
    doc = harness.doc("t1")
    assert harness.ran == ["t1"]
    assert doc["status"] == "done"
    assert doc["result"]["outcome"] == "done"
    assert doc["result"]["output"] == "ran [1, 'two']"
    assert 0 <= doc["result"]["lateness_ms"] < 250
    assert doc["attempts"] == 1 and "claim" not in doc


def test_the_original_example_document_runs() -> None:
    harness = Harness()
    harness.registry.register("start_campaign", harness.record)
    harness.store.put({"_id": "example", "worker": "manobi", "date": "2011-10-12",
                       "job": {"name": "start_campaign", "arguments": [2, 3, "teste"]}, "status": "waiting"})
    harness.settle()
    assert harness.doc("example")["status"] == "done"
    assert harness.ran == ["example"]


def test_overdue_tasks_run_first_oldest_due_first() -> None:
    store = MemoryStore()
    for task_id, offset in [("c", -10.0), ("a", -30.0), ("d", 20.0), ("b", -20.0)]:
        store.put({"_id": task_id, "worker": "manobi", "date": format_date(START + offset),
                   "job": {"name": "record"}, "status": "scheduled"})
    harness = Harness(store)
    harness.settle()
    assert harness.ran == ["a", "b", "c"]
    harness.advance(21.0)
    assert harness.ran == ["a", "b", "c", "d"]


@pytest.mark.parametrize(("job", "date", "reason"), [
    ("missing_job", None, "unknown job 'missing_job' (installed: fail, record)"),
    ("record", "next tuesday", "date 'next tuesday' is not ISO 8601"),
])
def test_an_invalid_task_ends_err_with_a_reason_and_others_still_run(
        job: str, date: str | None, reason: str, caplog: pytest.LogCaptureFixture) -> None:
    harness = Harness()
    harness.add("bad", 0.0, job=job, **({"date": date} if date else {}))
    harness.add("good", 0.0)
    with caplog.at_level(logging.INFO, logger="after.worker"):
        harness.settle()
    assert harness.doc("bad")["status"] == "err"
    assert reason in harness.doc("bad")["result"]["reason"]
    assert harness.doc("good")["status"] == "done"
    rejected = [record for record in caplog.records if getattr(record, "task_id", None) == "bad"]
    assert [record.levelname for record in rejected] == ["WARNING"]  # the worker's log says which task, why
    assert rejected[0].getMessage().startswith(f"task bad rejected: {reason}")


def test_a_job_uninstalled_before_its_date_ends_err_and_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    harness = Harness()
    harness.registry.register("soon_gone", harness.record)
    harness.add("t", 5.0, job="soon_gone")
    harness.settle()
    assert harness.doc("t")["status"] == "scheduled"
    del harness.registry.registered["soon_gone"]
    with caplog.at_level(logging.INFO, logger="after.worker"):
        harness.advance(6.0)
    assert harness.doc("t")["status"] == "err" and harness.ran == []
    reason = "unknown job 'soon_gone' (installed: fail, record)"
    assert harness.doc("t")["result"]["reason"] == reason
    assert ("WARNING", f"task t: {reason}") in [(record.levelname, record.getMessage())
                                                for record in caplog.records]


def test_a_failing_job_ends_err_with_the_exception() -> None:
    harness = Harness()
    harness.add("t", 0.0, job="fail")
    harness.settle()
    doc = harness.doc("t")
    assert doc["status"] == "err"
    assert doc["result"]["outcome"] == "failed"
    assert "RuntimeError: disk full" in doc["result"]["reason"]


def test_cancel_of_a_scheduled_task_means_it_never_runs() -> None:
    harness = Harness()
    harness.add("t", 10.0)
    harness.settle()
    doc = harness.doc("t")
    harness.store.put({**doc, "status": "cancel"})
    harness.advance(12.0)
    assert harness.doc("t")["status"] == "canceled"
    assert harness.ran == []


def test_reschedule_moves_the_date_and_reruns_a_finished_task() -> None:
    harness = Harness()
    harness.add("t", 1.0)
    harness.advance(2.0)
    assert harness.doc("t")["status"] == "done"
    doc = harness.doc("t")
    harness.store.put({**doc, "status": "reschedule", "date": format_date(START + 10.0)})
    harness.advance(5.0)
    assert harness.doc("t")["status"] == "scheduled"
    harness.advance(6.0)
    assert harness.ran == ["t", "t"]
    assert harness.doc("t")["status"] == "done"
    assert len(harness.doc("t")["history"]) == 2


def test_an_expired_claim_of_a_dead_process_is_taken_over_and_recorded() -> None:
    store = MemoryStore()
    store.put({"_id": "t", "worker": "manobi", "date": format_date(START - 60), "job": {"name": "record"},
               "status": "running", "attempts": 1,
               "claim": {"by": {"worker": "manobi", "host": "other", "pid": 7, "started": 1.0},
                         "at": format_date(START - 60), "lease_until": format_date(START + 5)}})
    harness = Harness(store)
    harness.settle()
    assert harness.ran == []  # the lease still holds
    harness.advance(5.5)
    assert harness.ran == []  # ran out, but within the margin allowed for clocks of other hosts
    harness.advance(1.0)
    doc = harness.doc("t")
    assert harness.ran == ["t"]
    assert doc["status"] == "done" and doc["attempts"] == 2
    assert doc["history"][0]["outcome"] == "interrupted"
    assert doc["history"][0]["by"] == "manobi@other:7"


def test_two_processes_with_the_same_name_run_each_task_once() -> None:
    store, clock = MemoryStore(), FakeClock(wall=START, mono=50.0)
    first, second = Harness(store, clock, pid=1), Harness(store, clock, pid=2)
    for number in range(20):
        first.add(f"t{number}", 2.0 + number * 0.1)
    for _ in range(40):
        clock.advance(0.25)
        first.settle()
        second.settle()
    assert sorted(first.ran + second.ran) == sorted(f"t{number}" for number in range(20))
    assert all(first.doc(f"t{number}")["status"] == "done" for number in range(20))


def test_far_future_tasks_stay_in_the_database_until_the_horizon_reaches_them() -> None:
    harness = Harness(horizon=60.0)
    harness.add("far", 600.0)
    harness.add("near", 30.0)
    harness.settle()
    assert harness.doc("far")["status"] == "scheduled"
    assert set(harness.worker.state.entries) == {"near"}
    harness.advance(560.0, step=5.0)
    assert "far" in harness.worker.state.entries
    harness.advance(45.0, step=1.0)
    assert harness.ran == ["near", "far"]


def test_stop_releases_a_claimed_task_that_has_not_started() -> None:
    harness = Harness(claim_ahead=5.0)
    harness.add("t", 3.0)
    harness.settle()
    assert harness.doc("t")["status"] == "running"  # claimed ahead of its date
    harness.worker.stopping.begin(harness.clock.now())
    harness.settle()
    assert harness.doc("t")["status"] == "scheduled"
    assert harness.worker.stopping.stopped(harness.clock.now())
    assert "STOPPING=1" in harness.notifier.messages
    assert harness.ran == []


def test_ready_and_status_reach_the_notifier() -> None:
    harness = Harness()
    harness.add("t", 0.0)
    harness.advance(1.5)
    first_ready = harness.notifier.messages.index("READY=1")
    assert harness.notifier.messages[first_ready - 1].startswith("STATUS=0 armed")
    statuses = [message for message in harness.notifier.messages if message.startswith("STATUS=")]
    assert statuses[-1] == "STATUS=0 armed, 0 running, 1 done, 0 failed; CouchDB unreachable"


def test_a_claim_taken_over_before_the_start_is_never_run() -> None:
    harness = Harness(lease=4.0, claim_ahead=3.5)
    harness.add("t", 4.0)
    harness.advance(1.0)
    doc = harness.doc("t")
    assert doc["status"] == "running" and harness.worker.state.owner.owns(doc)
    other = {"worker": "manobi", "host": "elsewhere", "pid": 9, "started": 1.0}
    harness.store.put({**doc, "claim": {**doc["claim"], "by": other, "lease_until": format_date(START + 99)}})
    harness.advance(5.0)
    assert harness.ran == []
    assert harness.doc("t")["claim"]["by"] == other


def test_a_job_starts_only_under_a_lease_with_half_its_length_left() -> None:
    harness = Harness(lease=4.0, claim_ahead=3.5)
    harness.add("t", 4.0)
    harness.advance(1.0)
    harness.worker.next_tick = float("inf")  # no housekeeping: no routine renewals
    assert revision_generation(harness.doc("t")["_rev"]) == 3  # written, acknowledged, claimed
    harness.advance(3.5)
    assert harness.ran == ["t"]
    assert revision_generation(harness.doc("t")["_rev"]) == 5  # renewed before the start, finished


def test_an_internal_error_on_one_task_does_not_stop_the_others() -> None:
    harness = Harness()
    resolve = harness.registry.resolve

    def broken_for_one(name: str) -> Job | None:
        if name == "explodes":
            raise OSError("jobs directory unreadable")
        return resolve(name)

    harness.registry.resolve = broken_for_one  # type: ignore[method-assign]
    harness.add("bad", 0.0, job="explodes")
    harness.add("good", 0.0)
    harness.settle()
    assert harness.ran == ["good"]
    assert harness.doc("bad")["status"] == "waiting"  # untouched, for the next attempt


def test_the_writer_reports_a_failed_write_and_keeps_going() -> None:
    store, inbox = MemoryStore(), queue.Queue[Event]()
    store.put({"_id": "t", "worker": "manobi"})
    writer = StoreWriter(store, "manobi", inbox, threading.Event())

    def broken(doc: Document) -> Document | None:
        raise ValueError("bug in a transform")

    writer.submit(WriteRequest("t", "claim", {"_id": "t"}, broken))
    writer.flush()
    answer = inbox.get_nowait()
    assert isinstance(answer, Written) and answer.ok is False
    writer.submit(WriteRequest("t", "claim", store.get("t") or {}, lambda doc: {**doc, "status": "x"}))
    writer.flush()
    assert (store.get("t") or {}).get("status") == "x" and writer.idle()
