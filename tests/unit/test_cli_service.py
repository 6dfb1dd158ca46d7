"""The service verbs as a user runs them, over a fake machine (no systemd needed)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NoReturn

import pytest
from typer.testing import CliRunner

from after.cli import service as cli_service
from after.cli.commands import app
from after.cli.machine import Completed
from after.systemd.instances import ProcessStats

# typer 0.7 warns about its own use of click's old `autocompletion` (the only way completion works there).
pytestmark = pytest.mark.filterwarnings("ignore:'autocompletion' is renamed:DeprecationWarning")
ACTIVE = "Id=after@{0}.service\nLoadState=loaded\nActiveState=active\nSubState=running\nMainPID=4{1}\n"
FAILED = (
    "Id=after@{0}.service\nLoadState=loaded\nActiveState=activating\nSubState=auto-restart\n"
    "Result=exit-code\nExecMainCode=1\nExecMainStatus=2\nMainPID=0\n"
)


class Replaced(Exception):
    pass


class FakeSystem:
    def __init__(self, booted: bool = True, states: dict[str, str] | None = None) -> None:
        self.is_booted = booted
        self.states = states or {}
        self.commands: list[list[str]] = []
        self.files: dict[Path, str] = {}
        self.counts: dict[str, dict[str, int]] | None = {"a": {"scheduled": 3, "done": 7}}

    def booted(self) -> bool:
        return self.is_booted

    def run(self, argv: Sequence[str]) -> Completed:
        self.commands.append(list(argv))
        if argv[:2] == ["systemctl", "show"]:
            blocks = [self.states.get(unit, f"Id={unit}\nLoadState=not-found\n") for unit in argv[3:]]
            return Completed(tuple(argv), 0, "\n".join(blocks), "")
        if argv[:2] == ["systemctl", "list-units"]:
            return Completed(tuple(argv), 0, "".join(f"{u} loaded x y z\n" for u in self.states), "")
        if argv[0] == "journalctl":
            return Completed(tuple(argv), 0, "Jan 01 after[1]: config file missing\n", "")
        return Completed(tuple(argv), 0, "", "")

    def replace(self, argv: Sequence[str]) -> NoReturn:
        self.commands.append(list(argv))
        raise Replaced

    def stats(self, pid: int) -> ProcessStats | None:
        return ProcessStats(rss=32 * 1024 * 1024, cpu=1.5, started=1000.0)

    def read_text(self, path: Path) -> str | None:
        return self.files.get(path)

    def write_text(self, path: Path, text: str) -> None:
        self.files[path] = text

    def task_counts(self, config: str | None) -> dict[str, dict[str, int]] | None:
        return self.counts

    def now(self) -> float:
        return 1125.0


@pytest.fixture
def system(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSystem]:
    fake = FakeSystem(states={
        "after@a.service": ACTIVE.format("a", 1), "after@b.service": FAILED.format("b"),
    })
    monkeypatch.setattr(cli_service, "SYSTEM", fake)
    yield fake


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner(mix_stderr=False).invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_start_runs_systemctl_and_reports_the_pid(system: FakeSystem) -> None:
    code, out, _ = invoke("start", "a")
    assert code == 0
    assert ["systemctl", "start", "after@a.service"] in system.commands
    assert "after@a.service: active, pid 41" in out


def test_start_enable(system: FakeSystem) -> None:
    invoke("start", "--enable", "a")
    assert ["systemctl", "enable", "--now", "after@a.service"] in system.commands


def test_a_failed_start_says_why_and_shows_the_log(system: FakeSystem) -> None:
    code, _, err = invoke("start", "a", "b")
    assert code == 1
    assert "after@b.service failed to start: activating (auto-restart): the worker exited with status 2" in (
        err
    )
    assert "config file missing" in err


def test_errors_are_one_line(system: FakeSystem) -> None:
    code, _, err = invoke("start", "bad/name")
    assert code == 1
    assert err == "after: invalid worker name 'bad/name': use 1 to 64 letters, digits, '_', '.' or '-'\n"
    code, _, err = invoke("stop", "missing")
    assert code == 1 and err.startswith("after: after@.service is not installed")


def test_stop(system: FakeSystem) -> None:
    code, out, _ = invoke("stop", "--disable", "a")
    assert code == 0
    assert ["systemctl", "disable", "--now", "after@a.service"] in system.commands


def test_log_becomes_journalctl(system: FakeSystem) -> None:
    with pytest.raises(Replaced):
        cli_service.log_command(system, "a", {"follow": True, "lines": 5, "task": "t1"})
    assert system.commands[-1] == [
        "journalctl", "--unit=after@a.service", "--lines=5", "--follow", "AFTER_TASK_ID=t1",
    ]


def test_log_refuses_an_unknown_output_format(system: FakeSystem) -> None:
    code, _, err = invoke("log", "a", "-o", "yaml")
    assert code == 1 and "unknown output format 'yaml'" in err


def test_clean_then_log_starts_after_the_mark(system: FakeSystem) -> None:
    code, out, _ = invoke("clean", "a")
    assert code == 0 and "only newer entries" in out
    with pytest.raises(Replaced):
        cli_service.log_command(system, "a", {})
    assert system.commands[-1] == ["journalctl", "--unit=after@a.service", "--since=@1125.000000"]
    with pytest.raises(Replaced):
        cli_service.log_command(system, "a", {"all": True})
    assert system.commands[-1] == ["journalctl", "--unit=after@a.service"]


def test_worker_names_complete(system: FakeSystem) -> None:
    assert cli_service.complete_workers("") == ["a", "b"]
    assert cli_service.complete_workers("b") == ["b"]

