"""System test fixtures: the .deb, a CouchDB-protocol server on the host loopback, a booted container.

Needs root, systemd-nspawn and debootstrap (`make system-deps`, which `make check` runs first).
The scenarios run once per server kind (``couch`` is the session's ``couch_server``): the container
shares the host network, so its after.toml names the server on the host's 127.0.0.1 either way.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server import TestServer
from tests.system.container import APT_GET, SHARE, Container, booted, rootfs

ROOT = Path(__file__).resolve().parents[2]
CONTROL = ROOT / "packaging" / "debian" / "control"
# Not dependencies of the package: man-db lets `systemd-analyze verify` check Documentation=man:after(1).
EXTRA_PACKAGES = ("man-db",)
# Shorter than the shipped defaults so that the scenarios take seconds (systemctl edit would do the same).
DROP_IN = "[Service]\nWatchdogSec=3\nTimeoutAbortSec=2\nRestartSec=1\n"
SLOW_JOB = '#!/bin/sh\n# sleeps $1 seconds\nsleep "$1"\necho "slept $1"\n'
HEADERS = {"Accept": "application/json"}


def requirements() -> str | None:
    if os.geteuid() != 0:
        return "system tests need root (systemd-nspawn)"
    for tool in ("systemd-nspawn", "debootstrap", "nsenter", "dpkg-buildpackage"):
        if shutil.which(tool) is None:
            return f"{tool} is missing: run `make system-deps`"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = requirements()
    for item in items:
        if "tests/system/" in str(item.path):
            item.add_marker(pytest.mark.system)
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))


def runtime_packages() -> list[str]:
    """Depends and Recommends of the binary package, so the cached rootfs installs the .deb offline."""
    text = CONTROL.read_text()
    fields = re.findall(r"^(?:Depends|Recommends):((?:.*\n)(?:[ \t].*\n)*)", text, re.MULTILINE)
    names = re.findall(r"([a-z0-9][a-z0-9.+-]+)(?:\s*\([^)]*\))?\s*(?:,|$)", ",".join(fields), re.MULTILINE)
    return [name for name in names if not name.startswith("$")] + list(EXTRA_PACKAGES)


def build_deb(version: str, dist: Path) -> Path:
    subprocess.run(
        ["make", "-s", "-C", str(ROOT), "deb", f"DEB_VERSION={version}", f"DIST={dist}",
         f"DEB_BUILD={dist / 'build'}"],
        check=True, capture_output=True, text=True,
    )
    return dist / f"after_{version}_all.deb"


@dataclass
class Debs:
    current: Path
    upgrade: Path


@pytest.fixture(scope="session")
def debs(tmp_path_factory: pytest.TempPathFactory) -> Debs:
    dist = tmp_path_factory.mktemp("debs")
    script = str(ROOT / "packaging" / "debversion.py")
    environ = {**os.environ, "DEB_VERSION": ""}
    base = subprocess.run(["python3", script], check=True, capture_output=True, text=True, env=environ).stdout
    base = base.strip()
    return Debs(build_deb(base, dist), build_deb(f"{base}+systemtest1", dist))


@pytest.fixture(scope="session")
def couch(couch_server: TestServer) -> TestServer:
    """The host's server of each kind (Apache CouchDB, pouchdb-server): the scenarios run on both."""
    return couch_server


class Tasks:
    """Task documents over plain HTTP, as a client of After would write them."""

    def __init__(self, server: TestServer, database: str = "after") -> None:
        self.base = f"{server.url}/{database}"
        self.client = httpx.Client(auth=server.auth, headers=HEADERS, timeout=10.0)

    def put(self, doc_id: str, worker: str, job: str, arguments: list[Any], delay: float = 0.0) -> None:
        date = datetime.fromtimestamp(time.time() + delay, UTC).isoformat(timespec="milliseconds")
        job_field = {"name": job, "arguments": arguments}
        doc = {"worker": worker, "date": date, "job": job_field, "status": "waiting"}
        response = self.client.put(f"{self.base}/{doc_id}", json=doc)
        assert response.status_code == 201, response.text

    def get(self, doc_id: str) -> dict[str, Any]:
        doc: dict[str, Any] = self.client.get(f"{self.base}/{doc_id}").json()
        return doc

    def wait_status(self, doc_id: str, statuses: set[str], timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        doc = self.get(doc_id)
        while doc.get("status") not in statuses:
            assert time.monotonic() < deadline, f"{doc_id} stayed {doc.get('status')}: {doc}"
            time.sleep(0.1)
            doc = self.get(doc_id)
        return doc


@pytest.fixture(scope="session")
def tasks(couch: TestServer) -> Iterator[Tasks]:
    client = Tasks(couch)
    yield client
    client.client.close()


def configure(container: Container, server: TestServer) -> None:
    """What an administrator does after `apt install after` (docs/production.md)."""
    container.run(["install", "-m", "0640", "-o", "root", "-g", "_after", "/dev/stdin",
                   "/etc/after/couchdb.password"], input=server.password)
    container.write("/etc/after/after.toml", (
        f'[couchdb]\nurl = "{server.url}"\ndatabase = "after"\nuser = "{server.admin}"\n'
        'password_file = "/etc/after/couchdb.password"\n\n[worker]\nlease = 5\ngrace = 30\n'
    ))
    container.write("/etc/after/jobs.d/slow", SLOW_JOB)
    container.run(["chmod", "755", "/etc/after/jobs.d/slow"])
    container.write("/etc/systemd/system/after@.service.d/test.conf", DROP_IN)
    container.run(["systemctl", "daemon-reload"])
    container.run(["after", "init"])


@pytest.fixture(scope="module")
def machine(debs: Debs, couch: TestServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Container]:
    """A booted container with the package installed and configured against the host's server."""
    journal = tmp_path_factory.mktemp("journal") / "container-journal.txt"
    with booted(rootfs(runtime_packages()), debs.current.parent, journal_to=journal) as container:
        container.run([*APT_GET, "install", "-y", "-q", f"{SHARE}/{debs.current.name}"], timeout=300)
        configure(container, couch)
        yield container


def unit_state(container: Container, worker: str) -> dict[str, str]:
    text = container.run(["systemctl", "show", "--property=ActiveState,SubState,MainPID,StatusText,Result",
                          f"after@{worker}.service"]).stdout
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll until ``predicate`` holds; the seconds it took."""
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < timeout, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.1)
    return time.monotonic() - started
