"""Real `after run` processes against the real CouchDB-protocol server. Side effects are counted
in a file the jobs append to, never inferred from statuses."""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path

import psutil
import pytest

from after.core.dates import parse_date
from tests.integration.deployment import Deployment
from tests.server import ServerKind, start_server

pytestmark = pytest.mark.couch


def test_the_original_example_document_runs_and_ends_done(deployment: Deployment) -> None:
    deployment.install("start_campaign", f"#!/bin/sh\necho \"$AFTER_TASK_ID $*\" >> {deployment.ran_log}\n")
    deployment.start_worker()
    deployment.store.put({"_id": "example", "worker": "manobi", "date": "2011-10-12",
                          "job": {"name": "start_campaign", "arguments": [2, 3, "teste"]},
                          "status": "waiting"})
    deployment.wait_status(["example"], "done")
    assert deployment.ran_log.read_text() == "example 2 3 teste\n"
    result = deployment.doc("example")["result"]
    assert result["outcome"] == "done" and result["exit_code"] == 0


def test_reschedule_and_cancel_of_scheduled_tasks(deployment: Deployment) -> None:
    worker = deployment.start_worker()
    worker.wait_ready()
    # "never" is claimed 1 s before its date: 8 s leave room to see it scheduled and cancel it first,
    # also on a loaded machine (3 s did not: it was already running when the test looked).
    deployment.add([deployment.task("later", 60.0), deployment.task("never", 8.0)])
    deployment.wait_status(["later", "never"], "scheduled")
    later, never = deployment.doc("later"), deployment.doc("never")
    deployment.store.put({**later, "status": "reschedule", "date": deployment.task("x", 1.0)["date"]})
    deployment.store.put({**never, "status": "cancel"})
    deployment.wait_status(["later"], "done")
    deployment.wait_status(["never"], "canceled")
    time.sleep(max(0.0, parse_date(never["date"]) + 1.0 - time.time()))  # past the canceled task's old date
    assert deployment.ran() == {"later": 1}
    assert worker.alive()


def test_cancel_of_a_running_job_terminates_it(deployment: Deployment) -> None:
    deployment.start_worker()
    deployment.add([deployment.task("long", 0.0, job="sleepy", arguments=[300])])
    pid_file = deployment.directory / "long.pid"
    deployment.wait_until(pid_file.exists, 20.0, "the job to start")
    pid = int(pid_file.read_text())
    deployment.store.put({**deployment.doc("long"), "status": "cancel"})
    deployment.wait_status(["long"], "canceled")
    doc = deployment.doc("long")
    assert doc["result"]["outcome"] == "canceled"
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_a_thousand_tasks_due_within_ten_seconds_each_run_exactly_once(deployment: Deployment) -> None:
    deployment.start_worker()
    ids = [f"t{number:04d}" for number in range(1000)]
    deployment.add([deployment.task(task_id, 2.0 + random.uniform(0, 10)) for task_id in ids])
    deployment.wait_status(ids, "done", timeout=90.0)
    assert deployment.ran() == {task_id: 1 for task_id in ids}


def test_kill_9_then_restart_runs_everything_overdue_first_in_date_order(deployment: Deployment) -> None:
    deployment.write_config({"concurrency": 1, "lease": 60.0, "claim_ahead": 1.0})
    first = deployment.start_worker()
    deployment.add([deployment.task("long", 0.0, job="sleepy", arguments=[30])])
    deployment.wait_until((deployment.directory / "long.pid").exists, 20.0, "the long job to start")
    first.kill()
    offsets = [-50.0, -10.0, -40.0, -20.0, -30.0]
    overdue = [f"overdue{number}" for number in range(len(offsets))]
    deployment.add([deployment.task(name, offset) for name, offset in zip(overdue, offsets, strict=True)])
    deployment.start_worker()  # same host, the old pid is dead: no need to wait out the 60 s lease
    deployment.install("sleepy", f"#!/bin/sh\necho \"$AFTER_TASK_ID\" >> {deployment.ran_log}\n")
    deployment.wait_status([*overdue, "long"], "done", timeout=60.0)
    by_start = sorted(overdue, key=lambda task_id: deployment.doc(task_id)["result"]["started"])
    assert by_start == sorted(overdue, key=lambda task_id: parse_date(deployment.doc(task_id)["date"]))
    long = deployment.doc("long")
    assert long["attempts"] == 2
    assert long["history"][0]["outcome"] == "interrupted"
    assert long["history"][0]["by"].endswith(f":{first.pid}")


def test_two_processes_with_one_name_run_2000_tasks_exactly_once(deployment: Deployment) -> None:
    first, second = deployment.start_worker(), deployment.start_worker()
    ids = [f"t{number:04d}" for number in range(2000)]
    deployment.add([deployment.task(task_id, 3.0 + random.uniform(0, 10)) for task_id in ids])
    deployment.wait_status(ids, "done", timeout=120.0)
    assert deployment.ran() == {task_id: 1 for task_id in ids}
    assert first.alive() and second.alive()


def test_couchdb_killed_and_restarted_mid_run_loses_nothing(tmp_path: Path, server_kind: ServerKind) -> None:
    server = start_server(tmp_path / "couch", kind=server_kind)
    deployment = Deployment(server, tmp_path / "deployment")
    try:
        worker = deployment.start_worker()
        ids = [f"t{number:03d}" for number in range(300)]
        deployment.add([deployment.task(task_id, 1.0 + number * 0.03) for number, task_id in enumerate(ids)])
        time.sleep(4.0)
        server.restart(kill=True)
        time.sleep(2.0)
        server.restart(kill=True)
        deployment.wait_status(ids, "done", timeout=90.0)
        assert deployment.ran() == {task_id: 1 for task_id in ids}
        assert worker.alive()
    finally:
        deployment.stop_all()
        server.close()


def test_a_long_job_keeps_its_lease_so_a_second_process_never_takes_it(deployment: Deployment) -> None:
    deployment.write_config({"concurrency": 4, "lease": 1.5, "claim_ahead": 0.5})
    first, second = deployment.start_worker(), deployment.start_worker()
    ids = ["long1", "long2", "long3"]
    deployment.add([deployment.task(task_id, 1.0, job="sleepy", arguments=[5]) for task_id in ids])
    deployment.wait_status(ids, "done", timeout=60.0)
    assert deployment.ran() == {task_id: 1 for task_id in ids}
    assert all(deployment.doc(task_id)["attempts"] == 1 for task_id in ids)
    assert first.alive() and second.alive()


def test_sigterm_lets_a_running_job_finish_within_the_grace_period(deployment: Deployment) -> None:
    worker = deployment.start_worker()
    deployment.add([deployment.task("short", 0.0, job="sleepy", arguments=[2]),
                    deployment.task("later", 30.0)])
    deployment.wait_until((deployment.directory / "short.pid").exists, 20.0, "the job to start")
    assert worker.terminate() == 0
    assert deployment.doc("short")["status"] == "done"
    assert deployment.doc("later")["status"] == "scheduled"


def test_ctrl_c_says_how_long_it_waits_and_a_second_one_stops_the_job_at_once(deployment: Deployment) -> None:
    deployment.write_config({"grace": 120.0})
    worker = deployment.start_worker()
    deployment.add([deployment.task("long", 0.0, job="sleepy", arguments=[300])])
    deployment.wait_until((deployment.directory / "long.pid").exists, 20.0, "the job to start")
    pid = int((deployment.directory / "long.pid").read_text())
    worker.process.send_signal(signal.SIGINT)
    deployment.wait_until(lambda: "waiting up to 120 s for 1 running jobs" in worker.output(), 10.0,
                          "the first Ctrl-C to say how long it waits")
    assert worker.alive()
    asked = time.monotonic()
    worker.process.send_signal(signal.SIGINT)
    assert worker.process.wait(30.0) == 0
    assert time.monotonic() - asked < 15.0  # not the 120 s grace
    long = deployment.doc("long")
    assert long["status"] == "scheduled" and long["history"][-1]["outcome"] == "interrupted"
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_sigterm_releases_a_job_that_outlives_the_grace_period(deployment: Deployment) -> None:
    deployment.write_config({"grace": 1.0, "claim_ahead": 10.0})
    worker = deployment.start_worker()
    worker.wait_ready()
    # "claimed" is claimed at once and starts in 8 s: time to see the claim and stop the worker before
    # it starts, also on a loaded machine (with 3 s it sometimes had run already).
    deployment.add([deployment.task("stuck", 0.0, job="sleepy", arguments=[300]),
                    deployment.task("claimed", 8.0)])
    deployment.wait_until((deployment.directory / "stuck.pid").exists, 20.0, "the job to start")
    deployment.wait_until(lambda: deployment.doc("claimed")["status"] == "running", 20.0, "the claim")
    pid = int((deployment.directory / "stuck.pid").read_text())
    assert worker.terminate() == 0
    stuck, claimed = deployment.doc("stuck"), deployment.doc("claimed")
    assert stuck["status"] == "scheduled" and stuck["history"][-1]["outcome"] == "interrupted"
    assert claimed["status"] == "scheduled" and claimed["attempts"] == 0  # released, never started
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert deployment.ran() == {}
