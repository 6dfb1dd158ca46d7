"""Repeat, retry and missed runs in the worker (the same wiring as the daemon: ``assemble``'s default
policies), on the in-memory store and a fake clock: no sleeping, months of occurrences in a second."""

from __future__ import annotations

from typing import Any

import pytest

from after.config import ConfigError, parse
from after.contracts import JobContext
from after.core.dates import format_date, parse_date
from after.core.missed import Missed
from tests.unit.test_worker import START, Harness

HOUR = 3600.0


def every(period: str, count: str = "", offset: float = 0.0) -> str:
    return f"R{count}/{format_date(START + offset)}/{period}"


def run_next(harness: Harness, task_id: str) -> None:
    """Move the clock to the task's date in two jumps, then a few seconds past it in small steps."""
    gap = parse_date(harness.doc(task_id)["date"]) - harness.clock.now().wall
    if gap > 3.0:
        harness.advance(gap - 3.0, step=gap - 3.0)
    harness.advance(4.0, step=0.5)


def test_a_series_runs_each_occurrence_once_counts_down_and_ends_done() -> None:
    harness = Harness()
    harness.add("s", 0.0, repeat=every("PT1H", "3"))
    harness.advance(1.0)
    doc = harness.doc("s")
    assert harness.ran == ["s"] and doc["status"] == "scheduled"
    assert doc["date"] == doc["due"] == format_date(START + HOUR)
    assert doc["repeat"] == f"R2/{format_date(START + HOUR)}/PT1H"
    assert doc["attempts"] == 0 and doc["result"]["again"] == "repeat"
    assert doc["result"]["occurrence"] == format_date(START)
    run_next(harness, "s")
    run_next(harness, "s")
    doc = harness.doc("s")
    assert harness.ran == ["s", "s", "s"] and doc["status"] == "done"
    assert doc["result"]["series"] == "ended" and doc["repeat"] == f"R1/{format_date(START + 2 * HOUR)}/PT1H"
    assert [run["occurrence"] for run in doc["history"]] == [format_date(START + k * HOUR) for k in range(3)]
    assert all(0 <= run["lateness_ms"] < 500 for run in doc["history"])


def test_a_cron_series_in_lisbon_runs_every_weekday_for_two_months() -> None:
    harness = Harness(history_limit=100)
    first = parse_date("2027-03-01T08:00:00Z")  # a Monday, 08:00 WET
    harness.clock.advance(first - 10.0 - START)
    harness.store.put({"_id": "c", "worker": "manobi", "date": format_date(first), "status": "waiting",
                       "job": {"name": "record"}, "repeat": {"cron": "0 8 * * 1-5", "tz": "Europe/Lisbon"}})
    harness.settle()
    for _ in range(44):
        run_next(harness, "c")
    history = harness.doc("c")["history"]
    assert len(history) == 44 == len(harness.ran)
    occurrences = [run["occurrence"] for run in history]
    assert occurrences[:2] == ["2027-03-01T08:00:00.000Z", "2027-03-02T08:00:00.000Z"]
    assert "2027-03-29T07:00:00.000Z" in occurrences  # 08:00 WEST after the clocks went forward
    assert not any(text[:10] in ("2027-03-06", "2027-03-07") for text in occurrences)  # a weekend
    assert len(set(occurrences)) == 44 and all(run["outcome"] == "done" for run in history)


def test_a_retry_does_not_shift_the_series() -> None:
    harness = Harness()
    fails = {"left": 2}

    def flaky(context: JobContext) -> str:
        harness.ran.append(context.task_id)
        if fails["left"]:
            fails["left"] -= 1
            raise RuntimeError("busy")
        return "ok"

    harness.registry.register("flaky", flaky)
    harness.add("r", 0.0, job="flaky", repeat=every("PT1H"), retry={"retries": 3, "delay": "PT60S"})
    harness.advance(1.0)
    doc = harness.doc("r")
    assert doc["status"] == "scheduled" and doc["result"]["again"] == "retry"
    assert doc["occurrence"] == format_date(START) and doc["attempts"] == 1
    assert abs(parse_date(doc["date"]) - (START + 60.0)) < 1.0 and doc["repeat"] == every("PT1H")
    run_next(harness, "r")  # the second attempt fails too: 120 s later
    doc = harness.doc("r")
    assert doc["attempts"] == 2 and doc["result"]["retry"].startswith("attempt 3 of 4")
    run_next(harness, "r")  # the third succeeds: the series goes on at START + 1 h, not 1 h after it
    doc = harness.doc("r")
    assert doc["status"] == "scheduled" and doc["date"] == format_date(START + HOUR)
    assert "occurrence" not in doc and doc["attempts"] == 0
    assert [(run["attempt"], run["outcome"]) for run in doc["history"]] == [(1, "failed"), (2, "failed"),
                                                                            (3, "done")]


def test_retries_run_out_then_a_single_task_ends_err_with_every_attempt_recorded() -> None:
    harness = Harness()
    harness.add("x", 0.0, job="fail", retry={"retries": 2, "delay": "PT10S", "factor": 3})
    harness.advance(1.0)
    assert abs(parse_date(harness.doc("x")["date"]) - (START + 10.0)) < 1.0
    run_next(harness, "x")
    assert abs(parse_date(harness.doc("x")["date"]) - (START + 40.0)) < 1.5
    run_next(harness, "x")
    doc = harness.doc("x")
    assert doc["status"] == "err" and doc["attempts"] == 3 and len(harness.ran) == 0
    assert [run["reason"] for run in doc["history"]] == ["RuntimeError: disk full"] * 3


def test_a_retry_that_would_pass_the_next_occurrence_gives_way_to_it() -> None:
    harness = Harness()
    harness.add("g", 0.0, job="fail", repeat=every("PT30S"), retry={"retries": 5, "delay": "PT1M"})
    harness.advance(1.0)
    doc = harness.doc("g")
    assert doc["result"]["again"] == "repeat" and doc["date"] == format_date(START + 30.0)


def late_series(harness: Harness, **fields: Any) -> None:
    """An hourly series whose worker was down: its date 5 h 10 min ago."""
    harness.add("late", -5 * HOUR - 600.0, repeat=every("PT1H", offset=-5 * HOUR - 600.0), **fields)
    harness.advance(1.0)


def test_missed_occurrences_run_once_coalesced_and_recorded() -> None:
    harness = Harness()
    late_series(harness)
    doc = harness.doc("late")
    assert harness.ran == ["late"] and doc["result"]["outcome"] == "done"
    assert doc["result"]["missed"] == 5 and doc["result"]["missed_were"] == "coalesced into this run"
    assert doc["result"]["occurrence"] == format_date(START - 600.0)
    assert doc["date"] == format_date(START + HOUR - 600.0)  # the next one, not another missed one


def test_missed_occurrences_later_than_their_grace_are_skipped_and_recorded() -> None:
    harness = Harness()
    late_series(harness, missed="skip", grace="PT5M")
    doc = harness.doc("late")
    assert harness.ran == [] and doc["status"] == "scheduled"
    assert doc["result"]["outcome"] == "skipped"
    assert "more than its grace of 300 s" in doc["result"]["reason"]
    assert doc["result"]["missed"] == 5 and doc["result"]["missed_were"] == "skipped"
    assert doc["date"] == format_date(START + HOUR - 600.0)
    run_next(harness, "late")
    assert harness.ran == ["late"] and harness.doc("late")["result"]["outcome"] == "done"


def test_within_grace_the_latest_missed_occurrence_runs() -> None:
    harness = Harness(missed=Missed.SKIP, missed_grace=900.0)  # the worker's defaults
    late_series(harness)
    doc = harness.doc("late")
    assert harness.ran == ["late"] and doc["result"]["missed"] == 5
    assert doc["result"]["missed_were"] == "skipped"  # the five before it did not run
    assert doc["result"]["occurrence"] == format_date(START - 600.0)


def test_an_overdue_single_task_still_runs_unless_it_says_skip() -> None:
    harness = Harness(missed=Missed.SKIP, missed_grace=60.0)
    harness.add("old", -3 * HOUR)
    harness.add("strict", -3 * HOUR, missed="skip", grace="PT1H")
    harness.advance(1.0)
    assert harness.ran == ["old"] and harness.doc("old")["status"] == "done"
    strict = harness.doc("strict")
    assert strict["status"] == "err" and strict["result"]["outcome"] == "skipped"


def test_a_client_cancels_or_changes_a_series_like_any_task() -> None:
    harness = Harness()
    harness.add("s", 0.0, repeat=every("PT1H"))
    harness.advance(1.0)
    doc = harness.doc("s")
    harness.store.put({**doc, "status": "cancel"})
    run_next(harness, "s")
    assert harness.doc("s")["status"] == "canceled" and harness.ran == ["s"]
    doc = harness.doc("s")
    harness.store.put({**doc, "status": "reschedule", "repeat": {"cron": "*/10 * * * *"},
                       "date": format_date(START + 2 * HOUR)})
    run_next(harness, "s")
    run_next(harness, "s")
    doc = harness.doc("s")
    assert harness.ran == ["s"] * 3 and doc["date"] == format_date(START + 2 * HOUR + 1200.0)


def test_an_invalid_repeat_written_without_validation_ends_err_with_the_reason() -> None:
    harness = Harness()
    harness.add("bad", 0.0, repeat={"cron": "0 0 30 2 *"})
    harness.settle()
    doc = harness.doc("bad")
    assert doc["status"] == "err"
    assert doc["result"]["reason"].endswith("never runs: no month it names has day 30")


def cron_task(harness: Harness, task_id: str, first: str, cron: str, zone: str) -> None:
    harness.clock.advance(parse_date(first) - 10.0 - harness.clock.now().wall)
    harness.store.put({"_id": task_id, "worker": "manobi", "date": first, "status": "waiting",
                       "job": {"name": "record"}, "repeat": {"cron": cron, "tz": zone}})
    harness.settle()


def test_four_years_of_the_29th_in_lisbon_month_ends_and_a_leap_day() -> None:
    harness = Harness(history_limit=60)
    cron_task(harness, "m", "2027-01-29T12:00:00Z", "0 12 29 * *", "Europe/Lisbon")
    for _ in range(45):
        run_next(harness, "m")
    occurrences = [run["occurrence"] for run in harness.doc("m")["history"]]
    assert len(occurrences) == 45 == len(set(occurrences)) == len(harness.ran)
    days = [text[:10] for text in occurrences]
    assert "2028-02-29" in days and not any(day.endswith("02-29") for day in days if day[:4] != "2028")
    assert days[-1] == "2030-12-29" and "2027-07-29" in days
    assert "2027-07-29T11:00:00.000Z" in occurrences  # 12:00 WEST in summer, 12:00 WET (UTC) in winter


def test_a_new_york_series_across_both_dst_transitions_in_the_worker() -> None:
    harness = Harness()
    cron_task(harness, "ny", "2027-03-13T07:30:00Z", "30 2 * * *", "America/New_York")
    for _ in range(3):
        run_next(harness, "ny")
    spring = [run["occurrence"] for run in harness.doc("ny")["history"]]
    assert spring == ["2027-03-13T07:30:00.000Z", "2027-03-14T07:00:00.000Z", "2027-03-15T06:30:00.000Z"]
    cron_task(harness, "back", "2027-11-06T05:30:00Z", "30 1 * * *", "America/New_York")
    for _ in range(3):
        run_next(harness, "back")
    autumn = [run["occurrence"] for run in harness.doc("back")["history"]]
    assert autumn == ["2027-11-06T05:30:00.000Z", "2027-11-07T05:30:00.000Z", "2027-11-08T06:30:00.000Z"]


def test_a_client_reschedule_starts_retries_afresh_and_forgets_a_pending_retry() -> None:
    harness = Harness()
    harness.add("x", 0.0, job="fail", retry={"retries": 1, "delay": "PT1M"})
    harness.advance(1.0)
    run_next(harness, "x")
    doc = harness.doc("x")
    assert doc["status"] == "err" and doc["attempts"] == 2
    harness.store.put({**doc, "status": "reschedule", "date": format_date(START + 300.0)})
    harness.advance(1.0)
    assert harness.doc("x")["attempts"] == 0
    run_next(harness, "x")
    doc = harness.doc("x")
    assert doc["status"] == "scheduled" and doc["result"]["again"] == "retry" and doc["attempts"] == 1
    harness.store.put({**doc, "status": "reschedule", "date": format_date(START + 900.0)})
    harness.advance(1.0)
    doc = harness.doc("x")
    assert "occurrence" not in doc and doc["attempts"] == 0 and doc["date"] == format_date(START + 900.0)


def test_the_config_gives_the_missed_run_defaults() -> None:
    worker = parse({"worker": {"missed": "skip", "missed_grace": 60}}).worker
    assert worker.missed is Missed.SKIP and worker.missed_grace == 60.0
    assert parse({}).worker.missed is Missed.RUN_ONCE
    with pytest.raises(ConfigError, match="worker.missed must be one of run_once, skip"):
        parse({"worker": {"missed": "later"}})
