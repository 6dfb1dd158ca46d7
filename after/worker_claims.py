"""How many tasks one worker process may hold claimed but not yet started.

A claim keeps other processes of the same worker name away until its lease runs out, so a process
that dies holding many claims strands them. A process therefore claims only what it expects to start
within ``WINDOW`` seconds: its free job slots, plus as many as its recent job run times say its slots
get through in that window (an exponential average; short jobs allow many, long jobs one more than
the free slots). Due tasks beyond that wait in the queue, unclaimed, for another process to take.
"""

from __future__ import annotations

WINDOW = 2.0  # seconds: a claim is taken only for a job expected to start this soon
FIRST_GUESS = 0.01  # seconds a job runs, before any has finished here
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

    def allowed(self, busy: int) -> int:
        """Claims this process may hold now, ``busy`` jobs running."""
        free = max(0, self.concurrency - busy)
        through_window = int(self.concurrency * WINDOW / max(self.mean_run, 1e-4)) - busy
        return max(free + 1, min(MOST, through_window))

    def room(self, busy: int) -> int:
        return max(0, self.allowed(busy) - len(self.held))

    def hold(self, task_id: str) -> None:
        self.held.add(task_id)

    def release(self, task_id: str) -> None:
        self.held.discard(task_id)
