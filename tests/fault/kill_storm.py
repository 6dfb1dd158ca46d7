"""Kill storm (issue 7, item 5): processes of one worker name get SIGKILL while they run thousands of tasks.

    python -m tests.fault.kill_storm                      # Apache CouchDB: 2 processes, 3000 tasks, 20 kills
    python -m tests.fault.kill_storm --server pouchdb --tasks 400 --kills 5 --spread 8

``--processes`` worker processes of the name ``manobi`` run ``--tasks`` tasks of an executable job that
appends ``$AFTER_TASK_ID``, the time and its parent's pid (the worker process) to a starts file, then
exits 0. A fifth of the tasks are overdue when the processes start, the rest due over ``--spread``
seconds. At ``--kills`` random moments a random live process gets SIGKILL and is started again at once
(its jobs, in sessions of their own, may run on and finish: their starts are in the file, their results
are never written). The same run without kills (same tasks, same moments) is the baseline.

Figures (targets from issue 7): tasks lost (not ``done`` at the end; 0), unrecorded reruns (starts of a
task beyond its first, minus its ``interrupted`` history entries, when more; 0), recorded reruns,
interruptions recorded for runs that never started, ``attempts`` that differ from the starts, throughput
while the kills go on (tasks ended per second between the first and the last kill) against the baseline
over the same seconds (at least half), the time from a restarted process's ``ready`` log line to its
first job start (within 1 s), and documents with ``_conflicts``. The table is printed and written to
``tests/fault/KILL_STORM.md`` (``--output``).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from after.core.dates import format_date, parse_date
from after.core.task import Document
from after.initialize import Validation, initialize
from tests.integration.deployment import Deployment, WorkerProcess
from tests.server import ERLANG_INI, ServerKind, TestServer, start_server

HERE = Path(__file__).resolve().parent
STARTS = """#!/bin/sh
echo "$AFTER_TASK_ID $(date +%s.%N) $PPID" >> {starts}
{sleep}
"""
OVERDUE = 0.2  # the share of tasks already due when the processes start
LEAD = 3.0  # seconds from writing the tasks to the first date: the processes start meanwhile


@dataclass
class Settings:
    tasks: int = 3000
    kills: int = 20
    processes: int = 2
    spread: float = 30.0
    concurrency: int = 4
    lease: float = 60.0
    job_seconds: float = 0.0
    seed: int = 7
    settle_timeout: float = 180.0
    validation: str = "javascript"  # what `after init` installs: javascript (its default), erlang or none


@dataclass
class Life:
    """One worker process: when it started, was ready, was killed."""

    worker: WorkerProcess
    started: float
    restart: bool
    ready: float | None = None
    killed: float | None = None


@dataclass
class Figures:
    kind: str
    settings: Settings
    kills: int
    lost: int
    unrecorded_reruns: int
    recorded_reruns: int
    phantom_interruptions: int  # "interrupted" entries beyond the reruns: runs that never started
    attempts_off: int  # tasks whose attempts is not their number of starts
    starts: int
    throughput: float  # tasks ended per second in the storm window
    window: tuple[float, float]  # seconds after the processes started
    completion: float  # seconds from the processes' start to the last task done
    lateness_p50: float
    lateness_p99: float
    ready_to_first_job: list[float]
    restarts_without_a_job: int
    conflicts: int
    examples: dict[str, list[str]] = field(default_factory=dict)


class Storm:
    """One run: a database with the tasks, the processes, the kills, and what the documents say after."""

    def __init__(self, server: TestServer, directory: Path, settings: Settings, kills: bool) -> None:
        self.server, self.settings, self.with_kills = server, settings, kills
        self.random = random.Random(settings.seed)
        directory.mkdir(parents=True, exist_ok=True)
        self.deployment = Deployment(server, directory, concurrency=settings.concurrency,
                                     lease=settings.lease, claim_ahead=1.0, grace=5.0)
        if settings.validation != Validation.JAVASCRIPT.value:
            initialize(self.deployment.store, Validation(settings.validation))
        self.starts = directory / "starts.log"
        self.starts.touch()
        sleep = f"sleep {settings.job_seconds}" if settings.job_seconds > 0 else ""
        self.deployment.install("storm", STARTS.format(starts=self.starts, sleep=sleep))
        self.lives: list[Life] = []
        self.lock = threading.Lock()
        self.watching = threading.Event()
        self.ids = [f"s{number:05d}" for number in range(settings.tasks)]
        # the same dates and kill moments in both runs (relative to the processes' start)
        self.offsets = [-self.random.uniform(0.0, 30.0) if self.random.random() < OVERDUE
                        else self.random.uniform(0.0, settings.spread) for _ in self.ids]
        self.moments = sorted(self.random.uniform(1.0, settings.spread) for _ in range(settings.kills))
        self.victims = [self.random.random() for _ in range(settings.kills)]

    def run(self) -> Figures:
        try:
            return self.storm()
        finally:
            self.watching.clear()
            self.deployment.stop_all()

    def storm(self) -> Figures:
        start = time.time() + LEAD
        self.deployment.add([{"_id": task_id, "worker": "manobi", "date": format_date(start + offset),
                              "job": {"name": "storm", "arguments": []}, "status": "waiting"}
                             for task_id, offset in zip(self.ids, self.offsets, strict=True)])
        self.watching.set()
        watcher = threading.Thread(target=self.watch_ready, daemon=True)
        watcher.start()
        began = time.time()
        for _ in range(self.settings.processes):
            self.launch(restart=False)
        kills = 0
        if self.with_kills:
            for moment, victim in zip(self.moments, self.victims, strict=True):
                time.sleep(max(0.0, began + moment - time.time()))
                alive = [life for life in self.lives if life.killed is None and life.worker.alive()]
                target = alive[int(victim * len(alive))]
                target.worker.kill()
                target.killed = time.time()
                kills += 1
                self.launch(restart=True)
        self.wait_done(began)
        time.sleep(2.0)  # jobs a killed process left behind finish; their starts reach the file
        return self.figures(began, kills)

    def launch(self, restart: bool) -> None:
        worker = self.deployment.start_worker()
        with self.lock:
            self.lives.append(Life(worker, time.time(), restart))

    def watch_ready(self) -> None:
        """The moment each process logs ``ready`` (the log's own times are whole seconds)."""
        while self.watching.is_set():
            with self.lock:
                waiting = [life for life in self.lives if life.ready is None and life.killed is None]
            for life in waiting:
                if " ready: " in life.worker.output():
                    life.ready = time.time()
            time.sleep(0.01)

    def wait_done(self, began: float) -> None:
        deadline = time.monotonic() + self.settings.spread + self.settings.settle_timeout
        while time.monotonic() < deadline:
            try:
                if self.deployment.store.status_counts("manobi").get("manobi", {}).get("done", 0) \
                        >= len(self.ids):
                    return
            except Exception:  # a busy server: ask again
                pass
            time.sleep(0.5)

    def documents(self) -> list[Document]:
        store = self.deployment.store
        response = store.client.get(f"{store.db_path}/_all_docs",
                                    params={"include_docs": "true", "conflicts": "true"})
        response.raise_for_status()
        return [row["doc"] for row in response.json()["rows"] if row["id"] in set(self.ids)]

    def figures(self, began: float, kills: int) -> Figures:
        starts: dict[str, list[tuple[float, int]]] = {}
        for line in self.starts.read_text().splitlines():
            task_id, moment, parent = line.split()
            starts.setdefault(task_id, []).append((float(moment), int(parent)))
        docs = {str(doc["_id"]): doc for doc in self.documents()}
        lost, unrecorded, recorded, phantom, attempts_off, conflicts = 0, 0, 0, 0, 0, 0
        examples: dict[str, list[str]] = {}
        ended: list[float] = []
        lateness: list[float] = []
        for task_id, offset in zip(self.ids, self.offsets, strict=True):
            doc = docs.get(task_id, {})
            count = len(starts.get(task_id, []))
            found = doc.get("history")
            history: list[Any] = found if isinstance(found, list) else []
            interrupted = sum(isinstance(entry, dict) and entry.get("outcome") == "interrupted"
                              for entry in history)
            reruns = max(0, count - 1)
            if doc.get("status") != "done":
                lost += 1
                examples.setdefault("lost", []).append(f"{task_id}: {doc.get('status')}, {count} starts")
            if reruns > interrupted:
                unrecorded += reruns - interrupted
                examples.setdefault("unrecorded", []).append(describe(task_id, doc, starts.get(task_id, [])))
            recorded += min(reruns, interrupted)
            if interrupted > reruns:
                phantom += interrupted - reruns
                examples.setdefault("phantom", []).append(describe(task_id, doc, starts.get(task_id, [])))
            if doc.get("attempts") != count:
                attempts_off += 1
                examples.setdefault("attempts", []).append(describe(task_id, doc, starts.get(task_id, [])))
            if doc.get("_conflicts"):
                conflicts += 1
            result = doc.get("result")
            if isinstance(result, dict) and result.get("outcome") == "done":
                ended.append(parse_date(result["ended"]) - began)
                if offset >= 0:  # overdue ones are late by construction
                    lateness.append(float(result["lateness_ms"]))
        window = (self.moments[0], self.moments[-1]) if self.moments else (0.0, self.settings.spread)
        inside = sum(1 for moment in ended if window[0] <= moment <= window[1])
        throughput = inside / max(window[1] - window[0], 1e-9)
        delays, without = [], 0
        for life in self.lives:
            if not life.restart:
                continue
            pid = life.worker.pid
            first = min((moment for runs in starts.values() for moment, parent in runs if parent == pid),
                        default=None)
            if life.ready is None or first is None:
                without += 1
            else:
                delays.append(first - life.ready)
        lateness.sort()
        return Figures(
            kind=self.server.kind.value, settings=self.settings, kills=kills, lost=lost,
            unrecorded_reruns=unrecorded, recorded_reruns=recorded, phantom_interruptions=phantom,
            attempts_off=attempts_off, starts=sum(len(runs) for runs in starts.values()),
            throughput=throughput, window=window, completion=max(ended, default=0.0),
            lateness_p50=percentile(lateness, 0.5), lateness_p99=percentile(lateness, 0.99),
            ready_to_first_job=delays, restarts_without_a_job=without, conflicts=conflicts,
            examples={key: values[:5] for key, values in examples.items()})


def describe(task_id: str, doc: Document, runs: list[tuple[float, int]]) -> str:
    history = [f"{entry.get('outcome')}({entry.get('by')})" for entry in doc.get("history") or []
               if isinstance(entry, dict)]
    return (f"{task_id}: {len(runs)} starts by {[parent for _, parent in runs]}, "
            f"attempts {doc.get('attempts')}, history {history}")


def percentile(values: list[float], share: float) -> float:
    if not values:
        return 0.0
    return values[min(len(values) - 1, int(share * len(values)))]


def storm(server: TestServer, directory: Path, settings: Settings, kills: bool = True) -> Figures:
    return Storm(server, directory, settings, kills).run()


# ---- the report ----------------------------------------------------------------------------------------

def rows(storm_run: Figures, baseline: Figures | None) -> list[tuple[str, str, str, str]]:
    """(figure, value, target, met) rows."""
    def met(ok: bool) -> str:
        return "yes" if ok else "NO"

    delays = sorted(storm_run.ready_to_first_job)
    p50 = statistics.median(delays) if delays else float("nan")
    worst = max(delays) if delays else float("nan")
    found = [
        ("kills (SIGKILL, then restarted at once)", f"{storm_run.kills}", "", ""),
        ("tasks lost (not done at the end)", f"{storm_run.lost}", "0", met(storm_run.lost == 0)),
        ("unrecorded reruns", f"{storm_run.unrecorded_reruns}", "0", met(storm_run.unrecorded_reruns == 0)),
        ("recorded reruns (interrupted, run again)", f"{storm_run.recorded_reruns}", "", ""),
        ("interruptions recorded for runs that never started", f"{storm_run.phantom_interruptions}", "0",
         met(storm_run.phantom_interruptions == 0)),
        ("tasks whose attempts differ from their starts", f"{storm_run.attempts_off}", "0",
         met(storm_run.attempts_off == 0)),
        ("job starts", f"{storm_run.starts}", f"{storm_run.settings.tasks} + reruns", ""),
        (f"throughput during the storm ({storm_run.window[0]:.1f}-{storm_run.window[1]:.1f} s), tasks/s",
         f"{storm_run.throughput:.1f}", "", ""),
    ]
    if baseline is not None:
        ratio = storm_run.throughput / baseline.throughput if baseline.throughput else float("nan")
        found += [("throughput without kills, same seconds, tasks/s", f"{baseline.throughput:.1f}", "", ""),
                  ("storm / without kills", f"{ratio:.2f}", ">= 0.5", met(ratio >= 0.5))]
    found += [
        ("restarted process: ready to first job start, p50 s", f"{p50:.3f}", "", ""),
        ("restarted process: ready to first job start, max s", f"{worst:.3f}", "<= 1", met(worst <= 1.0)),
        ("restarts killed before their first job", f"{storm_run.restarts_without_a_job}", "", ""),
        ("documents with _conflicts", f"{storm_run.conflicts}", "0", met(storm_run.conflicts == 0)),
        ("all tasks done after, s", f"{storm_run.completion:.1f}",
         f"{baseline.completion:.1f} without kills" if baseline else "", ""),
        ("lateness p50 / p99 of tasks not overdue at the start, ms",
         f"{storm_run.lateness_p50:.0f} / {storm_run.lateness_p99:.0f}",
         f"{baseline.lateness_p50:.0f} / {baseline.lateness_p99:.0f} without kills" if baseline else "", ""),
    ]
    return found


def table(lines: list[tuple[str, str, str, str]]) -> str:
    headers = ("figure", "value", "target", "met")
    widths = [max(len(row[column]) for row in [headers, *lines]) for column in range(4)]
    out = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
           for row in [headers, *lines]]
    out.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(out)


def markdown(storm_run: Figures, baseline: Figures | None, lines: list[tuple[str, str, str, str]]) -> str:
    settings = storm_run.settings
    server = {"couchdb": "Apache CouchDB 3.5.0", "pouchdb": "pouchdb-server 4.2.0"}[storm_run.kind]
    head = [
        "# Kill storm",
        "",
        f"Written by `python -m tests.fault.kill_storm` on {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}"
        f" ({server}, one node, loopback; a machine of {cpus()} cores shared with other work).",
        "",
        f"Validation at write: {settings.validation}. "
        f"{settings.processes} processes of one worker name (concurrency {settings.concurrency}, lease "
        f"{settings.lease:g} s), {settings.tasks} tasks of an executable job that records its start and "
        f"exits 0 ({OVERDUE:.0%} overdue at the start, the rest due over {settings.spread:g} s), "
        f"{storm_run.kills} SIGKILLs of a random live process at random moments, each restarted at once; "
        "the baseline is the same run without kills. A rerun is a start of a task beyond its first; it is "
        "recorded when the task's history has an `interrupted` entry for it.",
        "",
        "| figure | value | target | met |",
        "|---|---|---|---|",
    ]
    body = [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in lines]
    notes = [f"- {key}: " + "; ".join(values) for key, values in storm_run.examples.items()]
    return "\n".join([*head, *body, *(["", "Examples:", "", *notes] if notes else []), ""])


def cpus() -> int:
    import os

    return os.cpu_count() or 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fault.kill_storm",
                                     description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--server", choices=[kind.value for kind in ServerKind], default="couchdb")
    parser.add_argument("--tasks", type=int, default=3000)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--spread", type=float, default=30.0, help="seconds over which tasks are due")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--lease", type=float, default=60.0)
    parser.add_argument("--job-seconds", type=float, default=0.0,
                        help="how long each job sleeps after recording its start")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--validation", choices=[choice.value for choice in Validation],
                        default="javascript",
                        help="what after init installs to check writes (erlang: inside Apache CouchDB)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the run without kills")
    parser.add_argument("--output", type=Path, default=HERE / "KILL_STORM.md")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    options = parser.parse_args(argv)
    settings = Settings(tasks=options.tasks, kills=options.kills, processes=options.processes,
                        spread=options.spread, concurrency=options.concurrency, lease=options.lease,
                        job_seconds=options.job_seconds, seed=options.seed, validation=options.validation)
    kind = ServerKind(options.server)
    erlang = options.validation == Validation.ERLANG.value
    server = start_server(kind=kind, ini=ERLANG_INI) if erlang else start_server(kind=kind)
    with tempfile.TemporaryDirectory(prefix="after-kill-storm-") as scratch, server:
        baseline = None if options.no_baseline else \
            storm(server, Path(scratch) / "baseline", settings, kills=False)
        storm_run = storm(server, Path(scratch) / "storm", settings, kills=True)
    lines = rows(storm_run, baseline)
    print(table(lines))
    for key, values in storm_run.examples.items():
        print(f"{key}: " + "\n  ".join(values))
    options.output.write_text(markdown(storm_run, baseline, lines))
    if options.json:
        found = {"storm": figures_dict(storm_run), "baseline": figures_dict(baseline) if baseline else None}
        options.json.write_text(json.dumps(found, indent=1))
    print(f"written to {options.output}")
    failed = [line for line in lines if line[3] == "NO"]
    return 1 if failed else 0


def figures_dict(figures: Figures) -> dict[str, Any]:
    found = dict(figures.__dict__)
    found["settings"] = dict(figures.settings.__dict__)
    return found


if __name__ == "__main__":
    sys.exit(main())
