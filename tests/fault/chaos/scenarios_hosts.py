"""Scenarios with workers on several hosts: network namespaces with their own addresses and host names,
reaching the server on the bridge address over veth links (``tests.hosts``; issue 8, item 3).

- ``link_cut``: three hosts; while long jobs run, the link of a host running some is cut for 2.5
  leases, then mended. Its jobs must be stopped before its lease runs out (and before anyone else
  starts them), taken over by another host which records the interrupted run, its late result (if
  any gets through) only added to history; once back, the host runs tasks again.
- ``skewed_clocks``: hosts whose clocks are off by +-2 s (libfaketime): each task still runs once,
  and the lateness each host reports is its own clock's.
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from after.core.task import Document
from tests.fault.chaos.figures import Figures, Start, percentile
from tests.fault.chaos.processes import Worker
from tests.fault.chaos.run import Run, running
from tests.hosts import Host, Network
from tests.server import TestServer


def hosts_of(network: Network, names: Sequence[str]) -> list[Host]:
    return [network.hosts[name] if name in network.hosts else network.add_host(name) for name in names]


def hosts_in_results(docs: Mapping[str, Document]) -> Counter[str]:
    """The host names in the results' ``by`` (``manobi@HOST:PID``): one per host, if each has its own."""
    return Counter(str((doc.get("result") or {}).get("by", "")).split("@")[-1].rsplit(":", 1)[0]
                   for doc in docs.values())


@dataclass
class Cut:
    """What happened to the tasks of the host whose link was cut."""

    victim: Host
    label: str  # its worker process, as results name it
    task_ids: list[str]  # the long jobs it was running when cut
    fenced: list[str] = field(default_factory=list)  # its log lines: a job stopped as its lease ran out
    stopped: dict[str, float] = field(default_factory=dict)  # task -> when its job there was stopped
    finished: list[str] = field(default_factory=list)  # jobs that ran to their end there anyway
    overlaps: list[str] = field(default_factory=list)  # started elsewhere before it stopped there
    interrupted: int = 0  # recorded as interrupted by the takeover
    late: int = 0  # late results in history (a result written after the task was taken over)
    ran_after: int = 0  # new tasks it ran once mended
    alive: bool = False  # its worker process at the end, without a restart

    def note(self, lease: float, long_tasks: int, long_seconds: float, after: int) -> str:
        return (f"{self.victim.hostname}'s link cut for {lease * 2.5:g} s (lease {lease:g} s) while it "
                f"ran {len(self.task_ids)} of {long_tasks} {long_seconds:g}-s jobs: {len(self.fenced)} "
                f"stopped by its fence, {len(self.finished)} ran to their end there, {len(self.overlaps)} "
                f"started elsewhere before they stopped there, {self.interrupted} recorded as interrupted "
                f"by the takeover; {self.late} late results in history; after the mend it ran "
                f"{self.ran_after} of {after} new tasks{'' if self.alive else '; its process DIED'}")


def judge_cut(run: Run, cut: Cut, docs: Mapping[str, Document], worker: Worker, after_ids: list[str]) -> None:
    """Fill in ``cut`` from the documents, the job's records and the cut-off worker's log."""
    starts, stops, ends = run.starts(), run.starts("stops"), run.starts("ends")
    mine: dict[str, list[Start]] = {task: [s for s in stops.get(task, []) if s.label == cut.label]
                                    for task in cut.task_ids}
    cut.stopped = {task: found[0].moment for task, found in mine.items() if found}
    cut.finished = [task for task in cut.task_ids if any(e.label == cut.label for e in ends.get(task, []))]
    for task in cut.task_ids:
        elsewhere = [s.moment for s in starts.get(task, []) if s.label != cut.label]
        if elsewhere and (task not in cut.stopped or min(elsewhere) < cut.stopped[task]):
            cut.overlaps.append(task)
    cut.interrupted = sum(1 for task in cut.task_ids if any(
        entry.get("outcome") == "interrupted" and entry.get("by") == cut.label
        for entry in docs[task].get("history", [])))
    cut.late = sum(1 for doc in docs.values() for entry in doc.get("history", []) if entry.get("late"))
    cut.ran_after = sum(1 for task in after_ids if (docs[task].get("result") or {}).get("by") == cut.label)
    cut.fenced = worker.lines("lease could not be renewed")
    cut.alive = worker.alive()


def cut_a_busy_host(network: Network, run: Run, hosts: list[Host], workers: dict[str, Worker],
                    long_ids: list[str], lease: float) -> Cut:
    """Once the long jobs started, cut the link of the host running most of them for 2.5 leases."""
    run.deployment.wait_until(lambda: all(task in run.starts() for task in long_ids), 30.0,
                              "the long jobs to start")
    first = {task: run.starts()[task][0].host for task in long_ids}
    busiest = Counter(first.values()).most_common(1)[0][0]
    victim = next(host for host in hosts if host.hostname == busiest)
    cut = Cut(victim, workers[victim.name].label, [task for task in long_ids if first[task] == busiest])
    network.cut(victim)
    try:
        time.sleep(lease * 2.5)
    finally:
        network.mend(victim)
    return cut


def link_cut(network: Network, server: TestServer, directory: Path, lease: float = 8.0, tasks: int = 300,
             spread: float = 60.0, long_tasks: int = 6, long_seconds: float = 15.0, after: int = 60,
             timeout: float = 180.0) -> Figures:
    """Three hosts; while long jobs run, the link of a host running some is cut for 2.5 leases."""
    hosts = hosts_of(network, ["hostA", "hostB", "hostC"])
    with running(Run(server, directory, concurrency=4, lease=lease, claim_ahead=1.0, grace=5.0)) as run:
        workers = {host.name: run.start(host=host) for host in hosts}
        run.wait_members(list(workers.values()), 3)
        long_ids = run.add("long", long_tasks, 2.0, 0.0, arguments=[long_seconds])
        ids = run.add("c", tasks, 3.0, spread)
        cut = cut_a_busy_host(network, run, hosts, workers, long_ids, lease)
        after_ids = run.add("back", after, 4.0, 10.0)
        finished = run.wait_done([*long_ids, *ids, *after_ids], timeout)
        figures = run.tally("link-cut", [*long_ids, *ids, *after_ids])
        judge_cut(run, cut, figures.details["docs"], workers[cut.victim.name], after_ids)
        figures.details.update(cut=cut, workers=workers, hosts=hosts_in_results(figures.details["docs"]))
        figures.notes = [cut.note(lease, long_tasks, long_seconds, after),
                         *([] if finished else ["timed out"])]
        return figures


def clock_of(run: Run, figures: Figures, worker: Worker) -> tuple[int, list[float], float]:
    """A host's tasks: how many, their real lateness (ms), and how much later than real (ms, median) the
    lateness it reported was: its clock's offset as its results show it."""
    starts, docs = figures.details["starts"], figures.details["docs"]
    mine = [task for task, doc in docs.items() if (doc.get("result") or {}).get("by") == worker.label
            and task in run.ahead and task in starts]
    real = [(starts[task][0].moment - run.dates[task]) * 1000.0 for task in mine]
    told = [float(docs[task]["result"]["lateness_ms"]) for task in mine]
    offset = statistics.median(t - r for t, r in zip(told, real, strict=True)) if mine else float("nan")
    return len(mine), real, offset


def skewed_clocks(network: Network, server: TestServer, directory: Path,
                  skews: Sequence[float] = (2.0, -2.0, 0.0), tasks: int = 600, spread: float = 30.0,
                  burst: int = 200, lease: float = 8.0, timeout: float = 180.0) -> Figures:
    """Hosts whose clocks are ``skews`` seconds off: tasks spread and a burst, each run exactly once."""
    hosts = hosts_of(network, [f"host{'ABCDEFG'[index]}" for index in range(len(skews))])
    with running(Run(server, directory, concurrency=4, lease=lease, claim_ahead=1.0, grace=5.0)) as run:
        workers = [run.start(host=host, skew=skew) for host, skew in zip(hosts, skews, strict=True)]
        run.wait_members(workers, len(workers))
        ids = run.add("k", tasks, 3.0, spread) + run.add("b", burst, 5.0)
        finished = run.wait_done(ids, timeout)
        figures = run.tally("skewed-clocks", ids)
        clocks, per_host = {}, []
        for worker, skew in zip(workers, skews, strict=True):
            ran, real, offset = clock_of(run, figures, worker)
            clocks[worker.hostname] = (skew, ran, offset)
            per_host.append(f"{worker.hostname} ({skew:+g} s): {ran} tasks, real lateness p50/p99 "
                            f"{percentile(real, 0.5):.0f}/{percentile(real, 0.99):.0f} ms, the lateness it "
                            f"reports {offset:+.0f} ms off that")
        figures.details.update(workers=workers, clocks=clocks,
                               hosts=hosts_in_results(figures.details["docs"]))
        figures.notes = [*per_host, *([] if finished else ["timed out"])]
        return figures
