"""``after add --every/--cron/--retry/--missed`` and the next run in ``after tasks`` (issue 10)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from after import cli
from after.cli.tasks import iso_duration, policies, repeat_summary, series, table
from after.core.dates import format_date, parse_date
from after.core.invalid import InvalidTask
from after.store.memory import MemoryStore

NOW = parse_date("2026-11-30T10:17:00Z")  # a Monday, 10:17 in Lisbon (WET)


def test_durations_are_written_the_iso_way() -> None:
    assert [iso_duration(seconds) for seconds in (3600.0, 90.0, 86400.0 + 1800.0, 0.5, 604800.0)] == [
        "PT1H", "PT1M30S", "P1DT30M", "PT0.5S", "P7D"]


def test_every_repeats_from_the_date_and_cron_starts_at_its_next_time() -> None:
    assert series(NOW, None, "1h", 5, None, None) == (NOW, f"R5/{format_date(NOW)}/PT1H")
    assert series(NOW, NOW + 60.0, "PT15M", None, None, None) == \
        (NOW + 60.0, f"R/{format_date(NOW + 60.0)}/PT15M")
    first, repeat = series(NOW, None, None, None, "0 8 * * 1-5", "Europe/Lisbon")
    assert format_date(first) == "2026-12-01T08:00:00.000Z" and repeat == {"cron": "0 8 * * 1-5",
                                                                          "tz": "Europe/Lisbon"}
    assert series(NOW, None, None, None, None, None) == (NOW, None)
    with pytest.raises(InvalidTask, match="either --every or --cron"):
        series(NOW, None, "1h", None, "@daily", None)
    with pytest.raises(InvalidTask, match="--tz with --cron"):
        series(NOW, None, "1h", None, None, "UTC")


def test_retry_missed_and_grace_options() -> None:
    assert policies(5, None, None, None) == {"retry": 5}
    assert policies(3, "30s", "skip", "5m") == {"retry": {"retries": 3, "delay": "PT30S"}, "missed": "skip",
                                                "grace": "PT5M"}
    with pytest.raises(InvalidTask, match="--retry-delay goes with --retry"):
        policies(None, "30s", None, None)


def test_tasks_shows_the_next_run_and_the_series() -> None:
    docs = [
        {"_id": "a", "worker": "w", "status": "scheduled", "date": "2026-12-01T09:00:00.000Z",
         "job": {"name": "j"}, "repeat": "R4/2026-12-01T09:00:00.000Z/PT1H"},
        {"_id": "b", "worker": "w", "status": "scheduled", "date": "2026-12-01T08:00:30.000Z",
         "job": {"name": "j"}, "repeat": {"cron": "0 8 * * 1-5", "tz": "Europe/Lisbon"},
         "occurrence": "2026-12-01T08:00:00.000Z"},
        {"_id": "c", "worker": "w", "status": "done", "date": "2026-12-01", "job": {"name": "j"}},
    ]
    assert [repeat_summary(doc) for doc in docs] == [
        "every PT1H, 4 left", "0 8 * * 1-5 Europe/Lisbon, retry of 2026-12-01T08:00:00.000Z", "-"]
    lines = table(docs).splitlines()
    assert lines[1].split()[:4] == ["a", "w", "scheduled", "2026-12-01T09:00:00.000Z"]
    assert lines[3].split()[:5] == ["c", "w", "done", "-", "j"]


def test_after_add_writes_a_valid_recurring_task(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = MemoryStore()
    store.create_database()
    monkeypatch.setattr("after.store.couch.client.CouchStore.from_config", lambda settings: store)
    config = tmp_path / "after.toml"
    config.write_text('[couchdb]\nurl = "http://127.0.0.1:1"\ndatabase = "after"\n')
    argv = ["add", "manobi", "webhook", "https://example.com/hook", "--cron", "0 8 * * 1-5", "--tz",
            "Europe/Lisbon", "--retry", "5", "--id", "daily", "-c", str(config)]
    result = CliRunner(mix_stderr=False).invoke(cli.app, argv)
    assert result.exit_code == 0, result.stderr
    doc = store.get("daily")
    assert doc is not None and doc["repeat"] == {"cron": "0 8 * * 1-5", "tz": "Europe/Lisbon"}
    assert doc["retry"] == 5 and doc["status"] == "waiting" and doc["date"].endswith(":00:00.000Z")
    bad = CliRunner(mix_stderr=False).invoke(cli.app, ["add", "manobi", "noop", "--cron", "0 8 * *",
                                                       "-c", str(config)])
    assert bad.exit_code == 1 and "must have 5 fields" in bad.stderr
