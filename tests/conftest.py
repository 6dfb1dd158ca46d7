"""Shared fixtures. The CouchDB-protocol server (pouchdb-server) starts once per session, on demand."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from after.couch import CouchStore
from after.database import initialize
from after.store import MemoryStore, Store
from tests.server import BINARY, PouchServer, start_server


@pytest.fixture(scope="session")
def couch_server() -> Iterator[PouchServer]:
    """One pouchdb-server for the whole session (each test gets its own database)."""
    if not BINARY.exists():
        pytest.fail(f"{BINARY} is missing: run `make server` first", pytrace=False)
    server = start_server()
    yield server
    server.close()


def new_couch_store(server: PouchServer) -> CouchStore:
    """A CouchStore (as the server admin) on a new, uniquely named, initialized database."""
    store = CouchStore(server.url, f"test-{uuid.uuid4().hex[:12]}", server.admin, server.password)
    initialize(store)
    return store


@pytest.fixture
def couch_store(couch_server: PouchServer) -> Iterator[CouchStore]:
    store = new_couch_store(couch_server)
    yield store
    store.close()


@pytest.fixture(params=["memory", "couch"])
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    """The contract suite runs once per Store implementation."""
    if request.param == "memory":
        memory = MemoryStore()
        initialize(memory)
        yield memory
        return
    couch = new_couch_store(request.getfixturevalue("couch_server"))
    yield couch
    couch.close()
