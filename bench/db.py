"""The benchmark's own plain HTTP client for one database (what a CouchDB client would send).

The benchmarks load documents, read results, build indexes and follow feeds with this client rather
than with ``after.store.couch.client.CouchStore``, so that they measure the worker's store
without depending on its internals. Every request asks for JSON without compression
(pouchdb-server gzips otherwise) and uses TCP_NODELAY, as After's own client does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import httpx

from after.core.task import Document
from after.store.couch.transport import no_delay_transport
from tests.server import TestServer

HEADERS = {"Accept": "application/json", "Accept-Encoding": "identity"}
FETCH_CHUNK = 1000


class Database:
    """One database on one server, as the server admin."""

    def __init__(self, server: TestServer, name: str, timeout: float = 300.0) -> None:
        self.server = server
        self.name = name
        self.url = f"{server.url}/{quote(name, safe='')}"
        self.client = httpx.Client(auth=server.auth, headers=HEADERS, timeout=httpx.Timeout(timeout),
                                   transport=no_delay_transport())

    def call(self, method: str, path: str = "", ok: Sequence[int] = (), **kwargs: Any) -> httpx.Response:
        """One request to ``url + path``; an error status not in ``ok`` raises with the server's reason."""
        response = self.client.request(method, self.url + path, **kwargs)
        if response.status_code >= 400 and response.status_code not in ok:
            status, text = response.status_code, response.text[:300]
            raise RuntimeError(f"{method} {self.name}{path}: HTTP {status} {text}")
        return response

    def json(self, method: str, path: str = "", **kwargs: Any) -> Any:
        return self.call(method, path, **kwargs).json()

    def put(self, doc: Document) -> str:
        doc_id = str(doc["_id"])
        path = "/_design/" + quote(doc_id[8:], safe="") if doc_id.startswith("_design/") else "/" + quote(
            doc_id, safe="")
        return str(self.json("PUT", path, json=doc)["rev"])

    def update_seq(self) -> str:
        return str(self.json("GET")["update_seq"])

    def get_many(self, doc_ids: Sequence[str]) -> list[Document]:
        """The current documents, ``FETCH_CHUNK`` per request; a missing one is an error."""
        docs: list[Document] = []
        for start in range(0, len(doc_ids), FETCH_CHUNK):
            chunk = list(doc_ids[start:start + FETCH_CHUNK])
            body = self.json("POST", "/_all_docs", params={"include_docs": "true"}, json={"keys": chunk})
            found = {row.get("key"): row.get("doc") for row in body.get("rows", [])}
            for doc_id in chunk:
                doc = found.get(doc_id)
                if not isinstance(doc, dict):
                    raise RuntimeError(f"task {doc_id} is missing")
                docs.append(doc)
        return docs

    def bulk(self, docs: list[Document]) -> None:
        """``_bulk_docs``; a refused document is an error (417: CouchDB's answer when validation refused)."""
        rows = self.json("POST", "/_bulk_docs", json={"docs": docs}, ok=(417,))
        failed = [row for row in rows if "error" in row]
        if failed:
            raise RuntimeError(f"the server refused {len(failed)} documents, e.g. {failed[:2]}")

    def close(self) -> None:
        self.client.close()
