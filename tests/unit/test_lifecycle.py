"""The per-task phase table (``after.worker.lifecycle``): every phase is reachable and can end, and a
move the table does not list is refused."""

from __future__ import annotations

import pytest

from after.worker.lifecycle import ENTERING, IN_FLIGHT, MOVES, WAITING, IllegalMove, Phase, move
from after.worker.state import Entry


def reachable(start: frozenset[Phase]) -> set[Phase]:
    seen, frontier = set(start), list(start)
    while frontier:
        for phase in MOVES[frontier.pop()]:
            if phase not in seen:
                seen.add(phase)
                frontier.append(phase)
    return seen


def test_every_phase_is_reachable_from_where_tasks_enter() -> None:
    assert reachable(ENTERING) == set(Phase)


def test_every_claim_ends_in_a_written_result_or_release() -> None:
    for phase in IN_FLIGHT:
        assert Phase.FINISHING in reachable(frozenset({phase})), phase


def test_a_phase_is_either_waiting_or_in_flight() -> None:
    assert set(Phase) == WAITING | IN_FLIGHT and not WAITING & IN_FLIGHT


def test_a_move_the_table_does_not_list_is_refused() -> None:
    entry = Entry({}, 0.0, Phase.ARMED)
    with pytest.raises(IllegalMove, match="from armed to running"):
        move(entry, Phase.RUNNING)
    assert entry.phase == Phase.ARMED
    for phase in (Phase.READY, Phase.CLAIMING, Phase.CLAIMED, Phase.RUNNING, Phase.FINISHING):
        move(entry, phase)
    assert entry.phase == Phase.FINISHING
