"""The command line (typer 0.7 compatible: no Annotated parameters). Thin: parsing and printing."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NoReturn, Optional

import typer

from after import __version__, config
from after.cli import service as cli_service
from after.cli import tasks
from after.contracts import Store
from after.core.invalid import InvalidTask
from after.core.task import Document, Status
from after.store.types import Conflict, StoreError, Unauthorized

app = typer.Typer(
    name="after",
    help="After: run named jobs at a date, driven by task documents in CouchDB.",
    context_settings={"help_option_names": ["-h", "--help"]},
    no_args_is_help=True,
    add_completion=True,
)
CONFIG_HELP = "Config file (default: $AFTER_CONFIG or /etc/after/after.toml)."


def show_version(value: bool) -> None:
    if value:
        typer.echo(f"after {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Optional[bool] = typer.Option(
        None, "--version", "-V", callback=show_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """After: run named jobs at a date, driven by task documents in CouchDB."""


def fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"after: {message}", err=True)
    raise typer.Exit(code)


def load_config(path: Optional[str]) -> config.Config:
    try:
        return config.load(path)
    except config.ConfigError as error:
        fail(str(error))


@contextmanager
def open_store(path: Optional[str]) -> Iterator[Store]:
    """The configured CouchDB; any store or validation error becomes one line on stderr."""
    from after.store.couch.client import CouchStore

    settings = load_config(path)
    store = CouchStore.from_config(settings.couchdb)
    try:
        yield store
    except Unauthorized as error:
        fail(f"{error} ({config_source(settings)})")
    except (StoreError, InvalidTask) as error:
        fail(str(error))
    finally:
        store.close()


def config_source(settings: config.Config) -> str:
    """Where the URL and user of an error came from: the config file, or that there was none."""
    if settings.source is not None:
        return f"config {settings.source}"
    return f"no config file: {config.DEFAULT_PATH} does not exist; give --config FILE or set AFTER_CONFIG"


@app.command()
def init(
    validation: str = typer.Option(
        "auto", "--validation",
        help="Check tasks at write: 'javascript' (validate_doc_update: bad tasks refused with 403 and a "
             "reason, worker statuses protected), 'erlang' (the same checks in Erlang, several times "
             "faster on Apache CouchDB; needs enable_erlang_query_server = true in its local.ini), 'auto' "
             "(erlang if the server's configuration enables it, else javascript) or 'none' (trust every "
             "writer).",
    ),
    config_file: Optional[str] = typer.Option(None, "--config", "-c", help=CONFIG_HELP),
) -> None:
    """Create the database and install the design documents (views, indexes, validation). Idempotent."""
    from after.initialize import Validation, initialize

    if validation not in set(Validation):
        fail(f"unknown --validation {validation!r} (known: {', '.join(Validation)})", 2)
    with open_store(config_file) as store:
        changes = initialize(store, Validation(validation))
    typer.echo("\n".join(changes) if changes else "nothing to do: the database is up to date")


@app.command()
def run(
    name: str = typer.Argument(..., help="Worker name (1-64 characters from A-Z a-z 0-9 _ . -)."),
    config_file: Optional[str] = typer.Option(None, "--config", "-c", help=CONFIG_HELP),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug messages too."),
) -> None:
    """Run the worker NAME in the foreground until Ctrl-C or SIGTERM."""
    from after.app import run_worker
    from after.systemd.logs import configure_logging

    settings = load_config(config_file)
    configure_logging(name, verbose)
    try:
        code = run_worker(name, settings)
    except ValueError as error:
        fail(str(error), 2)
    raise typer.Exit(code)


@app.command()
def add(
    worker: str = typer.Argument(..., help="Worker that runs the task."),
    job: str = typer.Argument(..., help="Name of an installed job."),
    arguments: Optional[list[str]] = typer.Argument(None, help="Job arguments (JSON values or strings)."),
    at: Optional[str] = typer.Option(None, "--at", help="Date, ISO 8601 (2030-01-31T08:00:00Z)."),
    delay: Optional[str] = typer.Option(None, "--in", help="Delay from now: 30s, 5m, 2h, 1d, PT10M."),
    timeout: Optional[str] = typer.Option(None, "--timeout", help="Job timeout, ISO 8601 (PT10M)."),
    task_id: Optional[str] = typer.Option(None, "--id", help="Document id (default: a random one)."),
    every: Optional[str] = typer.Option(None, "--every", help="Repeat this often from the date: 1h, PT15M."),
    times: Optional[int] = typer.Option(None, "--times", help="With --every: this many runs (no end)."),
    cron: Optional[str] = typer.Option(None, "--cron", help="Repeat at these times: '0 8 * * 1-5'."),
    tz: Optional[str] = typer.Option(None, "--tz", help="With --cron: time zone (UTC), Europe/Lisbon."),
    retry: Optional[int] = typer.Option(None, "--retry", help="Retry a failed run this many times."),
    retry_delay: Optional[str] = typer.Option(None, "--retry-delay", help="First retry delay: 10s."),
    missed: Optional[str] = typer.Option(None, "--missed", help="Missed during downtime: run_once, skip."),
    grace: Optional[str] = typer.Option(None, "--grace", help="With --missed skip: how late runs (5m)."),
    config_file: Optional[str] = typer.Option(None, "--config", "-c", help=CONFIG_HELP),
) -> None:
    """Create a task: run JOB with ARGUMENTS on WORKER at a date (default: now), maybe repeating."""
    with open_store(config_file) as store:
        now = time.time()
        date = tasks.when(now, at, delay) if at is not None or delay is not None else None
        first, repeat = tasks.series(now, date, every, times, cron, tz)
        extra = tasks.policies(retry, retry_delay, missed, grace)
        doc = tasks.new_task(worker, job, list(arguments or []), first, timeout, task_id, repeat, extra)
        store.put(doc)
        typer.echo(doc["_id"])


@app.command("tasks")
def list_tasks(
    worker: Optional[str] = typer.Option(None, "--worker", "-w", help="Only this worker's tasks."),
    status: Optional[str] = typer.Option(None, "--status", "-s", help="Only tasks with this status."),
    limit: int = typer.Option(100, "--limit", "-n", help="At most this many tasks."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON documents instead of a table."),
    config_file: Optional[str] = typer.Option(None, "--config", "-c", help=CONFIG_HELP),
) -> None:
    """List tasks, by worker and date."""
    if status is not None and status not in set(Status):
        fail(f"unknown status {status!r} (known: {', '.join(Status)})", 2)
    with open_store(config_file) as store:
        docs = store.tasks(worker, status, limit)
    typer.echo(json.dumps(docs, indent=2) if as_json else tasks.table(docs))


@app.command()
def show(
    task_id: str = typer.Argument(..., help="Task document id."),
    config_file: Optional[str] = typer.Option(None, "--config", "-c", help=CONFIG_HELP),
) -> None:
    """Print one task document as JSON."""
    with open_store(config_file) as store:
        typer.echo(json.dumps(fetch(store, task_id), indent=2))


@app.command()
def cancel(
    task_id: str = typer.Argument(..., help="Task document id."),
    config_file: Optional[str] = typer.Option(None, "--config", "-c", help=CONFIG_HELP),
) -> None:
    """Cancel a task: it will not run; a running job is stopped."""
    with open_store(config_file) as store:
        update(store, task_id, lambda doc: tasks.with_status(doc, Status.CANCEL))
    typer.echo(f"{task_id}: cancel requested")


@app.command()
def reschedule(
    task_id: str = typer.Argument(..., help="Task document id."),
    at: Optional[str] = typer.Option(None, "--at", help="New date, ISO 8601."),
    delay: Optional[str] = typer.Option(None, "--in", help="New date as a delay from now: 30s, 5m, 2h."),
    config_file: Optional[str] = typer.Option(None, "--config", "-c", help=CONFIG_HELP),
) -> None:
    """Run a task again (also a done, failed or canceled one), at a new date or now."""
    with open_store(config_file) as store:
        date = tasks.when(time.time(), at, delay)
        update(store, task_id, lambda doc: tasks.with_status(doc, Status.RESCHEDULE, date))
    typer.echo(f"{task_id}: rescheduled")


def fetch(store: Store, task_id: str) -> Document:
    doc = store.get(task_id)
    if doc is None:
        fail(f"no task with id {task_id!r}")
    return doc


def update(store: Store, task_id: str, change: Callable[[Document], Document], attempts: int = 5) -> None:
    """Apply ``change`` to the current revision; the worker may write in between, so retry on 409."""
    for _ in range(attempts):
        try:
            store.put(change(fetch(store, task_id)))
            return
        except Conflict:
            continue
    fail(f"task {task_id} keeps changing; try again")


@app.command("list")
def list_workers(
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list instead of the table."),
    config_file: Optional[str] = typer.Option(None, "--config", "-c", help=CONFIG_HELP),
) -> None:
    """List every worker process on every host (from CouchDB), with this host's after@ units."""
    import socket

    from after.cli import workers_view

    presence, tasks, remote_problem = read_presence(config_file)
    local, local_problem = cli_service.local_instances(cli_service.SYSTEM)
    if remote_problem and local_problem:
        fail(f"{remote_problem}; {local_problem}")
    if remote_problem:
        typer.echo(f"after: {remote_problem}: only this host's units are listed", err=True)
    rows = workers_view.merge(presence, local, socket.gethostname(), time.time(), tasks)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
    elif not rows:
        typer.echo("no after@ workers: none reported to CouchDB, none loaded here "
                   "(start one with: after start NAME)")
    else:
        typer.echo(workers_view.table(rows))


def read_presence(config_file: Optional[str]) -> tuple[list[Document], Optional[dict[str, dict[str, int]]],
                                                         Optional[str]]:
    """The presence documents and task counts, or why they could not be read."""
    from after.store.couch.client import CouchStore
    from after.worker.presence import PREFIX

    try:
        settings = config.load(config_file)
        store = CouchStore.from_config(settings.couchdb)
    except config.ConfigError as error:
        return [], None, f"cannot read the workers' presence in CouchDB ({error})"
    try:
        return store.documents(PREFIX), store.status_counts(), None
    except StoreError as error:
        return [], None, f"cannot read the workers' presence in CouchDB ({error})"
    finally:
        store.close()


@app.command()
def metrics(
    output: Optional[str] = typer.Option(
        None, "--output", "-o", metavar="FILE",
        help="Write to FILE (a temporary file renamed over it) instead of printing: for node_exporter's "
             "textfile collector, e.g. /var/lib/prometheus/node-exporter/after.prom."),
    config_file: Optional[str] = typer.Option(None, "--config", "-c", help=CONFIG_HELP),
) -> None:
    """Print After's metrics in Prometheus's text format: tasks by status, lateness, workers alive."""
    from pathlib import Path

    from after.monitoring import metrics as prometheus
    from after.store.couch.client import CouchStore

    settings = load_config(config_file)
    store = CouchStore.from_config(settings.couchdb)
    problem = None
    try:
        snapshot = prometheus.collect(store, time.time())
    except (StoreError, InvalidTask) as error:
        problem, snapshot = str(error), prometheus.Snapshot(time.time(), up=False)
    finally:
        store.close()
    text = prometheus.render(snapshot)
    try:
        prometheus.write_atomically(Path(output), text) if output else typer.echo(text, nl=False)
    except OSError as error:
        fail(f"cannot write {output}: {error.strerror}")
    if problem:
        fail(problem)


cli_service.register(app)


def main() -> None:
    app(prog_name="after")


if __name__ == "__main__":
    main()
