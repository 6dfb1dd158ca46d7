"""`after metrics`: Prometheus text from the store, written atomically; the timer unit that runs it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from after.cli import commands as cli
from after.core.dates import format_date
from after.core.task import Document
from after.monitoring import metrics
from after.store.memory import MemoryStore
from after.worker.presence import Report, presence_document

ROOT = Path(__file__).resolve().parents[2]
NOW = 1_800_000_000.0
LABEL = r'[a-zA-Z_]+="(?:[^"\\]|\\.)*"'
SAMPLE = re.compile(rf"^[a-zA-Z_:][a-zA-Z0-9_:]*(\{{{LABEL}(,{LABEL})*\}})? -?[0-9.e+]+$")
pytestmark = pytest.mark.filterwarnings("ignore:'autocompletion' is renamed:DeprecationWarning")


def task(task_id: str, worker: str, status: str, date: float, **fields: Any) -> Document:
    return {"_id": task_id, "worker": worker, "date": format_date(date), "status": status,
            "job": {"name": "noop", "arguments": []}, **fields}


def ran(started: float, lateness_ms: float, outcome: str = "done") -> dict[str, Any]:
    return {"result": {"started": format_date(started), "ended": format_date(started + 1),
                       "lateness_ms": lateness_ms, "outcome": outcome}}


@pytest.fixture
def store() -> MemoryStore:
    memory = MemoryStore()
    memory.bulk_write([
        task("d1", "manobi", "done", NOW - 600, **ran(NOW - 600, 4)),
        task("d2", "manobi", "done", NOW - 300, **ran(NOW - 299.5, 500)),
        task("e1", "manobi", "err", NOW - 120, **ran(NOW - 118, 2000, "failed")),
        task("old", "manobi", "done", NOW - 7200, **ran(NOW - 7200, 9)),  # outside the hour
        task("late", "manobi", "scheduled", NOW - 90, due=format_date(NOW - 90)),  # overdue 90 s
        task("asked", "manobi", "waiting", NOW - 30),
        task("now", "manobi", "running", NOW - 400, due=format_date(NOW - 400)),  # started: not overdue
        task("later", "manobi", "scheduled", NOW + 600, due=format_date(NOW + 600)),
        task("x", "kiosk", "waiting", NOW + 60),
        presence_document("manobi", "a", 1, NOW - 100, NOW - 2, Report()),
        presence_document("manobi", "b", 2, NOW - 100, NOW - 60, Report()),  # gone
        presence_document("kiosk", "a", 3, NOW - 100, NOW - 1, Report(), stopped=True),
    ])
    return memory


def samples(text: str) -> dict[str, float]:
    found = {}
    for line in text.splitlines():
        if line.startswith("#"):
            assert re.match(r"^# (HELP|TYPE) [a-z_]+ .+$", line), line
            continue
        match = SAMPLE.match(line)
        assert match, f"not a sample: {line!r}"
        name_and_labels, value = line.rsplit(" ", 1)
        found[name_and_labels] = float(value)
    return found


def test_collect_and_render(store: MemoryStore) -> None:
    text = metrics.render(metrics.collect(store, NOW))
    found = samples(text)
    assert text.endswith("\n") and found["after_up"] == 1
    assert found['after_tasks{worker="manobi",status="done"}'] == 3
    assert found['after_tasks{worker="kiosk",status="waiting"}'] == 1
    assert found['after_worker_processes{worker="manobi",state="running"}'] == 1
    assert found['after_worker_processes{worker="manobi",state="gone"}'] == 1
    assert found['after_worker_processes{worker="kiosk",state="stopped"}'] == 1
    assert found["after_workers_alive"] == 1
    assert found['after_oldest_overdue_task_seconds{worker="manobi"}'] == 90
    assert found['after_oldest_overdue_task_seconds{worker="kiosk"}'] == 0
    assert found['after_task_lateness_seconds_count{worker="manobi"}'] == 3
    assert found['after_task_lateness_seconds_sum{worker="manobi"}'] == pytest.approx(2.504)
    assert found['after_task_lateness_seconds_bucket{worker="manobi",le="0.005"}'] == 1
    assert found['after_task_lateness_seconds_bucket{worker="manobi",le="0.5"}'] == 2
    assert found['after_task_lateness_seconds_bucket{worker="manobi",le="+Inf"}'] == 3
    assert found["after_metrics_timestamp_seconds"] == NOW
    for name in ("after_tasks", "after_task_lateness_seconds", "after_workers_alive"):
        assert text.count(f"# TYPE {name} ") == 1 and text.count(f"# HELP {name} ") == 1


def test_buckets_are_cumulative(store: MemoryStore) -> None:
    found = samples(metrics.render(metrics.collect(store, NOW)))
    buckets = [value for key, value in found.items() if key.startswith('after_task_lateness_seconds_bucket'
                                                                       '{worker="manobi"')]
    assert buckets == sorted(buckets) and len(buckets) == len(metrics.BUCKETS) + 1


def test_label_values_are_escaped() -> None:
    assert metrics.labels(worker='a"b\\c\nd') == '{worker="a\\"b\\\\c\\nd"}'


def test_a_failed_read_says_so() -> None:
    text = metrics.render(metrics.Snapshot(NOW, up=False))
    assert samples(text) == {"after_up": 0, "after_metrics_timestamp_seconds": NOW}


def test_write_atomically_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "after.prom"
    target.write_text("old\n")
    metrics.write_atomically(target, "after_up 1\n")
    assert target.read_text() == "after_up 1\n"
    assert [path.name for path in tmp_path.iterdir()] == ["after.prom"]
    assert target.stat().st_mode & 0o777 == 0o644


def config_file(tmp_path: Path) -> str:
    path = tmp_path / "after.toml"
    path.write_text('[couchdb]\nurl = "http://127.0.0.1:1"\ndatabase = "after"\n')
    return str(path)


def test_the_command_writes_the_file(store: MemoryStore, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("after.store.couch.client.CouchStore.from_config", lambda settings: store)
    output = tmp_path / "after.prom"
    result = CliRunner(mix_stderr=False).invoke(cli.app, ["metrics", "-c", config_file(tmp_path), "-o",
                                                          str(output)])
    assert result.exit_code == 0 and result.stdout == ""
    assert 'after_tasks{worker="manobi",status="done"} 3' in output.read_text()
    printed = CliRunner(mix_stderr=False).invoke(cli.app, ["metrics", "-c", config_file(tmp_path)])
    assert printed.stdout.startswith("# HELP after_up ")


def test_an_unreachable_couchdb_writes_up_0(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    down = MemoryStore()
    down.available = False
    monkeypatch.setattr("after.store.couch.client.CouchStore.from_config", lambda settings: down)
    output = tmp_path / "after.prom"
    result = CliRunner(mix_stderr=False).invoke(cli.app, ["metrics", "-c", config_file(tmp_path), "-o",
                                                          str(output)])
    assert result.exit_code == 1 and "memory store is switched off" in result.stderr
    assert "after_up 0\n" in output.read_text()


def test_the_timer_is_packaged_but_not_enabled() -> None:
    service = (ROOT / "systemd/after-metrics.service").read_text()
    timer = (ROOT / "systemd/after-metrics.timer").read_text()
    assert "ExecStart=/usr/bin/after metrics --output ${AFTER_METRICS_FILE}\n" in service
    assert "Type=oneshot\n" in service and "OnUnitActiveSec=1min\n" in timer
    install = (ROOT / "packaging/debian/after.install").read_text()
    assert "systemd/after-metrics.service lib/systemd/system/\n" in install
    assert "systemd/after-metrics.timer lib/systemd/system/\n" in install
    rules = (ROOT / "packaging/debian/rules").read_text()
    assert "dh_installsystemd --no-enable --no-start after-metrics.service after-metrics.timer\n" in rules
    makefile = (ROOT / "mk/package.mk").read_text()
    assert "after-metrics.service after-metrics.timer; do" in makefile
