"""The store contract (what the worker and the CLI need from CouchDB) and an in-memory store.

``MemoryStore`` ships in the package and behaves like CouchDB where the worker can tell:
revisions, 409 on a stale ``_rev``, per-document results in bulk writes, opaque sequences, a
blocking ``_changes`` feed, and the live-tasks view ordered by due date. ``tests/contract`` runs
one suite against it and against the real server (``after.store.couch.client.CouchStore``).
"""

from __future__ import annotations

from dataclasses import dataclass

from after.core.dates import parse_date_ms
from after.core.invalid import InvalidTask
from after.core.task import (
    TERMINAL_STATUSES,
    Document,
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


class Unauthorized(Forbidden):
    """HTTP 401 (or a 403 to a read): the server would not serve this user (wrong name or password, no
    credentials, not a member or not an admin). The message names the URL and the user tried, never the
    password; ``reason`` is the server's own."""

    def __init__(self, reason: str, url: str, user: str | None) -> None:
        super().__init__(reason)
        self.url, self.user = url, user

    def __str__(self) -> str:
        who = f"user {self.user!r}" if self.user is not None else "a request without credentials (no user)"
        return f"CouchDB at {self.url} refused {who}: {self.reason}"


class Unavailable(StoreError):
    """The server cannot be reached or failed (connection refused, timeout, 5xx)."""


class Unreadable(StoreError):
    """An answer holds a document nested deeper than Python's JSON parser goes (``RecursionError``).

    The stores never let it escape to the worker: they read such documents one by one and hand out
    a stand-in instead (``after.core.task.unreadable_stand_in``), which the worker answers with ``err``.
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


def live_view_key(doc: Document) -> float | None:
    """The key (epoch milliseconds) of a document in the live-tasks view, None when not in it.

    Mirrors the map function in ``after.store.couch.design``: every task that has not ended (a live
    status, or a status that is not one of After's), keyed by due date; a date that does not parse sorts first
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


def strip_meta(doc: Document) -> Document:
    return {key: value for key, value in doc.items() if key != "_rev"}
