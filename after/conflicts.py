"""Settling the conflicting revisions After's own writes leave on a CouchDB cluster. Pure code.

On a cluster two writes of the same ``_rev`` can both be taken by some copies (``202 Accepted``): the
document then has several leaves, one of them the winner that everybody reads, the others listed in
``_conflicts``. A claim counts only with a quorum (``after.plumbing.CONFIRMED``), so a losing claim
never runs; what stays is its leaf, and sometimes a result or history written on a branch that lost.

``resolution`` says how to settle them: every losing leaf After wrote (a worker status) is deleted once
it can no longer be a live owner's branch, and whatever it recorded that the winner lacks (a run in its
history, its result) is added to the winner's history first, so the winner tells the whole story.
Leaves a client wrote are left alone (they are the client's conflicts). Deleting only losing leaves
never deletes the document: the winner stays.
"""

from __future__ import annotations

from typing import Any

from after.model import TERMINAL_STATUSES, WORKER_STATUSES, Document, Status, revision_generation, status_of
from after.transitions import HISTORY_LIMIT, TAKEOVER_MARGIN, history_of, lease_end, updated


def settled(leaf: Document, winner: Document, now: float) -> bool:
    """Can this losing leaf go? Not while it may be a live claim of a process that still holds it."""
    if status_of(leaf) not in WORKER_STATUSES:
        return False  # a client's write
    if status_of(leaf) != Status.RUNNING.value:
        return True
    if status_of(winner) in TERMINAL_STATUSES and \
            revision_generation(leaf.get("_rev")) < revision_generation(winner.get("_rev")):
        return True  # the task ended on another branch since
    return (lease_end(leaf) or 0.0) + TAKEOVER_MARGIN < now  # its lease ran out: nobody renews it


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


def resolution(winner: Document, losers: list[Document], now: float,
               history_limit: int = HISTORY_LIMIT) -> tuple[Document | None, list[Document]]:
    """The winner to write (None when it needs no change) and the deletions of settled losing leaves."""
    gone = [leaf for leaf in losers if leaf.get("_rev") != winner.get("_rev") and settled(leaf, winner, now)]
    history = history_of(winner)
    known = {entry_key(entry) for entry in recorded(winner)}
    for leaf in gone:
        for entry in recorded(leaf):
            if entry_key(entry) not in known:
                known.add(entry_key(entry))
                history.append({**entry, "branch": "conflict"} if isinstance(entry, dict) else entry)
    merged = None
    if len(history) != len(history_of(winner)):
        merged = updated(winner, history=history[-history_limit:])
        merged.pop("_conflicts", None)
    deletions = [{"_id": leaf["_id"], "_rev": leaf["_rev"], "_deleted": True} for leaf in gone]
    return merged, deletions
