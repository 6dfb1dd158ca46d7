"""``MemoryStore``: the ``Store`` contract in memory, with CouchDB's semantics where the worker can tell:
revisions, 409 on a stale ``_rev``, per-document bulk results, opaque sequences, a blocking changes
feed, the live tasks by due date. It ships in the package (a library fake, and the unit tests' store);
``tests/contract`` runs one suite against it and against both real servers."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from after.core.task import Document, nesting_depth, revision_generation, unreadable_stand_in
from after.store.types import (
    Change,
    Conflict,
    Forbidden,
    Unavailable,
    WriteResult,
    due_key,
    live_view_key,
    strip_meta,
)

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
