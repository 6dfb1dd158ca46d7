"""Which process of a worker name claims which task first: rendezvous hashing over the live processes.

Processes of one worker name (on one host or several) see the same tasks. If all of them claimed
every task, they would race for each claim: on a CouchDB cluster such races can leave no winner (every
claim 202 Accepted), which costs a lease, and conflicting revisions to clean up. So each task has a
preferred process: of the live processes (``after.worker.presence``), the one with the highest hash of
(process, task). The preferred process claims it as usual; the others claim it only ``HELP_DELAY``
seconds after it became due (or after they learned of it), if it is still unclaimed then: the preferred
process died, is cut off, or has more due tasks than it can start soon (``after.worker.budget``).
Every process computes the same preference from the same membership; while memberships differ (a
process joins or leaves), two processes may both claim, which the claim protocol resolves.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

HELP_DELAY = 3.0  # long enough for the preferred process's answer to come through the feed under load


def score(member: str, task_id: str) -> int:
    digest = hashlib.blake2b(f"{member}\n{task_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


class TaskSharing:
    def __init__(self, me: str) -> None:
        self.me = me
        self.members: tuple[str, ...] = (me,)

    def update(self, members: Sequence[str]) -> bool:
        """The live processes now (this one is always among them); True when that changed."""
        new = tuple(sorted({*members, self.me}))
        changed = new != self.members
        self.members = new
        return changed

    def prefers_me(self, task_id: str) -> bool:
        if len(self.members) == 1:
            return True
        return max(self.members, key=lambda member: score(member, task_id)) == self.me

    def claim_at(self, task_id: str, due: float, now: float, claim_ahead: float) -> float:
        """When this process should claim a task due at ``due``: ahead of it if preferred, else later."""
        if self.prefers_me(task_id):
            return due - claim_ahead
        return max(due, now) + HELP_DELAY
