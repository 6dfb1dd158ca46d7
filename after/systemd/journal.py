"""journalctl: argv for `after log` and the meaning of `after clean`. Pure.

journald cannot delete one unit's entries, so `after clean NAME` records the moment it ran (a "clean mark"
in the worker's state directory) and `after log NAME` shows only entries after it; `--all` ignores the mark
and an explicit `--since` replaces it. The journal itself keeps its own retention (journald.conf).
"""

from __future__ import annotations

from pathlib import Path

STATE_ROOT = Path("/var/lib/after")
MARK_FILE = "log-cleaned-at"
# journalctl -o values that make sense for a worker's log (journalctl(1) lists them all).
OUTPUTS = (
    "short", "short-full", "short-iso", "short-iso-precise", "short-precise", "short-monotonic",
    "short-unix", "verbose", "export", "json", "json-pretty", "json-sse", "json-seq", "cat", "with-unit",
)
TASK_FIELD = "AFTER_TASK_ID"


def mark_path(worker: str, state_root: Path = STATE_ROOT) -> Path:
    """Where `after clean` writes its mark: the worker's StateDirectory (/var/lib/after/NAME)."""
    return state_root / worker / MARK_FILE


def parse_mark(text: str) -> float | None:
    """The clean mark: seconds since the epoch, or None when the file is empty or damaged."""
    try:
        return float(text.strip())
    except ValueError:
        return None


def format_mark(epoch: float) -> str:
    return f"{epoch:.6f}\n"


def since_argument(since: str | None, mark: float | None) -> str | None:
    """An explicit --since wins; otherwise the clean mark, as journalctl's @EPOCH timestamp."""
    if since:
        return since
    if mark is not None:
        return f"@{mark:.6f}"
    return None


def log(
    unit: str,
    lines: int | None = None,
    follow: bool = False,
    since: str | None = None,
    output: str | None = None,
    task: str | None = None,
    pager: bool = True,
) -> list[str]:
    """journalctl for one worker; ``task`` keeps only the lines of that task (its AFTER_TASK_ID field)."""
    argv = ["journalctl", f"--unit={unit}"]
    if not pager:
        argv.append("--no-pager")
    if lines is not None:
        argv.append(f"--lines={lines}")
    if follow:
        argv.append("--follow")
    if since:
        argv.append(f"--since={since}")
    if output:
        argv.append(f"--output={output}")
    if task:
        argv.append(f"{TASK_FIELD}={task}")
    return argv


def tail(unit: str, lines: int, since: str | None = None) -> list[str]:
    """The last lines of a unit's log, for `after start` to print when the unit failed."""
    argv = ["journalctl", f"--unit={unit}", f"--lines={lines}", "--no-pager", "--quiet", "--output=short"]
    return [*argv, f"--since={since}"] if since else argv

