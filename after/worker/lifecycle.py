"""The life of one task in a worker process: its phases, the one table of moves between them, timer kinds.

A task enters the table when a document asks something of this process, in one of the first three
phases, and leaves it (``WorkerState.forget``) from any phase::

    DEFERRED                               another process answers it; looked at again HELP_DELAY later
    ARMED ────┐                            waiting for its claim time
    WATCHING ─┴─> READY ─> CLAIMING ─> CLAIMED ─┬──────────────> RUNNING ─> FINISHING
                  (queued for a claim)          └─> RENEWING ─┘      └──────────┘
                                                (lease renewed      (result or release written)
                                                 before starting)

``CLAIMED`` and ``RENEWING`` also move to ``FINISHING`` when the worker stops (the claim is released).
Every move goes through ``move``, which refuses one the table does not list: a bug, logged by the loop.
"""

from __future__ import annotations

import enum
from typing import Protocol


class Phase(enum.Enum):
    DEFERRED = "deferred"  # another process of this worker name answers it; looked at again later
    ARMED = "armed"  # waiting for its claim time
    WATCHING = "watching"  # claimed by another process; we watch its lease
    READY = "ready"  # its claim time has passed: queued for a claim, oldest due first
    CLAIMING = "claiming"  # the claim is being written
    CLAIMED = "claimed"  # ours, waiting for its date or a free job slot
    RENEWING = "renewing"  # ours and due, but its lease is renewed before the job starts
    RUNNING = "running"
    FINISHING = "finishing"  # result or release being written


MOVES: dict[Phase, frozenset[Phase]] = {
    Phase.DEFERRED: frozenset(),
    Phase.ARMED: frozenset({Phase.READY}),
    Phase.WATCHING: frozenset({Phase.READY}),
    Phase.READY: frozenset({Phase.CLAIMING}),
    Phase.CLAIMING: frozenset({Phase.CLAIMED}),
    Phase.CLAIMED: frozenset({Phase.RENEWING, Phase.RUNNING, Phase.FINISHING}),
    Phase.RENEWING: frozenset({Phase.CLAIMED, Phase.FINISHING}),
    Phase.RUNNING: frozenset({Phase.FINISHING}),
    Phase.FINISHING: frozenset(),
}
ENTERING = frozenset({Phase.DEFERRED, Phase.ARMED, Phase.WATCHING})  # the phases a new entry starts in
WAITING = frozenset({Phase.DEFERRED, Phase.ARMED, Phase.WATCHING, Phase.READY})  # nothing written yet
IN_FLIGHT = frozenset({Phase.CLAIMING, Phase.CLAIMED, Phase.RENEWING, Phase.RUNNING, Phase.FINISHING})
OURS = frozenset({Phase.CLAIMED, Phase.RENEWING, Phase.RUNNING})  # our claim stands: its lease is renewed
ARMED_COUNT = frozenset({Phase.ARMED, Phase.READY, Phase.CLAIMING, Phase.CLAIMED, Phase.RENEWING})


class Phased(Protocol):
    phase: Phase  # a task in hand (``after.worker.state.Entry``)


class IllegalMove(RuntimeError):
    """A move the table does not list: a bug in the worker."""


def move(entry: Phased, to: Phase) -> None:
    if to not in MOVES[entry.phase]:
        raise IllegalMove(f"a task cannot go from {entry.phase.value} to {to.value}")
    entry.phase = to


class TimerKind(enum.Enum):
    """What a deadline in the worker's timer is for; keyed ``(kind, task id)``."""

    CLAIM = "claim"  # an armed task's claim time
    LEASE = "lease"  # a watched task's lease runs out: take it over
    HELP = "help"  # a deferred task nobody answered
    START = "start"  # a task claimed ahead of its date reaches it


class JobStop(enum.Enum):
    """Why a running job was asked to stop (its ``canceled`` event set)."""

    CANCELED = "canceled"  # the client canceled the task
    GONE = "gone"  # the document was deleted or moved to another worker
    TAKEN_OVER = "taken over"  # another process holds the claim now
    UNKEPT = "unkept"  # a write for it was refused: it must not go on under a claim we cannot keep
    FENCED = "fenced"  # its lease could not be renewed and runs out
    SHUTDOWN = "shutdown"  # the worker stops and its grace is over: released, to run again later
