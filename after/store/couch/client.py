"""``CouchStore``: the ``Store`` contract over CouchDB's HTTP API: databases, documents, the reads
that depend on the server, and the changes feed. With ``connection`` (HTTP, errors, failover) and
``wire`` (the format of CouchDB's answers), the only code that speaks HTTP.

Written against Apache CouchDB 3.x and tested against it and pouchdb-server 4.2.0. What to ask for
tasks depends on the server (``after.store.couch.queries``: Erlang-side queries on Apache CouchDB, design
views elsewhere), detected at connect. The pouchdb workarounds are marked "pouchdb:" and are harmless
against CouchDB.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from urllib.parse import quote

import httpx

from after.config import CouchConfig
from after.core.task import Document, unreadable_stand_in
from after.store.couch.connection import CouchConnection
from after.store.couch.queries import ServerInfo, TaskQueries, queries_for, server_info
from after.store.couch.wire import FEED_ID, FEED_SEQ, doc_path, in_request_order, parse_change, writable
from after.store.types import Change, Unavailable, Unreadable, WriteResult, strip_meta

__all__ = ["CouchStore", "doc_path"]

log = logging.getLogger(__name__)


class CouchStore(CouchConnection):
    """A ``Store`` on one CouchDB database, through ``httpx``; several URLs are nodes of one cluster
    (``CouchConnection`` moves between them)."""

    info: ServerInfo | None = None  # what the server is, asked once (``server()``)

    @classmethod
    def from_config(cls, config: CouchConfig) -> CouchStore:
        return cls(config.urls, config.database, config.user, config.password, config.timeout)

    def __repr__(self) -> str:
        return f"CouchStore(url={self.url!r}, database={self.database!r}, user={self.user!r})"

    # -- database -----------------------------------------------------------------------------

    def create_database(self) -> bool:
        response = self.request("PUT", self.db_path, ok=(412,))
        return response.status_code != 412

    def security(self) -> Document:
        """The database's ``_security`` object (``{}`` when none is set)."""
        body = self.json("GET", f"{self.db_path}/_security")
        return body if isinstance(body, dict) else {}

    def set_security(self, security: Document) -> None:
        self.request("PUT", f"{self.db_path}/_security", json=security)

    def install_design(self, design: Document) -> bool:
        current = self.get(design["_id"])
        if current is not None and strip_meta(current) == strip_meta(design):
            return False
        self.put({**strip_meta(design), "_rev": current["_rev"]} if current else strip_meta(design))
        log.info("installed %s in %s", design["_id"], self.database)
        return True

    def update_seq(self) -> str:
        return str(self.json("GET", self.db_path)["update_seq"])

    def compact(self) -> None:
        # CouchDB wants a JSON content type on _compact (415 otherwise).
        self.request("POST", f"{self.db_path}/_compact", json={})

    def __enter__(self) -> CouchStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- documents ----------------------------------------------------------------------------

    def revisions(self, doc_id: str, revs: Sequence[str]) -> list[Document]:
        """Those revisions of a document that exist (conflicting leaves), through ``open_revs``."""
        if not revs:
            return []
        answer = self.json("GET", f"{self.db_path}/{doc_path(doc_id)}",
                           params={"open_revs": json.dumps(list(revs))})
        return [row["ok"] for row in answer if isinstance(row, dict) and isinstance(row.get("ok"), dict)]

    def get(self, doc_id: str) -> Document | None:
        response = self.request("GET", f"{self.db_path}/{doc_path(doc_id)}", params={"conflicts": "true"},
                                ok=(404,))
        if response.status_code == 404:
            return None
        try:
            doc: Document = self.parsed(response, doc_id)
        except Unreadable:
            return self.stand_in(doc_id, response.text)
        return doc

    def stand_in(self, doc_id: str, text: str) -> Document:
        """A document we cannot parse: its id, revision, worker and status read apart, and its text."""
        fields: Document = {}
        for wanted in (["_id", "_rev", "worker", "status"], ["_id", "_rev"]):
            try:
                answer = self.json("POST", f"{self.db_path}/_find",
                                   json={"selector": {"_id": doc_id}, "fields": wanted, "limit": 1})
            except Unreadable:  # the worker or status field itself is that deep
                continue
            docs = answer.get("docs") if isinstance(answer, dict) else None
            fields = docs[0] if docs and isinstance(docs[0], dict) else {}
            break
        log.warning("task %s is nested too deep to parse; handing the worker a stand-in", doc_id,
                    extra={"task_id": doc_id})
        return unreadable_stand_in(doc_id, fields.get("_rev"), fields, text)

    def get_many(self, doc_ids: Sequence[str]) -> list[Document | None]:
        """One ``_all_docs`` request with the ids in the body; deleted and missing documents are None.

        If one of them cannot be parsed, each is read alone (``get``: a stand-in for that one).
        """
        if not doc_ids:
            return []
        try:
            body = self.json("POST", f"{self.db_path}/_all_docs", params={"include_docs": "true",
                                                                          "conflicts": "true"},
                             json={"keys": list(doc_ids)})
        except Unreadable:
            return [self.get(doc_id) for doc_id in doc_ids]
        found = {row.get("key"): row.get("doc") for row in body.get("rows", []) if isinstance(row, dict)}
        return [found.get(doc_id) if isinstance(found.get(doc_id), dict) else None for doc_id in doc_ids]

    def documents(self, prefix: str) -> list[Document]:
        body = self.json("GET", f"{self.db_path}/_all_docs", params={
            "startkey": json.dumps(prefix), "endkey": json.dumps(prefix + "\ufff0"), "include_docs": "true"})
        return [row["doc"] for row in body.get("rows", []) if isinstance(row.get("doc"), dict)]

    def put(self, doc: Document) -> str:
        doc = writable(doc)
        if doc.get("_id"):
            body = self.json("PUT", f"{self.db_path}/{doc_path(str(doc['_id']))}", json=doc)
        else:
            body = self.json("POST", self.db_path, json=doc)
        return str(body["rev"])

    def bulk_write(self, docs: Sequence[Document]) -> list[WriteResult]:
        # 417: CouchDB's answer when validate_doc_update refused some; the body still lists each.
        body = {"docs": [writable(doc) for doc in docs]}
        response = self.request("POST", f"{self.db_path}/_bulk_docs", json=body, ok=(417,))
        rows = in_request_order(docs, self.parsed(response, "_bulk_docs"))
        return [WriteResult(str(row.get("id")), rev=row.get("rev"), error=row.get("error"),
                            reason=row.get("reason"), accepted=bool(row.get("accepted"))) for row in rows]

    # -- reads that depend on the server ------------------------------------------------------

    def server(self) -> ServerInfo:
        """What the server is (``GET /``), asked once per store, when it is first needed."""
        if self.info is None:
            self.info = server_info(self.json("GET", "/"))
            log.info("%s at %s: %s", self.info.describe(), self.url,
                     "Mango indexes and _selector feeds" if self.info.erlang_queries else "design views")
        return self.info

    @property
    def queries(self) -> TaskQueries:
        return queries_for(self.server())

    def live_tasks(
        self, worker: str, until: float | None = None, page_size: int = 500
    ) -> Iterator[Document]:
        yield from self.queries.live_tasks(self, worker, until, page_size)

    def tasks(
        self, worker: str | None = None, status: str | None = None, limit: int = 100
    ) -> list[Document]:
        return self.queries.tasks(self, worker, status, limit)

    def status_counts(self, worker: str | None = None) -> dict[str, dict[str, int]]:
        return self.queries.status_counts(self, worker)

    # -- changes ------------------------------------------------------------------------------

    def changes(self, worker: str, since: str, heartbeat: float = 10.0) -> Iterator[Change | None]:
        feed = self.queries.feed(worker)
        params = {"feed": "continuous", "heartbeat": str(max(1, int(heartbeat * 1000))),
                  "include_docs": "true", "conflicts": "true", "since": since, **feed.params}
        # pouchdb: gzips (and so buffers) the stream unless asked for identity; CouchDB never gzips.
        headers = {"Accept-Encoding": "identity"}
        timeout = httpx.Timeout(self.timeout, read=heartbeat * 1.5 + 1.0)
        try:
            with self.client.stream(feed.method, f"{self.db_path}/_changes", params=params, json=feed.body,
                                    headers=headers, timeout=timeout) as response:
                if response.status_code >= 400:
                    response.read()
                    self.check(response)
                yield from self.feed_lines(response)
        except httpx.HTTPError as error:
            raise self.unavailable(error) from None
        raise Unavailable(f"CouchDB at {self.url} closed the changes feed")

    def feed_lines(self, response: httpx.Response) -> Iterator[Change | None]:
        buffer = b""
        for chunk in response.iter_bytes():
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                if not line.strip():
                    yield None  # heartbeat
                    continue
                try:
                    change = parse_change(line)
                except Unreadable:
                    change = self.unreadable_change(line)
                if change is None:  # last_seq: the feed ended
                    return
                yield change

    def unreadable_change(self, line: bytes) -> Change:
        """A feed row whose document is nested too deep to parse: its id and sequence from the text.

        The top-level ``id`` comes before the document on both servers; the sequence comes first on
        Apache CouchDB and last on pouchdb-server.
        """
        text = line.decode("utf-8", errors="replace")
        found = FEED_ID.search(text)
        if found is None:
            raise Unavailable("the changes feed sent a row without an id that is too deep to parse")
        doc_id = json.loads(found.group(1))
        seqs = FEED_SEQ.findall(text)
        seq = seqs[0] if text.startswith('{"seq":') else seqs[-1] if seqs else "0"
        doc = self.get(doc_id)
        return Change(seq=str(json.loads(seq)), id=doc_id, deleted=doc is None, doc=doc)

    # -- server configuration (after init --validation erlang) --------------------------------

    def node_config(self, section: str) -> dict[str, str] | None:
        """One section of the answering node's configuration (``{}`` when unset or the server has no
        ``/_node`` API, as pouchdb-server); None when this user may not read it (not a server admin)."""
        response = self.request("GET", f"/_node/_local/_config/{quote(section, safe='')}",
                                ok=(401, 403, 404))
        if response.status_code in (401, 403):
            return None
        body = response.json() if response.status_code == 200 else {}
        return {str(key): str(value) for key, value in body.items()} if isinstance(body, dict) else {}
