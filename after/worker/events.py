"""What flows into the worker's loop from its I/O threads: the events (requests out are
``after.core.writes.WriteRequest``)."""

from __future__ import annotations

from dataclasses import dataclass

from after.contracts import Outcome
from after.core.task import Document
from after.core.writes import WriteRequest


@dataclass(frozen=True)
class Changed:
    """A document from the changes feed (or re-read after a conflict)."""

    doc: Document


@dataclass(frozen=True)
class Loaded:
    """Live tasks due up to ``until`` (epoch s), read from the view; ``reconnect`` means a full reconcile."""

    docs: list[Document]
    until: float
    reconnect: bool


@dataclass(frozen=True)
class Connection:
    up: bool
    reason: str = ""
    node: str = ""  # the CouchDB URL in use (a cluster's nodes can be several)


@dataclass(frozen=True)
class Written:
    """The answer to a WriteRequest: ``doc`` is what was written, or the latest revision when not.

    ``failure`` says why a write could not be made at all (CouchDB refused it, or building it failed),
    as opposed to a write that no longer applies (the document changed): the loop answers the task
    with ``err`` and that reason.
    """

    request: WriteRequest
    ok: bool
    doc: Document | None
    failure: str | None = None


@dataclass(frozen=True)
class Finished:
    task_id: str
    run_id: str
    outcome: Outcome
    started: float  # wall clock, epoch seconds
    ended: float


@dataclass(frozen=True)
class Peers:
    """The live processes of this worker name (their presence ids), read from CouchDB."""

    members: tuple[str, ...]


@dataclass(frozen=True)
class Wake:
    """Nothing but a nudge (a signal arrived)."""


Event = Changed | Loaded | Connection | Written | Finished | Peers | Wake
