"""The results table (plain text for the terminal, Markdown for bench/RESULTS.md) and the machine."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from bench.common import Row, fmt

TEXT_WIDTH = 48  # a text shown instead of an After figure (a skip, a failure) is cut here; notes have it all
HEADERS = ["benchmark", "server", "configuration", "figure", "After", "APScheduler", "ratio", "target", "met"]


def cells(row: Row, previous: Row | None = None) -> list[str]:
    """A row's cells; the benchmark, server and configuration are left blank when they repeat."""
    met = {True: "yes", False: "NO", None: ""}[row.met]
    text = row.value if len(row.value) <= TEXT_WIDTH else row.value[:TEXT_WIDTH - 3] + "..."
    mine = fmt(row.after, row.digits) if row.after is not None else (text or "-")
    ratio = "-" if row.ratio is None else f"{row.ratio:,.2f}"
    group = [row.benchmark, row.server, row.configuration]
    if previous is not None and group == [previous.benchmark, previous.server, previous.configuration]:
        group = ["", "", ""]
    return [*group, row.figure, mine, fmt(row.peer, row.digits), ratio, row.target, met]


def all_cells(rows: list[Row]) -> list[list[str]]:
    return [cells(row, rows[index - 1] if index else None) for index, row in enumerate(rows)]


def render_table(rows: list[Row]) -> str:
    table = [HEADERS, *all_cells(rows)]
    widths = [max(len(line[column]) for line in table) for column in range(len(HEADERS))]
    lines = ["  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True)).rstrip()
             for line in table]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def render_notes(rows: list[Row]) -> str:
    """Each row's notes under its benchmark, server and configuration, for the terminal."""
    lines = []
    for row in rows:
        if row.notes:
            lines.append(f"  {row.benchmark}, {row.server}, {row.configuration}:")
            lines += [f"    - {note}" for note in row.notes]
    return "\n".join(lines)


def first_line(argv: list[str]) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout.strip().splitlines()[0]
    except (OSError, IndexError, subprocess.SubprocessError):
        return "unknown"


def proc_field(path: str, key: str) -> str:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                return line[len(key):].lstrip(":= \t").strip('"')
    except OSError:
        pass
    return "unknown"


def package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def describe_machine(servers: dict[str, str]) -> dict[str, str]:
    """The machine and the versions measured; ``servers`` maps a server kind to its version."""
    memory_kb = proc_field("/proc/meminfo", "MemTotal").split()[0]
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": first_line(["nproc"]),
        "cpu": proc_field("/proc/cpuinfo", "model name"),
        "memory": f"{int(memory_kb) / 1024 / 1024:.1f} GiB" if memory_kb.isdigit() else "unknown",
        "kernel": platform.release(),
        "os": proc_field("/etc/os-release", "PRETTY_NAME"),
        "python": platform.python_version(),
        "httpx": package_version("httpx"),
        "APScheduler": package_version("APScheduler"),
        "node": first_line(["node", "--version"]),
        **{f"server {kind}": text for kind, text in servers.items()},
        "load average at start": " ".join(f"{value:.2f}" for value in os.getloadavg()),
    }


def markdown_table(rows: list[Row]) -> list[str]:
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(text.replace("|", "/") for text in line) + " |" for line in all_cells(rows)]
    return lines


def render_markdown(rows: list[Row], runs: dict[str, Any], machine: dict[str, str]) -> str:
    lines = ["# After: benchmark results", "",
             "Written by `make bench` (`python -m bench.run`); see bench/README.md for how each figure is "
             "measured. Ratio = After / APScheduler (APScheduler 3.11 in memory, same jobs, same run).", "",
             *markdown_table(rows), "", "## Notes", ""]
    lines += [f"- **{row.benchmark}, {row.server}, {row.configuration}**: {note}"
              for row in rows for note in row.notes]
    lines += ["", "## Runs", ""]
    for name, run in runs.items():
        lines.append(f"- **{name}**: {run['seconds']:.0f} s on {run['machine']['date']}")
        lines += [f"  - {note}" for note in run.get("setup", [])]
    lines += ["", "## Machine (of this run)", ""]
    lines += [f"- {key}: {value}" for key, value in machine.items()]
    return "\n".join(lines) + "\n"
