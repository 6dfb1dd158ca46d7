"""``after init --validation erlang`` on Apache CouchDB with its Erlang query server enabled.

Every case of the validation table (``tests/unit/test_validation.py``) is written to the real server:
the Erlang ``validate_doc_update`` must refuse it with exactly ``after.core.task.validate``'s reason, or
accept it. The role cases run as users with those roles. Servers without the Erlang query server must
be refused with a clear error, and nothing half installed. ``AFTER_MEASURE=1`` also prints what each
validation costs ``_bulk_docs`` (docs/components.md has the figures).
"""

from __future__ import annotations

import os
import secrets
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from after.initialize import ERLANG_SETTING, Validation, ValidationUnavailable, initialize, install_erlang
from after.store.couch.client import CouchStore
from after.store.couch.design import DESIGN_ID
from after.store.couch.design_erlang import ERLANG_DESIGN_ID
from after.store.types import Forbidden
from tests.server import ERLANG_INI, ServerKind, TestServer, couchdb_missing, start_server
from tests.unit.test_validation import CASES, EXAMPLE, ROLE_CASES, WORKER_ONLY, python_reason


@pytest.fixture(scope="module")
def erlang_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestServer]:
    """An Apache CouchDB node of its own, with the Erlang query server enabled in its local.ini."""
    reason = couchdb_missing()
    if reason:
        pytest.skip(reason)
    server = start_server(tmp_path_factory.mktemp("couchdb-erlang"), kind=ServerKind.COUCHDB, ini=ERLANG_INI)
    yield server
    server.close()


def admin_store(server: TestServer, database: str | None = None) -> CouchStore:
    return CouchStore(server.url, database or f"test-{uuid.uuid4().hex[:12]}", server.admin, server.password,
                      timeout=60.0)


@pytest.fixture(scope="module")
def erlang_store(erlang_server: TestServer) -> Iterator[CouchStore]:
    """A database initialized with ``Validation.ERLANG``, shared by the table's cases."""
    with admin_store(erlang_server) as store:
        initialize(store, Validation.ERLANG)
        yield store


def put_reason(store: CouchStore, doc: dict[str, Any]) -> str | None:
    """None when the write was accepted, else the 403's reason."""
    try:
        store.put(doc)
    except Forbidden as refused:
        return refused.reason
    return None


@pytest.mark.couchdb
def test_erlang_validation_replaces_the_javascript_one(erlang_store: CouchStore) -> None:
    after = erlang_store.get(DESIGN_ID)
    assert after is not None and "validate_doc_update" not in after and "views" in after
    erlang = erlang_store.get(ERLANG_DESIGN_ID)
    assert erlang is not None and erlang["language"] == "erlang" and "validate_doc_update" in erlang
    assert initialize(erlang_store, Validation.ERLANG) == []  # idempotent


@pytest.mark.couchdb
@pytest.mark.parametrize("index", range(len(CASES)), ids=[case.name for case in CASES])
def test_erlang_gives_pythons_reason(erlang_store: CouchStore, index: int) -> None:
    case = CASES[index]
    doc = {"_id": f"case-{index}-{uuid.uuid4().hex[:6]}", **case.doc}
    depth = sys.getrecursionlimit()
    sys.setrecursionlimit(10_000)  # json.dumps recurses, and one case is nested 1500 deep
    try:
        expected = python_reason(doc)
        reason = put_reason(erlang_store, doc)
    finally:
        sys.setrecursionlimit(depth)
    assert reason == expected  # the very same words, or both accept
    assert (case.expected is None) == (expected is None)


@pytest.fixture(scope="module")
def role_users(erlang_server: TestServer,
               erlang_store: CouchStore) -> Iterator[dict[tuple[str, ...], CouchStore]]:
    """A user for each set of roles in ROLE_CASES, as a CouchStore on the table's database.

    A user without roles is no member of an initialized database, so it is made one by name.
    """
    stores: dict[tuple[str, ...], CouchStore] = {}
    with admin_store(erlang_server, "_users") as users:
        for roles in {tuple(case[3]) for case in ROLE_CASES}:
            name, password = f"user-{uuid.uuid4().hex[:8]}", secrets.token_hex(8)
            users.put({"_id": f"org.couchdb.user:{name}", "name": name, "password": password,
                       "roles": list(roles), "type": "user"})
            stores[roles] = CouchStore(erlang_server.url, erlang_store.database, name, password)
    security = erlang_store.security()
    names = [store.user for roles, store in stores.items() if not roles]
    erlang_store.set_security({**security, "members": {**security["members"], "names": names}})
    yield stores
    for store in stores.values():
        store.close()


@pytest.mark.couchdb
@pytest.mark.parametrize("index", range(len(ROLE_CASES)), ids=[case[0] for case in ROLE_CASES])
def test_erlang_roles(erlang_store: CouchStore, role_users: dict[tuple[str, ...], CouchStore],
                      index: int) -> None:
    name, new, old, roles, expected = ROLE_CASES[index]
    doc_id = str(new.get("_id", f"role-{index}-{uuid.uuid4().hex[:6]}"))
    doc = {**new, "_id": doc_id}
    if old is not None:
        doc["_rev"] = erlang_store.put({**old, "_id": doc_id})  # written by the admin
    if doc_id.startswith("_design/"):
        with pytest.raises(Forbidden):  # CouchDB itself refuses it before any validate_doc_update
            role_users[tuple(roles)].put(doc)
        return
    reason = put_reason(role_users[tuple(roles)], doc)
    if expected == WORKER_ONLY:
        assert reason == f"status {doc['status']} {WORKER_ONLY}"
    elif expected is None:
        assert reason is None
    else:
        assert reason is not None and reason == python_reason(doc) and expected in reason


@pytest.mark.couchdb
def test_switching_removes_the_other_validation(erlang_server: TestServer) -> None:
    with admin_store(erlang_server) as store:
        initialize(store, Validation.ERLANG)
        changes = initialize(store, Validation.JAVASCRIPT)
        assert f"removed the design document {ERLANG_DESIGN_ID} (validation in Erlang)" in changes
        assert "validate_doc_update" in (store.get(DESIGN_ID) or {})
        assert store.get(ERLANG_DESIGN_ID) is None
        initialize(store, Validation.ERLANG)
        initialize(store, Validation.NONE)
        assert "validate_doc_update" not in (store.get(DESIGN_ID) or {})
        assert store.get(ERLANG_DESIGN_ID) is None
        assert put_reason(store, {**EXAMPLE, "_id": "bad", "date": "soon"}) is None  # nothing checks
        initialize(store, Validation.AUTO)  # the configuration enables Erlang here
        assert store.get(ERLANG_DESIGN_ID) is not None
        assert put_reason(store, {**EXAMPLE, "_id": "bad2", "date": "soon"}) == \
            python_reason({**EXAMPLE, "date": "soon"})


def assert_javascript_in_place(store: CouchStore) -> None:
    assert "validate_doc_update" in (store.get(DESIGN_ID) or {})
    assert store.get(ERLANG_DESIGN_ID) is None
    assert put_reason(store, {**EXAMPLE, "_id": uuid.uuid4().hex, "date": "soon"}) == \
        python_reason({**EXAMPLE, "date": "soon"})
    assert put_reason(store, {**EXAMPLE, "_id": uuid.uuid4().hex}) is None


@pytest.mark.couchdb
def test_without_the_erlang_query_server_init_fails_clearly(couchdb_server: TestServer) -> None:
    with admin_store(couchdb_server) as store:
        initialize(store)
        with pytest.raises(ValidationUnavailable) as refused:
            initialize(store, Validation.ERLANG)
        assert ERLANG_SETTING in str(refused.value) and "local.ini" in str(refused.value)
        assert_javascript_in_place(store)
        assert initialize(store, Validation.AUTO) == []  # auto: javascript, already in place


@pytest.mark.couchdb
def test_a_database_admin_gets_the_javascript_back(couchdb_server: TestServer) -> None:
    """Not a server admin, it cannot read the configuration: it tries Erlang, sees it fail, undoes it.

    (``initialize`` as a whole needs a server admin, for ``PUT /db``; the Erlang step is called alone.)
    """
    with admin_store(couchdb_server) as admin:
        initialize(admin)
        name, password = f"dbadmin-{uuid.uuid4().hex[:8]}", secrets.token_hex(8)
        with admin_store(couchdb_server, "_users") as users:
            users.put({"_id": f"org.couchdb.user:{name}", "name": name, "password": password,
                       "roles": [], "type": "user"})
        admin.set_security({**admin.security(), "admins": {"names": [name], "roles": []}})
        with CouchStore(couchdb_server.url, admin.database, name, password) as store:
            assert store.node_config("native_query_servers") is None
            with pytest.raises(ValidationUnavailable) as refused:
                install_erlang(store)
            assert "The JavaScript validation is back in place" in str(refused.value)
            assert ERLANG_SETTING in str(refused.value)
        assert_javascript_in_place(admin)


@pytest.mark.pouchdb
def test_pouchdb_server_has_no_erlang(pouchdb_server: TestServer) -> None:
    with admin_store(pouchdb_server) as store:
        with pytest.raises(ValidationUnavailable, match="enable_erlang_query_server"):
            initialize(store, Validation.ERLANG)
        assert store.get(ERLANG_DESIGN_ID) is None


def bulk_rate(server: TestServer, validation: Validation, count: int) -> float:
    """Documents per second of one ``_bulk_docs`` of ``count`` valid tasks, after a small warm-up."""
    with admin_store(server) as store:
        initialize(store, validation)
        warm = [{**EXAMPLE, "_id": f"warm-{index}"} for index in range(50)]
        assert all(result.ok for result in store.bulk_write(warm))
        docs = [{**EXAMPLE, "_id": uuid.uuid4().hex, "date": "2030-01-31T08:00:00Z",
                 "job": {"name": "start_campaign", "arguments": [index, 3, "teste"]}}
                for index in range(count)]
        started = time.perf_counter()
        results = store.bulk_write(docs)
        seconds = time.perf_counter() - started
        assert all(result.ok for result in results)
        store.request("DELETE", store.db_path)
    return count / seconds


@pytest.mark.couchdb
@pytest.mark.skipif(not os.environ.get("AFTER_MEASURE"), reason="a measurement: set AFTER_MEASURE=1")
def test_measure_bulk_docs(erlang_server: TestServer, capsys: pytest.CaptureFixture[str]) -> None:
    """Prints docs/s of _bulk_docs of 2000 valid tasks under each validation (not asserted)."""
    rounds = int(os.environ.get("AFTER_MEASURE_ROUNDS", "3"))
    kinds = [Validation.ERLANG, Validation.JAVASCRIPT, Validation.NONE]
    rates: dict[Validation, list[float]] = {kind: [] for kind in kinds}
    for _ in range(rounds):
        for kind in kinds:
            rates[kind].append(bulk_rate(erlang_server, kind, 2000))
    with capsys.disabled():
        print(f"\n_bulk_docs of 2000 valid tasks, Apache CouchDB 3.5.0, {rounds} rounds (docs/s):")
        for kind in kinds:
            values = sorted(rates[kind])
            median, low, high = values[len(values) // 2], values[0], values[-1]
            print(f"  {kind:<10} median {median:7.0f}   range {low:.0f}-{high:.0f}")
