"""CouchDB's wire format as pure functions: document paths, error bodies, which requests only read,
what may be sent back, ``_bulk_docs`` rows and continuous-feed rows. No I/O.

The pouchdb workarounds are marked "pouchdb:" and are harmless against Apache CouchDB.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import httpx

from after.core.task import Document
from after.store.types import Change, Unavailable, Unreadable


def doc_path(doc_id: str) -> str:
    """The URL path of a document id; ``_design/`` and ``_local/`` keep their slash."""
    for prefix in ("_design/", "_local/"):
        if doc_id.startswith(prefix):
            return prefix + quote(doc_id[len(prefix):], safe="")
    return quote(doc_id, safe="")


def public_url(url: str) -> str:
    """``url`` without any user:password part, for messages."""
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, host, parts.path, "", "")).rstrip("/")


def reason_of(response: httpx.Response) -> str:
    """The ``reason`` (or ``error``) of a CouchDB error body, else the HTTP status line."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        return str(body.get("reason") or body.get("error") or response.reason_phrase)
    return f"HTTP {response.status_code} {response.reason_phrase}"


LOCKED = "Account is temporarily locked"  # Apache CouchDB 3.4+ after failed logins ([chttpd_auth_lockout])
READS_BY_POST = {"_find", "_changes", "_all_docs", "_bulk_get", "_explain"}


def is_read(request: httpx.Request) -> bool:
    """Whether a request only reads (so a 403 to it is about access, never a validation refusal)."""
    if request.method in ("GET", "HEAD"):
        return True
    segments = request.url.path.rstrip("/").split("/")
    return segments[-1] in READS_BY_POST or (len(segments) > 1 and segments[-2] == "_view")


READ_ONLY = ("_conflicts", "_deleted_conflicts", "_revs_info", "_local_seq")


def writable(doc: Document) -> Document:
    """``doc`` without the fields CouchDB adds to what it reads and refuses in what it is sent."""
    if not any(key in doc for key in READ_ONLY):
        return doc
    return {key: value for key, value in doc.items() if key not in READ_ONLY}


def in_request_order(docs: Sequence[Document], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``_bulk_docs`` rows in the order of ``docs``.

    pouchdb: lists failed documents after the successful ones; CouchDB keeps the request order, for
    which this is the identity. Rows are matched by id; documents without one take the other rows in turn.
    """
    by_id: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_id.setdefault(str(row.get("id")), []).append(row)
    named = {str(doc["_id"]) for doc in docs if doc.get("_id")}
    unnamed = [row for row in rows if str(row.get("id")) not in named]
    missing = {"error": "unknown", "reason": "the server sent no result for this document"}
    ordered = []
    for doc in docs:
        key = str(doc["_id"]) if doc.get("_id") else None
        if key is not None and by_id.get(key):
            ordered.append(by_id[key].pop(0))
        else:
            ordered.append(unnamed.pop(0) if unnamed else {"id": key, **missing})
    return ordered


FEED_ID = re.compile(r'"id":("(?:[^"\\]|\\.)*")')
FEED_SEQ = re.compile(r'"seq":("(?:[^"\\]|\\.)*"|\d+)')


def parse_change(line: bytes) -> Change | None:
    """A continuous-feed row as a Change; None for the closing ``last_seq`` row."""
    try:
        row = json.loads(line)
    except RecursionError:
        raise Unreadable("a changes feed row is nested deeper than Python's JSON parser goes") from None
    except ValueError:
        raise Unavailable("the changes feed sent a line that is not JSON") from None
    if "id" not in row:
        return None
    doc = row.get("doc")
    return Change(seq=str(row["seq"]), id=str(row["id"]), deleted=bool(row.get("deleted")),
                  doc=doc if isinstance(doc, dict) else None)
