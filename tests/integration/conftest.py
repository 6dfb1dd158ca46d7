"""Fixtures of the integration tests: a deployment (database, config, jobs) on the session's server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.deployment import Deployment
from tests.server import TestServer


@pytest.fixture
def deployment(couch_server: TestServer, tmp_path: Path) -> Iterator[Deployment]:
    deployed = Deployment(couch_server, tmp_path)
    yield deployed
    deployed.stop_all()
