"""`make serve`: a local server and the worker manobi on 127.0.0.1:5984, for the README's curl examples.

The server is Apache CouchDB 3.5.0 (``../shared/couchdb``) when this machine has it, since that is what
After's users run: the README's examples then meet the real validation at write, roles and dashboard.
Without it, pouchdb-server from ``node_modules``. `after init` creates the database ``after`` and its
design documents, then the CouchDB user ``after`` (role ``after_worker``, as in docs/production.md) gets a
generated password. The worker ``manobi`` runs in the foreground with the example job ``start_campaign``
(``examples/jobs.d``); Ctrl-C stops it, then the server.

Everything lives in ``.serve/`` and stays between runs (the same passwords, the same tasks; each server
kind has its data directory): ``--fresh`` starts with an empty database, ``rm -rf .serve`` with new
passwords too. The banner gives the lines to paste into another shell: ``after`` on PATH (the venv's
bin directory, absolute, so it works from any directory), ``AFTER_CONFIG`` and the README's ``$PASSWORD``.

    python -m tests.serve [--server couchdb|pouchdb] [--port 5984] [--worker manobi] [--dir .serve] [--fresh]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.server import (
    COUCHDB,
    SERVERS,
    PouchServer,
    ServerError,
    ServerKind,
    TestServer,
    couchdb_missing,
    missing,
)

ROOT = Path(__file__).resolve().parent.parent
JOBS = ROOT / "examples" / "jobs.d"
DATABASE = "after"
USER = "after"
WORKER = "manobi"
WORKER_ROLE = "after_worker"  # after.core.task.WORKER_ROLE, written out: this file imports nothing of After's
AFTER = [sys.executable, "-m", "after.cli"]
BIN = Path(sys.prefix) / "bin"  # the venv's: `after` is there
EXAMPLE_TASK = "campaign-2"  # the README's first PUT creates it
NAMES = {ServerKind.COUCHDB: "Apache CouchDB 3.5.0", ServerKind.POUCHDB: "pouchdb-server 4.2.0"}


class ServeError(RuntimeError):
    """A step of the setup failed; the message says which and why."""


@dataclass(frozen=True)
class Layout:
    """The files of one serve directory (.serve/)."""

    directory: Path

    @property
    def admin_password(self) -> Path:
        return self.directory / "admin.password"

    @property
    def password(self) -> Path:
        return self.directory / "couchdb.password"

    @property
    def admin_config(self) -> Path:
        return self.directory / "admin.toml"

    @property
    def config(self) -> Path:
        return self.directory / "after.toml"

    @property
    def env(self) -> Path:
        return self.directory / "env"

    def data(self, kind: ServerKind) -> Path:
        return self.directory / str(kind)

    def secret(self, path: Path) -> str:
        """The password kept in ``path``, generated (and written, mode 0600) the first time."""
        if path.exists():
            return path.read_text().strip()
        self.directory.mkdir(parents=True, exist_ok=True)
        value = secrets.token_urlsafe(18)
        path.touch(mode=0o600)
        path.write_text(value + "\n")
        return value


@dataclass
class Session:
    """A server with After's database, design documents and user, and the files that describe it."""

    layout: Layout
    server: TestServer
    password: str  # the user ``after``'s

    @property
    def url(self) -> str:
        return self.server.url


def choose_kind(requested: str | None) -> tuple[ServerKind, str]:
    """The server to start and why that one."""
    if requested:
        kind = ServerKind(requested)
        reason = missing(kind)
        if reason:
            raise ServeError(f"--server {kind}: {reason}")
        return kind, "as asked"
    why_not = couchdb_missing()
    if why_not is None:
        return ServerKind.COUCHDB, "found in ../shared/couchdb; what After's users run"
    reason = missing(ServerKind.POUCHDB)
    if reason:
        raise ServeError(reason)
    short = f"no Apache CouchDB at {COUCHDB}" if not COUCHDB.exists() else why_not
    return ServerKind.POUCHDB, f"the embedded default: {short}"


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def start_server(layout: Layout, kind: ServerKind, port: int, fresh: bool = False) -> TestServer:
    """The server of ``kind`` on ``port``, with its data (and admin) from an earlier run unless ``fresh``."""
    if port_in_use(port):
        raise ServeError(f"something already listens on 127.0.0.1:{port} (another CouchDB, or a make serve "
                         "still running?): stop it first, or give another --port")
    data = layout.data(kind)
    if fresh:
        shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True, exist_ok=True)
    server = SERVERS[kind](data, port)
    server.password = layout.secret(layout.admin_password)
    if isinstance(server, PouchServer):
        server.admin_created = pouch_admin_exists(data)
    server.start()
    return server


def pouch_admin_exists(data: Path) -> bool:
    """Whether pouchdb-server's config (kept in ``data``) has the admin of a past run."""
    try:
        return bool(json.loads((data / "config.json").read_text()).get("admins"))
    except (OSError, ValueError, AttributeError):
        return False


def no_lockout(server: TestServer) -> None:
    """Apache CouchDB locks a user out of an address for 5 minutes after 5 failed logins from it
    (``[chttpd_auth_lockout] mode = enforce``): a few curls with an unset $PASSWORD would lock the
    worker (the same user, the same address) out too. Here it only warns."""
    response = httpx.put(f"{server.url}/_node/_local/_config/chttpd_auth_lockout/mode", json="warn",
                         auth=server.auth, timeout=10.0)
    if response.status_code != 200:
        raise ServeError(f"setting [chttpd_auth_lockout] mode = warn failed: HTTP {response.status_code}")


def write_configs(layout: Layout, url: str) -> None:
    """after.toml (the user ``after``: the worker, and the ``after`` command) and admin.toml (for init)."""
    common = f'[couchdb]\nurl = "{url}"\ndatabase = "{DATABASE}"\n'
    layout.admin_config.write_text(
        f'# `after init` as the server admin (written by make serve)\n{common}user = "admin"\n'
        f'password_file = "{layout.admin_password.name}"\n')
    layout.config.write_text(
        f"# The worker and the after command (written by make serve)\n{common}user = \"{USER}\"\n"
        f'password_file = "{layout.password.name}"\n\n[worker]\ngrace = 10.0\n\n'
        f'[jobs]\npaths = ["{JOBS}"]\n')


def after_init(layout: Layout) -> str:
    """`after init` as the server admin; its output."""
    result = subprocess.run([*AFTER, "init", "--config", str(layout.admin_config)], capture_output=True,
                            text=True, cwd=ROOT)
    if result.returncode != 0:
        raise ServeError(f"after init failed: {result.stderr.strip()}")
    return result.stdout.strip()


def ensure_user(server: TestServer, name: str, password: str, roles: list[str]) -> None:
    """The CouchDB user ``name`` with ``roles`` and ``password``, created or updated (as the server admin)."""
    users = f"{server.url}/_users"
    with httpx.Client(auth=server.auth, headers={"Accept": "application/json"}, timeout=10.0) as client:
        client.put(users)  # a fresh pouchdb-server has no _users yet; CouchDB answers 412
        doc_url = f"{users}/org.couchdb.user:{name}"
        current = client.get(doc_url)
        doc = {"_id": f"org.couchdb.user:{name}", "name": name, "password": password, "roles": roles,
               "type": "user"}
        if current.status_code == 200:
            doc["_rev"] = current.json()["_rev"]
        response = client.put(doc_url, json=doc)
    if response.status_code not in (201, 202):
        raise ServeError(f"creating the CouchDB user {name} failed: HTTP {response.status_code} "
                         f"{response.text.strip()}")


def paste_lines(layout: Layout, password: str) -> list[str]:
    """What to type in another shell: `after` on PATH, its configuration, and the README's $PASSWORD."""
    return [f'export PATH={shlex.quote(str(BIN))}:"$PATH"',
            f"export AFTER_CONFIG={shlex.quote(str(layout.config))}",
            f"export PASSWORD={shlex.quote(password)}"]


def write_env(layout: Layout, password: str) -> None:
    """.serve/env: `. .serve/env` is the same as pasting the banner's lines."""
    layout.env.write_text("# . .serve/env: the after command, its configuration and the README's $PASSWORD "
                          "(written by make serve)\n" + "\n".join(paste_lines(layout, password)) + "\n")


def prepare(directory: Path, kind: ServerKind, port: int, fresh: bool = False) -> Session:
    """Start the server, `after init`, the user ``after``, and the files: a Session ready for a worker."""
    layout = Layout(directory)
    password = layout.secret(layout.password)
    server = start_server(layout, kind, port, fresh)
    try:
        if kind == ServerKind.COUCHDB:
            no_lockout(server)
        write_configs(layout, server.url)
        output = after_init(layout)
        print(output or "after init: nothing to do, the database is up to date", flush=True)
        ensure_user(server, USER, password, [WORKER_ROLE])
        write_env(layout, password)
    except BaseException:
        server.stop()
        raise
    return Session(layout, server, password)


def worker_argv(session: Session, name: str = WORKER) -> list[str]:
    return [*AFTER, "run", name, "--config", str(session.layout.config)]


def leftover(session: Session) -> str:
    """A warning when the README's example task is left from an earlier run (its PUT would be a 409)."""
    response = httpx.get(f"{session.url}/{DATABASE}/{EXAMPLE_TASK}", auth=session.server.auth,
                         headers={"Accept": "application/json"}, timeout=10.0)
    if response.status_code != 200:
        return ""
    status = response.json().get("status")
    return (f"\nNote: {EXAMPLE_TASK} is left from an earlier run ({status}): the README's first PUT will "
            f"answer 409 conflict.\n  make serve SERVE=--fresh starts with an empty database.\n")


def banner(session: Session, kind: ServerKind, why: str, worker: str) -> str:
    layout, server, home = session.layout, session.server, Path.cwd()

    def shown(path: Path) -> str:
        return str(path.relative_to(home)) if path.is_relative_to(home) else str(path)

    paste = "\n".join("  " + line for line in paste_lines(layout, session.password))
    return f"""
After is served at {server.url}, database {DATABASE}: {NAMES[kind]} ({why})
  server admin   {server.admin} / {server.password}   ({shown(layout.admin_password)})
  After's user   {USER} / {session.password}   ({shown(layout.password)}; role {WORKER_ROLE})
  config         {layout.config}   (the worker's, and the after command's)
  jobs           {JOBS}   (start_campaign)
  dashboard      {server.url}/{DATABASE}-dashboard/_design/after-dashboard/index.html
  data           {shown(layout.data(kind))}   (kept; make serve SERVE=--fresh empties it)

Paste into another shell, for the README's curl examples and the after command:
{paste}
(the same lines: . {layout.env})
Then try:
  after add {worker} start_campaign 2 3 teste --in 10s && after tasks
{leftover(session)}
The worker {worker} runs here; Ctrl-C stops it, then the server.
"""


def run_worker(argv: list[str]) -> int:
    """Run the worker in the foreground; Ctrl-C reaches it too (same process group): wait until it is done.

    A second Ctrl-C is the worker's to handle (it stops its running jobs at once); after a third this
    gives it five seconds more, then kills it. SIGTERM is passed on to the worker, which stops as on Ctrl-C.
    """
    worker = subprocess.Popen(argv, cwd=ROOT)
    signal.signal(signal.SIGTERM, lambda number, frame: worker.send_signal(number))  # `kill` of make serve
    interrupts = 0
    while True:
        try:
            return worker.wait(timeout=5.0 if interrupts >= 3 else None)
        except KeyboardInterrupt:
            interrupts += 1
            if interrupts == 1:
                print("\nstopping the worker, then the server", flush=True)
        except subprocess.TimeoutExpired:
            worker.kill()
            return worker.wait()


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="make serve", description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", choices=[str(kind) for kind in ServerKind],
                        help="default: couchdb when ../shared/couchdb can run here, else pouchdb")
    parser.add_argument("--port", type=int, default=5984)
    parser.add_argument("--worker", default=WORKER)
    parser.add_argument("--dir", type=Path, default=ROOT / ".serve", help="default: .serve")
    parser.add_argument("--fresh", action="store_true",
                        help="start with an empty database (the passwords stay; rm -rf .serve for new ones)")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse(argv)
    try:
        kind, why = choose_kind(args.server)
        print(f"starting {NAMES[kind]} on 127.0.0.1:{args.port} ({why})", flush=True)
        session = prepare(args.dir.resolve(), kind, args.port, args.fresh)
    except (ServeError, ServerError, OSError) as error:
        print(f"make serve: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # prepare stopped the server it had started
        print("\nmake serve: interrupted", file=sys.stderr)
        return 130
    try:
        print(banner(session, kind, why, args.worker), flush=True)
        return run_worker(worker_argv(session, args.worker))
    except KeyboardInterrupt:  # before the worker was waited for; it got the Ctrl-C too
        return 130
    finally:
        with contextlib.suppress(KeyboardInterrupt):
            session.server.stop()
        print(f"stopped the server; its data is in {session.layout.data(kind)}", flush=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
