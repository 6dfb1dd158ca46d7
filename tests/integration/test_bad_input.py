"""Bad input loses nothing: rejected at write with a reason, or ended `err` with a reason by the worker,
which keeps running while the other tasks run."""

from __future__ import annotations

from typing import Any

import pytest

from after.store.couch.design import DESIGN_ID, design_document
from after.store.types import Forbidden
from tests.integration.deployment import Deployment

pytestmark = pytest.mark.couch

GOOD = {"worker": "manobi", "date": "2011-10-12", "job": {"name": "record", "arguments": []},
        "status": "waiting"}
BAD: list[tuple[str, dict[str, Any], str]] = [
    ("bad_date", {**GOOD, "date": "next tuesday"}, "date 'next tuesday' is not ISO 8601"),
    ("impossible_date", {**GOOD, "date": "2011-02-30"}, "is not a real date"),
    ("arguments", {**GOOD, "job": {"name": "record", "arguments": "2 3"}}, "job.arguments must be a list"),
    ("no_job", {key: value for key, value in GOOD.items() if key != "job"}, "job must be an object"),
    ("no_date", {key: value for key, value in GOOD.items() if key != "date"}, "date is missing"),
    ("worker_type", {**GOOD, "worker": 42}, "worker must be a name"),
    ("status", {**GOOD, "status": "now please"}, "status must be one of"),
    ("huge", {**GOOD, "job": {"name": "record", "arguments": ["x" * 1_000_000]}}, "the limit is 65536"),
]


@pytest.mark.parametrize(("task_id", "doc", "reason"), BAD, ids=[case[0] for case in BAD])
def test_malformed_tasks_are_refused_at_write_with_the_reason(deployment: Deployment, task_id: str,
                                                              doc: dict[str, Any], reason: str) -> None:
    with pytest.raises(Forbidden) as refused:
        deployment.store.put({"_id": task_id, **doc})
    assert reason in refused.value.reason
    assert deployment.store.get(task_id) is None


def test_without_write_time_validation_the_worker_ends_bad_tasks_err_and_runs_the_rest(
        deployment: Deployment) -> None:
    design = deployment.store.get(DESIGN_ID)
    assert design is not None
    design.pop("validate_doc_update")  # as if the database had been filled before `after init`
    deployment.store.put(design)
    deployment.add([{"_id": task_id, **doc} for task_id, doc, _ in BAD if task_id != "status"])
    deployment.add([{"_id": "unknown_job", **GOOD, "job": {"name": "rm -rf /", "arguments": []}},
                    {"_id": "not_installed", **GOOD, "job": {"name": "start_campaign"}},
                    {"_id": "not_a_task", "hello": "world"}, {"_id": "good", **GOOD}])
    worker = deployment.start_worker()
    bad_ids = [task_id for task_id, _, _ in BAD if task_id not in ("status", "worker_type")]
    deployment.wait_status(["good"], "done")
    deployment.wait_status([*bad_ids, "not_installed", "unknown_job"], "err")
    for task_id, _, reason in BAD:
        if task_id in bad_ids:
            assert reason in deployment.doc(task_id)["result"]["reason"], task_id
    assert "unknown job 'start_campaign' (installed:" in deployment.doc("not_installed")["result"]["reason"]
    assert "job.name must be a name" in deployment.doc("unknown_job")["result"]["reason"]
    assert "status" not in deployment.doc("not_a_task")
    assert deployment.doc("worker_type")["status"] == "waiting"  # no worker's task: nobody touches it
    assert deployment.ran() == {"good": 1}
    assert worker.alive()
    deployment.store.install_design(design_document())
