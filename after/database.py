"""``after init``: create the database, install the design documents, open it to After's roles.

Idempotent: a second run changes nothing and reports nothing.
"""

from __future__ import annotations

import enum
import logging
from typing import Protocol, runtime_checkable

from after.design import design_document
from after.indexes import mango_document
from after.model import WORKER_ROLE, Document
from after.store import Store

log = logging.getLogger(__name__)

CLIENT_ROLE = "after_client"
MEMBER_ROLES = [WORKER_ROLE, CLIENT_ROLE]


class Validation(enum.StrEnum):
    """What CouchDB checks when a document is written (README, "Validation at write")."""

    JAVASCRIPT = "javascript"  # validate_doc_update: 403 with a reason, worker-only statuses protected
    NONE = "none"  # trust every writer: no check at write; the worker still ends bad tasks err


@runtime_checkable
class SecuredStore(Protocol):
    """A store whose database has a CouchDB ``_security`` object (``CouchStore`` has)."""

    def security(self) -> Document: ...

    def set_security(self, security: Document) -> None: ...


def initialize(store: Store, validation: Validation = Validation.JAVASCRIPT) -> list[str]:
    """Create what After needs in the database; return one human-readable line per change."""
    changes: list[str] = []
    if store.create_database():
        changes.append("created the database")
    checked = "with validation at write" if validation != Validation.NONE else "WITHOUT validation at write"
    if store.install_design(design_document(validate=validation != Validation.NONE)):
        changes.append(f"installed the design document _design/after (views, filter; {checked})")
    if store.install_design(mango_document()):
        changes.append("installed the Mango indexes _design/after-mango (read by workers on Apache CouchDB)")
    if isinstance(store, SecuredStore) and open_to_roles(store):
        changes.append("opened the database to the roles " + " and ".join(MEMBER_ROLES))
    for line in changes:
        log.info("init: %s", line)
    return changes


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
