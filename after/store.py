"""The store contract (what the worker and the CLI need from CouchDB) and an in-memory store.

``MemoryStore`` ships in the package and behaves like CouchDB where the worker can tell:
revisions, 409 on a stale ``_rev``, per-document results in bulk writes, opaque sequences, a
blocking ``_changes`` feed, and the live-tasks view ordered by due date. ``tests/contract`` runs
one suite against it and against the real server (``after.couch.CouchStore``).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from after.model import (
    TERMINAL_STATUSES,
    Document,
    InvalidTask,
    nesting_depth,
    parse_date_ms,
    revision_generation,
    unreadable_stand_in,
)


class StoreError(Exception):
    """Base of the store's errors; the message never contains credentials."""


class Conflict(StoreError):
    """HTTP 409: the document changed since the revision the writer knew."""


class Forbidden(StoreError):
    """HTTP 401/403: refused, for example by ``validate_doc_update``; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Unavailable(StoreError):
    """The server cannot be reached or failed (connection refused, timeout, 5xx)."""


class Unreadable(StoreError):
    """An answer holds a document nested deeper than Python's JSON parser goes (``RecursionError``).

    The stores never let it escape to the worker: they read such documents one by one and hand out
    a stand-in instead (``after.model.unreadable_stand_in``), which the worker answers with ``err``.
    """


@dataclass(frozen=True)
class WriteResult:
    """One document's answer in a bulk write.

    ``accepted``: written, but by fewer copies than the write quorum (a CouchDB cluster's
    ``202 Accepted``). Such a write may lose to a concurrent one with the same ``_rev`` that other
    copies took; both survive as conflicting leaves. Only a write without it proves exclusivity.
    """

    id: str
    rev: str | None = None
    error: str | None = None  # "conflict", "forbidden", ...
    reason: str | None = None
    accepted: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class Change:
    seq: str
    id: str
    deleted: bool
    doc: Document | None


class Store(Protocol):
    def create_database(self) -> bool:
        """Create the database if missing; True when it was created."""

    def install_design(self, design: Document) -> bool:
        """Create or update a design document (``design["_id"]``); True when it changed."""

    def get(self, doc_id: str) -> Document | None:
        """The current revision of a document, or None when missing or deleted."""

    def get_many(self, doc_ids: Sequence[str]) -> list[Document | None]:
        """The current revisions of many documents in one request, in order (None: missing or deleted)."""

    def revisions(self, doc_id: str, revs: Sequence[str]) -> list[Document]:
        """Those of ``revs`` (a document's conflicting leaves, its ``_conflicts``) that exist."""

    def put(self, doc: Document) -> str:
        """Write ``doc`` (with ``_id``, and ``_rev`` when updating); return the new revision.

        Raises Conflict on a stale or missing ``_rev`` and Forbidden when validation refuses it.
        """

    def bulk_write(self, docs: Sequence[Document]) -> list[WriteResult]:
        """Write many documents in one request; each gets its own result, in order."""

    def update_seq(self) -> str:
        """The current end of the changes feed, an opaque string."""

    def documents(self, prefix: str) -> list[Document]:
        """The documents whose id starts with ``prefix`` (presence documents), by id."""

    def live_tasks(
        self, worker: str, until: float | None = None, page_size: int = 500
    ) -> Iterator[Document]:
        """The worker's live tasks (statuses the worker must act on), oldest due first.

        ``until`` (epoch seconds) bounds the due date; invalid dates sort first. Paginated.
        """

    def tasks(
        self, worker: str | None = None, status: str | None = None, limit: int = 100
    ) -> list[Document]:
        """Task documents for listing, filtered by worker and status."""

    def status_counts(self, worker: str | None = None) -> dict[str, dict[str, int]]:
        """Number of tasks by worker, then by status."""

    def changes(self, worker: str, since: str, heartbeat: float = 10.0) -> Iterator[Change | None]:
        """Follow changes of the worker's documents (and deletions) after ``since``, forever.

        Yields None at least every ``heartbeat`` seconds while idle. Raises Unavailable when the
        connection is lost; the caller reconnects from the last sequence it processed.
        """

    def compact(self) -> None:
        """Ask the server to compact the database."""

    def close(self) -> None:
        """Release connections."""


def live_view_key(doc: Document) -> float | None:
    """The key (epoch milliseconds) of a document in the live-tasks view, None when not in it.

    Mirrors the map function in ``after.design``: every task that has not ended (a live status, or a
    status that is not one of After's), keyed by due date; a date that does not parse sorts first
    (key 0) so the worker answers it with ``err`` at once.
    """
    if not isinstance(doc.get("worker"), str):
        return None  # a task without a job is still answered (with err), so it is in the view
    if isinstance(doc.get("status"), str) and doc["status"] in TERMINAL_STATUSES:
        return None
    return due_key(doc)


def due_key(doc: Document) -> float:
    """Due date in epoch milliseconds as the views key it: 0 when the date does not parse."""
    try:
        return float(parse_date_ms(doc.get("date")))
    except InvalidTask:
        return 0.0


TOO_DEEP_FOR_PYTHON = 900  # levels: Python's JSON encoder and parser stop near 1000


def handed_out(doc: Document) -> Document:
    """A copy for a reader, or, for a document nested deeper than Python's JSON goes, the stand-in the
    CouchDB store hands out for such a document (which it cannot even parse)."""
    if nesting_depth(doc, TOO_DEEP_FOR_PYTHON) > TOO_DEEP_FOR_PYTHON:
        fields = {key: doc[key] for key in ("worker", "status") if key in doc}
        return unreadable_stand_in(str(doc.get("_id")), doc.get("_rev"), fields,
                                   "(a document nested more than 900 levels deep)")
    return copied(doc)


def copied(doc: Document) -> Document:
    """A deep copy of a JSON document without recursion: documents may nest deeper than Python recurses
    (CouchDB takes them), and the in-memory store must hold them like the real one."""
    root: Document = {}
    stack: list[tuple[Any, Any]] = [(doc, root)]
    while stack:
        source, target = stack.pop()
        items = source.items() if isinstance(source, dict) else enumerate(source)
        for key, value in items:
            if isinstance(value, dict | list):
                child: Any = {} if isinstance(value, dict) else [None] * len(value)
                stack.append((value, child))
                value = child
            target[key] = value
    return root


def new_revision(generation: int, doc_id: str, sequence: int) -> str:
    body = f"{generation}:{doc_id}:{sequence}".encode("utf-8", "surrogatepass")
    return f"{generation}-{hashlib.md5(body, usedforsecurity=False).hexdigest()}"


class MemoryStore:
    """An in-memory Store with CouchDB semantics, for unit tests and as a library fake."""

    def __init__(self) -> None:
        self.docs: dict[str, Document] = {}
        self.sequence = 0
        self.log: list[tuple[int, str]] = []  # (seq, doc id), the newest entry per id counts
        self.condition = threading.Condition()
        self.created = False
        self.available = True
        self.compactions = 0

    def check_available(self) -> None:
        if not self.available:
            raise Unavailable("memory store is switched off")

    def create_database(self) -> bool:
        self.check_available()
        created, self.created = not self.created, True
        return created

    def install_design(self, design: Document) -> bool:
        current = self.get(design["_id"])
        if current is not None and strip_meta(current) == strip_meta(design):
            return False
        self.put({**design, "_rev": current["_rev"]} if current else dict(design))
        return True

    def get(self, doc_id: str) -> Document | None:
        self.check_available()
        with self.condition:
            doc = self.docs.get(doc_id)
            return None if doc is None or doc.get("_deleted") else handed_out(doc)

    def get_many(self, doc_ids: Sequence[str]) -> list[Document | None]:
        return [self.get(doc_id) for doc_id in doc_ids]

    def revisions(self, doc_id: str, revs: Sequence[str]) -> list[Document]:
        """One copy, one leaf per document: the in-memory store never has conflicts."""
        current = self.get(doc_id)
        return [current] if current is not None and current.get("_rev") in revs else []

    def put(self, doc: Document) -> str:
        result = self.bulk_write([doc])[0]
        if result.error == "conflict":
            raise Conflict(f"document {doc.get('_id')} changed since revision {doc.get('_rev')}")
        if not result.ok:
            raise Forbidden(result.reason or "forbidden")
        assert result.rev is not None
        return result.rev

    def bulk_write(self, docs: Sequence[Document]) -> list[WriteResult]:
        self.check_available()
        with self.condition:
            results = [self.write_one(copied(doc)) for doc in docs]
            self.condition.notify_all()
            return results

    def write_one(self, doc: Document) -> WriteResult:
        doc_id = str(doc.get("_id") or hashlib.md5(str(self.sequence).encode()).hexdigest())
        current = self.docs.get(doc_id)
        current_rev = current.get("_rev") if current else None
        live = current is not None and not current.get("_deleted")
        accepted = (current_rev,) if live else (None, current_rev)  # a tombstone may be recreated
        if doc.get("_rev") not in accepted:
            return WriteResult(doc_id, error="conflict", reason="Document update conflict.")
        generation = revision_generation(current_rev) + 1
        doc["_id"] = doc_id
        doc["_rev"] = new_revision(generation, doc_id, self.sequence)
        self.docs[doc_id] = doc
        self.sequence += 1
        self.log.append((self.sequence, doc_id))
        return WriteResult(doc_id, rev=doc["_rev"])

    def update_seq(self) -> str:
        self.check_available()
        return str(self.sequence)

    def documents(self, prefix: str) -> list[Document]:
        self.check_available()
        with self.condition:
            return [copied(doc) for doc_id, doc in sorted(self.docs.items())
                    if doc_id.startswith(prefix) and not doc.get("_deleted")]

    def live_tasks(
        self, worker: str, until: float | None = None, page_size: int = 500
    ) -> Iterator[Document]:
        self.check_available()
        with self.condition:
            keyed = [(key, doc_id) for doc_id, doc in self.docs.items()
                     if doc.get("worker") == worker and (key := live_view_key(doc)) is not None
                     and (until is None or key <= until * 1000.0)]
            keyed.sort()
            docs = [handed_out(self.docs[doc_id]) for _, doc_id in keyed]
        yield from docs

    def tasks(
        self, worker: str | None = None, status: str | None = None, limit: int = 100
    ) -> list[Document]:
        self.check_available()
        with self.condition:
            found = [handed_out(doc) for doc in self.docs.values()
                     if "worker" in doc and not doc.get("_deleted")
                     and worker in (None, doc.get("worker")) and status in (None, doc.get("status"))]
        # the order of the listing views: worker, then due date, then id
        found.sort(key=lambda doc: (str(doc.get("worker")), due_key(doc), doc["_id"]))
        return found[:limit]

    def status_counts(self, worker: str | None = None) -> dict[str, dict[str, int]]:
        counts: dict[str, dict[str, int]] = {}
        for doc in self.tasks(worker, limit=len(self.docs) + 1):
            by_status = counts.setdefault(str(doc["worker"]), {})
            by_status[str(doc.get("status"))] = by_status.get(str(doc.get("status")), 0) + 1
        return counts

    def changes(self, worker: str, since: str, heartbeat: float = 10.0) -> Iterator[Change | None]:
        position = int(since)
        while True:
            self.check_available()
            with self.condition:
                pending = self.pending_changes(worker, position)
                if not pending:
                    self.condition.wait(heartbeat)
                    pending = self.pending_changes(worker, position)
            if not pending:
                yield None
            for change in pending:
                position = int(change.seq)
                yield change

    def pending_changes(self, worker: str, after: int) -> list[Change]:
        newest = {doc_id: seq for seq, doc_id in self.log if seq > after}
        changes = []
        for doc_id, seq in sorted(newest.items(), key=lambda item: item[1]):
            doc = self.docs[doc_id]
            if doc.get("_deleted") or doc.get("worker") == worker:
                changes.append(Change(str(seq), doc_id, bool(doc.get("_deleted")), handed_out(doc)))
        return changes

    def compact(self) -> None:
        self.check_available()
        self.compactions += 1

    def close(self) -> None:
        pass


def strip_meta(doc: Document) -> Document:
    return {key: value for key, value in doc.items() if key != "_rev"}
