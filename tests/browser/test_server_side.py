"""What the dashboard needs from a real server, without a browser: `after init` installs the page once
(public page, private data, the attachment policy on Apache CouchDB), the reads of `after metrics`
agree with the in-memory store, and `after list` / `after metrics` see a real worker process."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import uuid

import httpx
import pytest

from after.contracts import Store
from after.core.dates import format_date
from after.core.task import Document
from after.initialize import initialize
from after.monitoring.dashboard import design, page, page_path, queries
from after.store.couch.client import CouchStore
from after.store.memory import MemoryStore
from tests.browser.browser import client_user
from tests.integration.deployment import Deployment
from tests.server import ServerKind, TestServer

NOW = 1_800_000_000.0
JSON = {"Accept": "application/json"}


def test_init_installs_a_public_page_and_keeps_the_data_private(couch_store: CouchStore,
                                                                 couch_server: TestServer) -> None:
    assert initialize(couch_store) == []  # the fixture initialized it: nothing more to do
    url = couch_server.url + page_path(couch_store.database)
    answer = httpx.get(url)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
    assert f'"database": "{couch_store.database}"' in answer.text
    assert httpx.get(f"{couch_server.url}/{couch_store.database}/_all_docs", headers=JSON).status_code == 401
    pages = f"{couch_server.url}/{design.page_database(couch_store.database)}"
    assert httpx.put(f"{pages}/x", json={}, headers=JSON).status_code in (401, 403)
    name, password = client_user(couch_server)
    current = httpx.get(f"{pages}/{design.PAGE_DESIGN_ID}", headers=JSON).json()
    for doc in ({"_id": "x"}, {"_id": design.PAGE_DESIGN_ID, "_rev": current["_rev"]}):
        refused = httpx.put(f"{pages}/{doc['_id']}", json=doc, auth=(name, password), headers=JSON)
        assert refused.status_code in (401, 403)  # pouchdb: 401 where CouchDB says 403


def served_policy(server: TestServer, database: str) -> tuple[str | None, str]:
    answer = httpx.get(server.url + page_path(database))
    inline = re.findall(r"<script>(.*?)</script>", answer.text, re.S)
    assert len(inline) == 1
    return answer.headers.get("content-security-policy"), inline[0]


def test_only_the_page_script_may_run_in_attachments(couch_store: CouchStore,
                                                     couch_server: TestServer) -> None:
    header, script = served_policy(couch_server, couch_store.database)
    if couch_server.kind == ServerKind.POUCHDB:
        assert header is None  # pouchdb-server sends no policy: nothing to change
        return
    assert header is not None and header.startswith(page.SANDBOX + ";")
    assert f"script-src {page.digest(script)};" in header and "'unsafe-inline'" not in header


def test_an_operators_own_attachment_policy_is_left_alone(couchdb_server: TestServer) -> None:
    store = CouchStore(couchdb_server.url, "csp-test", couchdb_server.admin, couchdb_server.password)
    initialize(store)
    setting = f"{couchdb_server.url}/_node/_local/_config/{design.CSP_SETTING}"
    try:
        httpx.put(setting, json="sandbox allow-forms", auth=couchdb_server.auth).raise_for_status()
        assert initialize(store) == []
        assert httpx.get(setting, auth=couchdb_server.auth).json() == "sandbox allow-forms"
        httpx.put(setting, json="sandbox", auth=couchdb_server.auth).raise_for_status()
        assert any("let the dashboard's script" in line for line in initialize(store))
    finally:
        httpx.put(setting, json="sandbox", auth=couchdb_server.auth)
        initialize(store)  # the session's other tests need After's policy back
        store.close()


def history(worker: str) -> list[Document]:
    def task(task_id: str, status: str, date: float, **fields: object) -> Document:
        return {"_id": task_id, "worker": worker, "date": format_date(date), "status": status,
                "job": {"name": "noop", "arguments": []}, **fields}

    def ran(started: float, lateness_ms: float) -> dict[str, object]:
        return {"due": format_date(started), "result": {
            "started": format_date(started), "ended": format_date(started + 1), "lateness_ms": lateness_ms,
            "outcome": "done", "by": {"worker": worker, "host": "h", "pid": 1, "started": 0}}}

    return [task("d1", "done", NOW - 600, **ran(NOW - 600, 4)),
            task("d2", "done", NOW - 300, **ran(NOW - 300, 7)),
            task("old", "done", NOW - 7200, **ran(NOW - 7200, 9)),
            task("late", "scheduled", NOW - 90, due=format_date(NOW - 90)),
            task("asked", "waiting", NOW - 30), task("gone", "cancel", NOW - 900),
            task("later", "scheduled", NOW + 600, due=format_date(NOW + 600))]


def reads(store: Store) -> tuple[list[str], float | None]:
    recent = queries.recent_results(store, "manobi", NOW - 3600, NOW)
    return sorted(str(doc["_id"]) for doc in recent), queries.oldest_overdue(store, "manobi", NOW)


def test_the_metrics_reads_agree_with_the_memory_store(couch_server: TestServer) -> None:
    database = f"q-{uuid.uuid4().hex[:10]}"
    store = CouchStore(couch_server.url, database, couch_server.admin, couch_server.password)
    store.create_database()
    store.bulk_write(history("manobi"))  # without validation: the worker's statuses, as a worker wrote them
    initialize(store)
    memory = MemoryStore()
    memory.bulk_write(history("manobi"))
    try:
        assert reads(store) == reads(memory) == (["d1", "d2"], NOW - 90)
    finally:
        store.close()


def after(deployment: Deployment, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "after.cli", *args, "--config", str(deployment.config)],
                          capture_output=True, text=True, timeout=60)


def test_list_and_metrics_see_the_worker_process(deployment: Deployment) -> None:
    listed = after(deployment, "list", "--json")
    rows = json.loads(listed.stdout)
    mine = [row for row in rows if row["pid"] == deployment.workers[0].pid]
    assert len(mine) == 1 and mine[0]["state"] == "running" and mine[0]["host"] == socket.gethostname()
    assert mine[0]["worker"] == "manobi" and mine[0]["seen_ago"] < 15
    deployment.add([deployment.task("t1", 0.0)])
    deployment.wait_status(["t1"], "done")
    printed = after(deployment, "metrics")
    assert printed.returncode == 0, printed.stderr
    assert 'after_tasks{worker="manobi",status="done"} 1' in printed.stdout
    assert "after_workers_alive 1" in printed.stdout
    assert 'after_task_lateness_seconds_count{worker="manobi"} 1' in printed.stdout


@pytest.mark.parametrize("name", ["after", "a/b"])
def test_the_page_database_name(name: str) -> None:
    assert design.page_database(name) == name + "-dashboard"
    assert page_path(name).startswith("/" + name.replace("/", "%2F") + "-dashboard/_design/after-dashboard/")
