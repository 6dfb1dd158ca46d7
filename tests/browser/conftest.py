"""Fixtures of the dashboard's tests: a headless Chromium (skipped, with the reason, where it cannot run)
and a deployment (a database, a config, a real `after run` worker process) on each server."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from tests.browser.browser import browser_missing, chromium
from tests.integration.deployment import Deployment
from tests.server import TestServer


@pytest.fixture
def driver() -> Iterator[Any]:
    reason = browser_missing()
    if reason:
        pytest.skip(reason)
    from selenium.common.exceptions import WebDriverException

    with ExitStack() as stack:
        try:
            browser = stack.enter_context(chromium())
        except WebDriverException as error:
            pytest.skip(f"headless Chromium cannot run here: {str(error).strip().splitlines()[0]}")
        yield browser


@pytest.fixture
def deployment(couch_server: TestServer, tmp_path: Path) -> Iterator[Deployment]:
    """A new database with a running worker ``manobi`` (ready: its feed followed)."""
    deployed = Deployment(couch_server, tmp_path)
    try:
        deployed.start_worker("manobi").wait_ready()
        yield deployed
    finally:
        deployed.stop_all()
