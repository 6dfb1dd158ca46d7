"""Start journals (issue 7, item 3): a takeover of a dead process's claim on the same host records an
interrupted run, and counts an attempt, only when that claim started its job."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from after.contracts import Job, JobContext, Outcome
from after.core.dates import format_date
from after.core.task import Document
from after.core.transitions import Owner, StartEvidence, claim, takeover_record
from after.store.memory import MemoryStore
from after.worker.io.starts import COMPACT_LINES, StartsFile, default_directory, journal_name, process_of
from after.worker.starts import Journaled, MemoryStarts
from tests.unit.test_worker import START, Harness

NOW = 1_800_000_000.0
ME = Owner("manobi", "host-a", 10, 5.0)
DEAD = Owner("manobi", "host-a", 20, 6.0)
BOOT = 1.0


def ahead_claim(date: float, at: float, by: Owner = DEAD) -> Document:
    """A task claimed ahead of its date by ``by``, whose lease holds."""
    lease = {"by": by.as_dict(), "at": format_date(at), "lease_until": format_date(NOW + 50.0)}
    return {"_id": "t", "_rev": "3-x", "worker": "manobi", "date": format_date(date), "status": "running",
            "job": {"name": "record", "arguments": []}, "attempts": 1, "claim": lease}


def dead(by: dict[str, Any]) -> bool:
    return bool(by["pid"] == DEAD.pid)


def witness(evidence: StartEvidence) -> Any:
    return lambda task_id, claim_field: evidence


# ---- the core's decision --------------------------------------------------------------------------------

def test_a_dead_claim_past_its_date_that_never_started_is_neither_an_attempt_nor_an_interruption() -> None:
    doc = ahead_claim(NOW - 10.0, NOW - 11.0)
    taken = claim(doc, ME, NOW, 30.0, NOW - 10.0, dead, started=witness(StartEvidence.NOT_STARTED))
    assert taken is not None and ME.owns(taken)
    assert taken["attempts"] == 1 and "history" not in taken


def test_a_dead_claim_whose_job_started_is_recorded_as_interrupted_and_counted() -> None:
    doc = ahead_claim(NOW - 10.0, NOW - 11.0)
    taken = claim(doc, ME, NOW, 30.0, NOW - 10.0, dead, started=witness(StartEvidence.STARTED))
    assert taken is not None and taken["attempts"] == 2
    record = taken["history"][-1]
    assert record["outcome"] == "interrupted" and record["attempt"] == 1
    assert "start journal says so" in record["reason"] and record["by"] == "manobi@host-a:20"


def test_without_a_journal_a_dead_claim_past_its_date_may_have_started() -> None:
    doc = ahead_claim(NOW - 10.0, NOW - 11.0)
    taken = claim(doc, ME, NOW, 30.0, NOW - 10.0, dead)
    assert taken is not None and taken["attempts"] == 2
    assert "may have started" in taken["history"][-1]["reason"]
    assert takeover_record(ahead_claim(NOW + 5.0, NOW - 1.0), NOW + 5.0, NOW) is None  # date to come


def test_the_journal_is_not_asked_about_a_live_process_whose_lease_ran_out() -> None:
    doc = {**ahead_claim(NOW - 10.0, NOW - 11.0), "claim": {
        "by": DEAD.as_dict(), "at": format_date(NOW - 11.0), "lease_until": format_date(NOW - 5.0)}}
    asked: list[str] = []

    def started(task_id: str, claim_field: dict[str, Any]) -> StartEvidence:
        asked.append(task_id)
        return StartEvidence.NOT_STARTED

    taken = claim(doc, ME, NOW, 30.0, NOW - 10.0, lambda by: False, started=started)
    assert taken is not None and taken["attempts"] == 2 and taken["history"][-1]["outcome"] == "interrupted"
    assert asked == []  # it may still start its job after a journal was read


# ---- the journal file -----------------------------------------------------------------------------------

def journal(directory: Path, owner: Owner, alive: set[int] | None = None, **options: Any) -> StartsFile:
    living = alive if alive is not None else {ME.pid}
    return StartsFile(directory, owner, lambda by: by["pid"] not in living, BOOT,
                      options.pop("keep", 3600.0), **options)


def claim_of(owner: Owner, at: str) -> dict[str, Any]:
    return {"by": owner.as_dict(), "at": at, "lease_until": at}


def test_a_dead_process_journal_tells_which_claims_started(tmp_path: Path) -> None:
    theirs = journal(tmp_path, DEAD, alive={ME.pid, DEAD.pid})
    theirs.record("t1", "2027-01-01T00:00:00.000Z")
    theirs.record("weird\nid\ud800", "2027-01-01T00:00:01.000Z")
    mine = journal(tmp_path, ME)  # the process of DEAD is killed meanwhile: nothing more is written
    assert mine.evidence("t1", claim_of(DEAD, "2027-01-01T00:00:00.000Z")) == StartEvidence.STARTED
    weird = claim_of(DEAD, "2027-01-01T00:00:01.000Z")
    assert mine.evidence("weird\nid\ud800", weird) == StartEvidence.STARTED
    assert mine.evidence("t1", claim_of(DEAD, "2027-01-01T00:05:00.000Z")) == StartEvidence.NOT_STARTED
    assert mine.evidence("t2", claim_of(DEAD, "2027-01-01T00:00:00.000Z")) == StartEvidence.NOT_STARTED


def test_nothing_is_known_without_the_journal_on_another_host_or_from_before_the_boot(tmp_path: Path) -> None:
    mine = journal(tmp_path, ME)
    at = "2027-01-01T00:00:00.000Z"
    assert mine.evidence("t", claim_of(DEAD, at)) == StartEvidence.UNKNOWN  # no journal
    elsewhere = Owner("manobi", "host-b", DEAD.pid, DEAD.started)
    journal(tmp_path, elsewhere, alive={ME.pid, DEAD.pid})
    assert mine.evidence("t", claim_of(elsewhere, at)) == StartEvidence.UNKNOWN
    before_boot = Owner("manobi", "host-a", 30, BOOT - 10.0)
    journal(tmp_path, before_boot, alive={ME.pid, 30})
    assert mine.evidence("t", claim_of(before_boot, at)) == StartEvidence.UNKNOWN
    hostile = {"by": {"worker": "../x", "host": "host-a", "pid": 20, "started": 6.0}, "at": at}
    assert mine.evidence("t", hostile) == StartEvidence.UNKNOWN


def test_a_line_cut_short_by_a_kill_is_a_start_that_did_not_happen(tmp_path: Path) -> None:
    theirs = journal(tmp_path, DEAD, alive={ME.pid, DEAD.pid})
    theirs.record("t1", "a")
    with open(theirs.path, "ab") as file:
        file.write(b'["t2", "b')
    mine = journal(tmp_path, ME)
    assert mine.evidence("t1", claim_of(DEAD, "a")) == StartEvidence.STARTED
    assert mine.evidence("t2", claim_of(DEAD, "b")) == StartEvidence.NOT_STARTED


def test_compaction_keeps_the_claims_still_held(tmp_path: Path) -> None:
    theirs = journal(tmp_path, DEAD, alive={ME.pid, DEAD.pid})
    for number in range(COMPACT_LINES + 1):
        theirs.record(f"t{number}", "a")
    theirs.compact(lambda: [("t7", "a"), ("t99999", "a")])
    theirs.record("late", "b")
    mine = journal(tmp_path, ME)
    assert mine.evidence("t7", claim_of(DEAD, "a")) == StartEvidence.STARTED
    assert mine.evidence("late", claim_of(DEAD, "b")) == StartEvidence.STARTED
    assert mine.evidence("t8", claim_of(DEAD, "a")) == StartEvidence.NOT_STARTED
    assert len(theirs.path.read_text().splitlines()) == 2


def test_journals_of_dead_processes_are_removed_once_old(tmp_path: Path) -> None:
    old_dead = tmp_path / journal_name("manobi", 20, 6.0)
    young_dead = tmp_path / journal_name("manobi", 21, 6.0)
    old_alive = tmp_path / journal_name("manobi", 22, 6.0)
    for path in (old_dead, young_dead, old_alive):
        path.write_text("")
    for path in (old_dead, old_alive):
        os.utime(path, (NOW - 7200.0, NOW - 7200.0))
    for path in (young_dead, ):
        os.utime(path, (NOW - 10.0, NOW - 10.0))
    journal(tmp_path, ME, alive={ME.pid, 22}, wall=lambda: NOW)
    assert not old_dead.exists() and young_dead.exists() and old_alive.exists()
    assert process_of(old_alive.name) == {"worker": "manobi", "pid": 22, "started": 6.0}


def test_a_journal_that_cannot_be_written_is_removed_so_nothing_is_believed(tmp_path: Path) -> None:
    theirs = journal(tmp_path, DEAD, alive={ME.pid, DEAD.pid})
    theirs.record("t1", "a")
    assert theirs.fd is not None
    os.close(theirs.fd)
    theirs.fd = os.open(os.devnull, os.O_RDONLY)  # every write fails from now on
    theirs.record("t2", "b")
    assert not theirs.path.exists()
    assert journal(tmp_path, ME).evidence("t1", claim_of(DEAD, "a")) == StartEvidence.UNKNOWN


def test_a_directory_that_is_not_ours_alone_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    with pytest.raises(PermissionError):
        journal(shared, ME)


def test_the_directory_is_systemds_else_run_after_else_a_temporary_one(tmp_path: Path) -> None:
    assert default_directory({"RUNTIME_DIRECTORY": "/run/after:/run/other"}) == Path("/run/after")
    writable = tmp_path / "run-after"
    writable.mkdir()
    assert default_directory({}, run=writable) == writable
    assert default_directory({}, run=tmp_path / "missing").name == f"after-{os.getuid()}"


# ---- the worker: a process killed with claims taken ahead -----------------------------------------------

class HoldingRunner:
    """Takes jobs and runs them only when told: a process killed now had them queued, not started."""

    def __init__(self) -> None:
        self.held: list[tuple[Job, JobContext]] = []

    def start(self, job: Job, context: JobContext, run_id: str) -> None:
        self.held.append((job, context))

    def busy(self) -> int:
        return len(self.held)

    def free(self) -> int:
        return 4

    def shutdown(self) -> None:
        pass


def killed_with_a_queued_job(run_it: bool, journals: dict[str, set[tuple[str, str]]] | None) -> Document:
    """Process 1 claims a due task and queues its job (and runs it when ``run_it``), then dies;
    process 2 of the same host takes the claim over and runs the job."""
    store = MemoryStore()
    store.create_database()
    store.put({"_id": "t", "worker": "manobi", "date": format_date(START + 2.0),
               "job": {"name": "record", "arguments": []}, "status": "waiting"})
    first_owner = Owner("manobi", "host", 1, 1.0)
    first = Harness(store, pid=1,
                    starts=MemoryStarts(first_owner, journals) if journals is not None else None)
    runner = HoldingRunner()
    first.worker.state.ports.runner = runner
    first.advance(3.0)
    assert len(runner.held) == 1 and first.doc("t")["status"] == "running"
    if run_it:
        job, context = runner.held[0]
        assert isinstance(job, Journaled)
        job.run(context)  # its job started; the process is killed before it writes a result
    second_owner = Owner("manobi", "host", 2, 1.0)
    second = Harness(store, first.clock, pid=2,
                     starts=MemoryStarts(second_owner, journals) if journals is not None else None)
    second.worker.state.ports.is_dead = lambda by: by.get("pid") == 1
    second.advance(2.0)
    assert second.ran == ["t"]
    return second.doc("t")


def test_a_job_queued_but_never_started_by_a_killed_process_is_not_an_attempt() -> None:
    doc = killed_with_a_queued_job(run_it=False, journals={})
    assert doc["status"] == "done" and doc["attempts"] == 1
    assert [entry["outcome"] for entry in doc["history"]] == ["done"]


def test_a_job_started_by_a_killed_process_is_recorded_as_interrupted() -> None:
    doc = killed_with_a_queued_job(run_it=True, journals={})
    assert doc["status"] == "done" and doc["attempts"] == 2
    assert [entry["outcome"] for entry in doc["history"]] == ["interrupted", "done"]


def test_without_journals_a_queued_job_of_a_killed_process_counts_as_one_that_may_have_started() -> None:
    doc = killed_with_a_queued_job(run_it=False, journals=None)
    assert doc["attempts"] == 2 and [entry["outcome"] for entry in doc["history"]] == ["interrupted", "done"]


def test_the_loop_compacts_its_journal_to_the_claims_it_still_holds() -> None:
    owner = Owner("manobi", "host", 1, 1.0)
    starts = MemoryStarts(owner)
    harness = Harness(pid=1, starts=starts)
    harness.add("t", 1.0)
    starts.record("gone", "2027-01-01T00:00:00.000Z")
    harness.advance(1.5)
    assert harness.ran == ["t"] and starts.journals[owner.label] == set()


def test_a_journaled_job_keeps_its_name_and_outcome() -> None:
    class Named:
        name = "named"

        def run(self, context: JobContext) -> Outcome:
            return Outcome(status="done")

    noted: list[tuple[str, str]] = []

    class Recorder(MemoryStarts):
        def record(self, task_id: str, claim_at: str) -> None:
            noted.append((task_id, claim_at))

    job = Journaled(Named(), Recorder(ME), "t", "at")
    assert job.name == "named" and noted == []
    assert job.run(None).ok and noted == [("t", "at")]  # type: ignore[arg-type]


def test_an_executable_is_noted_just_before_its_process_starts_and_not_when_it_cannot(tmp_path: Path) -> None:
    from after.jobs.executable import ExecutableJob

    script = tmp_path / "job"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o755)
    noted: list[tuple[str, str]] = []

    class Recorder(MemoryStarts):
        def record(self, task_id: str, claim_at: str) -> None:
            noted.append((task_id, claim_at))

    def context(arguments: list[Any]) -> JobContext:
        return JobContext(task_id="t", worker="manobi", job_name="job", arguments=arguments, document={},
                          attempt=1, timeout=10.0, output_limit=100)

    job = Journaled(ExecutableJob("job", script), Recorder(ME), "t", "at")
    assert job.run(context(["nul\x00byte"])).status == "err" and noted == []  # no process: no start
    assert job.run(context([])).ok and noted == [("t", "at")]
