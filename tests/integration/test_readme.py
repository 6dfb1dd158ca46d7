"""The README's curl examples, run as written against a real `make serve` (``python -m tests.serve``).

The commands are read from the README itself: the sh block of "The HTTP API" and the one of "Reschedule,
cancel, inspect", split into commands (a command may span lines: backslashes, quotes), with the block's
variable assignments (``DB=...; AUTH=...``) kept for the commands after them. Each runs in bash after the
lines the banner of `make serve` says to paste (``after`` on PATH, ``AFTER_CONFIG``, ``PASSWORD``), with
nothing else on PATH but /usr/bin:/bin; only the address changes (a free port instead of 5984, so the
test can run beside a `make serve`). The task must reach the status a reader expects before the next
command runs, as when a person types them one by one. Ctrl-C is sent to the process group, as a
terminal does: the worker stops, then the server; a second run keeps the data and the passwords.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server import ServerKind, free_port

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
URL = "http://127.0.0.1:5984"
SECTIONS = ("## The HTTP API", "### Reschedule, cancel, inspect")
# After each command, in order: the status of campaign-2 once the worker answered.
SETTLED = ["done", "done", "scheduled", "canceled", "canceled", "canceled"]
BANNER_END = "Ctrl-C stops it, then the server."
READY = "worker manobi ready"  # the worker's log line once it has read its tasks and follows the feed


def first_sh_block(text: str, heading: str) -> str:
    section = text[text.index(heading + "\n"):]
    match = re.search(r"^```sh\n(.*?)^```", section, re.MULTILINE | re.DOTALL)
    assert match is not None, f"no sh block under {heading!r}"
    return match.group(1)


def complete(text: str) -> bool:
    """Whether ``text`` is a whole shell command: no open quote, no trailing backslash."""
    if text.rstrip().endswith("\\"):
        return False
    try:
        shlex.split(text, comments=True)
    except ValueError:
        return False
    return True


def commands(block: str) -> Iterator[tuple[str, str]]:
    """(assignments so far, command) for each command of a block; blank and comment lines separate."""
    prelude, pending = "", ""
    for line in block.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending += line + "\n"
        if not complete(pending):
            continue
        if re.match(r"^[A-Z_]+=", pending):
            prelude += pending
        else:
            yield prelude, pending
        pending = ""
    assert not pending, f"an unfinished command at the end of a block: {pending!r}"


def readme_commands() -> list[tuple[str, str]]:
    text = README.read_text()
    assert URL in text
    return [found for heading in SECTIONS for found in commands(first_sh_block(text, heading))]


def test_the_readme_commands_are_found() -> None:
    found = [command.split()[:4] for _, command in readme_commands()]
    assert len(found) == len(SETTLED), found
    assert found[0] == ["curl", "-u", "after:$PASSWORD", "-X"]


@dataclass
class Served:
    """A running `make serve` and what its banner said."""

    process: subprocess.Popen[str]
    url: str
    banner: str
    output: Path
    directory: Path

    @property
    def paste(self) -> str:
        """The lines the banner says to paste into another shell."""
        after = self.banner[self.banner.index("Paste into another shell"):]
        lines = [line.strip() for line in after.splitlines()[1:4]]
        assert all(line.startswith("export ") for line in lines), after
        return "\n".join(lines) + "\n"

    @property
    def password(self) -> str:
        found = re.search(r"^export PASSWORD=(\S+)$", self.paste, re.MULTILINE)
        assert found is not None
        return shlex.split(found.group(1))[0]

    def stop(self) -> int:
        """Ctrl-C in its terminal: SIGINT to the whole process group."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
        try:
            return self.process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            raise


def serve(kind: ServerKind, directory: Path, *options: str) -> Served:
    """`make serve` with its own process group (as in a terminal), on a free port; back when it is ready."""
    port = free_port()
    output = directory.parent / f"serve-{time.monotonic_ns()}.out"
    environment = {name: value for name, value in os.environ.items() if not name.startswith("AFTER_")}
    with output.open("w") as sink:
        process = subprocess.Popen([sys.executable, "-m", "tests.serve", "--server", str(kind), "--port",
                                    str(port), "--dir", str(directory), *options], cwd=ROOT, stdout=sink,
                                   stderr=subprocess.STDOUT, text=True, env=environment,
                                   start_new_session=True)
    served = Served(process, f"http://127.0.0.1:{port}", "", output, directory)
    deadline = time.monotonic() + 180
    while BANNER_END not in (text := output.read_text()) or READY not in text:
        if process.poll() is not None or time.monotonic() > deadline:
            served.stop()
            pytest.fail(f"make serve did not get ready (exit {process.returncode}):\n{text}")
        time.sleep(0.1)
    served.banner = text[:text.index(BANNER_END)]
    return served


@pytest.fixture
def served(server_kind: ServerKind, tmp_path: Path) -> Iterator[Served]:
    """`make serve`: the server, `after init`, the user after, and the worker manobi in the foreground."""
    for tool in ("curl", "jq"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is missing (make serve installs it)")
    running = serve(server_kind, tmp_path / "serve")
    try:
        yield running
    finally:
        running.stop()


def task_status(served: Served) -> str | None:
    response = httpx.get(f"{served.url}/after/campaign-2", auth=("after", served.password))
    return response.json().get("status") if response.status_code == 200 else None


def wait_for_status(served: Served, status: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while task_status(served) != status:
        assert time.monotonic() < deadline, f"campaign-2 is {task_status(served)}, not {status}"
        time.sleep(0.1)


def shell(served: Served, script: str) -> str:
    """``script`` in bash after the banner's lines, with only /usr/bin:/bin on PATH; its output."""
    result = subprocess.run(["bash", "-c", "set -eo pipefail\n" + served.paste + script], capture_output=True,
                            text=True, timeout=60, env={"PATH": "/usr/bin:/bin"}, cwd="/")
    assert result.returncode == 0, f"{script}\nexit {result.returncode}: {result.stderr}"
    return result.stdout


def run(served: Served, prelude: str, command: str) -> Any:
    answer = json.loads(shell(served, (prelude + command).replace(URL, served.url)))
    assert "error" not in answer, f"{command}\n{answer}"
    return answer


def test_every_curl_example_works_as_written(served: Served) -> None:
    answers = []
    for (prelude, command), status in zip(readme_commands(), SETTLED, strict=True):
        answers.append(run(served, prelude, command))
        wait_for_status(served, status)
    put, inspected, rescheduled, canceled, by_worker, counts = answers
    assert put["ok"] and rescheduled["ok"] and canceled["ok"]
    assert inspected["status"] == "done" and inspected["result"]["exit_code"] == 0
    assert inspected["result"]["output"].startswith("start_campaign: campaign 2 of list 3, template teste")
    assert [(row["id"], row["doc"]["status"]) for row in by_worker["rows"]] == [("campaign-2", "canceled")]
    assert {tuple(row["key"]): row["value"] for row in counts["rows"]} == {("manobi", "canceled"): 1}
    dashboard = httpx.get(f"{served.url}/after-dashboard/_design/after-dashboard/index.html")
    assert dashboard.status_code == 200 and "<html" in dashboard.text.lower()
    log = served.output.read_text()
    assert "task campaign-2: starting job start_campaign" in log and "task campaign-2: done" in log


def test_the_pasted_lines_give_the_after_command(served: Served) -> None:
    """`after` on PATH from any directory, its config, and the banner's suggestion works."""
    assert shell(served, "command -v after").strip() == str(Path(sys.prefix) / "bin" / "after")
    # a mistyped password, six times: Apache CouchDB would lock the user after (and its worker) out
    shell(served, f"for i in 1 2 3 4 5 6; do curl -s -u after:wrong {served.url}/after/x; done")
    shell(served, "after add manobi start_campaign 2 3 teste --in 1s --id from-the-cli && after tasks")
    deadline = time.monotonic() + 30
    while json.loads(shell(served, "after show from-the-cli"))["status"] != "done":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert json.loads(shell(served, "after tasks --json")) == json.loads(
        shell(served, f". {served.directory / 'env'} && after tasks --json"))


def test_ctrl_c_stops_the_worker_then_the_server_and_a_second_run_keeps_the_data(
        server_kind: ServerKind, served: Served) -> None:
    shell(served, "after add manobi start_campaign --at 2030-01-31T08:00:00Z --id campaign-2")
    wait_for_status(served, "scheduled")
    assert served.stop() == 0
    first = served.output.read_text()
    assert "worker manobi stopped" in first and "stopped the server" in first
    assert not answers(served.url)
    again = serve(server_kind, served.directory)
    try:
        assert again.password == served.password
        assert "Note: campaign-2 is left from an earlier run (scheduled)" in again.banner
    finally:
        assert again.stop() == 0
    fresh = serve(server_kind, served.directory, "--fresh")
    try:
        assert fresh.password == served.password and "Note: campaign-2" not in fresh.banner
        assert json.loads(shell(fresh, "after tasks --json")) == []
    finally:
        assert fresh.stop() == 0


def answers(url: str) -> bool:
    try:
        httpx.get(url + "/", timeout=2.0)
    except httpx.HTTPError:
        return False
    return True
