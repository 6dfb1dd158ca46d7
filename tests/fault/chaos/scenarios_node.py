"""Scenarios on one server node: kill -9 storms, server restarts, and how processes share the tasks.

- ``kill_storm``: ``tests.fault.kill_storm`` (issue 7): two processes, SIGKILLs, each restarted at once.
- ``couchdb_restarts``: two processes; the server killed (SIGKILL) twice mid-run, started again 3 s later.
- ``sharing``: N processes of one name share tasks due over a while, started together or the others
  later than the first (issue 8, item 5).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from tests.fault.chaos.figures import Figures
from tests.fault.chaos.run import Run, running
from tests.server import ServerKind, TestServer


def couchdb_restarts(server: TestServer, directory: Path, tasks: int = 2000, spread: float = 30.0,
                     kills: Sequence[float] = (8.0, 20.0), down_for: float = 3.0,
                     timeout: float = 240.0) -> Figures:
    """Two processes; the server killed (SIGKILL) at each of ``kills`` seconds and started again."""
    with running(Run(server, directory, concurrency=4, lease=30.0, claim_ahead=1.0, grace=5.0)) as run:
        workers = [run.start() for _ in range(2)]
        run.wait_members(workers, 2)
        ids = run.add("r", tasks, 3.0, spread)
        began = time.monotonic()
        for moment in kills:
            time.sleep(max(0.0, began + moment - time.monotonic()))
            server.kill()
            time.sleep(down_for)
            server.start()
        finished = run.wait_done(ids, timeout)
        figures = run.tally("couchdb-restarts", ids)
        figures.notes = [f"{len(kills)} SIGKILLs of the server, each down {down_for:g} s",
                         f"processes alive at the end: {sum(worker.alive() for worker in workers)} of 2",
                         *([] if finished else ["timed out"])]
        return figures


def kill_storm(server: TestServer, directory: Path, tasks: int = 2000, kills: int = 20,
               spread: float = 30.0) -> Figures:
    """``tests.fault.kill_storm`` (its own figures, its lateness as the documents report it)."""
    from tests.fault import kill_storm as storm_module

    validation = "erlang" if server.kind == ServerKind.COUCHDB else "javascript"
    settings = storm_module.Settings(tasks=tasks, kills=kills, processes=2, spread=spread, lease=60.0,
                                     validation=validation)
    began = time.time()
    found = storm_module.storm(server, directory, settings, kills=True)
    return Figures("kill-storm", tasks, found.lost, found.unrecorded_reruns, found.recorded_reruns,
                   found.conflicts, found.lateness_p50, found.lateness_p99, time.time() - began,
                   notes=[f"{found.kills} SIGKILLs of 2 processes, each restarted; lateness as the documents "
                          f"report it; interruptions recorded for runs that never started: "
                          f"{found.phantom_interruptions}; attempts off: {found.attempts_off}"],
                   examples=found.examples)


def sharing(server: TestServer, directory: Path, processes: int, apart: float, tasks: int = 1000,
            spread: float = 30.0, lead: float = 3.0, timeout: float = 180.0) -> Figures:
    """``processes`` processes share ``tasks`` due over ``spread`` s, from ``lead`` s after they all run.

    Together: they start at once, and the tasks are written once each knows the others. Apart: the
    first starts alone and answers every task (written once it is ready) before the others start,
    ``apart`` s later: it holds them all, and must leave the others their share."""
    scenario = f"sharing-{processes}-{'apart' if apart else 'together'}"
    with running(Run(server, directory, concurrency=4, lease=30.0, claim_ahead=1.0, grace=5.0)) as run:
        first, held = run.start(), 0
        if apart:
            first.wait_ready()
            ids = run.add("l", tasks, apart + lead, spread)
            time.sleep(apart)
            held = run.store.status_counts("manobi").get("manobi", {}).get("scheduled", 0)
            others = [run.start() for _ in range(processes - 1)]
        else:
            others = [run.start() for _ in range(processes - 1)]
            run.wait_members([first, *others], processes)
            ids = run.add("l", tasks, lead, spread)
        finished = run.wait_done(ids, timeout)
        figures = run.tally(scenario, ids)
        by = run.runs_by_label(ids)
        shares = [by.get(worker.label, 0) for worker in [first, *others]]
        fair = tasks / processes
        figures.details.update(shares=shares, fair=fair, held=held)
        figures.notes = [f"results per process {shares} (in start order; fair share {fair:.0f}, "
                         f"so {fair / 2:.0f}-{fair * 2:.0f} each)"
                         + (f"; the others started {apart:g} s after the first, which had answered {held} "
                            "tasks by then" if apart else ""),
                         *([] if finished else ["timed out"])]
        return figures
