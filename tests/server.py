"""A throwaway pouchdb-server (the CouchDB-protocol server for tests, demos and benchmarks).

``start_server()`` runs node_modules/.bin/pouchdb-server on a free loopback port with its own temporary
data directory (its config and log files go there too: the process runs with that directory as its
working directory), waits until it answers and creates a server admin. ``restart()`` brings it back on
the same port and data, ``kill()`` is SIGKILL for crash tests. No pytest here on purpose.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
BINARY = ROOT / "node_modules" / ".bin" / "pouchdb-server"
HEADERS = {"Accept": "application/json"}
PR_SET_PDEATHSIG = 1  # linux/prctl.h


class ServerError(RuntimeError):
    """pouchdb-server is missing or did not come up."""


def die_with_parent() -> None:
    """In the child before exec: SIGTERM when the test process dies, so a killed run leaks no server."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PouchServer:
    """One pouchdb-server process; ``url`` has no credentials, use ``admin``/``password``."""

    def __init__(self, directory: Path, port: int, admin: str = "admin") -> None:
        self.directory = directory
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.admin = admin
        self.password = secrets.token_hex(12)
        self.process: subprocess.Popen[bytes] | None = None
        self.start_seconds = 0.0

    def __repr__(self) -> str:
        return f"PouchServer(url={self.url!r}, admin={self.admin!r}, directory={str(self.directory)!r})"

    @property
    def auth(self) -> tuple[str, str]:
        return (self.admin, self.password)

    def start(self, timeout: float = 10.0) -> None:
        if not BINARY.exists():
            raise ServerError(f"{BINARY} is missing: run `make server` (npm ci) first")
        started = time.monotonic()
        output = (self.directory / "server.out").open("ab")
        argv = [str(BINARY), "--port", str(self.port), "--host", "127.0.0.1", "--dir",
                str(self.directory / "data"), "--config", str(self.directory / "config.json"),
                "--no-stdout-logs", "--no-color"]
        self.process = subprocess.Popen(argv, cwd=self.directory, stdin=subprocess.DEVNULL, stdout=output,
                                        stderr=subprocess.STDOUT, start_new_session=True,
                                        preexec_fn=die_with_parent)
        output.close()
        self.wait_until_up(started + timeout)
        self.start_seconds = time.monotonic() - started
        log.info("pouchdb-server up at %s in %.2f s", self.url, self.start_seconds)

    def wait_until_up(self, deadline: float) -> None:
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                raise ServerError(f"pouchdb-server exited with {self.process.returncode}: {self.tail()}")
            try:
                if httpx.get(self.url + "/", headers=HEADERS, timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise ServerError(f"pouchdb-server did not answer at {self.url}: {self.tail()}")
            time.sleep(0.02)

    def tail(self, chars: int = 2000) -> str:
        try:
            return (self.directory / "server.out").read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def create_admin(self) -> None:
        """The stock server crashes on anonymous or non-admin ``PUT /db``: work as an admin."""
        response = httpx.put(f"{self.url}/_config/admins/{self.admin}", json=self.password,
                             headers=HEADERS, timeout=10.0)
        if response.status_code != 200:
            raise ServerError(f"creating the admin failed: HTTP {response.status_code}")

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM and wait (SIGKILL after ``timeout``)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL, as when the machine or the server crashes."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def restart(self, kill: bool = False) -> None:
        """Stop (or kill) and start again on the same port and data directory; the admin persists."""
        self.kill() if kill else self.stop()
        self.start()

    def close(self) -> None:
        """Stop and remove the data directory."""
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> PouchServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def start_server(directory: Path | None = None, port: int | None = None) -> PouchServer:
    """A running pouchdb-server with an admin; ``close()`` it (or use it as a context manager)."""
    where = Path(tempfile.mkdtemp(prefix="after-couch-")) if directory is None else directory
    where.mkdir(parents=True, exist_ok=True)
    server = PouchServer(where, port or free_port())
    server.start()
    server.create_admin()
    return server


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    with start_server() as running:
        print(f"{running.url} admin={running.admin} started in {running.start_seconds:.2f} s (pid "
              f"{running.process.pid if running.process else '?'}); Ctrl-C stops it")
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()
