"""The command line: ``after`` (``commands``), the systemd verbs (``service``), the task commands' pure
helpers (``tasks``), ``after list`` (``workers_view``) and the one module that runs commands on this
machine (``machine``)."""

from after.cli.commands import app, main

__all__ = ["app", "main"]
