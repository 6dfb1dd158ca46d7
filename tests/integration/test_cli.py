"""The task commands against the real server, as a user types them."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid

import pytest

from tests.integration.deployment import Deployment

pytestmark = pytest.mark.couch


def after(deployment: Deployment, *argv: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "after.cli", *argv, "--config", str(deployment.config)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == code, result.stderr
    return result


def test_init_twice_changes_nothing_the_second_time(deployment: Deployment) -> None:
    assert after(deployment, "init").stdout.strip() == "nothing to do: the database is up to date"


def test_add_list_show_reschedule_cancel(deployment: Deployment) -> None:
    task_id = after(deployment, "add", "manobi", "record", "2", "teste", "--in", "1h").stdout.strip()
    shown = json.loads(after(deployment, "show", task_id).stdout)
    assert shown["job"] == {"name": "record", "arguments": [2, "teste"]} and shown["status"] == "waiting"
    listed = json.loads(after(deployment, "tasks", "--worker", "manobi", "--json").stdout)
    assert [doc["_id"] for doc in listed] == [task_id]
    assert task_id in after(deployment, "tasks", "--status", "waiting").stdout
    after(deployment, "reschedule", task_id, "--at", "2030-01-31T08:00:00Z")
    assert json.loads(after(deployment, "show", task_id).stdout)["status"] == "reschedule"
    after(deployment, "cancel", task_id)
    assert json.loads(after(deployment, "show", task_id).stdout)["status"] == "cancel"


def test_added_task_runs_on_a_worker(deployment: Deployment) -> None:
    deployment.start_worker()
    task_id = after(deployment, "add", "manobi", "record", "--in", "1s", "--id", "cli-task").stdout.strip()
    deployment.wait_status([task_id], "done")
    assert deployment.ran() == {"cli-task": 1}


@pytest.mark.parametrize(("argv", "message"), [
    (["show", "nope"], "after: no task with id 'nope'"),
    (["add", "manobi", "record", "--at", "tomorrow"], "after: date 'tomorrow' is not ISO 8601"),
    (["tasks", "--status", "finished"], "after: unknown status 'finished'"),
    (["run", "bad name!"], "after: invalid worker name 'bad name!'"),
])
def test_mistakes_are_one_line_errors(deployment: Deployment, argv: list[str], message: str) -> None:
    result = subprocess.run([sys.executable, "-m", "after.cli", *argv, "--config", str(deployment.config)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1].startswith(message), result.stderr


def test_an_unreachable_couchdb_is_one_line_without_the_password(deployment: Deployment) -> None:
    deployment.config.write_text(deployment.config.read_text().replace(deployment.server.url,
                                                                       "http://127.0.0.1:9"))
    result = subprocess.run([sys.executable, "-m", "after.cli", "tasks", "--config", str(deployment.config)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.startswith("after: CouchDB at http://127.0.0.1:9 is unavailable")
    assert deployment.server.password not in result.stderr


def test_a_refused_user_is_named_with_the_url_and_the_config(deployment: Deployment) -> None:
    """A wrong password: which URL, which user, which config file; never the password. The user is a new
    name, so Apache CouchDB's lockout after failed logins touches no other test's user."""
    user, wrong = f"nobody-{uuid.uuid4().hex[:8]}", f"wrong-{uuid.uuid4().hex}"
    config, url = deployment.config, deployment.server.url
    config.write_text(config.read_text().replace(f'user = "{deployment.server.admin}"', f'user = "{user}"')
                      .replace('password_file = "couchdb.password"', f'password = "{wrong}"'))
    for argv in (["tasks"], ["init"]):
        result = subprocess.run([sys.executable, "-m", "after.cli", *argv, "--config", str(config)],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 1
        assert result.stderr == (f"after: CouchDB at {url} refused user '{user}': Name or password is "
                                 f"incorrect. (config {config})\n")
    worker = deployment.start_worker()
    deadline = time.monotonic() + 30
    while f"refused user '{user}'" not in worker.log.read_text():
        assert time.monotonic() < deadline, worker.log.read_text()
        time.sleep(0.1)
    assert worker.alive()  # it keeps trying, as when the server is down
    text = worker.log.read_text()
    assert f"CouchDB unreachable: CouchDB at {url} refused user '{user}'" in text
    assert f"user '{user}', config {config}" in text  # the start line
    assert "Traceback" not in text and wrong not in text
