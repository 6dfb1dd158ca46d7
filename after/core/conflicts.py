"""Settling the conflicting revisions After's own writes leave on a CouchDB cluster. Pure code.

On a cluster two writes of the same ``_rev`` can both be taken by some copies (``202 Accepted``): the
document then has several leaves, one of them the winner that everybody reads, the others listed in
``_conflicts``. A claim counts only with a quorum (``after.worker.io.writer.CONFIRMED``), so a losing claim
never runs; what stays is its leaf, and sometimes a result or history written on a branch that lost.

``resolution`` says how to settle them. The winner CouchDB picks is the longest branch, not the one
that got furthest: a claim that lost its quorum can win over the branch where the job ran and ended.
So the leaf that got furthest is written on top of the winner, with every run the other leaves
recorded in its history, so the winner tells the whole story; then the losing leaves After wrote are
deleted, except claims whose lease still holds (a live owner's branch, looked at again later). Leaves a
client wrote are left alone (they are the client's conflicts). Deleting only losing leaves never
deletes the document: the winner stays. The result depends only on the leaves, so processes that
settle the same conflict at once write the very same revision (CouchDB takes identical edits as one).
"""

from __future__ import annotations

from typing import Any

from after.core.task import (
    TERMINAL_STATUSES,
    WORKER_STATUSES,
    Document,
    Status,
    revision_generation,
    status_of,
)
from after.core.transitions import HISTORY_LIMIT, TAKEOVER_MARGIN, history_of, lease_end


def live_claim(leaf: Document, best: Document, now: float) -> bool:
    """A running leaf that may be a live owner's branch, so it is not touched: its lease still holds,
    and the task has not ended on a longer branch since."""
    if status_of(leaf) != Status.RUNNING.value:
        return False
    if status_of(best) in TERMINAL_STATUSES and \
            revision_generation(leaf.get("_rev")) < revision_generation(best.get("_rev")):
        return False
    return (lease_end(leaf) or 0.0) + TAKEOVER_MARGIN >= now


def entry_key(entry: Any) -> tuple[Any, ...]:
    if not isinstance(entry, dict):
        return (repr(entry),)
    return tuple(entry.get(key) for key in ("run", "outcome", "attempt", "started", "by"))


def recorded(leaf: Document) -> list[Any]:
    """What a leaf knows of runs: its history, and its result (without output) when that has a run."""
    entries = history_of(leaf)
    result = leaf.get("result")
    if isinstance(result, dict) and result.get("run"):
        entries.append({key: value for key, value in result.items() if key != "output"})
    return entries


def rank(leaf: Document) -> tuple[bool, int, str]:
    """How far a leaf got: an ended task beats one still under way, then the longer branch."""
    ended = status_of(leaf) in TERMINAL_STATUSES
    return (ended, revision_generation(leaf.get("_rev")), str(leaf.get("_rev")))


def resolution(winner: Document, losers: list[Document], now: float,
               history_limit: int = HISTORY_LIMIT) -> tuple[Document | None, list[Document]]:
    """The document to write on top of the winner (None: no change) and the leaves to delete.

    The leaf that got furthest (an ended task over a claim) becomes the winner's content, with every
    run the other leaves recorded added to its history. Losing leaves After wrote are deleted, except
    claims whose lease still holds (looked at again when it has run out); a client's leaves stay.
    """
    ours = sorted((leaf for leaf in losers if leaf.get("_rev") != winner.get("_rev")
                   and status_of(leaf) in WORKER_STATUSES), key=lambda leaf: str(leaf.get("_rev")))
    best = max([winner, *ours], key=rank)
    history = history_of(best)
    known = {entry_key(entry) for entry in recorded(best)}
    for leaf in [winner, *ours]:
        for entry in recorded(leaf):
            if leaf is not best and entry_key(entry) not in known:
                known.add(entry_key(entry))
                history.append({**entry, "branch": "conflict"} if isinstance(entry, dict) else entry)
    merged = None
    if best is not winner or len(history) != len(history_of(best)):
        merged = {**best, "_rev": winner["_rev"], "history": history[-history_limit:]}
        merged.pop("_conflicts", None)
    deletions = [{"_id": leaf["_id"], "_rev": leaf["_rev"], "_deleted": True}
                 for leaf in ours if not live_claim(leaf, best, now)]
    return merged, deletions
