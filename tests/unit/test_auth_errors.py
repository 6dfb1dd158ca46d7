"""A refused user is named: the URL and the user tried, never the password (issue 9).

The server is faked at the HTTP level (``httpx.MockTransport`` in place of the store's transport), with
the answers Apache CouchDB 3.5 and pouchdb-server 4.2 give (measured: a wrong password and a request
without credentials are 401 on both; a user who is not a member gets 403 from CouchDB, 401 from pouchdb).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from after.cli import commands as cli
from after.core.clock import FakeClock
from after.store.couch.client import CouchStore
from after.store.types import Forbidden, Unauthorized
from after.worker.events import Connection, Event
from after.worker.io.follower import Follower
from tests.unit.test_worker import Harness

URL = "http://127.0.0.1:5984"
SECRET = "s3cret-not-shown"
WRONG_PASSWORD = (401, {"error": "unauthorized", "reason": "Name or password is incorrect."})
NO_CREDENTIALS = (401, {"error": "unauthorized", "reason": "You are not authorized to access this db."})
NOT_A_MEMBER = (403, {"error": "forbidden", "reason": "You are not allowed to access this db."})
INVALID_TASK = (403, {"error": "forbidden", "reason": "date 'soon' is not ISO 8601"})


Answer = Callable[[httpx.Request], tuple[int, object]]


def fake_server(monkeypatch: pytest.MonkeyPatch, answer: Answer) -> None:
    """Every CouchStore created from now on talks to ``answer`` instead of the network."""

    def handler(request: httpx.Request) -> httpx.Response:
        status, body = answer(request)
        return httpx.Response(status, json=body)

    monkeypatch.setattr("after.store.couch.connection.no_delay_transport",
                        lambda **options: httpx.MockTransport(handler))


@pytest.mark.parametrize(("user", "answer", "who"), [
    ("after", WRONG_PASSWORD, "user 'after'"),
    (None, NO_CREDENTIALS, "a request without credentials (no user)"),
    ("bob", NOT_A_MEMBER, "user 'bob'"),
])
def test_a_refused_read_names_the_url_and_the_user(monkeypatch: pytest.MonkeyPatch, user: str | None,
                                                   answer: tuple[int, object], who: str) -> None:
    fake_server(monkeypatch, lambda request: answer)
    with CouchStore(URL, "after", user, SECRET) as store, pytest.raises(Unauthorized) as refused:
        store.get("campaign-2")
    reason = answer[1]["reason"]  # type: ignore[index]
    assert str(refused.value) == f"CouchDB at {URL} refused {who}: {reason}"
    assert refused.value.reason == reason and SECRET not in str(refused.value)


def test_a_validation_refusal_stays_the_reason_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_server(monkeypatch, lambda request: INVALID_TASK)
    with CouchStore(URL, "after", "after", SECRET) as store, pytest.raises(Forbidden) as refused:
        store.put({"_id": "t", "worker": "manobi", "date": "soon", "job": {"name": "noop"}})
    assert not isinstance(refused.value, Unauthorized)
    assert str(refused.value) == "date 'soon' is not ISO 8601"


def test_a_locked_out_write_names_the_user(monkeypatch: pytest.MonkeyPatch) -> None:
    """Apache CouchDB's lockout after failed logins is a 403 to writes too: about the user, not the task."""
    reason = "Account is temporarily locked due to multiple authentication failures"
    fake_server(monkeypatch, lambda request: (403, {"error": "forbidden", "reason": reason}))
    with CouchStore(URL, "after", "after", SECRET) as store, pytest.raises(Unauthorized) as refused:
        store.put({"_id": "t", "worker": "manobi", "date": "2030-01-01", "job": {"name": "noop"}})
    assert str(refused.value) == f"CouchDB at {URL} refused user 'after': {reason}"


def test_a_403_to_a_read_by_post_is_about_access(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_server(monkeypatch, lambda request: NOT_A_MEMBER)
    with CouchStore(URL, "after", "bob", SECRET) as store, pytest.raises(Unauthorized):
        store.request("POST", "/after/_find", json={"selector": {}})


@pytest.mark.parametrize("argv", [["tasks"], ["init"], ["show", "campaign-2"], ["add", "manobi", "noop"]])
def test_without_a_config_file_the_error_says_what_was_tried(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                             argv: list[str]) -> None:
    fake_server(monkeypatch, lambda request: NO_CREDENTIALS)
    monkeypatch.delenv("AFTER_CONFIG", raising=False)
    monkeypatch.delenv("AFTER_COUCHDB_PASSWORD", raising=False)
    monkeypatch.setattr("after.config.DEFAULT_PATH", tmp_path / "after.toml")
    result = CliRunner(mix_stderr=False).invoke(cli.app, argv)
    assert result.exit_code == 1
    assert result.stderr == (
        f"after: CouchDB at {URL} refused a request without credentials (no user): You are not authorized "
        f"to access this db. (no config file: {tmp_path / 'after.toml'} does not exist; give --config FILE "
        "or set AFTER_CONFIG)\n")


def test_a_wrong_password_names_the_user_and_the_config_file(monkeypatch: pytest.MonkeyPatch,
                                                              tmp_path: Path) -> None:
    fake_server(monkeypatch, lambda request: WRONG_PASSWORD)
    config = tmp_path / "after.toml"
    config.write_text(f'[couchdb]\nurl = "http://localhost:5984/"\nuser = "after"\npassword = "{SECRET}"\n')
    result = CliRunner(mix_stderr=False).invoke(cli.app, ["tasks", "--config", str(config)])
    assert result.exit_code == 1
    assert result.stderr == ("after: CouchDB at http://localhost:5984 refused user 'after': Name or password "
                             f"is incorrect. (config {config})\n")
    assert SECRET not in result.stderr + result.stdout


def test_the_worker_reports_a_refused_user_as_couchdb_unusable_and_keeps_trying(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """`after run` with a wrong password: a warning naming URL and user (no traceback), retried."""
    fake_server(monkeypatch, lambda request: WRONG_PASSWORD)
    inbox: queue.Queue[Event] = queue.Queue()
    stop = threading.Event()
    with CouchStore(URL, "after", "after", SECRET) as store:
        follower = Follower(store, "manobi", inbox, FakeClock(wall=1_800_000_000.0), 300.0, stop)
        follower.backoff.next_delay = lambda: (stop.set(), 0.0)[1]  # type: ignore[method-assign]
        with caplog.at_level(logging.WARNING, logger="after.worker"):
            follower.run()
    event = inbox.get_nowait()
    assert isinstance(event, Connection) and not event.up
    assert event.reason == f"CouchDB at {URL} refused user 'after': Name or password is incorrect."
    assert not caplog.records  # no "changes follower failed" traceback
    harness = Harness()
    with caplog.at_level(logging.WARNING, logger="after.worker"):
        harness.inbox.put(Connection(False, "refused before it ever connected"))
        harness.settle()
        harness.inbox.put(Connection(False, "refused before it ever connected"))  # the same: once
        harness.settle()
    assert [record.getMessage() for record in caplog.records] == [
        "CouchDB unreachable: refused before it ever connected"]
