"""The figures of one scenario, counted from the task documents and the job's own record of its starts.

**lost**: tasks not ``done`` at the end. **unrecorded duplicates**: starts of a task beyond the first
that its document does not tell of (a start is told of when its process is named in the task's
``history`` or ``result``: a result, an ``interrupted`` entry its takeover wrote, a ``late`` one, a
``branch`` one). **recorded reruns**: the starts beyond the first that it does tell of. **conflicts
left**: documents with ``_conflicts`` once settled. **lateness** p50/p99: first starts (real time)
minus the date, of the tasks whose date was ahead when they were written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from after.core.task import Document


@dataclass
class Start:
    """One line of the job's record: a task started (or stopped) at ``moment`` on ``host`` by ``pid``."""

    task_id: str
    moment: float
    host: str
    pid: int

    @property
    def label(self) -> str:
        return f"manobi@{self.host}:{self.pid}"


@dataclass
class Figures:
    scenario: str
    tasks: int
    lost: int = 0
    unrecorded: int = 0
    recorded: int = 0
    conflicts: int = 0
    p50_ms: float = float("nan")
    p99_ms: float = float("nan")
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    examples: dict[str, list[str]] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)  # for the tests' own checks
    error: str | None = None

    @property
    def clean(self) -> bool:
        return self.error is None and self.lost == 0 and self.unrecorded == 0 and self.conflicts == 0

    def context(self) -> str:
        """The notes and examples, for an assertion's message."""
        return "\n".join([*self.notes, *(f"{key}: {value}" for key, value in self.examples.items())])


def read_starts(text: str) -> dict[str, list[Start]]:
    """The lines ``TASK REAL_TIME HOST PID`` of a job's record, by task."""
    found: dict[str, list[Start]] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 4:
            task_id, moment, host, pid = parts
            found.setdefault(task_id, []).append(Start(task_id, float(moment), host, int(pid)))
    return found


def told_of(doc: Document) -> set[str]:
    """The processes a document names as having run (or maybe run) its job."""
    entries = list(doc.get("history") or [])
    if isinstance(doc.get("result"), dict):
        entries.append(doc["result"])
    return {str(entry.get("by")) for entry in entries if isinstance(entry, dict)}


def describe(task_id: str, doc: Document, runs: Sequence[Start]) -> str:
    history = [f"{entry.get('outcome')}{'(late)' if entry.get('late') else ''}"
               f"{'(branch)' if entry.get('branch') else ''} by {entry.get('by')}"
               for entry in doc.get("history") or [] if isinstance(entry, dict)]
    return (f"{task_id}: started by {[run.label for run in runs]}, status {doc.get('status')}, "
            f"attempts {doc.get('attempts')}, history {history}")


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def count(scenario: str, ids: Sequence[str], docs: Mapping[str, Document], starts: Mapping[str, list[Start]],
          dates: Mapping[str, float], ahead: set[str]) -> Figures:
    """The figures of tasks ``ids`` from their documents and starts (conflicts are counted by the caller)."""
    figures = Figures(scenario, len(ids))
    examples: dict[str, list[str]] = {}
    lateness: list[float] = []
    for task_id in ids:
        doc, runs = docs.get(task_id, {}), starts.get(task_id, [])
        if doc.get("status") != "done":
            figures.lost += 1
            examples.setdefault("lost", []).append(f"{task_id}: {doc.get('status')}, {len(runs)} starts")
        known = sum(1 for run in runs if run.label in told_of(doc))
        if len(runs) > max(1, known):
            figures.unrecorded += len(runs) - max(1, known)
            examples.setdefault("unrecorded", []).append(describe(task_id, doc, runs))
        figures.recorded += max(0, min(len(runs), known) - 1)
        if runs and task_id in ahead:
            lateness.append((min(run.moment for run in runs) - dates[task_id]) * 1000.0)
    figures.p50_ms, figures.p99_ms = percentile(lateness, 0.5), percentile(lateness, 0.99)
    figures.examples = {key: values[:5] for key, values in examples.items()}
    figures.details.update(docs=docs, starts=starts, lateness=sorted(lateness))
    return figures
