"""The worker's document writes as pure functions: what each does to a document, and when it stands back."""

from __future__ import annotations

from typing import Any

from after.model import Document, format_date
from after.transitions import Owner, acknowledge, claim, finish, release, renew

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
    assert finish(claimed_by(OTHER, NOW + 1), ME, RESULT, history_limit=10) is None


def test_history_is_bounded() -> None:
    doc = claimed_by(ME, NOW + 1, history=[{"run": str(number)} for number in range(10)])
    new = finish(doc, ME, RESULT, history_limit=3)
    assert new is not None and [entry["run"] for entry in new["history"]] == ["8", "9", "r1"]
