"""CLI verbs that drive the after@NAME systemd units: start, stop, log, clean (issue 3), and the local part
of ``after list`` (``local_instances``; the command itself is in ``after.cli``).

Argv comes from after.systemd.systemctl and after.systemd.journal (pure); after.cli.machine runs
it. typer 0.7: no Annotated.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NoReturn, Optional

import typer

from after.cli.machine import CommandMissing, RealSystem, System
from after.systemd import instances, journal, systemctl

SYSTEM: System = RealSystem()


def complete_workers(incomplete: str) -> list[str]:
    """Shell completion: the names of the loaded after@ instances. typer 0.7 forwards ``autocompletion=``
    to click (with a DeprecationWarning of its own) but drops ``shell_complete=``."""
    try:
        listed = SYSTEM.run(systemctl.list_units()).stdout
    except CommandMissing:
        return []
    names = (systemctl.worker_name(unit) for unit in systemctl.parse_list_units(listed))
    return [name for name in names if name.startswith(incomplete)]


NAMES = typer.Argument(..., metavar="NAME...", help="Worker names.", autocompletion=complete_workers)
NAME = typer.Argument(..., help="Worker name.", autocompletion=complete_workers)
NOT_BOOTED = "systemd is not running on this machine; run the worker in the foreground: after run NAME"
NOT_INSTALLED = "{unit} is not installed (apt install after, or make install; then systemctl daemon-reload)"


def fail(message: str) -> NoReturn:
    typer.echo(f"after: {message}", err=True)
    raise typer.Exit(1)


def units_for(workers: Sequence[str]) -> list[str]:
    try:
        return [systemctl.unit_name(worker) for worker in workers]
    except systemctl.InvalidName as error:
        fail(str(error))


def require_systemd(system: System) -> None:
    if not system.booted():
        fail(NOT_BOOTED)


def states(system: System, units: Sequence[str]) -> list[dict[str, str]]:
    result = system.run(systemctl.show(units))
    if result.returncode != 0:
        fail(f"systemctl show failed: {result.stderr.strip()}")
    return systemctl.parse_show(result.stdout)


def require_installed(system: System, units: Sequence[str]) -> None:
    for state in states(system, units):
        if state.get("LoadState") != "loaded":
            fail(NOT_INSTALLED.format(unit=systemctl.TEMPLATE))


def start_units(system: System, workers: Sequence[str], enable: bool, lines: int) -> int:
    """Start the workers; for each that did not become active, print why and its last log lines."""
    units = units_for(workers)
    require_systemd(system)
    require_installed(system, units)
    since = f"@{system.now():.6f}"
    system.run(systemctl.start(units, enable))
    failed = 0
    for state in states(system, units):
        unit = state.get("Id", "?")
        if systemctl.is_active(state):
            typer.echo(f"{unit}: active, pid {state.get('MainPID', '?')}")
            continue
        failed += 1
        typer.echo(f"after: {unit} failed to start: {systemctl.failure_reason(state)}", err=True)
        tail = system.run(journal.tail(unit, lines, since)).stdout.rstrip()
        if tail:
            typer.echo(tail, err=True)
    return 1 if failed else 0


def stop_units(system: System, workers: Sequence[str], disable: bool) -> int:
    units = units_for(workers)
    require_systemd(system)
    require_installed(system, units)
    result = system.run(systemctl.stop(units, disable))
    if result.returncode != 0:
        fail(f"systemctl stop failed: {result.stderr.strip()}")
    for state in states(system, units):
        typer.echo(f"{state.get('Id', '?')}: {state.get('ActiveState', '?')}")
    return 0


def log_command(system: System, worker: str, options: dict[str, Any]) -> NoReturn:
    (unit,) = units_for([worker])
    require_systemd(system)
    output = options.get("output")
    if output is not None and output not in journal.OUTPUTS:
        fail(f"unknown output format {output!r} (one of: {', '.join(journal.OUTPUTS)})")
    mark_text = None if options.get("all") else system.read_text(journal.mark_path(worker))
    mark = journal.parse_mark(mark_text or "")
    argv = journal.log(
        unit, lines=options.get("lines"), follow=bool(options.get("follow")), output=output,
        since=journal.since_argument(options.get("since"), mark), task=options.get("task"),
        pager=not options.get("no_pager"),
    )
    system.replace(argv)


def clean_command(system: System, worker: str) -> int:
    units_for([worker])
    now = system.now()
    path = journal.mark_path(worker)
    try:
        system.write_text(path, journal.format_mark(now))
    except OSError as error:
        fail(f"cannot write {path}: {error.strerror} (run as root)")
    typer.echo(f"cleaned the log of {worker}: `after log {worker}` now shows only newer entries")
    return 0


def guarded(action: Any, *args: Any) -> None:
    """Run a verb; a missing systemctl/journalctl becomes a one-line error, the return value the exit code."""
    try:
        code = action(*args)
    except CommandMissing as error:
        fail(f"{error}; {NOT_BOOTED}")
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    """Add the service verbs to the main application."""
    app.command("start")(start)
    app.command("stop")(stop)
    app.command("log")(log)
    app.command("clean")(clean)


def start(
    names: list[str] = NAMES,
    enable: bool = typer.Option(False, "--enable", "-e", help="Also start them at every boot."),
    lines: int = typer.Option(20, "--lines", "-n", help="Log lines to print when a worker fails to start."),
) -> None:
    """Start workers (after@NAME.service); waits until each reports ready."""
    guarded(start_units, SYSTEM, names, enable, lines)


def stop(
    names: list[str] = NAMES,
    disable: bool = typer.Option(False, "--disable", "-d", help="Also stop starting them at boot."),
) -> None:
    """Stop workers: running jobs get the configured grace period to finish."""
    guarded(stop_units, SYSTEM, names, disable)


def log(
    name: str = NAME,
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing new lines."),
    lines: Optional[int] = typer.Option(None, "--lines", "-n", help="Show only the last N lines."),
    since: Optional[str] = typer.Option(None, "--since", "-S", help="journalctl time, e.g. '1 hour ago'."),
    output: Optional[str] = typer.Option(None, "--output", "-o", help="journalctl format: short, json..."),
    task: Optional[str] = typer.Option(None, "--task", "-t", help="Only the lines of this task id."),
    everything: bool = typer.Option(False, "--all", "-a", help="Include lines from before `after clean`."),
    no_pager: bool = typer.Option(False, "--no-pager", help="Do not pipe the output into a pager."),
) -> None:
    """Show a worker's log (journalctl -u after@NAME)."""
    options = {"follow": follow, "lines": lines, "since": since, "output": output, "task": task}
    guarded(log_command, SYSTEM, name, {**options, "all": everything, "no_pager": no_pager})


def clean(name: str = NAME) -> None:
    """Clean a worker's log: `after log NAME` shows only entries written after this."""
    guarded(clean_command, SYSTEM, name)


def local_instances(system: System) -> tuple[list[dict[str, Any]], str | None]:
    """This host's after@ units as ``after.systemd.instances`` rows (without task counts), or why there
    are none to show (no systemd here, no systemctl): the local part of ``after list`` (``after.cli``)."""
    if not system.booted():
        return [], NOT_BOOTED
    try:
        listed = system.run(systemctl.list_units())
        units = systemctl.parse_list_units(listed.stdout)
        found = states(system, units) if units else []
    except CommandMissing as error:
        return [], f"{error}; {NOT_BOOTED}"
    now = system.now()
    items = []
    for state in found:
        pid = int(state.get("MainPID") or 0)
        items.append(instances.row(state, system.stats(pid) if pid else None, None, now))
    return items, None
