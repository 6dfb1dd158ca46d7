"""validate_doc_update on the real server: bad tasks and worker-only statuses never enter the database."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from after.core.task import CLIENT_ROLE, WORKER_ROLE
from after.store.couch.client import CouchStore
from after.store.types import Forbidden
from tests.server import TestServer

pytestmark = pytest.mark.couch

EXAMPLE: dict[str, Any] = {"worker": "manobi", "date": "2011-10-12", "status": "waiting",
                           "job": {"name": "start_campaign", "arguments": [2, 3, "teste"]}}


def task(**changes: Any) -> dict[str, Any]:
    return {"_id": uuid.uuid4().hex, **EXAMPLE, **changes}


@pytest.fixture(scope="module")
def users(couch_server: TestServer) -> dict[str, tuple[str, str]]:
    """A client (role after_client) and a worker (role after_worker): kind -> (user, password)."""
    accounts: dict[str, tuple[str, str]] = {}
    with CouchStore(couch_server.url, "_users", couch_server.admin, couch_server.password) as admin:
        for kind, role in (("client", CLIENT_ROLE), ("worker", WORKER_ROLE)):
            name, password = f"{kind}-{uuid.uuid4().hex[:8]}", secrets.token_hex(8)
            admin.put({"_id": f"org.couchdb.user:{name}", "name": name, "password": password,
                       "roles": [role], "type": "user"})
            accounts[kind] = (name, password)
    return accounts


@pytest.fixture
def as_user(couch_server: TestServer, couch_store: CouchStore,
            users: dict[str, tuple[str, str]]) -> Iterator[dict[str, CouchStore]]:
    """CouchStores on the test's database as the client, the worker and the admin."""
    stores = {kind: CouchStore(couch_server.url, couch_store.database, user, password)
              for kind, (user, password) in users.items()}
    yield {**stores, "admin": couch_store}
    for store in stores.values():
        store.close()


@pytest.mark.parametrize(("changes", "reason"), [
    ({"date": "2011-02-30"}, "date '2011-02-30' is not a real date: day is out of range for month"),
    ({"date": "next tuesday"}, "is not ISO 8601 (for example 2011-10-12T08:30:00Z)"),
    ({"job": {"name": "start_campaign", "arguments": "2 3"}}, "job.arguments must be a list, not a string"),
    ({"worker": "a/b"}, "worker must be a name"),
    ({"status": "later"}, "status must be one of cancel, reschedule, schedule, waiting"),
    ({"timeout": "30 seconds"}, "timeout '30 seconds' is not an ISO 8601 duration"),
])
def test_malformed_tasks_are_refused_with_the_reason(as_user: dict[str, CouchStore], changes: dict[str, Any],
                                                     reason: str) -> None:
    for kind in ("client", "worker", "admin"):
        doc = task(**changes)
        with pytest.raises(Forbidden) as refused:
            as_user[kind].put(doc)
        assert reason in refused.value.reason
        assert as_user["admin"].get(doc["_id"]) is None


@pytest.mark.parametrize("status", ["scheduled", "running", "done", "err", "canceled"])
def test_worker_only_statuses_are_refused_to_clients(as_user: dict[str, CouchStore], status: str) -> None:
    doc = task()
    doc["_rev"] = as_user["client"].put(doc)
    with pytest.raises(Forbidden) as refused:
        as_user["client"].put({**doc, "status": status})
    assert f"status {status} may only be written by a worker (role after_worker)" in refused.value.reason
    with pytest.raises(Forbidden):
        as_user["client"].put(task(status=status))


def test_worker_and_admin_may_write_worker_statuses(as_user: dict[str, CouchStore]) -> None:
    doc = task()
    doc["_rev"] = as_user["client"].put(doc)
    doc["_rev"] = as_user["worker"].put({**doc, "status": "running"})
    doc["_rev"] = as_user["worker"].put({**doc, "status": "done", "exit_code": 0})
    assert as_user["admin"].get(doc["_id"])["status"] == "done"  # type: ignore[index]
    assert as_user["admin"].put(task(status="err")).startswith("1-")


def test_client_may_keep_a_worker_status_and_reschedule(as_user: dict[str, CouchStore]) -> None:
    doc = task()
    doc["_rev"] = as_user["client"].put(doc)
    doc["_rev"] = as_user["worker"].put({**doc, "status": "done"})
    doc["_rev"] = as_user["client"].put({**doc, "status": "done", "note": "seen"})  # status unchanged
    assert as_user["client"].put({**doc, "status": "reschedule", "date": "2012-01-01"}).startswith("4-")


def test_non_tasks_and_deletions_are_accepted(as_user: dict[str, CouchStore]) -> None:
    rev = as_user["client"].put({"_id": "notes", "title": "not a task", "date": "whenever"})
    as_user["client"].put({"_id": "notes", "_rev": rev, "_deleted": True})
    doc = task()
    rev = as_user["client"].put(doc)
    as_user["client"].put({"_id": doc["_id"], "_rev": rev, "_deleted": True})
    assert as_user["admin"].get(doc["_id"]) is None


def test_bulk_write_refuses_only_the_bad_document(as_user: dict[str, CouchStore]) -> None:
    results = as_user["client"].bulk_write([task(), task(date="soon"), task(status="done")])
    assert [result.error for result in results] == [None, "forbidden", "forbidden"]
    assert results[1].reason is not None and "is not ISO 8601" in results[1].reason


def test_design_document_only_by_admins(as_user: dict[str, CouchStore]) -> None:
    with pytest.raises(Forbidden):
        as_user["worker"].put({"_id": "_design/mine", "views": {}})


def test_anonymous_users_are_not_members(couch_server: TestServer, couch_store: CouchStore) -> None:
    with CouchStore(couch_server.url, couch_store.database) as anonymous, pytest.raises(Forbidden):
        anonymous.get("anything")


def test_secrets_stay_out_of_errors_and_reprs(couch_server: TestServer, couch_store: CouchStore) -> None:
    wrong = "not-the-password-" + secrets.token_hex(4)
    with CouchStore(couch_server.url, couch_store.database, couch_server.admin, wrong) as store:
        with pytest.raises(Forbidden) as refused:
            store.get("anything")
        assert wrong not in str(refused.value) and wrong not in repr(store)
    assert couch_server.password not in repr(couch_store)
