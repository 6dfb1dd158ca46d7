"""After as an operator runs it: the Debian package in a container with systemd as PID 1.

One container for the module; the scenarios run in order (the last ones upgrade and purge the package).
"""

from __future__ import annotations

import json
import re
import time

import pytest

from tests.system.conftest import Debs, Tasks, unit_state, wait_for
from tests.system.container import APT_GET, SHARE, Container

pytestmark = pytest.mark.system
WORKER = "manobi"


def main_pid(machine: Container, worker: str = WORKER) -> int:
    return int(unit_state(machine, worker)["MainPID"])


def restarted(machine: Container, old_pid: int, worker: str = WORKER) -> bool:
    state = unit_state(machine, worker)
    return state["ActiveState"] == "active" and int(state["MainPID"]) not in (0, old_pid)


def test_units_verify_clean_and_are_hardened(machine: Container) -> None:
    units = ["/lib/systemd/system/after@.service", "/lib/systemd/system/after.service"]
    verify = machine.run(["systemd-analyze", "verify", *units], check=False)
    assert (verify.returncode, verify.stdout + verify.stderr) == (0, "")
    security = machine.run(["systemd-analyze", "security", "--no-pager", "after@x.service"], check=False)
    score = re.search(r"Overall exposure level for after@x.service: ([\d.]+)", security.stdout)
    assert score is not None, security.stdout
    print(f"systemd-analyze security after@x.service: {score.group(1)}")
    assert float(score.group(1)) <= 2.0


def test_start_reaches_ready_and_a_task_runs(machine: Container, tasks: Tasks) -> None:
    started = machine.run(["after", "start", WORKER])
    state = unit_state(machine, WORKER)
    assert f"after@{WORKER}.service: active, pid {state['MainPID']}" in started.stdout
    assert state["ActiveState"] == "active"  # Type=notify: active only after READY=1
    wait_for(lambda: "CouchDB connected" in unit_state(machine, WORKER)["StatusText"], 5, "STATUS=")
    tasks.put("first", WORKER, "noop", [])
    doc = tasks.wait_status("first", {"done", "err"}, timeout=15)
    assert doc["status"] == "done"
    wait_for(lambda: "1 done" in unit_state(machine, WORKER)["StatusText"], 5, "STATUS= to count the task")


def test_list_shows_pid_memory_and_counts(machine: Container) -> None:
    """The unit joined with its process's presence document (issue 11): both states, one row."""
    rows = json.loads(machine.run(["after", "list", "--json"]).stdout)
    (row,) = [row for row in rows if row["unit"] == f"after@{WORKER}.service"]
    assert row["worker"] == WORKER and row["unit_state"] == "active" and row["state"] == "running"
    assert row["pid"] == main_pid(machine)
    assert row["memory"] > 10 * 1024 * 1024 and row["uptime"] >= 0 and row["cpu"] > 0
    assert row["tasks"]["done"] >= 1 and row["counts"] is not None  # rewritten every 5 s
    header, *lines = machine.run(["after", "list"]).stdout.splitlines()
    assert header.split()[:6] == ["WORKER", "HOST", "PID", "STATE", "SEEN", "UNIT"]
    (line,) = [line.split() for line in lines if line.split()[2] == str(row["pid"])]
    assert line[0] == WORKER and line[3] == "running" and "active" in line


def test_shell_completion_offers_the_running_workers(machine: Container) -> None:
    script = "COMP_WORDS='after log ma' COMP_CWORD=2 _AFTER_COMPLETE=complete_bash after"
    assert machine.sh(script).stdout.split() == [WORKER]


def test_log_shows_the_tasks_lines_with_structured_fields(machine: Container) -> None:
    assert "first" in machine.run(["after", "log", WORKER, "--no-pager"]).stdout
    text = machine.run(["after", "log", WORKER, "--task", "first", "-o", "json"]).stdout
    entries = [json.loads(line) for line in text.splitlines()]
    assert entries and all(entry["AFTER_TASK_ID"] == "first" for entry in entries)
    assert {entry["AFTER_WORKER"] for entry in entries} == {WORKER}
    assert "noop" in {entry.get("AFTER_JOB") for entry in entries}
    assert "done" in {entry.get("AFTER_STATUS") for entry in entries}
    assert all(entry["_SYSTEMD_UNIT"] == f"after@{WORKER}.service" for entry in entries)


def test_a_hung_worker_is_killed_by_the_watchdog_and_due_tasks_run_after(
    machine: Container, tasks: Tasks
) -> None:
    old = main_pid(machine)
    machine.run(["systemctl", "kill", "--kill-whom=main", "--signal=SIGSTOP", f"after@{WORKER}.service"])
    tasks.put("while-hung", WORKER, "noop", [], delay=1)
    seconds = wait_for(lambda: restarted(machine, old), 30, "the watchdog to restart the worker")
    print(f"watchdog restart after SIGSTOP: {seconds:.1f} s")  # WatchdogSec=3 in the test drop-in
    journal = machine.run(["journalctl", "-u", f"after@{WORKER}", "-q"]).stdout
    assert "Failed with result 'watchdog'" in journal
    assert tasks.wait_status("while-hung", {"done", "err"}, timeout=20)["status"] == "done"


def test_kill_9_restarts_and_loses_no_task(machine: Container, tasks: Tasks) -> None:
    tasks.put("running-at-kill", WORKER, "slow", [3])
    tasks.wait_status("running-at-kill", {"running"}, timeout=15)
    for number in range(5):
        tasks.put(f"due-{number}", WORKER, "noop", [], delay=1 + number * 0.3)
    old = main_pid(machine)
    machine.run(["systemctl", "kill", "--kill-whom=main", "--signal=SIGKILL", f"after@{WORKER}.service"])
    wait_for(lambda: restarted(machine, old), 30, "systemd to restart the killed worker")
    for number in range(5):
        assert tasks.wait_status(f"due-{number}", {"done", "err"}, timeout=20)["status"] == "done"
    # The interrupted run is taken over once its lease (5 s in the test config) expires, and run again.
    assert tasks.wait_status("running-at-kill", {"done", "err"}, timeout=40)["status"] == "done"


def test_stop_lets_the_running_job_finish(machine: Container, tasks: Tasks) -> None:
    tasks.put("running-at-stop", WORKER, "slow", [2])
    tasks.wait_status("running-at-stop", {"running"}, timeout=15)
    stopped = machine.run(["after", "stop", WORKER])
    assert f"after@{WORKER}.service: inactive" in stopped.stdout
    assert unit_state(machine, WORKER)["ActiveState"] == "inactive"
    assert tasks.get("running-at-stop")["status"] == "done"  # DESIGN.md 3: running jobs finish within grace


def test_clean_hides_older_log_lines(machine: Container, tasks: Tasks) -> None:
    assert "running-at-stop" in machine.run(["after", "log", WORKER, "--no-pager"]).stdout
    machine.run(["after", "clean", WORKER])
    time.sleep(0.01)
    assert "running-at-stop" not in machine.run(["after", "log", WORKER, "--no-pager"]).stdout
    machine.run(["after", "start", WORKER])
    tasks.put("after-clean", WORKER, "noop", [])
    tasks.wait_status("after-clean", {"done"}, timeout=15)
    shown = machine.run(["after", "log", WORKER, "--no-pager"]).stdout
    assert "after-clean" in shown and "running-at-stop" not in shown
    assert "running-at-stop" in machine.run(["after", "log", WORKER, "--all", "--no-pager"]).stdout


def test_one_line_errors(machine: Container) -> None:
    bad = machine.run(["after", "start", "bad/name"], check=False)
    assert bad.returncode == 1
    assert bad.stderr.splitlines() == [
        "after: invalid worker name 'bad/name': use 1 to 64 letters, digits, '_', '.' or '-'"
    ]


def test_a_failing_worker_says_why(machine: Container) -> None:
    machine.write("/etc/after/broken.env", "AFTER_CONFIG=/etc/after/missing.toml\n")
    result = machine.run(["after", "start", "broken", "--lines", "5"], check=False)
    assert result.returncode == 1
    assert "after@broken.service failed to start" in result.stderr
    assert "missing.toml" in result.stderr  # the worker's own error line, from the journal
    machine.run(["after", "stop", "broken"])


def test_upgrade_restarts_running_instances(machine: Container, debs: Debs) -> None:
    machine.run(["after", "start", WORKER, "second"])
    before = {worker: main_pid(machine, worker) for worker in (WORKER, "second")}
    machine.run([*APT_GET, "install", "-y", "-q", f"{SHARE}/{debs.upgrade.name}"], timeout=300)
    for worker, pid in before.items():
        wait_for(lambda w=worker, p=pid: restarted(machine, p, w), 30, f"{worker} to restart")  # type: ignore[misc]
    version = machine.run(["dpkg-query", "-W", "-f=${Version}", "after"]).stdout
    assert version.endswith("+systemtest1")


def test_purge_leaves_no_unit_running(machine: Container) -> None:
    machine.run([*APT_GET, "purge", "-y", "-q", "after"], timeout=300)
    listed = machine.run(["systemctl", "list-units", "--all", "--plain", "--no-legend", "after*"]).stdout
    assert [line for line in listed.splitlines() if " active " in line] == []
    assert machine.run(["test", "-e", "/lib/systemd/system/after@.service"], check=False).returncode == 1
    assert machine.run(["test", "-e", "/etc/after/after.toml"], check=False).returncode == 1
    assert machine.run(["test", "-e", "/var/lib/after"], check=False).returncode == 1
