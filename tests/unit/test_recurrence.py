"""``repeat`` (``after.core.recurrence``, ``after.core.cron``) and ``retry`` (``after.core.retry``) as pure
functions: years of occurrences, DST in two zones, month ends and leap days, without a clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from after.core.dates import format_date, parse_date
from after.core.invalid import InvalidTask
from after.core.recurrence import (
    Cron,
    Interval,
    count_between,
    counted_down,
    latest_until,
    next_after,
    parse_repeat,
    to_ms,
)
from after.core.retry import Retry, parse_retry, retry_delay

LISBON, NEW_YORK = ZoneInfo("Europe/Lisbon"), ZoneInfo("America/New_York")


def utc(text: str) -> float:
    return parse_date(text)


def series(cron: str, tz: str = "UTC") -> Cron:
    parsed = parse_repeat({"cron": cron, "tz": tz})
    assert isinstance(parsed, Cron)
    return parsed


def run_times(repeat: Cron | Interval, since: float, count: int) -> list[str]:
    found, at = [], since
    for _ in range(count):
        following = next_after(repeat, at)
        if following is None:
            break
        found.append(format_date(following))
        at = following
    return found


def test_an_interval_counts_its_occurrences_down_and_ends() -> None:
    repeat = parse_repeat("R3/2026-12-01T08:00:00Z/PT1H")
    assert isinstance(repeat, Interval)
    assert run_times(repeat, utc("2026-11-30T00:00:00Z"), 5) == [
        "2026-12-01T08:00:00.000Z", "2026-12-01T09:00:00.000Z", "2026-12-01T10:00:00.000Z"]
    assert next_after(repeat, utc("2026-12-01T08:00:00Z")) == utc("2026-12-01T09:00:00Z")
    assert counted_down(repeat, to_ms(utc("2026-12-01T09:00:00Z"))) == "R2/2026-12-01T09:00:00.000Z/PT1H"
    assert next_after(repeat, utc("2026-12-01T10:00:00Z")) is None
    endless = parse_repeat("R/2026-12-01T08:00:00+01:00/P1D")
    assert isinstance(endless, Interval) and endless.count is None
    assert next_after(endless, utc("2036-12-01T07:00:00Z")) == utc("2036-12-02T07:00:00Z")
    assert counted_down(endless, to_ms(utc("2036-12-02T07:00:00Z"))) == "R/2036-12-02T07:00:00.000Z/P1D"


def test_an_interval_is_exact_in_utc_whatever_dst_does() -> None:
    repeat = parse_repeat("R/2026-03-28T12:00:00Z/P1D")
    assert run_times(repeat, utc("2026-03-28T12:00:00Z"), 2) == [
        "2026-03-29T12:00:00.000Z", "2026-03-30T12:00:00.000Z"]


def test_missed_occurrences_are_counted_and_the_latest_found() -> None:
    repeat = parse_repeat("R10/2026-12-01T08:00:00Z/PT1S")
    start = utc("2026-12-01T08:00:00Z")
    assert latest_until(repeat, start + 4.5, start) == start + 4.0
    assert count_between(repeat, start, start + 4.5) == 4
    assert latest_until(repeat, start + 100.0, start) == start + 9.0  # the series ends at its tenth
    assert count_between(repeat, start, start + 100.0) == 9
    daily = series("0 8 * * *", "Europe/Lisbon")
    assert latest_until(daily, utc("2026-12-05T09:00:00Z"), utc("2026-12-01T08:00:00Z")) == \
        utc("2026-12-05T08:00:00Z")
    assert count_between(daily, utc("2026-12-01T08:00:00Z"), utc("2026-12-05T09:00:00Z")) == 4
    assert latest_until(daily, utc("2026-12-01T09:00:00Z"), utc("2026-12-01T08:00:00Z")) == \
        utc("2026-12-01T08:00:00Z")


def test_weekdays_at_eight_in_lisbon_for_three_years() -> None:
    repeat = series("0 8 * * 1-5", "Europe/Lisbon")
    times = [parse_date(text) for text in run_times(repeat, utc("2026-01-01T00:00:00Z"), 3 * 261)]
    local = [datetime.fromtimestamp(instant, LISBON) for instant in times]
    assert all((moment.hour, moment.minute) == (8, 0) and moment.weekday() < 5 for moment in local)
    day, expected = datetime(2026, 1, 1), []
    while len(expected) < len(local):
        if day.weekday() < 5:
            expected.append(day.date())
        day += timedelta(days=1)
    assert [moment.date() for moment in local] == expected
    summer = datetime(2026, 7, 1, 8, tzinfo=LISBON).astimezone(UTC)
    assert format_date(summer.timestamp()) in run_times(repeat, utc("2026-06-30T08:00:00Z"), 1)
    assert summer.hour == 7  # 08:00 WEST is 07:00 UTC, 08:00 WET in winter is 08:00 UTC


@pytest.mark.parametrize(("zone", "cron", "since", "expected"), [
    # New York, clocks go forward 2026-03-08 02:00 EST -> 03:00 EDT: 02:30 runs when they jump (07:00Z)
    ("America/New_York", "30 2 * * *", "2026-03-06T12:00:00Z",
     ["2026-03-07T07:30:00.000Z", "2026-03-08T07:00:00.000Z", "2026-03-09T06:30:00.000Z"]),
    # New York, clocks go back 2026-11-01 02:00 EDT -> 01:00 EST: 01:30 runs once, the first time (EDT)
    ("America/New_York", "30 1 * * *", "2026-10-30T12:00:00Z",
     ["2026-10-31T05:30:00.000Z", "2026-11-01T05:30:00.000Z", "2026-11-02T06:30:00.000Z"]),
    # Lisbon, clocks go forward 2026-03-29 01:00 WET -> 02:00 WEST: 01:30 runs at the jump (01:00Z)
    ("Europe/Lisbon", "30 1 * * *", "2026-03-27T12:00:00Z",
     ["2026-03-28T01:30:00.000Z", "2026-03-29T01:00:00.000Z", "2026-03-30T00:30:00.000Z"]),
    # Lisbon, clocks go back 2026-10-25 02:00 WEST -> 01:00 WET: 01:30 once, in WEST (00:30Z)
    ("Europe/Lisbon", "30 1 * * *", "2026-10-23T12:00:00Z",
     ["2026-10-24T00:30:00.000Z", "2026-10-25T00:30:00.000Z", "2026-10-26T01:30:00.000Z"]),
    # every 15 minutes across the New York gap: 02:00-02:45 do not exist, one run at the jump
    ("America/New_York", "*/15 * * * *", "2026-03-08T06:40:00Z",
     ["2026-03-08T06:45:00.000Z", "2026-03-08T07:00:00.000Z", "2026-03-08T07:15:00.000Z"]),
    # every 30 minutes across the Lisbon repeated hour: 01:00 and 01:30 run once each, in WEST
    ("Europe/Lisbon", "*/30 * * * *", "2026-10-24T23:50:00Z",
     ["2026-10-25T00:00:00.000Z", "2026-10-25T00:30:00.000Z", "2026-10-25T02:00:00.000Z"]),
])
def test_dst_transitions(zone: str, cron: str, since: str, expected: list[str]) -> None:
    assert run_times(series(cron, zone), utc(since), len(expected)) == expected


def test_the_second_pass_of_a_repeated_hour_runs_nothing_already_run() -> None:
    repeat = series("*/30 * * * *", "America/New_York")
    # 2026-11-01 05:40Z is 01:40 EDT; from 06:10Z (01:10 EST, the second pass) the next is 02:00 EST
    assert next_after(repeat, utc("2026-11-01T06:10:00Z")) == utc("2026-11-01T07:00:00Z")
    assert next_after(repeat, utc("2026-11-01T05:40:00Z")) == utc("2026-11-01T07:00:00Z")


def test_month_ends_and_leap_days() -> None:
    last = series("0 0 31 * *")
    assert [text[:10] for text in run_times(last, utc("2026-01-01T00:00:00Z"), 7)] == [
        "2026-01-31", "2026-03-31", "2026-05-31", "2026-07-31", "2026-08-31", "2026-10-31", "2026-12-31"]
    leap = series("0 12 29 2 *", "Europe/Lisbon")
    assert run_times(leap, utc("2026-01-01T00:00:00Z"), 3) == [
        "2028-02-29T12:00:00.000Z", "2032-02-29T12:00:00.000Z", "2036-02-29T12:00:00.000Z"]
    thirtieth = series("0 6 30 * *", "America/New_York")
    assert [text[:10] for text in run_times(thirtieth, utc("2028-01-31T00:00:00Z"), 2)] == [
        "2028-03-30", "2028-04-30"]  # February has no 30th, even in a leap year
    monthly = series("@monthly", "America/New_York")
    assert run_times(monthly, utc("2026-12-15T00:00:00Z"), 2) == [
        "2027-01-01T05:00:00.000Z", "2027-02-01T05:00:00.000Z"]


def test_day_fields_match_either_when_both_are_given_and_names_and_seven_work() -> None:
    repeat = series("0 9 13 * fri")  # the 13th, and every Friday
    assert [text[:10] for text in run_times(repeat, utc("2026-11-01T00:00:00Z"), 4)] == [
        "2026-11-06", "2026-11-13", "2026-11-20", "2026-11-27"]
    assert run_times(series("0 9 * JAN 7"), utc("2027-01-01T00:00:00Z"), 1) == ["2027-01-03T09:00:00.000Z"]


@pytest.mark.parametrize(("value", "reason"), [
    ("R0/2026-12-01T08:00:00Z/PT1H", "repeat 'R0/2026-12-01T08:00:00Z/PT1H' has no occurrences (R0)"),
    ("every hour", "repeat 'every hour' is not an ISO 8601 repeating interval"),
    ("R5/2026-12-01T08:00:00Z/P1M", "repeat period 'P1M' is not an ISO 8601 duration"),
    ("R5/2026-13-01T08:00:00Z/PT1H", "date '2026-13-01T08:00:00Z' is not a real date"),
    ("R5/2026-12-01T08:00:00Z/PT0.5S", "repeat period must be at least 1 second (PT1S)"),
    (5, "repeat must be an ISO 8601 repeating interval like"),
    ({"cron": "0 8 * * 1-5", "zone": "UTC"}, "repeat must have only the fields cron and tz"),
    ({"tz": "UTC"}, 'repeat.cron must be a string like "0 8 * * 1-5", not null'),
    ({"cron": "0 8 * *"}, "must have 5 fields (minute hour day-of-month month day-of-week)"),
    ({"cron": "61 8 * * *"}, "the minute field '61' is not valid (values 0-59"),
    ({"cron": "0 8 * * 5-1"}, "the day-of-week field '5-1' is not valid"),
    ({"cron": "*/0 8 * * *"}, "the minute field '*/0' is not valid"),
    ({"cron": "5/15 8 * * *"}, "the minute field '5/15' is not valid"),
    ({"cron": "0 8 * foo *"}, "the month field 'foo' is not valid (values 1-12 or jan-dec"),
    ({"cron": "0 0 30 2 *"}, "repeat.cron '0 0 30 2 *' never runs: no month it names has day 30"),
    ({"cron": "0 8 * * *", "tz": "Mars/Olympus"}, "repeat.tz 'Mars/Olympus' is not a time zone"),
    ({"cron": "0 8 * * *", "tz": 1}, 'repeat.tz must be a time zone name like "Europe/Lisbon", not a number'),
])
def test_a_bad_repeat_is_refused_with_a_reason(value: object, reason: str) -> None:
    with pytest.raises(InvalidTask) as refused:
        parse_repeat(value)
    assert reason in refused.value.reason


def test_retry_backs_off_up_to_its_maximum_with_a_fixed_jitter() -> None:
    retry = parse_retry({"retries": 5, "delay": "PT10S", "factor": 2, "max_delay": "PT30S", "jitter": "PT1S"})
    assert retry == Retry(5, 10.0, 2.0, 30.0, 1.0)
    delays = [retry_delay(retry, attempt, "t/2026-12-01T08:00:00.000Z") for attempt in range(1, 5)]
    assert [int(delay) for delay in delays] == [10, 20, 30, 30]
    assert all(0.0 <= delay % 1 < 1.0 for delay in delays)
    assert delays == [retry_delay(retry, attempt, "t/2026-12-01T08:00:00.000Z") for attempt in range(1, 5)]
    assert parse_retry(3) == Retry(3) and retry_delay(Retry(3), 2, "x") == 20.0
    assert retry_delay(Retry(3, factor=100.0, max_delay=60.0), 1000, "x") == 60.0


@pytest.mark.parametrize(("value", "reason"), [
    (-1, "retry must be a whole number of retries from 0 to 100, or an object like"),
    (2.5, "retry must be a whole number of retries from 0 to 100"),
    ("5", "retry must be a whole number of retries from 0 to 100, or an object like {"),
    ({"retries": 101}, "retry.retries must be a whole number from 0 to 100"),
    ({"retries": 3, "backoff": 2},
     "retry must have only the fields retries, delay, factor, max_delay and jitter"),
    ({"retries": 3, "factor": 0.5}, "retry.factor must be a number from 1 to 100"),
    ({"retries": 3, "delay": "soon"}, "retry.delay 'soon' is not an ISO 8601 duration"),
])
def test_a_bad_retry_is_refused_with_a_reason(value: object, reason: str) -> None:
    with pytest.raises(InvalidTask) as refused:
        parse_retry(value)
    assert reason in refused.value.reason
