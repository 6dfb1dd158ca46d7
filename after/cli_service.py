"""CLI verbs that drive systemd units: start, stop, log, list, clean (issue 3)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the service verbs to the main application."""
