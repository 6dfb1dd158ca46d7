"""The worker's document writes as pure functions: what each does to a document, and when it stands back."""

from __future__ import annotations

from typing import Any

from after.core.dates import format_date
from after.core.task import MAX_TASK_CHARS, Document, json_chars
from after.core.transitions import Owner, acknowledge, claim, finish, fit, reject, release, renew

NOW = 1_800_000_000.0
ME = Owner("manobi", "host-a", 10, 5.0)
OTHER = Owner("manobi", "host-b", 20, 6.0)


def task(status: str, **fields: Any) -> Document:
    return {"_id": "t", "_rev": "3-x", "worker": "manobi", "date": format_date(NOW), "status": status,
            "job": {"name": "record", "arguments": []}, **fields}


def claimed_by(owner: Owner, lease_until: float, **fields: Any) -> Document:
    return task("running", attempts=1, claim={"by": owner.as_dict(), "at": format_date(NOW - 10),
                                              "lease_until": format_date(lease_until)}, **fields)


def never_dead(by: dict[str, Any]) -> bool:
    return False


def test_acknowledge_writes_scheduled_with_the_normalised_due_date() -> None:
    new = acknowledge(task("waiting", date="2011-10-12T10:00:00+02:00"), ME)
    assert new is not None and new["status"] == "scheduled" and new["due"] == "2011-10-12T08:00:00.000Z"
    assert acknowledge(task("cancel"), ME) is None
    assert acknowledge(task("waiting", worker="someone_else"), ME) is None


def test_claim_takes_a_scheduled_task_but_not_one_whose_date_changed() -> None:
    new = claim(task("scheduled"), ME, NOW, 30.0, NOW, never_dead)
    assert new is not None and new["status"] == "running" and new["attempts"] == 1
    assert new["claim"]["lease_until"] == format_date(NOW + 30.0) and ME.owns(new)
    assert claim(task("scheduled"), ME, NOW, 30.0, NOW - 1.0, never_dead) is None


def test_claim_takes_a_due_waiting_task_directly() -> None:
    new = claim(task("waiting"), ME, NOW, 30.0, NOW, never_dead)
    assert new is not None and new["status"] == "running" and new["due"] == format_date(NOW)
    assert claim(task("cancel"), ME, NOW, 30.0, NOW, never_dead) is None


def test_claim_stands_back_from_a_live_lease_and_takes_over_an_expired_one() -> None:
    assert claim(claimed_by(OTHER, NOW + 5), ME, NOW, 30.0, NOW, never_dead) is None
    taken = claim(claimed_by(OTHER, NOW - 1), ME, NOW, 30.0, NOW, never_dead)
    assert taken is not None and ME.owns(taken) and taken["attempts"] == 2
    assert taken["history"][-1]["outcome"] == "interrupted"
    assert taken["history"][-1]["by"] == "manobi@host-b:20"


def test_claim_takes_over_at_once_when_the_claiming_process_is_known_dead() -> None:
    taken = claim(claimed_by(OTHER, NOW + 600), ME, NOW, 30.0, NOW, lambda by: by["pid"] == 20)
    assert taken is not None and ME.owns(taken)


def test_renew_and_release_touch_only_our_own_claim() -> None:
    renewed = renew(claimed_by(ME, NOW + 1), ME, NOW, 30.0)
    assert renewed is not None and renewed["claim"]["lease_until"] == format_date(NOW + 30.0)
    assert renew(claimed_by(OTHER, NOW + 1), ME, NOW, 30.0) is None
    released = release(claimed_by(ME, NOW + 1), ME)
    assert released is not None and released["status"] == "scheduled" and "claim" not in released
    assert released["attempts"] == 0


RESULT = {"run": "r1", "outcome": "done", "output": "long output"}


def test_finish_writes_done_and_keeps_output_out_of_history() -> None:
    new = finish(claimed_by(ME, NOW + 1), ME, RESULT, history_limit=2)
    assert new is not None and new["status"] == "done" and "claim" not in new
    assert new["result"]["output"] == "long output" and "output" not in new["history"][-1]


def test_finish_honours_what_the_client_wrote_while_the_job_ran() -> None:
    canceled = finish(task("cancel", claim={"by": ME.as_dict()}), ME, RESULT, history_limit=10)
    assert canceled is not None and canceled["status"] == "canceled"
    rescheduled = finish(task("reschedule", claim={"by": ME.as_dict()}), ME, RESULT, history_limit=10)
    assert rescheduled is not None and rescheduled["status"] == "reschedule"
    assert rescheduled["history"][-1]["run"] == "r1"



def test_a_result_written_after_a_takeover_only_adds_a_late_record() -> None:
    late = finish(claimed_by(OTHER, NOW + 1), ME, RESULT, history_limit=10)
    assert late is not None and late["status"] == "running" and OTHER.owns(late)  # the new owner's task
    assert late["history"][-1]["run"] == "r1" and "lost its claim" in late["history"][-1]["late"]
    assert "output" not in late["history"][-1] and "result" not in late
    assert finish(late, ME, RESULT, history_limit=10) is None  # recorded once


def test_history_is_bounded() -> None:
    doc = claimed_by(ME, NOW + 1, history=[{"run": str(number)} for number in range(10)])
    new = finish(doc, ME, RESULT, history_limit=3)
    assert new is not None and [entry["run"] for entry in new["history"]] == ["8", "9", "r1"]


def test_takeover_of_a_claim_made_ahead_of_a_date_still_to_come_is_not_an_attempt() -> None:
    lease = {"by": OTHER.as_dict(), "at": format_date(NOW - 1.0), "lease_until": format_date(NOW + 59.0)}
    ahead = task("running", attempts=1, claim=lease, date=format_date(NOW + 5))
    taken = claim(ahead, ME, NOW, 30.0, NOW + 5, lambda by: by["pid"] == 20)  # its process is dead
    assert taken is not None and ME.owns(taken)
    assert taken["attempts"] == 1 and "history" not in taken  # one start to come: this one


def test_takeover_after_the_date_of_a_claim_made_ahead_records_that_the_job_may_have_started() -> None:
    lease = {"by": OTHER.as_dict(), "at": format_date(NOW - 61.0), "lease_until": format_date(NOW - 2.0)}
    ahead = task("running", attempts=1, claim=lease, date=format_date(NOW - 60))
    taken = claim(ahead, ME, NOW, 30.0, NOW - 60, never_dead)
    assert taken is not None and taken["attempts"] == 2
    assert "may have started" in taken["history"][-1]["reason"]


def test_worker_fields_of_the_wrong_type_are_read_as_nothing_and_rewritten() -> None:
    doc = task("scheduled", attempts="three", history={"not": "a list"})
    new = claim(doc, ME, NOW, 30.0, NOW, never_dead)
    assert new is not None and new["attempts"] == 1
    done = finish({**new, "history": "garbage"}, ME, RESULT, history_limit=10)
    assert done is not None and done["history"] == [{"run": "r1", "outcome": "done"}]


def test_reject_answers_a_task_whose_status_is_not_one_of_afters() -> None:
    for status in ("later", None):
        rejected = reject({**task("waiting"), "status": status}, "status must be one of ...", NOW)
        assert rejected is not None and rejected["status"] == "err"
    assert reject(task("done"), "whatever", NOW) is None


def test_fit_trims_the_workers_fields_never_the_clients() -> None:
    client = "c" * 40_000
    doc = task("done", job={"name": "record", "arguments": [client]},
               result={"outcome": "done", "output": "o" * 20_000},
               history=[{"reason": "r" * 1_000} for _ in range(10)])
    fitted = fit(doc, limit=MAX_TASK_CHARS)
    assert json_chars(fitted) <= MAX_TASK_CHARS
    assert fitted["job"]["arguments"] == [client]
    assert fitted["result"]["output"].endswith("o") and len(fitted["history"]) == 10  # the output gave way
    assert fit(task("done")) == task("done")
