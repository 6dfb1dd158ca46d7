"""``after metrics``: After's state in Prometheus's text format, for node_exporter's textfile collector.

``collect`` reads (bounded: a count reduce, the presence documents, and per worker name one window of
recent results and the oldest overdue task); ``render`` is pure; ``write_atomically`` writes a temporary
file beside the target and renames it, so the collector never reads half a file.

Metrics (every one a gauge of the moment it was collected, histograms included):

- ``after_up``: 1 when CouchDB was read (a failed run writes only this, as 0).
- ``after_tasks{worker,status}``: tasks by worker and status.
- ``after_task_lateness_seconds{worker}``: histogram of the lateness (start minus date) of the jobs
  started in the last hour. It is recomputed on every run, not a counter: use ``histogram_quantile`` on
  it directly, not on ``rate()``.
- ``after_worker_processes{worker,state}``: processes by presence state (running, stopped, gone).
- ``after_workers_alive``: processes running, all worker names together.
- ``after_oldest_overdue_task_seconds{worker}``: how long the oldest task that should have started has
  been waiting (0 when none).
- ``after_metrics_timestamp_seconds``: when this was collected (stale files show in alerts).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from after.contracts import Store
from after.core.task import Document
from after.monitoring.dashboard.queries import oldest_overdue, recent_results
from after.worker.presence import PREFIX, state_of

WINDOW = 3600.0  # seconds of results in the lateness histogram
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
PROCESS_STATES = ("running", "stopped", "gone")


@dataclass(frozen=True)
class Snapshot:
    now: float
    counts: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    presence: list[Document] = field(default_factory=list)
    lateness: Mapping[str, list[float]] = field(default_factory=dict)  # seconds, per worker
    overdue: Mapping[str, float | None] = field(default_factory=dict)  # oldest overdue due, per worker
    up: bool = True


def collect(store: Store, now: float) -> Snapshot:
    counts = store.status_counts()
    presence = store.documents(PREFIX)
    workers = sorted(set(counts) | {str(doc.get("worker_name")) for doc in presence})
    lateness = {}
    overdue = {}
    for worker in workers:
        results = recent_results(store, worker, now - WINDOW, now)
        lateness[worker] = [float(doc["result"]["lateness_ms"]) / 1000.0 for doc in results]
        overdue[worker] = oldest_overdue(store, worker, now)
    return Snapshot(now, counts, presence, lateness, overdue)


def escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def labels(**pairs: str) -> str:
    return "{" + ",".join(f'{key}="{escape(value)}"' for key, value in pairs.items()) + "}" if pairs else ""


def number(value: float) -> str:
    return repr(int(value)) if float(value).is_integer() and abs(value) < 2**53 else repr(float(value))


def family(name: str, kind: str, help_text: str, samples: Iterable[str]) -> list[str]:
    return [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", *samples]


def histogram(name: str, worker: str, values: list[float]) -> list[str]:
    lines = [f"{name}_bucket{labels(worker=worker, le=repr(bound))} {sum(1 for v in values if v <= bound)}"
             for bound in BUCKETS]
    lines.append(f"{name}_bucket{labels(worker=worker, le='+Inf')} {len(values)}")
    lines.append(f"{name}_sum{labels(worker=worker)} {number(round(sum(values), 6))}")
    lines.append(f"{name}_count{labels(worker=worker)} {len(values)}")
    return lines


def process_states(snapshot: Snapshot) -> dict[str, dict[str, int]]:
    found: dict[str, dict[str, int]] = {}
    for doc in snapshot.presence:
        by_state = found.setdefault(str(doc.get("worker_name")), dict.fromkeys(PROCESS_STATES, 0))
        by_state[state_of(doc, snapshot.now)] += 1
    return found


def render(snapshot: Snapshot) -> str:
    """The Prometheus text exposition format (0.0.4), sorted, ending with a new line."""
    lines = family("after_up", "gauge", "1 when After's CouchDB database could be read.",
                   [f"after_up {int(snapshot.up)}"])
    if snapshot.up:
        lines += body(snapshot)
    lines += family("after_metrics_timestamp_seconds", "gauge", "When these metrics were collected.",
                    [f"after_metrics_timestamp_seconds {number(round(snapshot.now, 3))}"])
    return "\n".join(lines) + "\n"


def body(snapshot: Snapshot) -> list[str]:
    tasks = [f"after_tasks{labels(worker=worker, status=status)} {count}"
             for worker, by_status in sorted(snapshot.counts.items())
             for status, count in sorted(by_status.items())]
    lines = family("after_tasks", "gauge", "Tasks by worker and status.", tasks)
    lines += family("after_task_lateness_seconds", "histogram",
                    f"Lateness (start minus date) of the jobs started in the last {WINDOW:.0f} s.",
                    [line for worker in sorted(snapshot.lateness)
                     for line in histogram("after_task_lateness_seconds", worker, snapshot.lateness[worker])])
    states = process_states(snapshot)
    lines += family("after_worker_processes", "gauge", "Worker processes by presence state.",
                    [f"after_worker_processes{labels(worker=worker, state=state)} {count}"
                     for worker in sorted(states) for state, count in states[worker].items()])
    alive = sum(by_state["running"] for by_state in states.values())
    lines += family("after_workers_alive", "gauge", "Worker processes running (all worker names).",
                    [f"after_workers_alive {alive}"])
    lines += family("after_oldest_overdue_task_seconds", "gauge",
                    "Age of the oldest task that should have started and has not (0: none).",
                    [f"after_oldest_overdue_task_seconds{labels(worker=worker)} "
                     f"{number(round(max(0.0, snapshot.now - due), 3)) if due is not None else 0}"
                     for worker, due in sorted(snapshot.overdue.items())])
    return lines


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file in ``path``'s directory, then rename it over ``path``."""
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as output:
            output.write(text)
            output.flush()
            os.fsync(output.fileno())
        os.chmod(temporary, 0o644)  # node_exporter runs as another user
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
