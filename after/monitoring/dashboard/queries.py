"""What ``after metrics`` reads beyond the Store contract, the way the dashboard's page reads it.

Two bounded reads per worker, each one or a few requests whatever the number of tasks:

- ``recent_results``: tasks dated within a window (the last hour), only what a lateness needs.
- ``oldest_overdue``: the due date of the oldest task that should have started and has not (a worker's
  ``scheduled`` task past its ``due``, or a client's ``waiting``/``schedule``/``reschedule`` past its date).

On Apache CouchDB 3 they use the Mango indexes of ``_design/after-mango`` and ``_design/after-dashboard``
(Erlang); elsewhere the views of
``_design/after`` (JavaScript, free on pouchdb-server), as ``after.store.couch.queries`` does; and a store
without HTTP (``MemoryStore``) is read through the contract.
"""

from __future__ import annotations

import json
from typing import Any, Protocol, runtime_checkable

from after.contracts import Store
from after.core.dates import format_date, parse_date
from after.core.invalid import InvalidTask
from after.core.task import ARM_STATUSES, Document, Status
from after.monitoring.dashboard.design import INDEX_DESIGN_ID, LATENESS
from after.store.couch.design import DESIGN_ID
from after.store.couch.indexes import LIVE_DATE, LIVE_DUE, MANGO_DDOC, day_bound
from after.store.couch.queries import ServerInfo

DESIGN = DESIGN_ID.split("/", 1)[1]
OVERDUE_STATUSES = sorted({Status.SCHEDULED.value, *(status.value for status in ARM_STATUSES)})
LOOK_AHEAD = 20  # candidates read per index: dates written with an offset do not sort by instant


@runtime_checkable
class HttpStore(Protocol):
    """``CouchStore``: its database path, JSON requests and what server it talks to."""

    db_path: str

    def json(self, method: str, path: str, **kwargs: Any) -> Any: ...

    def server(self) -> ServerInfo: ...


def instant(value: object) -> float | None:
    try:
        return parse_date(value)
    except InvalidTask:
        return None


def recent_results(store: Store, worker: str, since: float, until: float,
                   limit: int = 5000) -> list[Document]:
    """Tasks of ``worker`` dated between ``since`` and ``until`` (at most ``limit``) whose job started in
    that window: ``result.started`` and ``result.lateness_ms`` at least."""
    if not isinstance(store, HttpStore):
        docs = store.tasks(worker, None, limit=1_000_000)
    elif store.server().erlang_queries:
        docs = lateness_rows(store, worker, since, until, limit)
    else:
        docs = view_docs(store, "by_worker", startkey=[worker, since * 1000.0],
                         endkey=[worker, until * 1000.0], limit=limit)
    return [doc for doc in docs if started_within(doc, since, until)][:limit]


def lateness_rows(store: HttpStore, worker: str, since: float, until: float, limit: int) -> list[Document]:
    """The keys of the dashboard's ``lateness`` index as documents: no document is read."""
    params = {"startkey": [worker, format_date(since)], "endkey": [worker, format_date(until), {}],
              "reduce": False, "limit": limit}
    query = {key: json.dumps(value) for key, value in params.items()}
    body = store.json("GET", f"{store.db_path}/{INDEX_DESIGN_ID}/_view/{LATENESS}", params=query)
    rows = body.get("rows", [])
    return [{"_id": row["id"], "status": row["key"][3],
             "result": {"started": row["key"][1], "lateness_ms": row["key"][2]}} for row in rows]


def started_within(doc: Document, since: float, until: float) -> bool:
    result = doc.get("result")
    if not isinstance(result, dict) or not isinstance(result.get("lateness_ms"), int | float):
        return False
    started = instant(result.get("started"))
    return started is not None and since <= started <= until


def oldest_overdue(store: Store, worker: str, now: float) -> float | None:
    """The due date (epoch seconds) of ``worker``'s oldest task that should have started by ``now`` and
    has not (``running`` tasks have started; a ``cancel`` will not run); None when there is none."""
    if not isinstance(store, HttpStore):
        candidates = list(store.live_tasks(worker, until=now))
    elif store.server().erlang_queries:
        candidates = mango_overdue(store, worker, now)
    else:
        candidates = []
        for status in OVERDUE_STATUSES:
            candidates += view_docs(store, "by_worker_status", startkey=[worker, status, 1],
                                    endkey=[worker, status, now * 1000.0], limit=1)
    dues = [due for doc in candidates if doc.get("status") in OVERDUE_STATUSES
            and (due := instant(doc.get("due") if doc.get("status") == Status.SCHEDULED else doc.get("date")))
            is not None and due <= now]
    return min(dues, default=None)


def mango_overdue(store: HttpStore, worker: str, now: float) -> list[Document]:
    """The first scheduled tasks by ``due``, and the first tasks a client armed by ``date``."""
    armed = {"selector": {"worker": worker, "due": {"$lte": format_date(now)},
                          "status": Status.SCHEDULED.value},
             "use_index": [MANGO_DDOC, LIVE_DUE], "sort": [{"worker": "asc"}, {"due": "asc"}], "limit": 1}
    asked = {"selector": {"worker": worker, "date": {"$lt": day_bound(now)},
                          "status": {"$in": sorted(status.value for status in ARM_STATUSES)}},
             "use_index": [MANGO_DDOC, LIVE_DATE], "sort": [{"worker": "asc"}, {"date": "asc"}],
             "limit": LOOK_AHEAD}
    docs: list[Document] = []
    for body in (armed, asked):
        docs += store.json("POST", f"{store.db_path}/_find", json=body).get("docs", [])
    return docs


def view_docs(store: HttpStore, view: str, **params: Any) -> list[Document]:
    """The documents of a view of ``_design/after`` (pouchdb-server and other servers)."""
    query = {key: json.dumps(value) for key, value in {**params, "include_docs": True}.items()}
    body = store.json("GET", f"{store.db_path}/_design/{DESIGN}/_view/{view}", params=query)
    return [row["doc"] for row in body.get("rows", []) if isinstance(row.get("doc"), dict)]
