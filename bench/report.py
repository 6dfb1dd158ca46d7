"""The results table (plain text for the terminal, Markdown for bench/RESULTS.md) and the machine."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from bench.common import Row, fmt
from tests.server import ROOT

HEADERS = ["benchmark", "configuration", "p50 ms", "p99 ms", "max ms", "result", "target", "met"]


def cells(row: Row) -> list[str]:
    met = {True: "yes", False: "NO", None: ""}[row.met]
    return [row.benchmark, row.configuration, fmt(row.p50), fmt(row.p99), fmt(row.max), row.value,
            row.target, met]


def render_table(rows: list[Row]) -> str:
    table = [HEADERS, *[cells(row) for row in rows]]
    widths = [max(len(line[column]) for line in table) for column in range(len(HEADERS))]
    lines = ["  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True)) for line in table]
    lines.insert(1, "  ".join("-" * width for width in widths))
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


def describe_machine() -> dict[str, str]:
    memory_kb = proc_field("/proc/meminfo", "MemTotal").split()[0]
    pouch = json.loads((ROOT / "node_modules" / "pouchdb-server" / "package.json").read_text())["version"]
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": first_line(["nproc"]),
        "cpu": proc_field("/proc/cpuinfo", "model name"),
        "memory": f"{int(memory_kb) / 1024 / 1024:.1f} GiB" if memory_kb.isdigit() else "unknown",
        "kernel": platform.release(),
        "os": proc_field("/etc/os-release", "PRETTY_NAME"),
        "python": platform.python_version(),
        "httpx": version("httpx"),
        "node": first_line(["node", "--version"]),
        "pouchdb-server": pouch,
        "load average at start": " ".join(f"{value:.2f}" for value in os.getloadavg()),
    }


def markdown_table(rows: list[Row]) -> list[str]:
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(text.replace("|", "/") for text in cells(row)) + " |" for row in rows]
    return lines


def render_markdown(rows: list[Row], runs: dict[str, Any], machine: dict[str, str]) -> str:
    lines = ["# After: benchmark results", "",
             "Written by `make bench` (`python -m bench.run`); see bench/README.md for how each figure is "
             "measured.", "", *markdown_table(rows), "", "## Notes", ""]
    lines += [f"- **{row.benchmark}, {row.configuration}**: {note}" for row in rows for note in row.notes]
    lines += ["", "## Runs", ""]
    for name, run in runs.items():
        lines.append(f"- **{name}**: {run['seconds']:.0f} s on {run['machine']['date']}")
        lines += [f"  - {note}" for note in run.get("setup", [])]
    lines += ["", "## Machine (of this run)", ""]
    lines += [f"- {key}: {value}" for key, value in machine.items()]
    return "\n".join(lines) + "\n"
