"""`after list`: every process from the presence documents, joined with this host's after@ units."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from after import __version__
from after.cli import commands as cli
from after.cli import service as cli_service
from after.cli import workers_view
from after.core.task import Document
from after.worker.presence import Report, presence_document
from tests.unit.test_cli_service import ACTIVE, FAILED, FakeSystem

pytestmark = pytest.mark.filterwarnings("ignore:'autocompletion' is renamed:DeprecationWarning")
NOW = 1125.0  # FakeSystem.now()
HOST = "here"


def presence(worker: str, host: str, pid: int, seen: float, stopped: bool = False) -> Document:
    report = Report(node="http://a:5984", connected=True, done=7, failed=1, armed=2, running=("t1",),
                    lateness_ms=3.5)
    return presence_document(worker, host, pid, 1000.0, seen, report, stopped=stopped)


PRESENCE = [
    presence("a", HOST, 41, NOW - 2),  # the unit after@a's main process
    presence("a", "there", 7, NOW - 1),  # another host
    presence("b", "there", 8, NOW - 60),  # silent for a minute: gone
    presence("c", HOST, 99, NOW - 300, stopped=True),  # stopped cleanly, no unit (after run in a shell)
]


@pytest.fixture
def system(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSystem]:
    fake = FakeSystem(states={"after@a.service": ACTIVE.format("a", 1),
                              "after@b.service": FAILED.format("b")})
    monkeypatch.setattr(cli_service, "SYSTEM", fake)
    monkeypatch.setattr("socket.gethostname", lambda: HOST)
    monkeypatch.setattr("time.time", lambda: NOW)
    yield fake


def read(docs: list[Document], problem: str | None = None) -> Any:
    return lambda config_file: (docs, None if problem else {"a": {"done": 7}}, problem)


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner(mix_stderr=False).invoke(cli.app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_merge_joins_a_local_unit_with_its_process_and_keeps_the_others() -> None:
    local = [{"worker": "a", "unit": "after@a.service", "state": "active", "substate": "running", "pid": 41,
              "uptime": 125.0, "memory": 1024, "cpu": 1.5},
             {"worker": "b", "unit": "after@b.service", "state": "activating", "substate": "auto-restart",
              "pid": None, "uptime": None, "memory": None, "cpu": None}]
    rows = workers_view.merge(PRESENCE, local, HOST, NOW, {"a": {"done": 7}})
    assert [(row["worker"], row["host"], row["pid"], row["state"], row["unit_state"]) for row in rows] == [
        ("a", HOST, 41, "running", "active"),
        ("a", "there", 7, "running", None),
        ("b", HOST, None, None, "activating/auto-restart"),
        ("b", "there", 8, "gone", None),
        ("c", HOST, 99, "stopped", None),
    ]
    first = rows[0]
    assert first["seen_ago"] == 2.0 and first["memory"] == 1024 and first["tasks"] == {"done": 7}
    assert first["counts"] == {"done": 7, "failed": 1, "armed": 2, "running": 1}
    assert first["running_tasks"] == ["t1"] and first["node"] == "http://a:5984" and first["version"]


def test_the_table_shows_processes_and_units(system: FakeSystem, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "read_presence", read(PRESENCE))
    code, out, err = invoke("list")
    assert code == 0 and err == ""
    header, *lines = out.splitlines()
    assert header.split() == list(workers_view.COLUMNS)
    assert lines[0].split() == ["a", HOST, "41", "running", "2s", "ago", "active", "2m05s", "32.0M", "1.5s",
                                "7", "1", "2", "1", "http://a:5984", __version__]
    assert lines[2].split()[:6] == ["b", HOST, "-", "-", "-", "activating/auto-restart"]
    assert lines[3].split()[:4] == ["b", "there", "8", "gone"]


def test_json(system: FakeSystem, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "read_presence", read(PRESENCE))
    code, out, _ = invoke("list", "--json")
    rows = json.loads(out)
    assert code == 0 and len(rows) == 5
    assert rows[0]["pid"] == 41 and rows[0]["memory"] == 32 * 1024 * 1024 and rows[0]["state"] == "running"
    assert rows[0]["unit"] == "after@a.service" and rows[0]["tasks"] == {"done": 7}


def test_without_couchdb_the_local_units_are_listed(system: FakeSystem,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "read_presence", read([], "cannot read the workers' presence in CouchDB (down)"))
    code, out, err = invoke("list", "--json")
    rows = json.loads(out)
    assert code == 0 and "only this host's units are listed" in err
    assert [row["worker"] for row in rows] == ["a", "b"]
    assert rows[0]["tasks"] is None and rows[1]["pid"] is None


def test_without_systemd_the_presence_is_listed(system: FakeSystem, monkeypatch: pytest.MonkeyPatch) -> None:
    system.is_booted = False
    monkeypatch.setattr(cli, "read_presence", read(PRESENCE))
    code, out, err = invoke("list")
    assert code == 0 and err == "" and len(out.splitlines()) == 5


def test_neither_is_one_error(system: FakeSystem, monkeypatch: pytest.MonkeyPatch) -> None:
    system.is_booted = False
    monkeypatch.setattr(cli, "read_presence", read([], "cannot read the workers' presence in CouchDB (x)"))
    code, _, err = invoke("list")
    assert code == 1 and err.count("\n") == 1
    assert "presence in CouchDB (x)" in err and "run the worker in the foreground: after run NAME" in err


def test_nothing_anywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_service, "SYSTEM", FakeSystem())
    monkeypatch.setattr(cli, "read_presence", read([]))
    code, out, _ = invoke("list")
    assert code == 0 and "no after@ workers" in out


def test_an_unreadable_config_is_a_reason_not_a_crash(tmp_path: Any) -> None:
    docs, tasks, problem = cli.read_presence(str(tmp_path / "missing.toml"))
    assert docs == [] and tasks is None and problem and "presence in CouchDB" in problem
