"""The table of figures: as text for the terminal, and as ``tests/fault/CHAOS.md``."""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import UTC, datetime

from tests.fault.chaos.figures import Figures

HEADERS = ("scenario", "tasks", "lost", "unrecorded duplicates", "recorded reruns", "conflicts left",
           "lateness p50 / p99 ms", "seconds")


def row(figures: Figures) -> tuple[str, ...]:
    if figures.error is not None and figures.tasks == 0:
        return (figures.scenario, "-", "-", "-", "-", "-", "-", f"{figures.seconds:.0f}")
    return (figures.scenario, str(figures.tasks), str(figures.lost), str(figures.unrecorded),
            str(figures.recorded), str(figures.conflicts), f"{figures.p50_ms:.0f} / {figures.p99_ms:.0f}",
            f"{figures.seconds:.0f}")


def table(found: Sequence[Figures]) -> str:
    rows = [HEADERS, *(row(figures) for figures in found)]
    widths = [max(len(cells[column]) for cells in rows) for column in range(len(HEADERS))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip()
             for cells in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def notes(found: Sequence[Figures]) -> list[str]:
    """One bullet per scenario: its notes, its error, and examples of what went wrong."""
    lines = []
    for figures in found:
        text = "; ".join(figures.notes)
        if figures.error:
            text += ("; " if text else "") + f"ERROR: {figures.error}"
        lines.append(f"- **{figures.scenario}**: {text}")
        for key, values in figures.examples.items():
            lines.append(f"  - {key}: " + "; ".join(values))
    return lines


def markdown(found: Sequence[Figures], seconds: float, load: Sequence[float] = ()) -> str:
    """The page; ``load``: the 1-minute load averages seen during the run (other work on the machine)."""
    busy = f" (1-minute load average {min(load):.0f}-{max(load):.0f} during the run)" if load else ""
    head = [
        "# Chaos",
        "",
        f"Written by `make chaos` (`python -m tests.fault.chaos`) on "
        f"{datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}, in {seconds / 60:.1f} minutes, on a machine "
        f"of {os.cpu_count()} cores shared with other work{busy}: Apache CouchDB 3.5.0 (one node, or a "
        "3-node cluster with n=3), worker processes of the name `manobi`, every job one that records "
        "its start. What each scenario does: the docstrings of `tests/fault/chaos/scenarios_*.py`; how "
        "each figure is counted: `tests/fault/chaos/figures.py`. Targets: 0 lost, 0 unrecorded "
        "duplicates, 0 conflicts left; lateness is reported, not targeted (a cluster and its workers on "
        "2 cores are CPU bound).",
        "",
        "| " + " | ".join(HEADERS) + " |",
        "|" + "---|" * len(HEADERS),
        *("| " + " | ".join(row(figures)) + " |" for figures in found),
        "",
        "Notes:",
        "",
    ]
    return "\n".join([*head, *notes(found), ""])
