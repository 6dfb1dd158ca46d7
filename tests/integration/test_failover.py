"""Failover between nodes (issue 8, item 4): a worker given every node of a cluster (``couchdb.urls``)
moves to another node when its node dies, within seconds and without a restart, and says which node it
uses in its log and in ``STATUS=`` (read from a ``NOTIFY_SOCKET`` the test provides). On a 3-node Apache
CouchDB cluster; ``make chaos`` runs the same scenario larger (``tests/fault/chaos.py``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster import CouchDBCluster, start_cluster
from tests.fault.chaos import node_failover
from tests.server import couchdb_missing

pytestmark = [pytest.mark.skipif(couchdb_missing() is not None, reason=str(couchdb_missing())),
              pytest.mark.couchdb]
MOVE_SECONDS = 5.0  # "within a few seconds"


@pytest.fixture(scope="module")
def cluster() -> Iterator[CouchDBCluster]:
    started = start_cluster(3)
    yield started
    started.close()


def test_a_worker_whose_node_is_killed_moves_to_another_node_and_says_so_without_a_restart(
        cluster: CouchDBCluster, tmp_path: Path) -> None:
    figures = node_failover(cluster, tmp_path, tasks=150, spread=20.0, kill_at=4.0, down_for=10.0)
    worker, move = figures.details["worker"], figures.details["move"]
    log = worker.output()
    context = "\n".join([figures.context(), log[-3000:]])
    assert figures.details["alive"], context  # no restart
    first, others = cluster.urls[0], cluster.urls[1:]
    assert f"CouchDB connected: {first}" in log, context
    assert [line for line in worker.lines(r"CouchDB at .* is unavailable; using ") if first in line], context
    assert move.log is not None and move.log <= MOVE_SECONDS, context
    assert move.status is not None and move.status <= MOVE_SECONDS, (context, move.statuses[-10:])
    before = [line for moment, line in move.statuses if moment < move.killed]
    assert before and before[-1].endswith(f"CouchDB connected at {first}"), move.statuses[:10]
    after = [line for moment, line in move.statuses if moment >= move.killed]
    assert any(re.search(f"at ({'|'.join(map(re.escape, others))})$", line) for line in after), after[-10:]
    assert move.done_while_down > 0, context  # tasks kept running on the other nodes
    assert (figures.lost, figures.unrecorded, figures.conflicts) == (0, 0, 0), context
