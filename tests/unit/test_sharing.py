"""Processes of one worker name share tasks (presence, rendezvous preference) and settle conflicts."""

from __future__ import annotations

from collections import Counter

from after.core.clock import FakeClock
from after.core.conflicts import resolution
from after.core.dates import format_date
from after.core.task import Document
from after.store.memory import MemoryStore
from after.worker.events import Peers
from after.worker.presence import Report, forgotten, is_alive, live_members, presence_document, state_of
from after.worker.sharing import HELP_DELAY, TaskSharing
from tests.unit.test_worker import START, Harness

NOW = 1_800_000_000.0


def test_every_task_has_exactly_one_preferred_process_and_the_shares_are_fair() -> None:
    members = ["p:a:1", "p:b:2", "p:c:3"]
    sharings = [TaskSharing(member) for member in members]
    for sharing in sharings:
        sharing.update(members)
    counts: Counter[str] = Counter()
    for number in range(3000):
        preferring = [sharing.me for sharing in sharings if sharing.prefers_me(f"task-{number}")]
        assert len(preferring) == 1
        counts[preferring[0]] += 1
    assert all(500 <= count <= 2000 for count in counts.values()), counts


def test_a_process_alone_prefers_everything_and_others_help_late() -> None:
    alone = TaskSharing("p:a:1")
    assert alone.prefers_me("x") and alone.claim_at("x", NOW, NOW - 10, 1.0) == NOW - 1.0
    pair = TaskSharing("p:a:1")
    assert pair.update(["p:a:1", "p:b:2"]) is True and pair.update(["p:b:2"]) is False  # itself always in
    other = next(f"t{number}" for number in range(100) if not pair.prefers_me(f"t{number}"))
    assert pair.claim_at(other, NOW, NOW - 10, 1.0) == NOW + HELP_DELAY
    assert pair.claim_at(other, NOW - 60, NOW, 1.0) == NOW + HELP_DELAY  # overdue: from when it is seen


def test_presence_says_who_is_alive_stopped_or_gone() -> None:
    doc = presence_document("manobi", "host-a", 10, NOW - 100, NOW, Report(node="http://n1:5984", done=3))
    assert doc["_id"] == "after-presence:manobi:host-a:10" and "worker" not in doc and "job" not in doc
    assert is_alive(doc, NOW + 14) and not is_alive(doc, NOW + 16)
    assert state_of(doc, NOW + 16) == "gone" and state_of(doc, NOW + 1) == "running"
    stopped = presence_document("manobi", "host-a", 11, NOW - 100, NOW, Report(), stopped=True)
    assert state_of(stopped, NOW) == "stopped" and live_members([doc, stopped], NOW) == [doc["_id"]]
    assert forgotten([doc], NOW + 2 * 86400) == [doc] and forgotten([doc], NOW + 60) == []


def leaf(rev: str, status: str, **fields: object) -> Document:
    return {"_id": "t", "_rev": rev, "worker": "manobi", "status": status, **fields}


def claim_field(owner: str, lease_until: float) -> dict[str, object]:
    return {"by": {"pid": owner}, "at": format_date(NOW - 5), "lease_until": format_date(lease_until)}


def test_a_losing_claim_is_kept_while_it_may_be_a_live_owners_branch() -> None:
    winner = leaf("3-b", "running", claim=claim_field("p2", NOW + 50), _conflicts=["3-a"])
    loser = leaf("3-a", "running", claim=claim_field("p1", NOW + 50))
    assert resolution(winner, [loser], NOW) == (None, [])
    expired = leaf("3-a", "running", claim=claim_field("p1", NOW - 5))
    assert resolution(winner, [expired], NOW) == (None, [{"_id": "t", "_rev": "3-a", "_deleted": True}])


def test_when_the_task_ended_the_losing_branches_go_and_their_runs_join_the_winners_history() -> None:
    run = {"run": "r1", "outcome": "done", "by": "manobi@a:1", "started": format_date(NOW - 3)}
    winner = leaf("5-x", "done", result=run, history=[run], _conflicts=["3-a", "4-c", "4-d"])
    claim_loser = leaf("3-a", "running", claim=claim_field("p1", NOW + 50))
    late_result = {"run": "r0", "outcome": "done", "by": "manobi@b:2", "started": format_date(NOW - 90)}
    result_loser = leaf("4-c", "done", result={**late_result, "output": "long"}, history=[late_result])
    client_leaf = leaf("4-d", "cancel")
    merged, deletions = resolution(winner, [claim_loser, result_loser, client_leaf], NOW)
    assert merged is not None and "_conflicts" not in merged and merged["status"] == "done"
    assert [entry["run"] for entry in merged["history"]] == ["r1", "r0"]
    assert merged["history"][-1]["branch"] == "conflict" and "output" not in merged["history"][-1]
    assert sorted(deletion["_rev"] for deletion in deletions) == ["3-a", "4-c"]  # not the client's


def test_a_claim_that_lost_its_quorum_but_won_couchdbs_pick_gives_way_to_the_ended_branch() -> None:
    run = {"run": "r1", "outcome": "done", "by": "manobi@a:1", "started": format_date(NOW - 3)}
    stale_claim = leaf("3-z", "running", claim=claim_field("p2", NOW + 25), _conflicts=["3-a"])
    ended = leaf("3-a", "done", result={**run, "output": "o"}, history=[run])
    merged, deletions = resolution(stale_claim, [ended], NOW)
    assert merged is not None and merged["_rev"] == "3-z"  # written on top of what everybody reads
    assert merged["status"] == "done" and merged["result"]["run"] == "r1" and merged["history"] == [run]
    assert deletions == [{"_id": "t", "_rev": "3-a", "_deleted": True}]


def test_the_preferred_process_answers_a_new_task_and_the_other_only_if_it_does_not() -> None:
    store, clock = MemoryStore(), FakeClock(wall=START, mono=50.0)
    first, second = Harness(store, clock, pid=1), Harness(store, clock, pid=2)
    members = (first.worker.state.sharing.me, second.worker.state.sharing.me)
    for harness in (first, second):
        harness.worker.state.sharing.update(members)
    prefers_first = first.worker.state.sharing.prefers_me
    task_id = next(f"t{number}" for number in range(100) if prefers_first(f"t{number}"))
    first.add(task_id, 60.0)
    second.settle()
    assert second.doc(task_id)["status"] == "waiting"  # not its task to answer
    first.settle()
    assert first.doc(task_id)["status"] == "scheduled" and first.doc(task_id)["_rev"].startswith("2-")
    other = next(f"u{number}" for number in range(100) if first.worker.state.sharing.prefers_me(f"u{number}"))
    first.add(other, 60.0)
    second.settle()
    for _ in range(int(HELP_DELAY / 0.25) + 2):  # the preferred process is silent (stopped, cut off)
        clock.advance(0.25)
        second.settle()
    assert second.doc(other)["status"] == "scheduled"


def test_peers_events_change_whom_the_loop_prefers() -> None:
    harness = Harness()
    harness.inbox.put(Peers(("after-presence:manobi:zz:1", "after-presence:manobi:zz:2")))
    harness.settle()
    assert len(harness.worker.state.sharing.members) == 3


def test_a_process_that_joins_later_gets_its_share_of_the_tasks_already_armed() -> None:
    """Issue 8, item 5: a process alone arms every task to claim it ahead of its date; when another
    process joins before those dates, the tasks the newcomer is preferred for become the newcomer's:
    the first process steps back to helping late, even though it always gets to claim first here."""
    store, clock = MemoryStore(), FakeClock(wall=START, mono=50.0)
    first = Harness(store, clock, pid=1)
    ids = [f"t{number:02d}" for number in range(40)]
    for task_id in ids:
        first.add(task_id, 30.0)
    first.settle()
    assert {first.doc(task_id)["status"] for task_id in ids} == {"scheduled"}
    second = Harness(store, clock, pid=2)  # reads the scheduled tasks when it starts
    members = (first.worker.state.sharing.me, second.worker.state.sharing.me)
    for harness in (first, second):
        harness.inbox.put(Peers(members))
        harness.settle()
    for _ in range(int((30.0 + HELP_DELAY + 2.0) / 0.25)):
        clock.advance(0.25)
        first.settle()  # the first process always claims first: only its preference holds it back
        second.settle()
    mine = {task_id for task_id in ids if second.worker.state.sharing.prefers_me(task_id)}
    by_second = {task_id for task_id in ids if first.doc(task_id)["result"]["by"].endswith(":2")}
    assert {first.doc(task_id)["status"] for task_id in ids} == {"done"}
    assert 10 <= len(mine) <= 30 and by_second == mine
