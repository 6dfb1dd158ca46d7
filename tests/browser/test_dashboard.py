"""The dashboard in a real browser (headless Chromium), on Apache CouchDB and on pouchdb-server, with a
real worker process: log in as a client, see a task appear and end live, cancel and reschedule one,
and be refused after logging out."""

from __future__ import annotations

import time
from typing import Any

from after.monitoring.dashboard import page_path
from tests.browser.browser import click_action, client_user, create_user, log_in, row_status, wait_for
from tests.integration.deployment import Deployment

VISIBLE = "return !document.getElementById(arguments[0]).hidden"


def statuses_until(driver: Any, table: str, task_id: str, final: str, timeout: float) -> list[str]:
    """The statuses a table's row of the task showed, in order, until it showed ``final``."""
    seen: list[str] = []

    def reached() -> bool:
        status = row_status(driver, table, task_id)
        if status is not None and (not seen or seen[-1] != status):
            seen.append(status)
        return status == final

    wait_for(reached, timeout, f"{task_id} {final} in #{table} (seen so far: {seen})", interval=0.1)
    return seen


def fetch_status(driver: Any, path: str) -> int:
    """The HTTP status of a GET the page itself makes (with its cookies, if any)."""
    script = ("const done = arguments[arguments.length - 1];"
              "fetch(arguments[0], {headers: {Accept: 'application/json'}}).then((r) => done(r.status));")
    return int(driver.execute_async_script(script, path))


def test_a_client_follows_cancels_and_reschedules_live(deployment: Deployment, driver: Any) -> None:
    name, password = client_user(deployment.server)
    log_in(driver, deployment.server.url + page_path(deployment.database), name, password)
    wait_for(lambda: driver.find_elements("css selector", "#workers tr[data-state=running]"), 30,
             "the worker process in the workers table")

    deployment.add([deployment.task("live-task", 4.0)])
    seen = statuses_until(driver, "activity", "live-task", "done", 60)
    assert seen[0] in ("waiting", "scheduled", "running"), seen  # it appeared before it ended

    deployment.add([deployment.task("later-task", 3600.0)])
    wait_for(lambda: row_status(driver, "upcoming", "later-task") == "scheduled", 30, "later-task upcoming")
    click_action(driver, "upcoming", "later-task", "cancel")
    statuses_until(driver, "activity", "later-task", "canceled", 30)
    assert deployment.doc("later-task")["status"] == "canceled"

    click_action(driver, "activity", "later-task", "reschedule")
    wait_for(lambda: driver.find_element("css selector", "#reschedule button[value=now]").click() or True, 10,
             "the reschedule dialog")
    statuses_until(driver, "activity", "later-task", "done", 60)
    assert deployment.doc("later-task")["result"]["outcome"] == "done"
    offered = driver.execute_script(
        "return [...document.querySelectorAll('button[data-action]')].map((b) => b.dataset.action)")
    assert set(offered) <= {"cancel", "reschedule"}  # nothing else is writable from the page

    driver.find_element("id", "logout").click()
    wait_for(lambda: driver.execute_script(VISIBLE, "login"), 10, "the login form after logout")
    assert fetch_status(driver, f"/{deployment.database}/later-task") == 401
    driver.refresh()
    wait_for(lambda: driver.execute_script(VISIBLE, "login"), 10, "the login form after a reload")
    assert not driver.execute_script(VISIBLE, "main")


def test_a_wrong_password_and_a_user_who_is_no_member(deployment: Deployment, driver: Any) -> None:
    url = deployment.server.url + page_path(deployment.database)
    name, _ = client_user(deployment.server)
    driver.get(url)
    wait_for(lambda: driver.execute_script(VISIBLE, "login"), 15, "the login form")
    form = driver.find_element("id", "login-form")
    form.find_element("name", "name").send_keys(name)
    form.find_element("name", "password").send_keys("not the password")
    form.find_element("css selector", "button[type=submit]").click()
    wait_for(lambda: "incorrect" in driver.find_element("id", "login-message").text, 10, "the refusal")

    stranger, password = f"stranger-{time.monotonic_ns()}", "secret-stranger"
    create_user(deployment.server, stranger, password, ["someone_else"])
    for field, value in (("name", stranger), ("password", password)):
        form.find_element("name", field).clear()
        form.find_element("name", field).send_keys(value)
    form.find_element("css selector", "button[type=submit]").click()
    wait_for(lambda: "after_client" in driver.find_element("id", "login-message").text, 15,
             "the page saying which role is missing")
    assert fetch_status(driver, f"/{deployment.database}/_all_docs") in (401, 403)
