"""The timer on a fake clock: deadlines fire at the deadline, in order, and survive wall-clock jumps."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

from after.core.clock import FakeClock
from after.core.timers import Scheduler, Timer, WallTimer


def test_timer_pops_due_keys_earliest_first_and_keeps_the_rest() -> None:
    timer: Timer[str] = Timer()
    timer.set("late", 30.0)
    timer.set("early", 10.0)
    timer.set("middle", 20.0)
    assert timer.next_deadline() == 10.0
    assert timer.pop_due(25.0) == ["early", "middle"]
    assert timer.pop_due(25.0) == []
    assert len(timer) == 1 and timer.next_deadline() == 30.0


def test_timer_moving_or_canceling_a_key_forgets_its_old_deadline() -> None:
    timer: Timer[str] = Timer()
    timer.set("a", 10.0)
    timer.set("a", 50.0)
    timer.set("b", 20.0)
    assert timer.cancel("b") is True
    assert timer.cancel("b") is False
    assert timer.pop_due(40.0) == []
    assert timer.pop_due(50.0) == ["a"]


def test_equal_deadlines_fire_in_the_order_they_were_set() -> None:
    timer: Timer[int] = Timer()
    for key in range(5):
        timer.set(key, 1.0)
    assert timer.pop_due(1.0) == [0, 1, 2, 3, 4]


def test_wall_timer_fires_at_the_date_even_after_the_wall_clock_jumps() -> None:
    clock = FakeClock(wall=1000.0, mono=5.0)
    timer: WallTimer[str] = WallTimer(clock.now())
    timer.at("date", 1060.0)
    timer.after("delay", 60.0, clock.now())
    clock.jump(+30.0)  # NTP steps the wall clock forward: the date is now 30 s closer
    clock.advance(29.0)
    assert timer.pop_due(clock.now()) == []  # re-based here: date due at mono 35, delay at mono 65
    clock.advance(1.0)
    assert timer.pop_due(clock.now()) == ["date"]
    assert timer.jumps == 1
    clock.advance(30.0)
    assert timer.pop_due(clock.now()) == ["delay"]


def test_wall_timer_ignores_drift_below_the_tolerance() -> None:
    clock = FakeClock(wall=1000.0, mono=0.0)
    timer: WallTimer[str] = WallTimer(clock.now())
    timer.at("x", 1010.0)
    clock.jump(0.2)
    clock.advance(9.7)
    assert timer.pop_due(clock.now()) == []
    assert timer.jumps == 0


def test_scheduler_runs_due_calls_on_a_fake_clock_and_can_cancel() -> None:
    clock = FakeClock(wall=2_000_000_000.0, mono=0.0)
    scheduler = Scheduler(clock=clock)
    ran: list[str] = []
    scheduler.after(5.0, ran.append, "five")
    scheduler.at(datetime.fromtimestamp(2_000_000_002.5, UTC), ran.append, "date")
    dropped = scheduler.after(1.0, ran.append, "canceled")
    assert scheduler.cancel(dropped) is True
    assert scheduler.wait_time(clock.now()) == 1.0  # the tick: nothing is due within a second
    clock.advance(2.0)
    assert scheduler.wait_time(clock.now()) == 0.5  # the deadline comes before the next tick
    clock.advance(0.5)
    assert scheduler.run_pending(clock.now()) == 1
    clock.advance(2.5)
    scheduler.run_pending(clock.now())
    assert ran == ["date", "five"]
    assert scheduler.pending() == 0


def test_a_failing_call_does_not_stop_the_others() -> None:
    clock = FakeClock(mono=0.0)
    scheduler = Scheduler(clock=clock)
    ran: list[int] = []
    scheduler.after(1.0, lambda: 1 / 0)
    scheduler.after(1.0, ran.append, 1)
    clock.advance(1.0)
    assert scheduler.run_pending(clock.now()) == 2
    assert ran == [1]


def test_background_thread_fires_at_the_deadline_not_at_the_tick() -> None:
    fired = threading.Event()
    moments: list[float] = []
    with Scheduler(tick=10.0) as scheduler:  # a long tick: only the deadline can wake it
        start = time.monotonic()
        scheduler.after(0.05, lambda: (moments.append(time.monotonic() - start), fired.set()))
        assert fired.wait(5.0)
    assert moments[0] >= 0.05

