"""How many tasks one worker process may hold claimed but not yet started.

A claim keeps other processes of the same worker name away until its lease runs out, so a process
that dies holding many claims strands them, and records attempts that may never have started. A process
therefore claims only what it can start before its next claims come back: its free job slots, plus as
many as its slots get through (at recent job run times, an exponential average) in ``WINDOW`` seconds
and twice the time its writes take now. Short jobs allow many (a burst of no-op tasks is claimed in one
go), slow jobs one more than the free slots. Due tasks beyond that wait, unclaimed, for this process's
next round or for another process of the same name. A claim taken ahead of its date (``claim_ahead``)
is not counted: its job starts at that date, and if its process dies before, it is taken over without
an attempt recorded.
"""

from __future__ import annotations

WINDOW = 0.1  # seconds of work claimed ahead, beyond what covers the round trip of the claims
FIRST_GUESS = 0.001  # seconds a job runs, before any has finished here (a burst is claimed at once)
MOST = 1000  # claims held at once, whatever the run times
SMOOTHING = 0.2


class ClaimBudget:
    def __init__(self, concurrency: int) -> None:
        self.concurrency = concurrency
        self.mean_run = FIRST_GUESS
        self.held: set[str] = set()  # task ids claimed (or being claimed) and not started

    def ran(self, seconds: float) -> None:
        """A job ran this long: the estimate of how fast slots free up follows it."""
        self.mean_run += SMOOTHING * (max(0.0, seconds) - self.mean_run)

    def allowed(self, busy: int, write_seconds: float = 0.0) -> int:
        """Claims this process may hold now, ``busy`` jobs running, its writes taking ``write_seconds``."""
        free = max(0, self.concurrency - busy)
        ahead = WINDOW + 2.0 * write_seconds
        through = int(self.concurrency * ahead / max(self.mean_run, 1e-4)) - busy
        return max(free + 1, min(MOST, through))

    def room(self, busy: int, write_seconds: float = 0.0) -> int:
        return max(0, self.allowed(busy, write_seconds) - len(self.held))

    def hold(self, task_id: str) -> None:
        self.held.add(task_id)

    def release(self, task_id: str) -> None:
        self.held.discard(task_id)
