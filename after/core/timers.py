"""The timer: deadlines on the monotonic clock, fired at the deadline itself, not at the next tick.

Three layers, each usable alone:

- ``Timer``: a heap of keyed monotonic deadlines (set, cancel, pop what is due). Pure.
- ``WallTimer``: deadlines given as wall-clock dates, kept on the monotonic clock, and re-based when
  the wall clock jumps (NTP step, manual change). Pure; the worker uses it.
- ``Scheduler``: a library for programs that want to run callables at a date or after a delay::

      from after.core.timers import Scheduler

      with Scheduler() as scheduler:
          scheduler.after(2.5, print, "two and a half seconds later")
          scheduler.at(datetime(2030, 1, 1, tzinfo=UTC), print, "happy new year")
          ...

  It runs callables in its own thread, sleeping until the next deadline or the one-second
  housekeeping tick (which detects wall-clock jumps), whichever comes first.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from after.core.clock import Clock, Instant, SystemClock

log = logging.getLogger(__name__)
Key = TypeVar("Key", bound=Hashable)
JUMP_TOLERANCE = 0.5  # seconds the wall clock may drift from the monotonic one before we re-base


class Timer(Generic[Key]):
    """Keyed deadlines on one clock. Setting a key again moves it; cancel is O(1) (lazy)."""

    def __init__(self) -> None:
        self.heap: list[tuple[float, int, Key]] = []
        self.deadlines: dict[Key, tuple[float, int]] = {}
        self.counter = itertools.count()

    def __len__(self) -> int:
        return len(self.deadlines)

    def __contains__(self, key: object) -> bool:
        return key in self.deadlines

    def set(self, key: Key, deadline: float) -> None:
        entry = (deadline, next(self.counter))
        self.deadlines[key] = entry
        heapq.heappush(self.heap, (*entry, key))

    def cancel(self, key: Key) -> bool:
        return self.deadlines.pop(key, None) is not None

    def deadline(self, key: Key) -> float | None:
        entry = self.deadlines.get(key)
        return entry[0] if entry else None

    def next_deadline(self) -> float | None:
        self.drop_stale()
        return self.heap[0][0] if self.heap else None

    def pop_due(self, now: float) -> list[Key]:
        """Remove and return every key whose deadline has come, earliest first (ties: first set)."""
        due: list[Key] = []
        while self.heap:
            self.drop_stale()
            if not self.heap or self.heap[0][0] > now:
                break
            _, _, key = heapq.heappop(self.heap)
            del self.deadlines[key]
            due.append(key)
        return due

    def drop_stale(self) -> None:
        while self.heap:
            deadline, order, key = self.heap[0]
            if self.deadlines.get(key) == (deadline, order):
                return
            heapq.heappop(self.heap)


class WallTimer(Generic[Key]):
    """Deadlines as wall-clock dates (epoch seconds), or as monotonic delays, fired on the monotonic clock.

    The offset between the two clocks is checked on every ``pop_due``; when the wall clock jumped,
    date deadlines are recomputed so they still fire at their date. Delays are not moved.
    """

    def __init__(self, now: Instant) -> None:
        self.timer: Timer[Key] = Timer()
        self.dates: dict[Key, float] = {}
        self.offset = now.wall - now.mono
        self.jumps = 0

    def __len__(self) -> int:
        return len(self.timer)

    def __contains__(self, key: object) -> bool:
        return key in self.timer

    def at(self, key: Key, date: float) -> None:
        self.dates[key] = date
        self.timer.set(key, date - self.offset)

    def after(self, key: Key, delay: float, now: Instant) -> None:
        self.dates.pop(key, None)
        self.timer.set(key, now.mono + delay)

    def cancel(self, key: Key) -> bool:
        self.dates.pop(key, None)
        return self.timer.cancel(key)

    def next_deadline(self) -> float | None:
        """The next deadline on the monotonic clock."""
        return self.timer.next_deadline()

    def pop_due(self, now: Instant) -> list[Key]:
        self.rebase(now)
        due = self.timer.pop_due(now.mono)
        for key in due:
            self.dates.pop(key, None)
        return due

    def rebase(self, now: Instant) -> bool:
        offset = now.wall - now.mono
        if abs(offset - self.offset) <= JUMP_TOLERANCE:
            return False
        log.warning("wall clock jumped by %+.3f s; re-basing %d dates", offset - self.offset, len(self.dates))
        self.offset = offset
        self.jumps += 1
        for key, date in self.dates.items():
            self.timer.set(key, date - offset)
        return True


@dataclass(frozen=True)
class Handle:
    """What ``Scheduler.at``/``after`` return; pass it to ``cancel``."""

    number: int


@dataclass
class Call:
    function: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)


class Scheduler:
    """Run callables at a date or after a delay, in a background thread (see the module docstring)."""

    def __init__(self, clock: Clock | None = None, tick: float = 1.0) -> None:
        self.clock = clock or SystemClock()
        self.tick = tick
        self.timer: WallTimer[Handle] = WallTimer(self.clock.now())
        self.calls: dict[Handle, Call] = {}
        self.numbers = itertools.count(1)
        self.condition = threading.Condition()
        self.thread: threading.Thread | None = None
        self.stopped = False

    def at(self, when: datetime | float, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Handle:
        """Run ``function(*args, **kwargs)`` at a date (an aware datetime or epoch seconds)."""
        date = when.timestamp() if isinstance(when, datetime) else float(when)
        with self.condition:
            handle = self.remember(Call(function, args, kwargs))
            earliest = self.timer.next_deadline()
            self.timer.at(handle, date)
            self.wake_if_earlier(earliest)
        return handle

    def after(self, delay: float, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Handle:
        """Run ``function(*args, **kwargs)`` after ``delay`` seconds (monotonic; immune to clock jumps)."""
        with self.condition:
            handle = self.remember(Call(function, args, kwargs))
            earliest = self.timer.next_deadline()
            self.timer.after(handle, delay, self.clock.now())
            self.wake_if_earlier(earliest)
        return handle

    def wake_if_earlier(self, earliest: float | None) -> None:
        """Wake the thread only when the new call is due before what it sleeps towards."""
        if earliest is None or (self.timer.next_deadline() or earliest) < earliest:
            self.condition.notify()

    def cancel(self, handle: Handle) -> bool:
        """Forget a call that has not run yet; False when it already ran or was canceled."""
        with self.condition:
            self.calls.pop(handle, None)
            return self.timer.cancel(handle)

    def pending(self) -> int:
        with self.condition:
            return len(self.calls)

    def remember(self, call: Call) -> Handle:
        handle = Handle(next(self.numbers))
        self.calls[handle] = call
        return handle

    def run_pending(self, now: Instant) -> int:
        """Run every call that is due at ``now``, earliest first; return how many ran."""
        with self.condition:
            due = [(handle, self.calls.pop(handle)) for handle in self.timer.pop_due(now)]
        for handle, call in due:
            try:
                call.function(*call.args, **call.kwargs)
            except Exception:
                log.exception("scheduled call %s (%r) failed", handle.number, call.function)
        return len(due)

    def wait_time(self, now: Instant) -> float:
        """Seconds until the next deadline or the next housekeeping tick, whichever comes first."""
        deadline = self.timer.next_deadline()
        until_deadline = self.tick if deadline is None else deadline - now.mono
        return max(0.0, min(self.tick, until_deadline))

    def loop(self) -> None:
        while True:
            with self.condition:
                if self.stopped:
                    return
                self.condition.wait(self.wait_time(self.clock.now()))
                if self.stopped:
                    return
            self.run_pending(self.clock.now())

    def start(self) -> Scheduler:
        self.thread = threading.Thread(target=self.loop, name="after-scheduler", daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        with self.condition:
            self.stopped = True
            self.condition.notify()
        if self.thread is not None and self.thread is not threading.current_thread():
            self.thread.join()

    def __enter__(self) -> Scheduler:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
