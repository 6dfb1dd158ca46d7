"""How ``CouchStore`` reads tasks: Erlang-side queries on Apache CouchDB 3, design views elsewhere.

The store asks the server what it is when it connects (``GET /``) and picks one of two ``TaskQueries``:

- ``MangoQueries`` (Apache CouchDB 3.x): Mango indexes and ``_find`` for the live tasks and the
  listing, the indexes' built-in ``_count`` for counts, ``filter=_selector`` for the changes feed. All of
  it runs in Erlang; none of it waits on the JavaScript query server (``after.store.couch.indexes``).
- ``ViewQueries`` (pouchdb-server, older or other CouchDB-protocol servers): the JavaScript views and
  filter of ``_design/after``. pouchdb-server runs JavaScript in its own process, where it costs
  nothing extra, and it crashes on a POSTed ``_selector`` feed.

Both give the same answers; ``tests/contract`` checks them against the in-memory store.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

from after.core.dates import format_date
from after.core.task import Document
from after.store.couch.design import DESIGN_ID
from after.store.couch.indexes import BY_DATE, BY_STATUS, MANGO_DDOC, live_queries
from after.store.types import Unreadable, live_view_key

log = logging.getLogger(__name__)
DESIGN = DESIGN_ID.split("/", 1)[1]


class ServerFamily(Enum):
    APACHE_COUCHDB = "Apache CouchDB"
    OTHER = "CouchDB-protocol server"  # pouchdb-server, or anything else that answers like CouchDB


@dataclass(frozen=True)
class ServerInfo:
    family: ServerFamily
    version: str
    product: str

    @property
    def erlang_queries(self) -> bool:
        """Mango indexes with partial filters, ``_find`` bookmarks and ``_selector`` feeds: CouchDB 3."""
        major = self.version.split(".", 1)[0]
        return self.family == ServerFamily.APACHE_COUCHDB and major.isdigit() and int(major) >= 3

    def describe(self) -> str:
        return f"{self.product} {self.version}"


def server_info(welcome: object) -> ServerInfo:
    """What ``GET /`` says the server is: Apache CouchDB answers ``{"couchdb": "Welcome", ...}``."""
    body = welcome if isinstance(welcome, dict) else {}
    version = str(body.get("version", "?"))
    if "couchdb" in body:
        return ServerInfo(ServerFamily.APACHE_COUCHDB, version, "Apache CouchDB")
    vendor = body.get("vendor")
    named = str(vendor.get("name", "server")) if isinstance(vendor, dict) else "server"
    product = next((key for key in body if key.endswith("pouchdb")), None) or named
    return ServerInfo(ServerFamily.OTHER, version, product)


class Http(Protocol):
    """What the queries need of ``CouchStore``: the database path and a JSON request with error mapping."""

    db_path: str

    def json(self, method: str, path: str, **kwargs: Any) -> Any: ...

    def get_many(self, doc_ids: Sequence[str]) -> list[Document | None]: ...


@dataclass(frozen=True)
class FeedRequest:
    """How to ask ``_changes`` for one worker's documents (and deletions)."""

    method: str
    params: dict[str, str]
    body: dict[str, Any] | None = None


class TaskQueries(Protocol):
    def live_tasks(self, http: Http, worker: str, until: float | None, page_size: int) -> Iterator[Document]:
        ...

    def feed(self, worker: str) -> FeedRequest: ...

    def tasks(self, http: Http, worker: str | None, status: str | None, limit: int) -> list[Document]: ...

    def status_counts(self, http: Http, worker: str | None) -> dict[str, dict[str, int]]: ...


def by_live_key(docs: Iterator[Document], until: float | None) -> list[Document]:
    """Live documents due by ``until`` (or with an invalid date), oldest first, each id once."""
    bound = until * 1000.0 if until is not None else None
    keyed: dict[str, tuple[float, str, Document]] = {}
    for doc in docs:
        key = live_view_key(doc)
        if key is not None and (bound is None or key <= bound):
            keyed[str(doc["_id"])] = (key, str(doc["_id"]), doc)
    return [doc for _, _, doc in sorted(keyed.values(), key=lambda item: item[:2])]


class MangoQueries:
    """Apache CouchDB 3: Mango indexes and selectors, evaluated in Erlang."""

    def live_tasks(self, http: Http, worker: str, until: float | None, page_size: int) -> Iterator[Document]:
        canonical = format_date(until) if until is not None else None

        def candidates() -> Iterator[Document]:
            for index, selector in live_queries(worker, until, canonical):
                yield from self.find(http, index, selector, page_size)

        yield from by_live_key(candidates(), until)

    def find(self, http: Http, index: str, selector: dict[str, Any], page_size: int,
             sort: list[dict[str, str]] | None = None, limit: int | None = None) -> Iterator[Document]:
        """Every document a selector matches in one index, ``page_size`` per request (bookmarks)."""
        body: dict[str, Any] = {"selector": selector, "use_index": [MANGO_DDOC, index],
                                "limit": max(1, page_size), "conflicts": True}
        if sort:
            body["sort"] = sort
        seen = 0
        while True:
            answer, docs = self.page(http, body)
            if answer.get("warning"):
                log.warning("CouchDB: %s (has `after init` run?)", answer["warning"])
            yield from docs[: None if limit is None else limit - seen]
            seen += len(docs)
            if len(docs) < body["limit"] or (limit is not None and seen >= limit):
                return
            body["bookmark"] = answer["bookmark"]

    def page(self, http: Http, body: dict[str, Any]) -> tuple[dict[str, Any], list[Document]]:
        """One ``_find`` answer and its documents; a page with a document too deep to parse is read
        again as ids, then document by document (the stores hand out a stand-in for that one)."""
        try:
            answer = http.json("POST", f"{http.db_path}/_find", json=body)
            return answer, [doc for doc in answer.get("docs", []) if isinstance(doc, dict)]
        except Unreadable:
            answer = http.json("POST", f"{http.db_path}/_find", json={**body, "fields": ["_id"]})
            ids = [str(doc["_id"]) for doc in answer.get("docs", []) if isinstance(doc, dict)]
            return answer, [doc for doc in http.get_many(ids) if doc is not None]

    def feed(self, worker: str) -> FeedRequest:
        selector = {"$or": [{"worker": worker}, {"_deleted": True}]}
        return FeedRequest("POST", {"filter": "_selector"}, {"selector": selector})

    def tasks(self, http: Http, worker: str | None, status: str | None, limit: int) -> list[Document]:
        """Listed by worker and date as written (a date string; documents without a date are not listed)."""
        selector: dict[str, Any] = {"worker": worker if worker is not None else {"$gt": None}}
        if status is not None:
            selector["status"] = status
        sort = [{"worker": "asc"}, {"date": "asc"}]
        return list(self.find(http, BY_DATE, selector, min(limit, 1000), sort=sort, limit=limit))

    def status_counts(self, http: Http, worker: str | None) -> dict[str, dict[str, int]]:
        params: dict[str, str] = {"group_level": "2"}
        if worker is not None:
            params.update(startkey=json.dumps([worker]), endkey=json.dumps([worker, {}]))
        body = http.json("GET", f"{http.db_path}/_design/{MANGO_DDOC}/_view/{BY_STATUS}", params=params)
        return counts_of(body.get("rows", []))


class ViewQueries:
    """pouchdb-server and other servers: the JavaScript views and filter of ``_design/after``."""

    def view(self, http: Http, name: str, **params: Any) -> list[dict[str, Any]]:
        """Rows of a view; keys and booleans are JSON-encoded as CouchDB wants them."""
        query = {key: value if isinstance(value, str) and key == "startkey_docid" else json.dumps(value)
                 for key, value in params.items()}
        body = http.json("GET", f"{http.db_path}/_design/{DESIGN}/_view/{name}", params=query)
        rows: list[dict[str, Any]] = body.get("rows", []) if isinstance(body, dict) else []
        return rows

    def live_tasks(self, http: Http, worker: str, until: float | None, page_size: int) -> Iterator[Document]:
        end: list[Any] = [worker, until * 1000.0 if until is not None else {}]
        yield from self.paged(http, "live", [worker], end, page_size)

    def paged(self, http: Http, view: str, start: list[Any], end: list[Any],
              page_size: int) -> Iterator[Document]:
        """All documents of a key range, ``page_size`` rows per request (startkey/startkey_docid)."""
        page_size = max(1, page_size)
        params: dict[str, Any] = {"startkey": start, "endkey": end, "include_docs": True, "conflicts": True}
        tied = 0  # rows already yielded whose key is the next page's start key
        while True:
            params["limit"] = page_size + 1 + tied
            rows = drop_before_docid(self.rows(http, view, params), params)
            for row in rows[:page_size]:
                if isinstance(row.get("doc"), dict):
                    yield row["doc"]
            if len(rows) <= page_size:
                return
            following = rows[page_size]
            same = sum(1 for row in rows[:page_size] if row["key"] == following["key"])
            tied = same + (tied if following["key"] == params["startkey"] else 0)
            params.update(startkey=following["key"], startkey_docid=following["id"])

    def rows(self, http: Http, view: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        """View rows with their documents; with one too deep to parse, the documents are read apart."""
        try:
            return self.view(http, view, **params)
        except Unreadable:
            rows = self.view(http, view, **{**params, "include_docs": False})
            docs = http.get_many([str(row["id"]) for row in rows])
            return [{**row, "doc": doc} for row, doc in zip(rows, docs, strict=True)]

    def feed(self, worker: str) -> FeedRequest:
        return FeedRequest("GET", {"filter": f"{DESIGN}/tasks", "worker": worker})

    def tasks(self, http: Http, worker: str | None, status: str | None, limit: int) -> list[Document]:
        if worker is not None and status is not None:
            view, start = "by_worker_status", [worker, status]
        elif worker is not None:
            view, start = "by_worker", [worker]
        elif status is not None:
            view, start = "by_status", [status]
        else:
            view, start = "by_worker", []
        end = [*start, {}] if start else [{}]
        rows = self.view(http, view, startkey=start or None, endkey=end, include_docs=True, limit=limit)
        return [row["doc"] for row in rows if isinstance(row.get("doc"), dict)]

    def status_counts(self, http: Http, worker: str | None) -> dict[str, dict[str, int]]:
        span: dict[str, Any] = {"startkey": [worker], "endkey": [worker, {}]} if worker is not None else {}
        return counts_of(self.view(http, "counts", group=True, **span))


def counts_of(rows: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """``{worker: {status: n}}`` from rows keyed ``[worker, status]``."""
    counts: dict[str, dict[str, int]] = {}
    for row in rows:
        row_worker, status = row["key"][:2]
        by_status = counts.setdefault(str(row_worker), {})
        by_status[str(status)] = by_status.get(str(status), 0) + int(row["value"])
    return counts


def drop_before_docid(rows: list[dict[str, Any]], params: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows from ``startkey_docid`` on.

    pouchdb: ignores ``startkey_docid`` and starts at the first row with ``startkey``; ``paged`` asks
    for that many more rows (only when keys tie, so rarely), and here they are dropped. CouchDB starts
    at the document itself, so nothing is dropped.
    """
    if "startkey_docid" not in params:
        return rows
    for index, row in enumerate(rows):
        if row["key"] != params["startkey"]:
            break
        if row["id"] == params["startkey_docid"]:
            return rows[index:]
    return rows


def queries_for(info: ServerInfo) -> TaskQueries:
    return MangoQueries() if info.erlang_queries else ViewQueries()
