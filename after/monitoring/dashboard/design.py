"""The dashboard's design documents, and how ``after init`` installs them (idempotent).

CouchDB serves a design document's attachments as files: ``/<db>/_design/<name>/index.html``. But it
refuses every document of a members-only database to a visitor who has not logged in, design documents
and their attachments included (measured on Apache CouchDB 3.5 and pouchdb-server 4.2: 401), so a page
kept in After's database could never show its login form. The page therefore lives in a database of
its own, ``<db>-dashboard``, that holds nothing else: readable by anyone (it is code, no data) and
written only by admins (its ``validate_doc_update``). Everything the page shows it reads from ``<db>``
with the user's CouchDB session cookie, so the data stays behind CouchDB's login:

- ``<db>-dashboard/_design/after-dashboard``: the page (``after.monitoring.dashboard.page``) as its attachment
  ``index.html``, stamped with a digest of it (CouchDB's own attachment digests differ between servers).
- ``<db>/_design/after-dashboard``: two Mango indexes (``"language": "query"``, read with ``_view``) for
  what no index of ``after.store.couch.indexes`` gives cheaply: failed tasks by worker and end (recent
  failures), and
  every task that ran keyed ``[worker, result.started, result.lateness_ms, status]``, so that the lateness
  chart reads keys only, no document (measured with 100,000 tasks: ``_find`` with ``fields`` on
  ``by-date`` read a document per point, several times slower).
- On Apache CouchDB, every node's ``[csp] attachments_header_value``: see ``after.monitoring.dashboard.page``.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable
from urllib.parse import quote

from after import __version__
from after.contracts import Store
from after.core.task import CLIENT_ROLE, TERMINAL_STATUSES, Document, Status
from after.monitoring.dashboard import page
from after.store.couch.design import DESIGN_ID
from after.store.couch.indexes import BY_DATE, BY_STATUS, LIVE_DATE, LIVE_DUE, MANGO_DDOC, mango_view
from after.store.couch.queries import ServerFamily, ServerInfo
from after.worker.presence import KIND, PREFIX, TTL

log = logging.getLogger(__name__)

PAGE_DESIGN_ID = "_design/after-dashboard"
INDEX_DESIGN_ID = "_design/after-dashboard"  # the same name, in After's database
PAGE_SUFFIX = "-dashboard"
FAILURES = "failures"
LATENESS = "lateness"
STAMP = "after_dashboard"  # the field that says which page a design document holds
CSP_SETTING = "csp/attachments_header_value"
# What the page shows at most (per worker where it reads per worker), so that its first view costs the
# same with 100 tasks or 100,000.
LIMITS = {"upcoming": 15, "running": 100, "failures": 20, "chart": 1000, "activity": 50}
STATUS_ORDER = [Status.WAITING, Status.SCHEDULE, Status.RESCHEDULE, Status.SCHEDULED, Status.RUNNING,
                Status.DONE, Status.ERR, Status.CANCEL, Status.CANCELED]
READ_ONLY = r"""function (newDoc, oldDoc, userCtx) {
  if ((userCtx.roles || []).indexOf('_admin') < 0) {
    throw({forbidden: 'the dashboard database holds only the page: only admins write it (after init)'});
  }
}"""


def page_database(database: str) -> str:
    """The database that holds the page of After's database ``database``."""
    return database + PAGE_SUFFIX


def page_path(database: str) -> str:
    """The page's URL path on the CouchDB server (``/after-dashboard/_design/after-dashboard/index.html``)."""
    return f"/{quote(page_database(database), safe='')}/{PAGE_DESIGN_ID}/index.html"


def index_document() -> Document:
    """``<db>/_design/after-dashboard``: failed tasks by ``[worker, result.ended]`` (partial: ``err``), and
    every task that ran by ``[worker, result.started, result.lateness_ms, status]``."""
    return {"_id": INDEX_DESIGN_ID, "language": "query",
            "views": {FAILURES: mango_view(["worker", "result.ended"], {"status": Status.ERR.value}),
                      LATENESS: mango_view(["worker", "result.started", "result.lateness_ms", "status"])}}


def page_config(database: str) -> dict[str, Any]:
    """What the page needs to know of After (JavaScript cannot import Python), in its JSON block."""

    return {
        "database": database,
        "version": __version__,
        "clientRole": CLIENT_ROLE,
        "presence": {"prefix": PREFIX, "type": KIND, "ttl": TTL},
        "statuses": [status.value for status in STATUS_ORDER],
        "terminal": sorted(status.value for status in TERMINAL_STATUSES),
        "mango": {"ddoc": MANGO_DDOC, "liveDue": LIVE_DUE, "liveDate": LIVE_DATE, "byStatus": BY_STATUS,
                  "byDate": BY_DATE, "dashboard": INDEX_DESIGN_ID.split("/", 1)[1], "failures": FAILURES,
                  "lateness": LATENESS},
        "views": {"ddoc": DESIGN_ID.split("/", 1)[1], "live": "live", "byWorker": "by_worker",
                  "byWorkerStatus": "by_worker_status", "counts": "counts"},
        "limits": LIMITS,
    }


def page_document(database: str) -> Document:
    """``<db>-dashboard/_design/after-dashboard``: the page as an attachment, stamped with its digest."""
    html = page.build(page_config(database)).html
    return {
        "_id": PAGE_DESIGN_ID,
        "language": "javascript",
        "validate_doc_update": READ_ONLY,
        STAMP: {"version": __version__, "sha256": hashlib.sha256(html).hexdigest()},
        "_attachments": {"index.html": {"content_type": "text/html; charset=utf-8",
                                        "data": base64.b64encode(html).decode()}},
    }


@runtime_checkable
class ServerStore(Protocol):
    """A store that can reach its whole server (``CouchStore``): the page needs a database of its own."""

    database: str

    @property
    def url(self) -> str: ...

    def request(self, method: str, path: str, *, ok: Sequence[int] = (), **kwargs: Any) -> Any: ...

    def json(self, method: str, path: str, **kwargs: Any) -> Any: ...

    def server(self) -> ServerInfo: ...


def install_dashboard(store: Store) -> list[str]:
    """Install the dashboard's index in After's database and, on a CouchDB server, its page; one line
    per change (none when everything is in place)."""
    changes = []
    if store.install_design(index_document()):
        changes.append(f"installed the design document {INDEX_DESIGN_ID} (the dashboard's indexes)")
    if isinstance(store, ServerStore):
        changes += install_page(store)
        if store.server().family == ServerFamily.APACHE_COUCHDB:
            changes += allow_page_scripts(store, page.policy(page.build(page_config(store.database))))
    return changes


def install_page(store: ServerStore) -> list[str]:
    name = page_database(store.database)
    path = "/" + quote(name, safe="")
    changes = []
    if store.request("PUT", path, ok=(412,)).status_code != 412:
        changes.append(f"created the database {name} (public: it holds only the dashboard's page)")
    security = store.json("GET", f"{path}/_security")
    if admin_only(security if isinstance(security, dict) else {}):
        store.request("PUT", f"{path}/_security", json={**security, "members": {"names": [], "roles": []}})
        changes.append(f"opened {name} to anonymous readers (its design document lets only admins write)")
    wanted = page_document(store.database)
    answer = store.request("GET", f"{path}/{PAGE_DESIGN_ID}", ok=(404,))
    current = answer.json() if answer.status_code == 200 else None
    if current is None or current.get(STAMP) != wanted[STAMP]:
        if current is not None:
            wanted["_rev"] = current["_rev"]
        store.json("PUT", f"{path}/{PAGE_DESIGN_ID}", json=wanted)
        changes.append(f"installed the dashboard at {store.url}{page_path(store.database)}")
    return changes


def admin_only(security: Document) -> bool:
    """CouchDB 3's default for a new database (members: ``_admin``), which would hide the page from the
    login form's visitors. Nothing set is public already (pouchdb-server); members that an operator
    named (to keep the page private) are left alone."""
    members = security.get("members") or {}
    return not members.get("names") and members.get("roles") == ["_admin"]


def allow_page_scripts(store: ServerStore, policy: str) -> list[str]:
    """Apache CouchDB: set every node's attachment policy to ``policy`` where it is CouchDB's default or
    an older one of After's. An operator's own value, or attachments without a policy, are left alone."""
    answer = store.request("GET", "/_membership", ok=(401, 403))
    if answer.status_code != 200:
        log.warning("init: only a server admin can let the dashboard's script run (CouchDB's [csp])")
        return []
    changes = []
    for node in answer.json().get("cluster_nodes", []):
        where = f"/_node/{quote(node, safe='')}/_config/csp"
        section = store.json("GET", where)
        current = str(section.get("attachments_header_value", page.COUCHDB_DEFAULT))
        if section.get("attachments_enable") == "false" or current == policy:
            continue
        if not page.is_replaceable(current):
            log.warning("init: %s has its own [csp] attachments_header_value; the dashboard needs %r",
                        node, policy)
            continue
        store.request("PUT", f"/_node/{quote(node, safe='')}/_config/{CSP_SETTING}", json=policy)
        changes.append(f"let the dashboard's script (and only it) run in attachments on {node} "
                       "([csp] attachments_header_value, was CouchDB's sandbox)" if current ==
                       page.COUCHDB_DEFAULT else f"updated the dashboard's script hash on {node} ([csp])")
    return changes
