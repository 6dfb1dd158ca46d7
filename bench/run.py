"""``python -m bench.run``: After's benchmarks on Apache CouchDB and on pouchdb-server, beside APScheduler.

    python -m bench.run                    every benchmark on every server; results to bench/RESULTS.md
    python -m bench.run --only burst       one benchmark (repeatable); its rows replace the old ones
    python -m bench.run --server pouchdb   one server (repeatable)
    python -m bench.run --quick            smaller sizes while developing; prints only, writes nothing

Each server is started here (a free loopback port, a temporary data directory) and stopped after its
benchmarks, as is every worker process, also when a benchmark fails. A server this machine cannot start
(Apache CouchDB needs ../shared/couchdb) gets a "skipped" row per benchmark with the reason.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

from bench import ack, catchup, executable, latency, memory, throughput
from bench.common import Context, Row
from bench.report import describe_machine, render_markdown, render_notes, render_table
from tests.server import ServerKind, TestServer, missing, start_server

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"
RESULTS_JSON = HERE / "results.json"
BENCHMARKS: dict[str, Callable[[Context], list[Row]]] = {
    "lateness": latency.run_lateness,
    "burst": latency.run_burst,
    "throughput": throughput.run,
    "ack": ack.run,
    "executable": executable.run,
    "catch-up": catchup.run,
    "memory": memory.run,
    "memory-recurring": memory.run_recurring,
}
SERVERS = [ServerKind.COUCHDB, ServerKind.POUCHDB]


@dataclass
class Found:
    """What a run learned besides its rows: server versions, seconds per run, setup notes."""

    servers: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)  # by "benchmark (server)"
    notes: list[str] = field(default_factory=list)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=list(BENCHMARKS), action="append",
                        help="run only this benchmark (repeatable)")
    parser.add_argument("--server", choices=[kind.value for kind in SERVERS], action="append",
                        help="run only on this server (repeatable; default: both)")
    parser.add_argument("--quick", action="store_true", help="smaller sizes; print, do not write results")
    parser.add_argument("--memory-size", type=int, default=1_000_000,
                        help="far-future tasks for the large memory run (default 1,000,000)")
    return parser.parse_args(argv)


def run_one(name: str, context: Context) -> tuple[list[Row], float]:
    """One benchmark on one server; a failure becomes a FAILED row and the others still run."""
    print(f"== {name} on {context.kind}", flush=True)
    started, load = time.monotonic(), os.getloadavg()[0]
    try:
        produced = BENCHMARKS[name](context)
    except Exception as error:
        logging.exception("benchmark %s on %s failed", name, context.kind)
        message = f"{type(error).__name__}: {error}"
        produced = [Row(name, context.kind, "FAILED", value=message.splitlines()[0], met=False,
                        notes=[message[:2000]])]
    seconds = time.monotonic() - started
    context.note(name, f"1-minute load average {load:.2f} before, {os.getloadavg()[0]:.2f} after "
                 "(other processes share this machine)")
    print(render_table(produced), render_notes(produced), sep="\n", flush=True)
    return produced, seconds


def server_version(server: TestServer) -> str:
    try:
        body = httpx.get(server.url + "/", headers={"Accept": "application/json"}, timeout=5.0).json()
        return f"{server.kind.value} {body.get('version', 'unknown')}"
    except (httpx.HTTPError, ValueError):
        return "unknown"


def run_on(kind: ServerKind, names: list[str], args: argparse.Namespace, directory: Path,
           found: Found) -> list[Row]:
    """Every benchmark in ``names`` on one server; ``found`` collects seconds, notes and the version."""
    reason = missing(kind)
    if reason:
        return [Row(name, kind.value, "skipped", value=reason, notes=[reason]) for name in names]
    try:
        server = start_server(directory / kind.value, kind=kind)
    except Exception as error:  # the other server's benchmarks still run
        logging.exception("%s did not start", kind.value)
        return [Row(name, kind.value, "FAILED", value=f"the server did not start: {error}", met=False,
                    notes=[str(error)[:2000]]) for name in names]
    rows: list[Row] = []
    try:
        context = Context(server, directory, args.quick, {"memory_size": args.memory_size})
        found.servers[kind.value] = server_version(server)
        for name in names:
            produced, seconds = run_one(name, context)
            rows += produced
            found.seconds[f"{name} ({kind.value})"] = seconds
        found.notes += context.setup_notes
    finally:
        server.close()
    return rows


def in_order(rows: list[Row]) -> list[Row]:
    """Benchmark by benchmark, each server's rows side by side (sort is stable within a server)."""
    order, servers = list(BENCHMARKS), [kind.value for kind in SERVERS]

    def key(row: Row) -> tuple[int, int]:
        return (order.index(row.benchmark) if row.benchmark in order else 99,
                servers.index(row.server) if row.server in servers else 99)

    return sorted(rows, key=key)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    names = args.only or list(BENCHMARKS)
    kinds = [ServerKind(value) for value in args.server] if args.server else SERVERS
    directory = Path(tempfile.mkdtemp(prefix="after-bench-"))
    found = Found()
    rows: list[Row] = []
    try:
        for kind in kinds:
            rows += run_on(kind, names, args, directory, found)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    rows = in_order(rows)
    print("\n" + render_table(rows))
    if not args.quick:
        write_results(rows, found)
    return 0 if all(row.met is not False for row in rows) else 1


def merged(rows: list[Row]) -> list[Row]:
    """The earlier results of the (benchmark, server) pairs not run now, then this run's, in order."""
    ran = {(row.benchmark, row.server) for row in rows}
    kept: list[Row] = []
    if RESULTS_JSON.exists():
        for earlier in json.loads(RESULTS_JSON.read_text()).get("rows", []):
            try:
                row = Row(**earlier)
            except TypeError:  # written by an older harness with other columns: dropped
                continue
            if (row.benchmark, row.server) not in ran:
                kept.append(row)
    return in_order(kept + rows)


def write_results(rows: list[Row], found: Found) -> None:
    """bench/results.json (kept between runs, so ``--only`` can update one benchmark) and RESULTS.md."""
    machine = describe_machine(found.servers)
    earlier = json.loads(RESULTS_JSON.read_text()) if RESULTS_JSON.exists() else {}
    runs = {name: run for name, run in earlier.get("runs", {}).items() if name.endswith(")")}
    for name, seconds in found.seconds.items():
        runs[name] = {"seconds": seconds, "machine": machine,
                      "setup": [note for note in found.notes if note.startswith(name)]}
    every = merged(rows)
    payload = {"rows": [asdict(row) for row in every], "runs": runs}
    RESULTS_JSON.write_text(json.dumps(payload, indent=1) + "\n")
    RESULTS.write_text(render_markdown(every, runs, machine))
    print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    sys.exit(main())
