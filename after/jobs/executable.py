"""Executable jobs: a file in a jobs directory, run without a shell.

The job gets ``[path, *arguments]`` as argv (strings as-is, anything else as its JSON text), the task
document as JSON on stdin, the worker's environment plus ``AFTER_TASK_ID``, ``AFTER_WORKER``,
``AFTER_JOB`` and ``AFTER_ATTEMPT``, and a session (process group) of its own. Its stdout and stderr
are read together from one thread into a bounded tail. On timeout or cancel the whole process tree is
killed with ``kill_tree``. Exit 0 means done.
"""

from __future__ import annotations

import codecs
import contextlib
import json
import logging
import math
import os
import selectors
import signal
import subprocess
import tempfile
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, ClassVar

import psutil

from after.contracts import JobContext, Outcome

log = logging.getLogger(__name__)

KILL_GRACE = 2.0  # seconds between SIGTERM and SIGKILL when a tree is killed
TICK = 0.1  # how often a running job checks for cancellation
DRAIN = 0.5  # after the job exits, how long leftover processes may keep its output pipes open
READ_SIZE = 65536
STDERR_KEPT = 4096  # characters of stderr kept apart, for the last line in the reason
REASON_LINE_LIMIT = 200


class OutputTail:
    """The last ``limit`` characters of a stream of text; memory stays around ``limit``."""

    def __init__(self, limit: int) -> None:
        self.limit = max(0, limit)
        self.parts: deque[str] = deque()
        self.size = 0

    def add(self, text: str) -> None:
        if not text or self.limit == 0:
            return
        if len(text) >= self.limit:
            self.parts.clear()
            self.size = 0
            text = text[-self.limit:]
        self.parts.append(text)
        self.size += len(text)
        while self.size - len(self.parts[0]) >= self.limit:
            self.size -= len(self.parts.popleft())

    def text(self) -> str:
        return "".join(self.parts)[-self.limit:] if self.limit else ""


def job_argv(path: Path, arguments: Iterable[Any]) -> list[str]:
    """``[path, *arguments]``: strings as-is, other values as JSON. Raises ValueError for NUL bytes."""
    program = str(path)
    argv = [program if os.sep in program else os.path.join(os.curdir, program)]  # never searched in PATH
    for index, argument in enumerate(arguments):
        text = argument if isinstance(argument, str) else json.dumps(argument, ensure_ascii=False)
        argv.append(passable(text, f"argument {index}", "argv"))
    return argv


def passable(text: str, what: str, where: str) -> str:
    """``text`` if a process can receive it; else ValueError naming ``what`` cannot go in ``where``."""
    if "\0" in text:
        raise ValueError(f"{what} contains a NUL character, which {where} cannot carry")
    try:
        os.fsencode(text)
    except UnicodeEncodeError:
        raise ValueError(f"{what} is not valid text (a lone surrogate), which {where} cannot carry") from None
    return text


def job_environment(context: JobContext) -> dict[str, str]:
    return {
        **os.environ,
        "AFTER_TASK_ID": passable(context.task_id, "the task id", "the environment"),
        "AFTER_WORKER": context.worker,
        "AFTER_JOB": context.job_name,
        "AFTER_ATTEMPT": str(context.attempt),
    }


def deadline_after(timeout: float) -> float:
    """The monotonic time ``timeout`` seconds from now; math.inf for an infinite timeout."""
    return time.monotonic() + timeout if math.isfinite(timeout) else math.inf


def format_seconds(seconds: float) -> str:
    return f"{seconds:.1f}" if round(seconds, 1) == seconds or seconds >= 10 else f"{seconds:.3g}"


@dataclass
class ExecutableJob:
    name: str
    path: Path
    kill_grace: float = KILL_GRACE
    notes_its_start: ClassVar[bool] = True  # calls ``context.starting`` just before the fork

    def run(self, context: JobContext) -> Outcome:
        try:
            argv = job_argv(self.path, context.arguments)
            environment = job_environment(context)
        except ValueError as error:
            return Outcome("err", reason=str(error))
        try:
            process = start(argv, environment, context)
        except OSError as error:
            return Outcome("err", reason=f"cannot start {self.path}: {error.strerror or error}")
        with process:
            return Supervision(process, context, self.kill_grace).run()


def start(argv: list[str], environment: dict[str, str], context: JobContext) -> subprocess.Popen[bytes]:
    # A temporary file rather than a pipe: a job that never reads stdin cannot block the worker.
    with tempfile.TemporaryFile() as stdin:
        stdin.write(document_bytes(context.document))
        stdin.seek(0)
        context.starting()  # the start journal: as late as can be, but before the process exists
        return subprocess.Popen(
            argv, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=environment, start_new_session=True, close_fds=True,
        )


def document_bytes(document: Any) -> bytes:
    """The task as UTF-8 JSON; one holding text UTF-8 cannot carry (a lone surrogate) as ASCII JSON."""
    try:
        return json.dumps(document, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return json.dumps(document, ensure_ascii=True).encode()


class Supervision:
    """One run of a started process: read its output, enforce timeout and cancel, build the Outcome."""

    def __init__(self, process: subprocess.Popen[bytes], context: JobContext, kill_grace: float) -> None:
        self.process = process
        self.context = context
        self.kill_grace = kill_grace
        self.output = OutputTail(context.output_limit)
        self.stderr = OutputTail(STDERR_KEPT)
        self.selector = selectors.DefaultSelector()
        self.open_streams = 0
        for stream, tails in ((process.stdout, (self.output,)), (process.stderr, (self.output, self.stderr))):
            self.register(stream, tails)
        self.pidfd = open_pidfd(process.pid)
        if self.pidfd is not None:  # wakes the loop the moment the process exits
            self.selector.register(self.pidfd, selectors.EVENT_READ, None)

    def register(self, stream: IO[bytes] | None, tails: tuple[OutputTail, ...]) -> None:
        assert stream is not None
        os.set_blocking(stream.fileno(), False)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.selector.register(stream.fileno(), selectors.EVENT_READ, (decoder, tails))
        self.open_streams += 1

    def run(self) -> Outcome:
        try:
            stop = self.wait_for_exit()
            if stop is not None:
                log.info("job %s of task %s: %s, killing its process tree",
                         self.context.job_name, self.context.task_id, stop)
                kill_tree(self.process.pid, self.kill_grace)
            self.process.wait()
            self.drain()
        finally:
            self.selector.close()
            if self.pidfd is not None:
                os.close(self.pidfd)
        return self.outcome(stop)

    def wait_for_exit(self) -> str | None:
        """None when the process exited on its own, else "timeout" or "canceled"."""
        deadline = deadline_after(self.context.timeout)
        while self.process.poll() is None:
            if self.context.canceled.is_set():
                return "canceled"
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return "timeout"
            self.pump(min(remaining, TICK))
        return None

    def drain(self) -> None:
        deadline = time.monotonic() + DRAIN
        while self.open_streams and (remaining := deadline - time.monotonic()) > 0:
            self.pump(remaining)
        if self.open_streams:
            log.warning("job %s of task %s left processes holding its output open; their output is dropped",
                        self.context.job_name, self.context.task_id)

    def pump(self, timeout: float) -> None:
        for key, _ in self.selector.select(timeout):
            if key.data is None:  # the pidfd: the process exited
                continue
            decoder, tails = key.data
            try:
                chunk = os.read(key.fd, READ_SIZE)
            except BlockingIOError:
                continue
            text = decoder.decode(chunk, final=not chunk)
            for tail in tails:
                tail.add(text)
            if not chunk:
                self.selector.unregister(key.fd)
                self.open_streams -= 1

    def outcome(self, stop: str | None) -> Outcome:
        output = self.output.text()
        if stop == "canceled":
            return Outcome("err", reason="canceled", output=output, canceled=True)
        if stop == "timeout":
            reason = f"timed out after {format_seconds(self.context.timeout)} s"
            return Outcome("err", reason=reason, output=output, timed_out=True)
        code = self.process.returncode
        if code == 0:
            return Outcome("done", exit_code=0, output=output)
        reason = f"exit code {code}" if code > 0 else f"killed by signal {-code} ({signal_name(-code)})"
        last = last_line(self.stderr.text())
        return Outcome("err", reason=f"{reason}: {last}" if last else reason,
                       exit_code=code if code > 0 else None, output=output)


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return "unknown signal"


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return ""
    line = lines[-1]
    return line if len(line) <= REASON_LINE_LIMIT else line[:REASON_LINE_LIMIT - 3] + "..."


def open_pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):  # not Linux >= 5.3: the loop polls every TICK instead
        return None


def kill_tree(pid: int, grace: float = KILL_GRACE) -> None:
    """Kill the process ``pid`` and all its descendants, including those in sessions of their own.

    The tree is frozen first (SIGSTOP, parents before children) so that nothing forks or escapes by
    re-parenting while it is collected; then every process gets SIGTERM (and SIGCONT), and whatever
    is still alive after ``grace`` seconds gets SIGKILL. If ``pid`` leads a process group, the group is
    signalled too, which reaches members whose parent already exited. Zombies count as gone; the
    caller reaps its own child.
    """
    try:
        root = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return
    group = pid if safe_getpgid(pid) == pid else None
    tree = freeze_tree(root)
    for sig in (signal.SIGTERM, signal.SIGCONT):
        send(tree, sig, group)
    alive = wait_gone(tree, grace)
    if alive or group is not None:
        send(alive, signal.SIGKILL, group)
        wait_gone(alive, grace)


def freeze_tree(root: psutil.Process) -> list[psutil.Process]:
    frozen: dict[int, psutil.Process] = {}
    pending = [root]
    while pending:
        process = pending.pop()
        if process.pid in frozen:
            continue
        try:
            process.suspend()
            frozen[process.pid] = process
            pending.extend(process.children())
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return list(frozen.values())


def send(processes: Iterable[psutil.Process], sig: int, group: int | None) -> None:
    if group is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, sig)
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            process.send_signal(sig)


def wait_gone(processes: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait until every process has exited (or is a zombie); return those still alive at ``timeout``."""
    deadline = time.monotonic() + timeout
    delay = 0.005
    alive = processes
    while True:
        alive = [process for process in alive if is_alive(process)]
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 2, 0.1)


def is_alive(process: psutil.Process) -> bool:
    try:
        return bool(process.status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def safe_getpgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None
