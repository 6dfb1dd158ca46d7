"""Throwaway CouchDB-protocol servers for tests, demos and benchmarks: Apache CouchDB and pouchdb-server.

``start_server(kind)`` runs one on a free loopback port with its own temporary data directory, waits
until it answers and makes sure a server admin exists (``admin`` / ``password``). ``restart()`` brings
it back on the same port and data, ``kill()`` is SIGKILL for crash tests. No pytest here on purpose.

- ``ServerKind.COUCHDB``: Apache CouchDB 3.5.0, what After's users run, through the ``couchdb`` script
  of ``../shared/couchdb`` (or ``$AFTER_COUCHDB``). It is not on any package registry, so a fresh
  machine may not have it: ``couchdb_missing()`` says why, and callers skip with that reason.
- ``ServerKind.POUCHDB``: pouchdb-server 4.2.0 from ``node_modules`` (``make server``), the embedded
  default that a fresh machine always has.
"""

from __future__ import annotations

import contextlib
import ctypes
import enum
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
BINARY = ROOT / "node_modules" / ".bin" / "pouchdb-server"
COUCHDB = Path(os.environ.get("AFTER_COUCHDB", ROOT.parent / "shared" / "couchdb" / "couchdb"))
HEADERS = {"Accept": "application/json"}
PR_SET_PDEATHSIG = 1  # linux/prctl.h


class ServerKind(enum.StrEnum):
    COUCHDB = "couchdb"
    POUCHDB = "pouchdb"


class ServerError(RuntimeError):
    """A server is missing or did not come up."""


def die_with_parent() -> None:
    """In the child before exec: SIGTERM when the test process dies, so a killed run leaks no server."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def couchdb_missing() -> str | None:
    """Why Apache CouchDB cannot be started here, or None when it can."""
    if not COUCHDB.exists():
        return (f"Apache CouchDB is not on this machine ({COUCHDB} is missing; CI has it in ../shared), "
                "so only pouchdb-server ran these cases")
    home = Path(os.environ.get("AFTER_COUCHDB_HOME", "/var/cache/after-couchdb"))
    if os.geteuid() != 0 and not home.exists():
        return "Apache CouchDB needs root the first time (it unpacks into /var/cache/after-couchdb)"
    return None


def pouchdb_missing() -> str | None:
    return None if BINARY.exists() else f"{BINARY} is missing: run `make server` (npm ci) first"


def missing(kind: ServerKind) -> str | None:
    return couchdb_missing() if kind == ServerKind.COUCHDB else pouchdb_missing()


class TestServer:
    """What tests know of a server: ``url`` (no credentials), ``admin``/``password``, start/stop/kill."""

    kind: ServerKind
    __test__ = False  # not a pytest class

    def __init__(self, directory: Path, port: int) -> None:
        self.directory = directory
        self.port = port
        self.host = "127.0.0.1"
        self.admin = "admin"
        self.password = secrets.token_hex(12)
        self.start_seconds = 0.0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def auth(self) -> tuple[str, str]:
        return (self.admin, self.password)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(url={self.url!r}, admin={self.admin!r}, "
                f"directory={str(self.directory)!r})")

    def start(self, timeout: float = 60.0) -> None:
        raise NotImplementedError

    def stop(self, timeout: float = 10.0) -> None:
        raise NotImplementedError

    def kill(self) -> None:
        raise NotImplementedError

    def pid(self) -> int | None:
        raise NotImplementedError

    def restart(self, kill: bool = False) -> None:
        """Stop (or kill) and start again on the same port and data directory; the admin persists."""
        self.kill() if kill else self.stop()
        self.start()

    def answers(self) -> bool:
        try:
            return httpx.get(self.url + "/", headers=HEADERS, timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    def close(self) -> None:
        """Stop and remove the data directory."""
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> TestServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class PouchServer(TestServer):
    """One pouchdb-server process."""

    kind = ServerKind.POUCHDB

    def __init__(self, directory: Path, port: int) -> None:
        super().__init__(directory, port)
        self.process: subprocess.Popen[bytes] | None = None
        self.admin_created = False

    def start(self, timeout: float = 10.0) -> None:
        if not BINARY.exists():
            raise ServerError(pouchdb_missing())
        started = time.monotonic()
        output = (self.directory / "server.out").open("ab")
        argv = [str(BINARY), "--port", str(self.port), "--host", self.host, "--dir",
                str(self.directory / "data"), "--config", str(self.directory / "config.json"),
                "--no-stdout-logs", "--no-color"]
        self.process = subprocess.Popen(argv, cwd=self.directory, stdin=subprocess.DEVNULL, stdout=output,
                                        stderr=subprocess.STDOUT, start_new_session=True,
                                        preexec_fn=die_with_parent)
        output.close()
        self.wait_until_up(started + timeout)
        if not self.admin_created:
            self.create_admin()
        self.start_seconds = time.monotonic() - started
        log.info("pouchdb-server up at %s in %.2f s", self.url, self.start_seconds)

    def wait_until_up(self, deadline: float) -> None:
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                raise ServerError(f"pouchdb-server exited with {self.process.returncode}: {self.tail()}")
            if self.answers():
                return
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
        self.admin_created = True

    def pid(self) -> int | None:
        return self.process.pid if self.process is not None and self.process.poll() is None else None

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


class CouchDBServer(TestServer):
    """One Apache CouchDB 3.5.0 node, started and stopped with the shared ``couchdb`` script.

    The script backgrounds the Erlang VM (its pid is in DATA/couchdb.pid). A small reaper process that
    dies with this Python process kills that VM, so a killed test run leaks no server.
    """

    kind = ServerKind.COUCHDB

    def __init__(self, directory: Path, port: int, ini: str = "") -> None:
        super().__init__(directory, port)
        self.data = directory / "data"
        self.ini = ini  # extra local.ini settings (e.g. the Erlang query server), before the first start
        self.reaper: subprocess.Popen[bytes] | None = None

    def environment(self) -> dict[str, str]:
        return {**os.environ, "ADMIN_USER": self.admin, "ADMIN_PASS": self.password, "BIND": self.host}

    def start(self, timeout: float = 120.0) -> None:
        reason = couchdb_missing()
        if reason:
            raise ServerError(reason)
        started = time.monotonic()
        self.write_local_ini()
        result = subprocess.run([str(COUCHDB), "start", str(self.port), str(self.data)],
                                env=self.environment(), capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise ServerError(f"Apache CouchDB did not start on port {self.port}: {result.stderr[-2000:]}")
        self.watch()
        self.start_seconds = time.monotonic() - started
        log.info("Apache CouchDB up at %s in %.2f s", self.url, self.start_seconds)

    def write_local_ini(self) -> None:
        """The admin (and any extra settings) before the first start; later starts keep the file."""
        etc = self.data / "etc"
        if (etc / "local.ini").exists():
            return
        etc.mkdir(parents=True, exist_ok=True)
        ini = (f"[couchdb]\nuuid = {secrets.token_hex(16)}\n\n"
               f"[chttpd_auth]\nsecret = {secrets.token_hex(16)}\n\n"
               f"[admins]\n{self.admin} = {self.password}\n\n{self.ini}")
        (etc / "local.ini").write_text(ini)
        (etc / "local.ini").chmod(0o600)

    def watch(self) -> None:
        """The reaper: a shell in its own process group that SIGKILLs the VM when this process dies."""
        pid = self.pid()
        if pid is None:
            return
        script = (f"trap 'kill -9 {pid} $s 2>/dev/null; exit 0' TERM; "
                  "while :; do sleep 3600 & s=$!; wait $s; done")
        self.reaper = subprocess.Popen(["sh", "-c", script], stdin=subprocess.DEVNULL,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                       start_new_session=True, preexec_fn=die_with_parent)

    def unwatch(self) -> None:
        """End the reaper and its ``sleep`` (its whole process group) without touching the VM."""
        if self.reaper is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.reaper.pid, signal.SIGKILL)
            self.reaper.wait()
        self.reaper = None

    def pid(self) -> int | None:
        try:
            pid = int((self.data / "couchdb.pid").read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except OSError:
            return None
        return pid

    def stop(self, timeout: float = 10.0) -> None:
        pid = self.pid()
        self.unwatch()
        if pid is None:
            return
        os.kill(pid, signal.SIGTERM)
        if not wait_gone(pid, timeout):
            os.kill(pid, signal.SIGKILL)
            wait_gone(pid, 5.0)
        (self.data / "couchdb.pid").unlink(missing_ok=True)

    def kill(self) -> None:
        """SIGKILL the Erlang VM, as when the machine or the server crashes."""
        pid = self.pid()
        self.unwatch()
        if pid is None:
            return
        os.kill(pid, signal.SIGKILL)
        wait_gone(pid, 5.0)
        (self.data / "couchdb.pid").unlink(missing_ok=True)


def wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except OSError:
            return True
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.02)
    return False


SERVERS: dict[ServerKind, type[TestServer]] = {
    ServerKind.COUCHDB: CouchDBServer, ServerKind.POUCHDB: PouchServer,
}


# CouchDB settings (CouchDBServer(ini=...)): the Erlang query server, for validation in Erlang; a
# production site that wants validation at write without JavaScript's cost turns it on.
ERLANG_INI = "[native_query_servers]\nenable_erlang_query_server = true\n"


def start_server(directory: Path | None = None, port: int | None = None,
                 kind: ServerKind = ServerKind.POUCHDB, host: str = "127.0.0.1",
                 **options: str) -> TestServer:
    """A running server with an admin, listening on ``host``; ``close()`` it (or use it as a context
    manager)."""
    where = Path(tempfile.mkdtemp(prefix=f"after-{kind}-")) if directory is None else directory
    where.mkdir(parents=True, exist_ok=True)
    server = SERVERS[kind](where, port or free_port(), **options)
    server.host = host
    try:
        server.start()
    except BaseException:
        server.close()
        raise
    return server


def available_kinds() -> list[ServerKind]:
    """The servers this machine can start, Apache CouchDB first."""
    return [kind for kind in ServerKind if missing(kind) is None]


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    chosen = ServerKind(sys.argv[1]) if len(sys.argv) > 1 else ServerKind.POUCHDB
    with start_server(kind=chosen) as running:
        print(f"{running.url} admin={running.admin} password={running.password} started in "
              f"{running.start_seconds:.2f} s (pid {running.pid()}); Ctrl-C stops it")
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()
