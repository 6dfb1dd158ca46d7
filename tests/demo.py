"""`make demo`: After end to end on loopback, showing each step and the HTTP requests it makes.

A CouchDB-protocol server (pouchdb-server) on 127.0.0.1, `after init`, a worker named manobi, and a
task created a few seconds ahead with a plain `curl` PUT; the task runs and its document ends `done`.
Everything lives in .demo/ and stops when the demo ends.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.server import start_server

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / ".demo"
JOB = """#!/bin/sh
echo "start_campaign: campaign $1 of list $2, template $3 (task $AFTER_TASK_ID)"
"""


def say(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m", flush=True)


def run(argv: list[str], secret: str = "") -> str:
    print("$ " + shlex.join(argv).replace(secret, "$PASSWORD") if secret else "$ " + shlex.join(argv),
          flush=True)
    result = subprocess.run(argv, capture_output=True, text=True, check=True)
    if result.stdout.strip():
        print(result.stdout.rstrip())
    return result.stdout


def prepare() -> None:
    shutil.rmtree(DEMO, ignore_errors=True)
    (DEMO / "jobs.d").mkdir(parents=True)
    job = DEMO / "jobs.d" / "start_campaign"
    job.write_text(JOB)
    job.chmod(0o755)


def write_config(url: str, password: str) -> Path:
    (DEMO / "couchdb.password").write_text(password)
    config = DEMO / "after.toml"
    config.write_text(f'[couchdb]\nurl = "{url}"\ndatabase = "after"\nuser = "admin"\n'
                      f'password_file = "couchdb.password"\n\n[jobs]\npaths = ["{DEMO / "jobs.d"}"]\n')
    print(config.read_text())
    return config


def main() -> int:
    prepare()
    say("1. A CouchDB-protocol server on loopback (pouchdb-server, pinned in package-lock.json)")
    server = start_server(DEMO / "couch")
    worker = None
    try:
        print(f"listening on {server.url}")
        say("2. Configuration (.demo/after.toml) and `after init`")
        config = write_config(server.url, server.password)
        after = [sys.executable, "-m", "after.cli"]
        run([*after, "init", "--config", str(config)])
        say("3. A worker named manobi: `after run manobi`")
        log = (DEMO / "worker.log").open("w")
        worker = subprocess.Popen([*after, "run", "manobi", "--config", str(config)], stdout=log,
                                  stderr=subprocess.STDOUT)
        time.sleep(1.5)
        say("4. A task three seconds ahead, with a plain HTTP PUT")
        date = (datetime.now(UTC) + timedelta(seconds=3)).isoformat(timespec="milliseconds")
        task = {"worker": "manobi", "date": date,
                "job": {"name": "start_campaign", "arguments": [2, 3, "teste"]}, "status": "waiting"}
        url = f"{server.url}/after/demo-task"
        curl = ["curl", "-sS", "-u", f"admin:{server.password}", "-H", "Content-Type: application/json"]
        run([*curl, "-X", "PUT", url, "-d", json.dumps(task)], server.password)
        say("5. Waiting for it to run")
        doc = wait_done([*curl, url], server.password)
        print(DEMO.joinpath("worker.log").read_text())
        say(f"6. The task document now ({doc['status']})")
        print(json.dumps(doc, indent=2))
        return 0 if doc["status"] == "done" else 1
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(15)
        server.stop()
        print("\nstopped the worker and the server; files are in .demo/")
        bin_dir = Path(sys.prefix) / "bin"
        print("next: `make serve` keeps a server and the worker manobi running for the README's curl "
              f"examples;\nthe after command is {bin_dir / 'after'}: export PATH={bin_dir}:\"$PATH\"")


def wait_done(curl: list[str], secret: str) -> dict[str, object]:
    deadline = time.monotonic() + 20
    while True:
        doc: dict[str, object] = json.loads(subprocess.run(curl, capture_output=True, text=True).stdout)
        if doc.get("status") in ("done", "err") or time.monotonic() > deadline:
            run(curl, secret)
            return doc
        time.sleep(0.5)


if __name__ == "__main__":
    sys.exit(main())
