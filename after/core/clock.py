"""Clocks: wall time for dates, monotonic time for deadlines. Passed in, never imported as globals."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Instant:
    """One reading of both clocks, taken together: ``wall`` in epoch seconds, ``mono`` monotonic."""

    wall: float
    mono: float


class Clock(Protocol):
    def now(self) -> Instant:
        """Read both clocks."""

    def sleep(self, seconds: float) -> None:
        """Sleep (a fake clock advances instead)."""


class SystemClock:
    def now(self) -> Instant:
        return Instant(time.time(), time.monotonic())

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds))


class FakeClock:
    """A clock that moves only when told to; ``jump`` moves the wall clock alone."""

    def __init__(self, wall: float = 1_700_000_000.0, mono: float = 1000.0) -> None:
        self.wall = wall
        self.mono = mono
        self.lock = threading.Lock()

    def now(self) -> Instant:
        with self.lock:
            return Instant(self.wall, self.mono)

    def advance(self, seconds: float) -> Instant:
        with self.lock:
            self.wall += seconds
            self.mono += seconds
        return self.now()

    def jump(self, seconds: float) -> None:
        with self.lock:
            self.wall += seconds

    def sleep(self, seconds: float) -> None:
        self.advance(max(0.0, seconds))
