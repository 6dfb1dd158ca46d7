"""Headless Chromium for the dashboard's tests, the screenshot and bench/dashboard.py. No pytest here.

Debian's ``chromium`` and ``chromium-driver`` (``make check`` installs them: mk/browser.mk), driven by
Selenium (requirements-dev.txt) through the chromedriver path given explicitly, so Selenium Manager
never runs and nothing downloads a browser. ``browser_missing()`` says why a test must skip.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from after.store.couch.client import CouchStore
from tests.server import TestServer

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# The machine's notes: no sandbox (root), no GPU, no QUIC, and nothing that phones home.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1440,1100"]
CLIENT_ROLE = "after_client"


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not path.exists():
            return f"{path} is missing: apt-get install {package} (make check installs it)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed: make venv (requirements-dev.txt)"
    return None


@contextmanager
def chromium(width: int = 1440, height: int = 1100) -> Iterator[Any]:
    """A headless Chromium driven by chromedriver, with a new empty profile that is removed afterwards."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = Path(tempfile.mkdtemp(prefix="after-chromium-"))
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # console messages, for failures
    for flag in [*FLAGS, f"--window-size={width},{height}", f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        driver.set_page_load_timeout(30)
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def create_user(server: TestServer, name: str, password: str, roles: list[str]) -> None:
    """A CouchDB user (``_users``), as a server admin would create one."""
    users = f"{server.url}/_users"
    headers = {"Accept": "application/json"}
    httpx.put(users, auth=server.auth, headers=headers)  # missing on a fresh pouchdb-server: 412 otherwise
    doc = {"_id": f"org.couchdb.user:{name}", "name": name, "password": password, "roles": roles,
           "type": "user"}
    response = httpx.put(f"{users}/org.couchdb.user:{name}", json=doc, auth=server.auth, headers=headers)
    assert response.status_code in (201, 202), response.text


def client_user(server: TestServer) -> tuple[str, str]:
    """A new user with the role after_client: (name, password)."""
    name, password = f"client-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    create_user(server, name, password, [CLIENT_ROLE])
    return name, password


def page_url(store: CouchStore) -> str:
    from after.monitoring.dashboard import page_path

    return store.url + page_path(store.database)


def wait_for(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    """Poll until ``condition()`` is truthy; its value. Exceptions count as not yet (stale elements...)."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = condition()
            if value:
                return value
        except Exception as error:  # the page redraws while we look: try again
            last = error
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}" + (f" ({last!r})" if last else ""))


def log_in(driver: Any, url: str, name: str, password: str) -> None:
    """Open the page, fill in its login form, and wait for the first full view."""
    from selenium.webdriver.common.by import By

    driver.get(url)
    form = wait_for(lambda: driver.find_element(By.ID, "login-form").is_displayed()
                    and driver.find_element(By.ID, "login-form"), 15, "the login form")
    form.find_element(By.NAME, "name").send_keys(name)
    form.find_element(By.NAME, "password").send_keys(password)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_until_ready(driver)


def wait_until_ready(driver: Any, timeout: float = 30.0) -> float:
    """Until the page says its first view is on screen; how long that took it, in milliseconds."""
    stats = wait_for(lambda: driver.execute_script(
        "return document.body.dataset.ready && window.afterDashboard"), timeout, "the dashboard's first view",
        interval=0.05)
    return float(stats["firstRenderMs"])


def row_status(driver: Any, table: str, task_id: str) -> str | None:
    """The status a table's row of the task shows, or None when the task is not in it."""
    found = driver.execute_script(
        "const row = [...document.querySelectorAll(`#${arguments[0]} tbody tr`)]"
        ".find((tr) => tr.dataset.id === arguments[1]); return row ? row.dataset.status : null;",
        table, task_id)
    return None if found is None else str(found)


def click_action(driver: Any, table: str, task_id: str, action: str) -> None:
    selector = f'#{table} tr[data-id={json.dumps(task_id)}] button[data-action="{action}"]'
    wait_for(lambda: driver.find_element("css selector", selector).click() or True, 15,
             f"the {action} button of {task_id}")
