"""Start journals the loop uses: the wrapper that notes a job's start in its own thread, just before it
runs, and journals without files (``NoStarts``: nothing is known, as on another host; ``MemoryStarts``:
processes of one test sharing a dictionary). The file-based one is ``after.worker.io.starts``."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from after.contracts import Job, JobContext, Outcome, StartJournal
from after.core.transitions import Owner, StartEvidence, label_of


@dataclass
class Journaled:
    """``job``, noting its start in ``starts`` in whichever thread runs it, just before it runs, or,
    for a job that ``notes_its_start`` (an executable), when it calls ``context.starting`` (just
    before its process is forked: a kill in between leaves no start noted for a job that never ran).

    A job queued in the runner and never run (its process was killed first) is never noted, so a
    takeover knows its claim did not start it.
    """

    job: Job
    starts: StartJournal
    task_id: str
    claim_at: str
    name: str = ""

    def __post_init__(self) -> None:
        self.name = self.job.name

    def run(self, context: JobContext) -> Outcome:
        if getattr(self.job, "notes_its_start", False):
            context.starting = self.note
        else:
            self.note()
        return self.job.run(context)

    def note(self) -> None:
        self.starts.record(self.task_id, self.claim_at)


class NoStarts:
    """No journal: every takeover of a claim past its date counts it as a run that may have started."""

    def record(self, task_id: str, claim_at: str) -> None:
        pass

    def evidence(self, task_id: str, claim_field: dict[str, Any]) -> StartEvidence:
        return StartEvidence.UNKNOWN

    def compact(self, held: Callable[[], Iterable[tuple[str, str]]]) -> None:
        pass


@dataclass
class MemoryStarts:
    """The journals of the processes of one host, in a dictionary shared by their ``MemoryStarts``
    (process label -> claims that started); a process without an entry has no journal."""

    owner: Owner
    journals: dict[str, set[tuple[str, str]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.journals.setdefault(self.owner.label, set())

    def record(self, task_id: str, claim_at: str) -> None:
        self.journals[self.owner.label].add((task_id, claim_at))

    def evidence(self, task_id: str, claim_field: dict[str, Any]) -> StartEvidence:
        by = claim_field.get("by")
        journal = self.journals.get(label_of(by))
        if not isinstance(by, dict) or by.get("host") != self.owner.host or journal is None:
            return StartEvidence.UNKNOWN
        started = (task_id, claim_field.get("at")) in journal
        return StartEvidence.STARTED if started else StartEvidence.NOT_STARTED

    def compact(self, held: Callable[[], Iterable[tuple[str, str]]]) -> None:
        self.journals[self.owner.label] &= set(held())
