"""Jobs: the registry, executables (argv, stdin, environment, bounded output, tree kill), Python
callables and the built-ins, judged by the Outcome a user would find in the task document."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil
import pytest

from after.contracts import JobContext, Outcome, Services
from after.jobs import JobFailed, run_job
from after.jobs.executable import ExecutableJob, OutputTail
from after.jobs.python import CallableJob
from after.jobs.registry import JobRegistry
from after.store.memory import MemoryStore

DOCUMENT = {"_id": "t1", "_rev": "3-abc", "worker": "manobi", "date": "2011-10-12",
            "job": {"name": "start_campaign", "arguments": [2, 3, "teste"]}, "status": "scheduled"}


def context(**overrides: Any) -> JobContext:
    values: dict[str, Any] = dict(
        task_id="t1", worker="manobi", job_name="start_campaign", arguments=[], document=DOCUMENT,
        attempt=1, timeout=10.0, output_limit=4096,
    )
    values.update(overrides)
    return JobContext(**values)


def install(directory: Path, name: str, body: str, mode: int = 0o755) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(body)
    path.chmod(mode)
    return path


def run_script(tmp_path: Path, body: str, **overrides: Any) -> Outcome:
    path = install(tmp_path / "jobs", "job", body)
    return ExecutableJob("job", path).run(context(**overrides))


def gone(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


# --- registry ---------------------------------------------------------------------------------------

def test_first_jobs_directory_wins_and_later_ones_are_searched(tmp_path: Path) -> None:
    first = install(tmp_path / "a", "hello", "#!/bin/sh\necho a\n")
    install(tmp_path / "b", "hello", "#!/bin/sh\necho b\n")
    only_b = install(tmp_path / "b", "other", "#!/bin/sh\necho b\n")
    registry = JobRegistry([tmp_path / "a", tmp_path / "b"])
    assert getattr(registry.resolve("hello"), "path", None) == first
    assert getattr(registry.resolve("other"), "path", None) == only_b
    assert run_job(registry, context(job_name="hello")) == Outcome("done", exit_code=0, output="a\n")


def test_non_executables_directories_and_bad_names_are_not_jobs(tmp_path: Path) -> None:
    jobs = tmp_path / "jobs"
    install(jobs, "plain", "#!/bin/sh\n", mode=0o644)
    (jobs / "subdir").mkdir()
    install(tmp_path, "outside", "#!/bin/sh\n")
    registry = JobRegistry([jobs], entry_points=False)
    for name in ("plain", "subdir", "../outside", "..", ".", "", "a/b", "x" * 65, "missing"):
        assert registry.resolve(name) is None, name
    assert registry.names() == []
    assert JobRegistry([tmp_path / "does-not-exist"]).resolve("x") is None


def test_a_job_installed_while_running_is_found_without_restart(tmp_path: Path) -> None:
    registry = JobRegistry([tmp_path / "jobs"], entry_points=False)
    assert registry.resolve("late") is None
    install(tmp_path / "jobs", "late", "#!/bin/sh\n")
    assert registry.resolve("late") is not None


def test_a_job_replaced_by_a_built_in_is_noticed_within_a_second(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("after.jobs.registry.RESOLVE_TTL", 0.05)
    registry = JobRegistry([tmp_path / "jobs"])
    install(tmp_path / "jobs", "noop", "#!/bin/sh\n")
    assert isinstance(registry.resolve("noop"), ExecutableJob)
    (tmp_path / "jobs" / "noop").unlink()
    assert isinstance(registry.resolve("noop"), ExecutableJob)  # remembered
    time.sleep(0.06)
    assert isinstance(registry.resolve("noop"), CallableJob)  # the built-in again


def test_names_lists_every_source_sorted(tmp_path: Path) -> None:
    install(tmp_path / "a", "zeta", "#!/bin/sh\n")
    install(tmp_path / "b", "alpha", "#!/bin/sh\n")
    install(tmp_path / "b", "zeta", "#!/bin/sh\n")
    registry = JobRegistry([tmp_path / "a", tmp_path / "b"])
    registry.register("mine", lambda context: None)
    assert registry.names() == ["alpha", "compact_couchdb", "mine", "noop", "webhook", "zeta"]


def test_registered_callables_come_first_and_need_valid_names(tmp_path: Path) -> None:
    install(tmp_path, "noop", "#!/bin/sh\nexit 1\n")
    registry = JobRegistry([tmp_path])
    registry.register("noop", lambda context: "mine")
    assert run_job(registry, context(job_name="noop")).output == "mine"
    with pytest.raises(ValueError, match="job name"):
        registry.register("../evil", lambda context: None)


def test_installed_entry_point_noop_runs_and_can_be_switched_off() -> None:
    assert run_job(JobRegistry([]), context(job_name="noop")) == Outcome("done")
    assert JobRegistry([], entry_points=False).resolve("noop") is None


def test_a_broken_entry_point_fails_the_task_not_the_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    broken = metadata.EntryPoint(name="broken", value="no_such_module_x:run", group="after.jobs")
    monkeypatch.setattr(metadata, "entry_points", lambda group: [broken])
    registry = JobRegistry([])
    assert registry.names() == ["broken"]
    outcome = run_job(registry, context(job_name="broken"))
    assert outcome.status == "err"
    assert outcome.reason == ("job broken (no_such_module_x:run) cannot be loaded: "
                              "ModuleNotFoundError: No module named 'no_such_module_x'")


def test_an_unknown_job_says_which_jobs_exist() -> None:
    outcome = run_job(JobRegistry([], entry_points=False), context(job_name="nope"))
    assert outcome == Outcome("err", reason="unknown job 'nope' (installed: none)")


# --- executables ------------------------------------------------------------------------------------

def test_arguments_arrive_verbatim_as_argv_never_through_a_shell(tmp_path: Path) -> None:
    marker = tmp_path / "x"
    nasty = f"$(touch {marker}); rm -rf"
    body = "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done\n"
    outcome = run_script(tmp_path, body, arguments=[nasty, 2, {"a": [1, None]}, "two words", True])
    assert outcome.status == "done"
    assert outcome.output.splitlines() == [nasty, "2", '{"a": [1, null]}', "two words", "true"]
    assert not marker.exists()


def test_the_task_arrives_on_stdin_and_after_variables_in_the_environment(tmp_path: Path) -> None:
    body = (f"#!{sys.executable}\nimport json, os, sys\n"
            "env = {k: v for k, v in os.environ.items() if k.startswith('AFTER_')}\n"
            "print(json.dumps({'stdin': json.load(sys.stdin), 'env': env}))\n")
    outcome = run_script(tmp_path, body, attempt=2, job_name="job")
    seen = json.loads(outcome.output)
    assert seen["stdin"] == DOCUMENT
    assert seen["env"] == {"AFTER_TASK_ID": "t1", "AFTER_WORKER": "manobi", "AFTER_JOB": "job",
                           "AFTER_ATTEMPT": "2"}


def test_exit_codes_and_signals_become_reasons(tmp_path: Path) -> None:
    failed = run_script(tmp_path, "#!/bin/sh\necho working\necho first >&2\necho 'disk full' >&2\nexit 3\n")
    assert (failed.status, failed.reason, failed.exit_code) == ("err", "exit code 3: disk full", 3)
    assert failed.output == "working\nfirst\ndisk full\n"
    quiet = run_script(tmp_path, "#!/bin/sh\nexit 4\n")
    assert quiet.reason == "exit code 4"
    killed = run_script(tmp_path, "#!/bin/sh\nkill -9 $$\n")
    assert (killed.status, killed.reason, killed.exit_code) == ("err", "killed by signal 9 (SIGKILL)", None)


def test_output_is_a_bounded_tail_decoded_leniently(tmp_path: Path) -> None:
    body = "#!/bin/sh\nhead -c 10000000 /dev/zero | tr '\\0' x\nprintf '\\377END\\n'\n"
    outcome = run_script(tmp_path, body, output_limit=1000)
    assert outcome.status == "done"
    assert len(outcome.output) == 1000
    assert outcome.output.endswith("xxx\ufffdEND\n")


def test_a_file_that_cannot_be_executed_fails_with_a_reason(tmp_path: Path) -> None:
    outcome = run_script(tmp_path, "no shebang, not a program\x00\x01")
    assert outcome.status == "err"
    assert outcome.reason is not None and outcome.reason.startswith(f"cannot start {tmp_path}/jobs/job: ")


GRANDCHILD = """#!/bin/sh
echo started
"{python}" -c 'import subprocess, sys
p = subprocess.Popen(["sleep", "300"], start_new_session=True)
open(sys.argv[1] + ".tmp", "w").write(str(p.pid))
__import__("os").rename(sys.argv[1] + ".tmp", sys.argv[1])
p.wait()' "$1"
"""


@pytest.fixture
def grandchild(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A job whose grandchild ``sleep 300`` runs in a session of its own; its pid lands in a file."""
    path = install(tmp_path / "jobs", "spawner", GRANDCHILD.replace("{python}", sys.executable))
    pid_file = tmp_path / "grandchild.pid"
    yield path, pid_file
    if pid_file.exists() and not gone(int(pid_file.read_text())):
        psutil.Process(int(pid_file.read_text())).kill()


def test_a_timeout_kills_the_whole_tree(grandchild: tuple[Path, Path]) -> None:
    path, pid_file = grandchild
    started = time.monotonic()
    outcome = ExecutableJob("spawner", path).run(context(arguments=[str(pid_file)], timeout=0.5))
    assert time.monotonic() - started < 3
    assert (outcome.status, outcome.reason, outcome.timed_out) == ("err", "timed out after 0.5 s", True)
    assert outcome.output == "started\n"
    assert gone(int(pid_file.read_text()))


def test_cancel_kills_the_whole_tree(grandchild: tuple[Path, Path]) -> None:
    path, pid_file = grandchild
    job_context = context(arguments=[str(pid_file)])
    results: list[Outcome] = []
    runner = threading.Thread(target=lambda: results.append(ExecutableJob("spawner", path).run(job_context)))
    runner.start()
    deadline = time.monotonic() + 5
    while not pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    job_context.canceled.set()
    runner.join(5)
    assert results and (results[0].reason, results[0].canceled) == ("canceled", True)
    assert gone(int(pid_file.read_text()))


def test_a_job_ignoring_sigterm_is_killed_after_the_grace(tmp_path: Path) -> None:
    body = "#!/bin/sh\ntrap '' TERM\necho ignoring\nwhile :; do sleep 0.05; done\n"
    path = install(tmp_path / "jobs", "stubborn", body)
    started = time.monotonic()
    outcome = ExecutableJob("stubborn", path, kill_grace=0.2).run(context(timeout=0.3))
    assert time.monotonic() - started < 2
    assert (outcome.reason, outcome.output) == ("timed out after 0.3 s", "ignoring\n")


def test_a_background_process_holding_stdout_does_not_hold_the_job(tmp_path: Path) -> None:
    started = time.monotonic()
    outcome = run_script(tmp_path, "#!/bin/sh\nsleep 300 &\necho $!\n")
    psutil.Process(int(outcome.output)).kill()
    assert outcome.status == "done"
    assert time.monotonic() - started < 2


def test_output_tail_keeps_only_the_last_characters() -> None:
    tail = OutputTail(5)
    for chunk in ("abc", "defg", "", "h"):
        tail.add(chunk)
    assert tail.text() == "defgh"
    tail.add("0123456789")
    assert (tail.text(), tail.size) == ("56789", 5)


# --- Python callables ---------------------------------------------------------------------------------

def test_a_callable_returns_bounded_output() -> None:
    assert CallableJob("c", lambda context: "x" * 10 + "end").run(context(output_limit=5)) == \
        Outcome("done", output="x" * 2 + "end")
    assert CallableJob("c", lambda context: None).run(context()) == Outcome("done")


def test_a_callable_exception_gives_its_type_message_and_traceback() -> None:
    def failing(context: JobContext) -> None:
        raise ValueError("no campaign 2")

    outcome = CallableJob("c", failing).run(context())
    assert (outcome.status, outcome.reason) == ("err", "ValueError: no campaign 2")
    assert "Traceback" in outcome.output and "failing" in outcome.output

    def refusing(context: JobContext) -> None:
        raise JobFailed("campaign 2 is over", output="details")

    assert CallableJob("c", refusing).run(context()) == Outcome("err", "campaign 2 is over", output="details")


def test_a_callable_past_its_timeout_is_asked_to_stop_and_ends_timed_out() -> None:
    job_context = context(timeout=0.5)
    started = time.monotonic()
    outcome = CallableJob("c", lambda context: str(context.canceled.wait(5))).run(job_context)
    assert 0.5 <= time.monotonic() - started < 1.5
    assert outcome == Outcome("err", reason="timed out after 0.5 s", output="True", timed_out=True)
    assert job_context.canceled.is_set()


def test_a_callable_runs_in_the_calling_thread() -> None:
    threads: list[threading.Thread] = []
    CallableJob("c", lambda context: threads.append(threading.current_thread()) or None).run(context())
    assert threads == [threading.current_thread()]


def test_a_canceled_callable_can_stop_cooperatively() -> None:
    job_context = context()
    threading.Timer(0.1, job_context.canceled.set).start()
    outcome = CallableJob("c", lambda context: "stopped" if context.canceled.wait(5) else "").run(job_context)
    assert outcome == Outcome("err", reason="canceled", output="stopped", canceled=True)


# --- built-ins ----------------------------------------------------------------------------------------

def test_compact_couchdb_compacts_the_store() -> None:
    store = MemoryStore()
    registry = JobRegistry([])
    outcome = run_job(registry, context(job_name="compact_couchdb", services=Services(store=store)))
    assert (outcome.status, store.compactions) == ("done", 1)
    services = Services(store=store)
    extra = run_job(registry, context(job_name="compact_couchdb", arguments=["db"], services=services))
    assert extra == Outcome("err", reason="compact_couchdb takes no arguments")
    store.available = False
    down = run_job(registry, context(job_name="compact_couchdb", services=Services(store=store)))
    assert down.reason == "compaction failed: memory store is switched off"


class Hook(BaseHTTPRequestHandler):
    answer = 200
    bodies: list[Any] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        type(self).bodies.append(json.loads(self.rfile.read(length)))
        self.send_response(type(self).answer)
        self.end_headers()
        self.wfile.write(b"thanks")

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[type[Hook]]:
    handler = type("TestHook", (Hook,), {"bodies": [], "answer": 200})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    handler.url = f"http://127.0.0.1:{server.server_address[1]}/hook"  # type: ignore[attr-defined]
    yield handler
    server.shutdown()
    server.server_close()


def test_webhook_posts_the_task_or_the_payload(hook: Any) -> None:
    registry = JobRegistry([])
    outcome = run_job(registry, context(job_name="webhook", arguments=[hook.url]))
    assert outcome == Outcome("done", output=f"HTTP 200 from {hook.url}\nthanks")
    run_job(registry, context(job_name="webhook", arguments=[hook.url, {"campaign": 2}]))
    assert hook.bodies == [{key: value for key, value in DOCUMENT.items() if key != "_rev"}, {"campaign": 2}]


def test_webhook_failures_hide_credentials(hook: Any) -> None:
    hook.answer = 500
    secret = hook.url.replace("http://", "http://user:secret@") + "?token=secret"
    outcome = run_job(JobRegistry([]), context(job_name="webhook", arguments=[secret]))
    assert (outcome.status, outcome.reason) == ("err", f"HTTP 500 from {hook.url}")
    for arguments in ([], [1], ["a", "b", "c"], ["ftp://host/x"]):
        bad = run_job(JobRegistry([]), context(job_name="webhook", arguments=arguments))
        assert bad.reason is not None
        assert bad.reason.startswith("webhook needs arguments [url] or [url, payload]")
