"""Repeating tasks run by real ``after run`` processes (issue 10): a series of 20 occurrences one second
apart runs 20 times on time; killed with SIGKILL in the middle, the restarted worker handles the
occurrences it missed by the task's policy and nothing runs twice without a record."""

from __future__ import annotations

import math
import sys
import time
from collections import Counter
from typing import Any

import pytest

from after.core.dates import format_date
from tests.integration.deployment import Deployment

OCCURRENCE = """#!{python}
import json, os, sys
doc = json.load(sys.stdin)
with open({log!r}, "a") as log:
    log.write(os.environ["AFTER_TASK_ID"] + " " + doc["date"] + "\\n")
"""
COUNT = 20


def runs(deployment: Deployment) -> list[str]:
    """The occurrence (the document's date) of every run the job made, in order."""
    return [line.split()[1] for line in deployment.ran_log.read_text().splitlines() if line.strip()]


def series_task(deployment: Deployment, start: float, **fields: Any) -> dict[str, Any]:
    return {**deployment.task("series", 0.0, job="occurrence"), "date": format_date(start),
            "repeat": f"R{COUNT}/{format_date(start)}/PT1S", **fields}


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]


def test_twenty_occurrences_a_second_apart_run_twenty_times_on_time(deployment: Deployment) -> None:
    deployment.write_config({"concurrency": 4, "lease": 10.0, "claim_ahead": 1.0, "history_limit": 30})
    deployment.install("occurrence", OCCURRENCE.format(python=sys.executable, log=str(deployment.ran_log)))
    deployment.start_worker().wait_ready()
    start = math.ceil(time.time()) + 3.0
    deployment.add([series_task(deployment, start)])
    deployment.wait_status(["series"], "done", timeout=COUNT + 20.0)
    doc = deployment.doc("series")
    expected = [format_date(start + second) for second in range(COUNT)]
    assert runs(deployment) == expected  # each occurrence once, in order
    assert [run["occurrence"] for run in doc["history"]] == expected
    assert all(run["outcome"] == "done" and "missed" not in run for run in doc["history"])
    assert doc["repeat"] == f"R1/{expected[-1]}/PT1S" and doc["result"]["series"] == "ended"
    lateness = [run["lateness_ms"] for run in doc["history"]]
    print(f"\nseries of {COUNT} occurrences 1 s apart on {deployment.server.kind}: lateness p50 "
          f"{sorted(lateness)[COUNT // 2]:.1f} ms, p99 {p99(lateness):.1f} ms, max {max(lateness):.1f} ms")
    assert p99(lateness) < 500.0


@pytest.mark.parametrize("missed", ["run_once", "skip"])
def test_kill_9_in_the_middle_of_a_series_handles_missed_runs_by_policy(deployment: Deployment,
                                                                        missed: str) -> None:
    deployment.write_config({"concurrency": 4, "lease": 10.0, "claim_ahead": 1.0, "history_limit": 30})
    deployment.install("occurrence", OCCURRENCE.format(python=sys.executable, log=str(deployment.ran_log)))
    first = deployment.start_worker()
    first.wait_ready()
    start = math.ceil(time.time()) + 3.0
    deployment.add([series_task(deployment, start, missed=missed, grace="PT0.5S")])
    deployment.wait_until(lambda: len(runs(deployment)) >= 8, 30.0, "eight runs")
    first.kill()
    time.sleep(3.0)  # three or four occurrences pass with no worker
    deployment.start_worker()  # the dead claim (same host) is taken over at once
    deployment.wait_status(["series"], "done", timeout=COUNT + 30.0)
    doc, ran = deployment.doc("series"), runs(deployment)
    history = doc["history"]
    interrupted = [run for run in history if run["outcome"] == "interrupted"]
    finished = [run for run in history if run["outcome"] in ("done", "skipped")]
    # every run of the job is recorded (done, or interrupted by the kill), and an occurrence runs twice
    # only after a recorded interruption
    done = [run for run in finished if run["outcome"] == "done"]
    assert len(done) <= len(ran) <= len(done) + len(interrupted), (ran, history)
    assert sum(count - 1 for count in Counter(ran).values()) <= len(interrupted), (ran, history)
    missed_runs = [run for run in finished if run.get("missed")]
    assert missed_runs, history
    was = "coalesced into this run" if missed == "run_once" else "skipped"
    assert all(run["missed_were"] == was for run in missed_runs)
    covered = len(finished) + sum(run["missed"] for run in finished if run.get("missed"))
    assert covered == COUNT, history  # each of the 20 occurrences ran, or was coalesced or skipped, once
    assert len(done) < COUNT and doc["repeat"].startswith("R1/"), history
    print(f"\nkill -9 mid-series ({missed}, {deployment.server.kind}): {len(ran)} runs, "
          f"{covered - len(finished)} occurrences {was}, {len(interrupted)} interrupted")
