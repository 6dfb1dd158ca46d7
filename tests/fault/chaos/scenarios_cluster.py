"""Scenarios on a 3-node Apache CouchDB cluster (n=3): exactly once with a process per node, and failover.

- ``cluster_scenario``: three processes, one per node (the other nodes as failover, ``couchdb.urls``),
  tasks spread or due at once, maybe a node killed (SIGKILL) mid-run and restarted (issue 8, item 1).
- ``node_failover``: one process given all three nodes, its node killed mid-run: how long until it uses
  another node, in its log and in ``STATUS=`` (read from a ``NOTIFY_SOCKET``; issue 8, item 4).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from after.core.dates import parse_date
from tests.cluster import CouchDBCluster
from tests.fault.chaos.figures import Figures
from tests.fault.chaos.processes import StatusSocket, Worker
from tests.fault.chaos.run import Run, rotated, running


def cluster_scenario(cluster: CouchDBCluster, directory: Path, scenario: str, tasks: int, spread: float,
                     kill_at: float | None = None, down_for: float = 14.0, node: int = 2,
                     timeout: float = 300.0) -> Figures:
    """Three processes, one per node; ``tasks`` due over ``spread`` s; maybe node ``node`` killed mid-run."""
    with running(Run(cluster, directory, concurrency=4, lease=30.0, claim_ahead=1.0, grace=5.0)) as run:
        workers = [run.start(urls=rotated(cluster.urls, index)) for index in range(3)]
        run.wait_members(workers, 3)
        ids = run.add("t", tasks, 3.0, spread)
        notes = []
        if kill_at is not None:
            time.sleep(kill_at)
            cluster.kill(node)
            try:
                time.sleep(down_for)
            finally:
                cluster.start_node(node)
            notes.append(f"node {node} killed {kill_at:g} s after the tasks were written, "
                         f"back {down_for:g} s later")
        finished = run.wait_done(ids, timeout)
        figures = run.tally(scenario, ids, settle=60.0)
        shares = sorted(run.runs_by_label(ids).values(), reverse=True)
        figures.notes = [*notes, f"results per process {shares}", *([] if finished else ["timed out"])]
        return figures


@dataclass
class Move:
    """What a failover looked like: seconds from the kill until the log and ``STATUS=`` named another node."""

    killed: float
    others: list[str]
    log: float | None = None
    status: float | None = None
    done_while_down: int = 0
    statuses: list[tuple[float, str]] = field(default_factory=list)

    def watch(self, worker: Worker, status: StatusSocket) -> None:
        """Note when the log and ``STATUS=`` first name another node (once each)."""
        if self.log is None and any(worker.lines(f"CouchDB connected: {re.escape(url)}$")
                                    for url in self.others):
            self.log = time.time() - self.killed
        pattern = f"CouchDB connected at ({'|'.join(map(re.escape, self.others))})$"
        if self.status is None and any(moment >= self.killed and re.search(pattern, line)
                                       for moment, line in status.statuses()):
            self.status = time.time() - self.killed


def fail_node(cluster: CouchDBCluster, run: Run, worker: Worker, status: StatusSocket, ids: list[str],
              down_for: float) -> Move:
    """Kill node 1 (the worker's) for ``down_for`` s, watching the worker move; then start it again."""
    move = Move(time.time(), cluster.urls[1:])
    cluster.kill(1)
    try:
        deadline = time.monotonic() + down_for
        while time.monotonic() < deadline:
            move.watch(worker, status)
            time.sleep(0.1)
        move.done_while_down = sum(  # while node 1 is still down: the others served them
            1 for doc in run.documents(ids).values()
            if doc.get("status") == "done" and parse_date(doc["result"]["ended"]) > move.killed)
    finally:
        cluster.start_node(1)
    return move


def node_failover(cluster: CouchDBCluster, directory: Path, tasks: int = 400, spread: float = 30.0,
                  kill_at: float = 8.0, down_for: float = 15.0, timeout: float = 180.0) -> Figures:
    """One process with all three nodes (node 1 first); node 1 killed while tasks are due."""
    directory.mkdir(parents=True, exist_ok=True)
    status = StatusSocket(directory / "notify.sock")
    try:
        with running(Run(cluster, directory, concurrency=4, lease=10.0, claim_ahead=1.0, grace=5.0)) as run:
            worker = run.start(urls=cluster.urls, environment={"NOTIFY_SOCKET": str(status.path)})
            worker.wait_ready()
            ids = run.add("f", tasks, 2.0, spread)
            time.sleep(kill_at)
            move = fail_node(cluster, run, worker, status, ids, down_for)
            finished = run.wait_done(ids, timeout)
            figures = run.tally("node-failover", ids, settle=60.0)
            move.statuses = status.statuses()
            figures.details.update(worker=worker, move=move, alive=worker.alive())
            figures.notes = [
                f"node 1 of 3 killed for {down_for:g} s; the process named another node in its log after "
                f"{seconds(move.log)} s, in STATUS= after {seconds(move.status)} s; {move.done_while_down} "
                f"tasks done while node 1 was down; process restarted: "
                f"{'no' if worker.alive() else 'it DIED'}",
                *([] if finished else ["timed out"])]
            return figures
    finally:
        status.close()


def seconds(value: float | None) -> str:
    return "never" if value is None else f"{value:.1f}"
