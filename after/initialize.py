"""``after init``: create the database, install the design documents, open it to After's roles.

Idempotent: a second run changes nothing and reports nothing.
"""

from __future__ import annotations

import enum
import logging
import uuid
from typing import Protocol, runtime_checkable

from after.contracts import Store
from after.core.invalid import InvalidTask
from after.core.task import MEMBER_ROLES, Document, validate
from after.monitoring.dashboard import install_dashboard
from after.store.couch.design import DESIGN_ID, design_document
from after.store.couch.design_erlang import ERLANG_DESIGN_ID, erlang_design_document
from after.store.couch.indexes import mango_document
from after.store.types import Forbidden, StoreError

log = logging.getLogger(__name__)

ERLANG_SETTING = "[native_query_servers] enable_erlang_query_server = true"
# A task that every validator refuses, written by init to see the Erlang one at work (never stored).
PROBE: Document = {"worker": "after-init-probe", "date": "2011-02-30", "status": "waiting",
                   "job": {"name": "probe", "arguments": []}}


class Validation(enum.StrEnum):
    """What CouchDB checks when a document is written (README, "Validation at write")."""

    JAVASCRIPT = "javascript"  # validate_doc_update: 403 with a reason, worker-only statuses protected
    ERLANG = "erlang"  # the same rules in Erlang, inside Apache CouchDB: needs its Erlang query server
    NONE = "none"  # trust every writer: no check at write; the worker still ends bad tasks err
    AUTO = "auto"  # erlang where the server's configuration shows the Erlang query server, else javascript


class ValidationUnavailable(StoreError):
    """The validation asked for cannot run on this server; nothing was left half installed."""


@runtime_checkable
class SecuredStore(Protocol):
    """A store whose database has a CouchDB ``_security`` object (``CouchStore`` has)."""

    def security(self) -> Document: ...

    def set_security(self, security: Document) -> None: ...


@runtime_checkable
class ConfiguredStore(Protocol):
    """A store that can read the server's configuration (``CouchStore`` can, as a server admin)."""

    def node_config(self, section: str) -> dict[str, str] | None: ...


def initialize(store: Store, validation: Validation = Validation.JAVASCRIPT) -> list[str]:
    """Create what After needs in the database; return one human-readable line per change.

    A new validator is in place before the old one goes, so switching never leaves a moment without one.
    """
    enabled = erlang_query_server(store) if validation in (Validation.ERLANG, Validation.AUTO) else None
    if validation == Validation.AUTO:
        validation = Validation.ERLANG if enabled else Validation.JAVASCRIPT
        log.info("init: --validation auto chose %s", validation)
    if validation == Validation.ERLANG and enabled is False:
        raise ValidationUnavailable(
            "--validation erlang: this server does not run Erlang design functions. On Apache CouchDB, "
            f"set `{ERLANG_SETTING}` in every node's local.ini and restart CouchDB (it cannot be set over "
            "HTTP), or use --validation javascript")
    changes: list[str] = []
    if store.create_database():
        changes.append("created the database")
    if validation == Validation.ERLANG:
        changes += install_erlang(store)
    else:
        checked = "with validation at write" if validation == Validation.JAVASCRIPT else \
            "WITHOUT validation at write"
        if store.install_design(design_document(validate=validation == Validation.JAVASCRIPT)):
            changes.append(f"installed the design document {DESIGN_ID} (views, filter; {checked})")
        if remove_design(store, ERLANG_DESIGN_ID):
            changes.append(f"removed the design document {ERLANG_DESIGN_ID} (validation in Erlang)")
    if store.install_design(mango_document()):
        changes.append("installed the Mango indexes _design/after-mango (read by workers on Apache CouchDB)")
    changes += install_dashboard(store)
    if isinstance(store, SecuredStore) and open_to_roles(store):
        changes.append("opened the database to the roles " + " and ".join(MEMBER_ROLES))
    for line in changes:
        log.info("init: %s", line)
    return changes


def install_erlang(store: Store) -> list[str]:
    """``_design/after-erlang``, then ``_design/after`` without its JavaScript check; then a probe.

    If the probe shows that the Erlang check does not run (the configuration could not be read, or a node
    differs), the JavaScript check is put back and the Erlang design document removed before the error.
    """
    changes: list[str] = []
    if store.install_design(erlang_design_document()):
        changes.append(f"installed the design document {ERLANG_DESIGN_ID} (validation at write, in Erlang)")
    if store.install_design(design_document(validate=False)):
        changes.append(f"installed the design document {DESIGN_ID} (views, filter; its JavaScript "
                       f"validation left out: {ERLANG_DESIGN_ID} validates)")
    failure = probe_erlang(store)
    if failure is not None:
        store.install_design(design_document(validate=True))
        remove_design(store, ERLANG_DESIGN_ID)
        raise ValidationUnavailable(
            f"--validation erlang: {failure}. The JavaScript validation is back in place. Apache CouchDB "
            f"runs Erlang design functions only with `{ERLANG_SETTING}` in every node's local.ini")
    return changes


def erlang_query_server(store: Store) -> bool | None:
    """Whether the server's configuration enables the Erlang query server; None when it cannot be read.

    As CouchDB decides (``couch_proc_manager``): ``enable_erlang_query_server = true``, or the older
    ``erlang = {couch_native_process, start_link, []}``. Reading it takes a server admin.
    """
    if not isinstance(store, ConfiguredStore):
        return None
    section = store.node_config("native_query_servers")
    if section is None:
        return None
    return section.get("enable_erlang_query_server") == "true" or \
        section.get("erlang") == "{couch_native_process, start_link, []}"


def probe_erlang(store: Store) -> str | None:
    """Write a bad task that no validator lets in: None when it is refused, else what went wrong.

    Another design document's own ``validate_doc_update`` may refuse it first, with another reason;
    that is logged and accepted, since the Erlang check cannot then be told apart.
    """
    doc = {"_id": f"after-init-probe-{uuid.uuid4().hex}", **PROBE}
    expected = refusal(doc)
    try:
        rev = store.put(doc)
    except Forbidden as refused:
        if refused.reason != expected:
            log.warning("init: the probe task was refused with %r, not %r: another validate_doc_update "
                        "may have answered first", refused.reason, expected)
        return None
    except StoreError as error:
        return f"a test write failed instead of being refused ({error})"
    store.put({"_id": doc["_id"], "_rev": rev, "_deleted": True})
    return "a bad test task was accepted: the Erlang validate_doc_update did not run"


def refusal(doc: Document) -> str:
    """What ``after.core.task.validate`` says of a bad task."""
    try:
        validate(doc)
    except InvalidTask as error:
        return error.reason
    raise ValueError("the task is valid")


def remove_design(store: Store, design_id: str) -> bool:
    """Delete a design document if it exists; True when it did."""
    current = store.get(design_id)
    if current is None:
        return False
    store.put({"_id": design_id, "_rev": current["_rev"], "_deleted": True})
    return True


def open_to_roles(store: SecuredStore) -> bool:
    """Make users with role ``after_worker`` or ``after_client`` members, if no one chose otherwise.

    CouchDB 3 makes a new database admin-only (members: ``_admin``), so workers and clients that are not
    server admins could not read or write it; pouchdb-server and CouchDB 2 leave it open to anyone,
    including anonymous users. Both are wrong for After, so ``init`` sets members to the two After roles.
    It does so only while ``_security`` is unset or still that admin-only default: a policy an operator
    wrote is never overwritten. Admins are left as they are; server admins always have access.
    """
    security = store.security()
    members = security.get("members") or {}
    if members.get("names") or not set(members.get("roles") or []) <= {"_admin"}:
        return False
    store.set_security({**security, "members": {"names": [], "roles": list(MEMBER_ROLES)}})
    return True
