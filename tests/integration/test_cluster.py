"""Exactly once on an Apache CouchDB cluster (3 nodes, every document in three copies; issue 8).

Three processes of one worker name, each talking to a different node (with the other nodes as
failover), run every task once, leave no conflicting revisions behind, and share the work. The long
versions of these runs, and the ones with hosts and links failing, are in ``make chaos``.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from after.core.task import Document
from after.initialize import Validation, initialize
from tests.cluster import CouchDBCluster, start_cluster
from tests.integration.deployment import Deployment, WorkerProcess
from tests.server import couchdb_missing

pytestmark = pytest.mark.skipif(couchdb_missing() is not None, reason=str(couchdb_missing()))


@pytest.fixture(scope="module")
def cluster() -> Iterator[CouchDBCluster]:
    started = start_cluster(3)
    yield started
    started.close()


class ClusterDeployment(Deployment):
    """One database on the cluster; each worker process gets its own node first in ``couchdb.urls``."""

    def __init__(self, cluster: CouchDBCluster, directory: Path) -> None:
        super().__init__(cluster, directory, concurrency=4, lease=30.0, claim_ahead=1.0, grace=5.0)  # type: ignore[arg-type]
        self.cluster = cluster
        initialize(self.store, Validation.ERLANG)  # on every copy of every write: JavaScript costs too much

    def start_on(self, node: int, name: str = "manobi") -> WorkerProcess:
        urls = self.cluster.urls[node:] + self.cluster.urls[:node]
        text = self.config.read_text()
        config = self.directory / f"after-node{node}.toml"
        config.write_text(re.sub(r'url = "[^"]*"', "urls = [" + ", ".join(f'"{url}"' for url in urls) + "]",
                                 text, count=1))
        worker = WorkerProcess(name, config, self.directory / f"worker-{len(self.workers)}.log")
        self.workers.append(worker)
        return worker

    def conflicted(self, task_ids: list[str]) -> list[str]:
        docs: list[Document] = []
        for start in range(0, len(task_ids), 200):
            docs.extend(doc for doc in self.store.get_many(task_ids[start:start + 200]) if doc is not None)
        return [str(doc["_id"]) for doc in docs if doc.get("_conflicts")]

    def wait_settled(self, task_ids: list[str], timeout: float = 30.0) -> list[str]:
        """Documents still with conflicting leaves after ``timeout``, each with its leaves described."""
        deadline = time.monotonic() + timeout
        left = self.conflicted(task_ids)
        while left and time.monotonic() < deadline:
            time.sleep(1.0)
            left = self.conflicted(left)
        return [self.describe(task_id) for task_id in left]

    def describe(self, task_id: str) -> str:
        doc = self.store.get(task_id) or {}
        leaves = [doc, *self.store.revisions(task_id, doc.get("_conflicts", []))]
        return task_id + ": " + "; ".join(
            f"{leaf.get('_rev')} {leaf.get('status')} claimed by {(leaf.get('claim') or {}).get('by')} "
            f"result by {(leaf.get('result') or {}).get('by')} history {len(leaf.get('history', []))}"
            for leaf in leaves)


def start_together(deployment: ClusterDeployment, nodes: int = 3) -> list[WorkerProcess]:
    """One process per node, and wait until each knows all the others (their presence documents)."""
    workers = [deployment.start_on(node) for node in range(nodes)]
    deployment.wait_until(lambda: all(f"processes of worker manobi: {nodes} " in worker.output()
                                      for worker in workers), 30.0, "the processes to see each other")
    return workers


@pytest.fixture
def deployment_on(cluster: CouchDBCluster, tmp_path: Path) -> Iterator[ClusterDeployment]:
    deployed = ClusterDeployment(cluster, tmp_path)
    yield deployed
    deployed.stop_all()


def runs_per_worker(deployment: ClusterDeployment, task_ids: list[str]) -> Counter[str]:
    by: Counter[str] = Counter()
    for start in range(0, len(task_ids), 200):
        for doc in deployment.store.get_many(task_ids[start:start + 200]):
            if doc is not None:
                by[str((doc.get("result") or {}).get("by", "")).rsplit(":", 1)[-1]] += 1
    return by


def test_three_processes_on_three_nodes_run_spread_tasks_once_and_leave_no_conflicts(
        deployment_on: ClusterDeployment) -> None:
    workers = start_together(deployment_on)
    ids = [f"s{number:04d}" for number in range(600)]
    deployment_on.add([deployment_on.task(task_id, 3.0 + number * 0.01)
                       for number, task_id in enumerate(ids)])
    deployment_on.wait_status(ids, "done", timeout=120.0)
    assert deployment_on.ran() == {task_id: 1 for task_id in ids}
    assert deployment_on.wait_settled(ids) == []
    shares = runs_per_worker(deployment_on, ids)
    seen = [line for worker in workers for line in worker.output().splitlines() if "processes of" in line]
    assert len(shares) == 3 and all(100 <= count <= 400 for count in shares.values()), (shares, seen)
    assert all(worker.alive() for worker in workers)


def test_three_processes_run_tasks_due_at_once_exactly_once(deployment_on: ClusterDeployment) -> None:
    start_together(deployment_on)
    ids = [f"b{number:04d}" for number in range(300)]
    deployment_on.add([deployment_on.task(task_id, 3.0) for task_id in ids])
    deployment_on.wait_status(ids, "done", timeout=120.0)
    assert deployment_on.ran() == {task_id: 1 for task_id in ids}
    assert deployment_on.wait_settled(ids) == []


def test_a_node_killed_and_restarted_mid_run_loses_nothing_and_reruns_nothing_unrecorded(
        cluster: CouchDBCluster, deployment_on: ClusterDeployment) -> None:
    start_together(deployment_on)
    ids = [f"k{number:04d}" for number in range(400)]
    deployment_on.add([deployment_on.task(task_id, 2.0 + number * 0.02)
                       for number, task_id in enumerate(ids)])
    time.sleep(3.0)
    cluster.kill(2)
    time.sleep(4.0)
    cluster.start_node(2)
    deployment_on.wait_status(ids, "done", timeout=180.0)
    ran = deployment_on.ran()
    assert set(ran) == set(ids)
    for task_id, count in ran.items():
        if count > 1:  # a rerun is allowed only if the document records the interrupted run
            history = deployment_on.doc(task_id).get("history", [])
            assert sum(1 for entry in history if entry.get("outcome") == "interrupted") >= count - 1, task_id
    assert deployment_on.wait_settled(ids, timeout=60.0) == []
