"""A throwaway Apache CouchDB cluster (3 nodes on loopback, every document in three copies) for tests.

The nodes run CouchDB's Erlang query server, so that validation at write (``after init --validation
erlang``) does not cost a JavaScript round trip on each of the three copies of every write. The script
names its nodes ``node<i>@127.0.0.1``, so one cluster runs on a machine at a time.

Started with ``../shared/couchdb/couchdb cluster-start`` on free ports; ``kill(i)``/``start(i)`` are a
node crashing and coming back with its data. A reaper process that dies with this Python process kills
the nodes, so a killed test run leaks no server. ``url`` is the first node; ``urls`` all of them.

Because of those fixed node names, ``start_cluster`` first takes a machine-wide lock (``LOCK``, held
until ``close()`` or the process's end): a second test run on the machine waits for the first one's
cluster to go instead of failing on the names (``AFTER_CLUSTER_WAIT`` seconds at most, default 1200).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.server import COUCHDB, ERLANG_INI, couchdb_missing, die_with_parent, wait_gone

DIST_OFFSET = 4000  # the script's Erlang distribution ports: PORT + 4000 + i
LOCK = Path(tempfile.gettempdir()) / "after-couchdb-cluster.lock"  # one cluster per machine (node names)


def machine_lock(wait: float) -> int:
    """An open descriptor holding ``LOCK`` (released when closed, or when this process ends)."""
    descriptor = os.open(LOCK, os.O_RDWR | os.O_CREAT, 0o666)
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return descriptor
        except BlockingIOError:
            if time.monotonic() > deadline:
                os.close(descriptor)
                raise RuntimeError(f"another CouchDB cluster has run on this machine for over {wait:.0f} s "
                                   f"(nodes are named node<i>@127.0.0.1; the lock is {LOCK})") from None
            time.sleep(1.0)


def free_block(size: int) -> int:
    """A base port with ``size`` free ports from it, and their distribution ports free too."""
    for _ in range(50):
        base = 20000 + secrets.randbelow(9000)
        ports = [base + i for i in range(size)] + [base + DIST_OFFSET + i for i in range(size)]
        try:
            with contextlib.ExitStack() as stack:
                for port in ports:
                    sock = stack.enter_context(socket.socket())
                    sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
    raise RuntimeError("no block of free ports for a cluster")


class CouchDBCluster:
    """``size`` Apache CouchDB nodes joined in one cluster; admin ``admin`` with a random password."""

    def __init__(self, directory: Path, size: int = 3, ini: str = ERLANG_INI) -> None:
        self.directory = directory
        self.size = size
        self.ini = ini  # extra local.ini of every node, before the first start
        self.port = free_block(size)
        self.admin = "admin"
        self.password = secrets.token_hex(12)
        self.host = "127.0.0.1"
        self.reaper: subprocess.Popen[bytes] | None = None
        self.lock: int | None = None  # the machine-wide lock, held from start_cluster to close()

    @property
    def url(self) -> str:
        return self.urls[0]

    @property
    def urls(self) -> list[str]:
        return [f"http://{self.host}:{self.port + i}" for i in range(self.size)]

    @property
    def auth(self) -> tuple[str, str]:
        return (self.admin, self.password)

    def run(self, *arguments: str) -> str:
        environment = {**os.environ, "ADMIN_USER": self.admin, "ADMIN_PASS": self.password}
        done = subprocess.run([str(COUCHDB), *arguments], env=environment, capture_output=True, text=True,
                              timeout=180)
        if done.returncode != 0:
            raise RuntimeError(f"couchdb {' '.join(arguments)} failed: {done.stderr[-2000:]}")
        return done.stdout

    def start(self) -> None:
        reason = couchdb_missing()
        if reason:
            raise RuntimeError(reason)
        self.write_local_ini()
        self.run("cluster-start", str(self.directory), str(self.size), str(self.port))
        self.watch()

    def write_local_ini(self) -> None:
        """Every node's local.ini as the script would write it (one uuid and secret for all), plus ``ini``."""
        uuid, secret = secrets.token_hex(16), secrets.token_hex(16)
        for node in range(1, self.size + 1):
            etc = self.directory / f"node{node}" / "etc"
            etc.mkdir(parents=True, exist_ok=True)
            (etc / "local.ini").write_text(f"[couchdb]\nuuid = {uuid}\n\n[chttpd_auth]\nsecret = {secret}\n\n"
                                           f"[admins]\n{self.admin} = {self.password}\n\n{self.ini}")
            (etc / "local.ini").chmod(0o600)

    def pids(self) -> list[int]:
        found = []
        for i in range(1, self.size + 1):
            with contextlib.suppress(OSError, ValueError):
                found.append(int((self.directory / f"node{i}" / "couchdb.pid").read_text().strip()))
        return found

    def watch(self) -> None:
        """A reaper that kills every node when this process dies (re-made after each node start)."""
        self.unwatch()
        pids = " ".join(str(pid) for pid in self.pids())
        script = (f"trap 'kill -9 {pids} $s 2>/dev/null; exit 0' TERM; "
                  "while :; do sleep 3600 & s=$!; wait $s; done")
        self.reaper = subprocess.Popen(["sh", "-c", script], stdin=subprocess.DEVNULL,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                       start_new_session=True, preexec_fn=die_with_parent)

    def unwatch(self) -> None:
        """End the reaper and its ``sleep`` (its process group) with SIGKILL: its trap, which kills the
        nodes, runs only on SIGTERM."""
        if self.reaper is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.reaper.pid, signal.SIGKILL)
            self.reaper.wait()
        self.reaper = None

    def kill(self, node: int) -> None:
        """SIGKILL node ``node`` (1-based), as a crash."""
        pid_file = self.directory / f"node{node}" / "couchdb.pid"
        pid = int(pid_file.read_text().strip())
        os.kill(pid, signal.SIGKILL)
        wait_gone(pid, 10.0)
        pid_file.unlink(missing_ok=True)

    def start_node(self, node: int) -> None:
        self.run("node-start", str(self.directory), str(node))
        self.watch()

    def close(self) -> None:
        self.unwatch()
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self.run("cluster-stop", str(self.directory))
        for pid in self.pids():
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
                wait_gone(pid, 10.0)
        shutil.rmtree(self.directory, ignore_errors=True)
        if self.lock is not None:
            os.close(self.lock)
            self.lock = None


def start_cluster(size: int = 3) -> CouchDBCluster:
    """A running cluster, once no other one runs on this machine; ``close()`` it."""
    lock = machine_lock(float(os.environ.get("AFTER_CLUSTER_WAIT", "1200")))
    cluster = CouchDBCluster(Path(tempfile.mkdtemp(prefix="after-cluster-")), size)
    cluster.lock = lock
    try:
        cluster.start()
    except BaseException:
        cluster.close()
        raise
    return cluster
