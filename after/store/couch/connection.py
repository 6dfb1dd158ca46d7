"""``CouchConnection``: HTTP to one CouchDB database on one or several nodes of a cluster, with the
error mapping of the store contract (``after.store.types``) and failover between nodes.

The password lives only inside the HTTP client's auth object: it is never part of a URL, an exception
message, a log line or a repr.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import httpx

from after.store.couch.transport import no_delay_transport
from after.store.couch.wire import LOCKED, is_read, public_url, reason_of
from after.store.types import Conflict, Forbidden, StoreError, Unauthorized, Unavailable, Unreadable

log = logging.getLogger("after.store.couch.client")  # the store's logger, as before the split

# pouchdb: answers text/plain without Accept, and gzips every answer unless asked for identity (CPU on
# both sides of a loopback connection, measured as a visible share of the worker's time).
# Apache CouchDB never compresses, so neither header changes anything there.
JSON_HEADERS = {"Accept": "application/json", "Accept-Encoding": "identity"}


class CouchConnection:
    """Requests to the current node; when it cannot be reached (or answers 5xx) the connection moves to
    the next URL, and the caller's retry goes there. ``url`` is always the node in use.
    """

    def __init__(
        self, url: str | Sequence[str], database: str, user: str | None = None, password: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.urls = [public_url(one) for one in ([url] if isinstance(url, str) else url)]
        if not self.urls:
            raise ValueError("CouchStore needs at least one URL")
        self.current = 0
        self.database = database
        self.user = user
        self.timeout = timeout
        self.auth = httpx.BasicAuth(user, password or "") if user is not None else None
        self.clients: dict[str, httpx.Client] = {}
        self.lock = threading.Lock()
        self.db_path = "/" + quote(database, safe="")

    @property
    def url(self) -> str:
        return self.urls[self.current]

    @property
    def client(self) -> httpx.Client:
        """The HTTP client of the node in use (one connection pool per node)."""
        url = self.url
        with self.lock:
            if url not in self.clients:
                self.clients[url] = httpx.Client(
                    base_url=url, auth=self.auth, headers=JSON_HEADERS, timeout=httpx.Timeout(self.timeout),
                    transport=no_delay_transport(),
                )
            return self.clients[url]

    def request(self, method: str, path: str, *, ok: Sequence[int] = (), **kwargs: Any) -> httpx.Response:
        """One request with the error mapping of the contract; statuses in ``ok`` are returned as is."""
        kwargs.setdefault("timeout", httpx.Timeout(self.timeout))
        url = self.url
        try:
            response = self.client.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            raise self.unavailable(error, url) from None
        return self.check(response, ok)

    def unavailable(self, error: Exception, url: str | None = None) -> Unavailable:
        kind = type(error).__name__
        failed = url or self.url
        self.fail_over(failed)
        return Unavailable(f"CouchDB at {failed} is unavailable ({kind}: {error})")

    def fail_over(self, failed: str) -> None:
        """Move to the next node, unless another thread already moved away from ``failed``."""
        if len(self.urls) < 2:
            return
        with self.lock:
            if self.urls[self.current] != failed:
                return
            self.current = (self.current + 1) % len(self.urls)
        log.warning("CouchDB at %s is unavailable; using %s now", failed, self.url)

    def check(self, response: httpx.Response, ok: Sequence[int] = ()) -> httpx.Response:
        status = response.status_code
        if status < 400 or status in ok:
            return response
        where, reason = f"{response.request.method} {self.database}", reason_of(response)
        if status == 409:
            raise Conflict(f"{where}: {reason}")
        if status == 401 or (status == 403 and (is_read(response.request) or reason.startswith(LOCKED))):
            # who may use the server or the database (pouchdb: 401 where CouchDB says 403), not a
            # validate_doc_update refusal: the message names the URL and the user tried
            raise Unauthorized(reason, self.url, self.user)
        if status == 403:
            raise Forbidden(reason)
        if status >= 500:
            failed = str(response.request.url.copy_with(path="/", query=None)).rstrip("/")
            self.fail_over(failed)
            raise Unavailable(f"CouchDB at {failed} failed: HTTP {status} ({reason})")
        raise StoreError(f"{where}: HTTP {status} ({reason})")

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.parsed(self.request(method, path, **kwargs), path)

    def parsed(self, response: httpx.Response, path: str) -> Any:
        """The JSON body; ``Unreadable`` when a document in it is nested deeper than Python parses."""
        try:
            return json.loads(response.content)
        except RecursionError:
            raise Unreadable(f"{path}: a document is nested deeper than Python's JSON parser goes") from None
        except ValueError:
            raise Unavailable(f"CouchDB at {self.url} answered {path} with something not JSON") from None

    def close(self) -> None:
        with self.lock:
            clients, self.clients = list(self.clients.values()), {}
        for client in clients:
            client.close()
