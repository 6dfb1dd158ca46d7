"""Built-in jobs, registered as entry points in the ``after.jobs`` group (see pyproject.toml).

- ``noop``: does nothing (throughput benchmarks, smoke tests); arguments are ignored.
- ``compact_couchdb``: asks CouchDB to compact the After database (no arguments).
- ``webhook``: ``[url]`` or ``[url, payload]``: POSTs JSON (the payload, by default the task document
  without ``_rev``) and fails on any answer that is not 2xx.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from after.contracts import JobContext
from after.jobs import JobFailed
from after.store.types import StoreError

WEBHOOK_TIMEOUT = 30.0
WEBHOOK_USAGE = "webhook needs arguments [url] or [url, payload]"
BODY_SHOWN = 500  # characters of a webhook's answer kept in the output


def noop(context: JobContext) -> None:
    return None


def compact_couchdb(context: JobContext) -> str:
    if context.arguments:
        raise JobFailed("compact_couchdb takes no arguments")
    store = context.services.store
    if store is None:
        raise JobFailed("compact_couchdb needs the worker's store, which this worker does not provide")
    try:
        store.compact()
    except StoreError as error:
        raise JobFailed(f"compaction failed: {error}") from None
    return "compaction requested"


def webhook(context: JobContext) -> str:
    url, payload = webhook_arguments(context)
    shown = public_url(url)
    body = json.dumps(payload, ensure_ascii=False).encode()
    try:
        response = httpx.post(
            url, content=body, headers={"Content-Type": "application/json"},
            timeout=min(context.timeout, WEBHOOK_TIMEOUT),
        )
    except (httpx.HTTPError, httpx.InvalidURL) as error:
        raise JobFailed(f"cannot reach {shown}: {type(error).__name__}: {error}") from None
    answer = f"HTTP {response.status_code} from {shown}"
    text = f"{answer}\n{response.text[:BODY_SHOWN]}".rstrip()
    if not 200 <= response.status_code < 300:
        raise JobFailed(answer, output=text)
    return text


def webhook_arguments(context: JobContext) -> tuple[str, Any]:
    arguments = context.arguments
    if not 1 <= len(arguments) <= 2 or not isinstance(arguments[0], str):
        raise JobFailed(WEBHOOK_USAGE)
    url = arguments[0]
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise JobFailed(f"webhook url {public_url(url, port=False)} has an invalid port") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise JobFailed(f"{WEBHOOK_USAGE}; the url must start with http:// or https://")
    if len(arguments) == 2:
        return url, arguments[1]
    return url, {key: value for key, value in context.document.items() if key != "_rev"}


def public_url(url: str, port: bool = True) -> str:
    """The url without user, password and query string, which may hold credentials."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if port and parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
