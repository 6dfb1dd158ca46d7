"""Shared fixtures: the CouchDB-protocol servers, one of each kind per session, started on demand.

Every test that talks to a server runs twice: on Apache CouchDB 3.5.0 (what After's users run; where
the two servers differ, its behaviour is the contract) and on pouchdb-server 4.2.0 (the embedded
default that a fresh machine always has). A machine without ``../shared/couchdb`` skips the Apache
CouchDB runs, and the end of the pytest output says so in one line, with the reason.

- ``couch_server``: the session's server of each kind (ids ``couchdb`` and ``pouchdb``). It is a
  parametrized session fixture, so pytest runs all the tests of one server, then all of the other.
- ``couchdb_server`` / ``pouchdb_server``: one kind only; they skip with the reason when it is missing.
- ``server_kind``: for tests that start servers of their own (kill and restart them).
- ``store``: the Store contract over MemoryStore and a CouchStore on each server.
"""

from __future__ import annotations

import os
import uuid
from collections import Counter
from collections.abc import Generator, Iterator

import pytest

from after.contracts import Store
from after.initialize import initialize
from after.store.couch.client import CouchStore
from after.store.memory import MemoryStore
from tests.server import ServerKind, TestServer, missing, start_server

SERVER_NAMES = {ServerKind.COUCHDB: "Apache CouchDB", ServerKind.POUCHDB: "pouchdb-server"}
KINDS: list[ServerKind] = list(ServerKind)


def session_server(kind: ServerKind) -> Iterator[TestServer]:
    reason = missing(kind)
    if reason:
        pytest.skip(reason)
    server = start_server(kind=kind)
    yield server
    server.close()


@pytest.fixture(scope="session")
def couchdb_server() -> Iterator[TestServer]:
    """One Apache CouchDB node for the whole session (each test gets its own database)."""
    yield from session_server(ServerKind.COUCHDB)


@pytest.fixture(scope="session")
def pouchdb_server() -> Iterator[TestServer]:
    """One pouchdb-server for the whole session (each test gets its own database)."""
    yield from session_server(ServerKind.POUCHDB)


@pytest.fixture(scope="session", params=KINDS, ids=str)
def couch_server(request: pytest.FixtureRequest) -> TestServer:
    """The session's server of each kind: a test that uses it runs once per server."""
    server: TestServer = request.getfixturevalue(f"{request.param}_server")
    return server


@pytest.fixture(params=KINDS, ids=str)
def server_kind(request: pytest.FixtureRequest) -> ServerKind:
    """For tests that start (and kill) their own server: each kind, skipped with the reason if missing."""
    kind: ServerKind = request.param
    reason = missing(kind)
    if reason:
        pytest.skip(reason)
    return kind


def new_couch_store(server: TestServer) -> CouchStore:
    """A CouchStore (as the server admin) on a new, uniquely named, initialized database."""
    store = CouchStore(server.url, f"test-{uuid.uuid4().hex[:12]}", server.admin, server.password)
    initialize(store)
    return store


@pytest.fixture
def couch_store(couch_server: TestServer) -> Iterator[CouchStore]:
    store = new_couch_store(couch_server)
    yield store
    store.close()


@pytest.fixture(params=["memory", *KINDS], ids=str)
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    """The contract suite runs once per Store implementation: memory, and CouchStore on each server."""
    if request.param == "memory":
        memory = MemoryStore()
        initialize(memory)
        yield memory
        return
    couch = new_couch_store(request.getfixturevalue(f"{request.param}_server"))
    yield couch
    couch.close()


# -- Which server each test ran on, for the summary at the end -----------------------------------------

SERVER_OF: dict[str, ServerKind] = {}  # node id -> the server kind it runs on
OUTCOMES: dict[str, str] = {}  # node id -> passed, failed, error, xfailed, xpassed or skipped:REASON


def server_of(item: pytest.Item) -> ServerKind | None:
    """The server kind a test runs on: a ServerKind among its parameters (couch_server, store, ...), or
    for a test of one kind only, its marker (``pytest.mark.couchdb``)."""
    callspec = getattr(item, "callspec", None)
    params = callspec.params.values() if callspec is not None else []
    kinds = {value for value in params if isinstance(value, ServerKind)}
    if not kinds:
        kinds = {kind for kind in KINDS if item.get_closest_marker(kind.value) is not None}
    return kinds.pop() if len(kinds) == 1 else None


def pytest_configure(config: pytest.Config) -> None:
    # $AFTER_COUCHDB (another couchdb script, or a missing one: tests/server.py read it on import) is the
    # harness's, not After's: keep it from the workers and jobs under test, which see every AFTER_ variable.
    os.environ.pop("AFTER_COUCHDB", None)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test with its server kind, and apply ``xfail_on(KIND, reason=...)`` to that kind only."""
    for item in items:
        kind = server_of(item)
        if kind is None:
            continue
        SERVER_OF[item.nodeid] = kind
        item.add_marker(kind.value)  # `pytest -m couchdb` or `-m "not couchdb"` select by server
        for mark in item.iter_markers("xfail_on"):
            if kind in mark.args:
                item.add_marker(pytest.mark.xfail(**mark.kwargs))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """The outcome of each test: the first failure or skip of any phase, else the call's."""
    if OUTCOMES.get(report.nodeid, "passed") != "passed":
        return
    if hasattr(report, "wasxfail"):
        OUTCOMES[report.nodeid] = "xfailed" if report.skipped else "xpassed"
    elif report.failed:
        OUTCOMES[report.nodeid] = "failed" if report.when == "call" else "error"
    elif report.skipped:
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        OUTCOMES[report.nodeid] = "skipped:" + reason.removeprefix("Skipped: ")
    elif report.when == "call":
        OUTCOMES[report.nodeid] = "passed"


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> Generator[None, None, None]:
    """One line on the servers: which ran how many tests, or which was skipped (how many tests, why).

    Outermost wrapper: printed after pytest's short test summary (the skip reasons -rs lists, one line
    per test function), just above the final counts, where it is seen."""
    yield
    ran: list[str] = []
    skipped: list[str] = []
    for kind in KINDS:
        mine = [OUTCOMES[nodeid] for nodeid, of in SERVER_OF.items() if of == kind and nodeid in OUTCOMES]
        reason = missing(kind)
        unavailable = [outcome for outcome in mine if reason is not None and outcome == f"skipped:{reason}"]
        if unavailable:
            skipped.append(f"{SERVER_NAMES[kind]} suites skipped ({tests(len(unavailable))}): {reason}")
        counts = Counter(outcome.split(":", 1)[0] for outcome in mine if outcome not in unavailable)
        if counts:
            details = ", ".join(f"{count} {outcome}" for outcome, count in sorted(counts.items()))
            ran.append(f"{SERVER_NAMES[kind]} {tests(sum(counts.values()))} ({details})")
    if not ran and not skipped:
        return
    terminalreporter.section("servers", sep="-", bold=True)
    if ran:
        terminalreporter.write_line("servers ran: " + "; ".join(ran))
    for line in skipped:
        terminalreporter.write_line(line, yellow=True, bold=True)


def tests(count: int) -> str:
    return f"{count} test" if count == 1 else f"{count} tests"
