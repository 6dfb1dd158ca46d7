"""``python -m bench.run``: After's benchmarks against real workers and a real pouchdb-server.

    python -m bench.run                  every benchmark, results to bench/RESULTS.md (+ results.json)
    python -m bench.run --only burst     one benchmark; its rows replace that benchmark's in the results
    python -m bench.run --quick          smaller sizes while developing; prints only, writes nothing

The server is started here (a free loopback port, a temporary data directory) and stopped at the end,
as is every worker process, also when a benchmark fails.
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
from dataclasses import asdict
from pathlib import Path

from bench import latency, memory, throughput
from bench.common import Context, Row
from bench.report import describe_machine, render_markdown, render_table
from tests.server import start_server

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"
RESULTS_JSON = HERE / "results.json"
BENCHMARKS: dict[str, Callable[[Context], list[Row]]] = {
    "lateness": latency.run_lateness,
    "burst": latency.run_burst,
    "throughput": throughput.run,
    "memory": memory.run,
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=sorted(BENCHMARKS), action="append",
                        help="run only this benchmark (repeatable)")
    parser.add_argument("--quick", action="store_true", help="smaller sizes; print, do not write results")
    parser.add_argument("--memory-size", type=int, default=1_000_000,
                        help="far-future tasks for the large memory run (default 1,000,000)")
    return parser.parse_args(argv)


def run_all(names: list[str], context: Context) -> tuple[list[Row], dict[str, float]]:
    rows: list[Row] = []
    seconds: dict[str, float] = {}
    for name in names:
        print(f"== {name}", flush=True)
        started, load = time.monotonic(), os.getloadavg()[0]
        try:
            produced = BENCHMARKS[name](context)
        except Exception as error:  # one failed benchmark is reported; the others still run
            logging.exception("benchmark %s failed", name)
            produced = [Row(name, "FAILED", value=f"{type(error).__name__}: {str(error)[:200]}", met=False)]
        seconds[name] = time.monotonic() - started
        context.setup_notes.append(f"{name}: 1-minute load average {load:.2f} before, "
                                   f"{os.getloadavg()[0]:.2f} after (other processes share this machine)")
        rows.extend(produced)
        print(render_table(produced), flush=True)
    return rows, seconds


def merged(rows: list[Row], names: list[str]) -> list[Row]:
    """The earlier results of the benchmarks not run now, then this run's, in benchmark order."""
    kept: list[Row] = []
    if RESULTS_JSON.exists():
        earlier = json.loads(RESULTS_JSON.read_text())
        kept = [Row(**row) for row in earlier.get("rows", []) if row["benchmark"] not in names]
    order = list(BENCHMARKS)
    return sorted(kept + rows, key=lambda row: order.index(row.benchmark) if row.benchmark in order else 99)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    names = args.only or list(BENCHMARKS)
    directory = Path(tempfile.mkdtemp(prefix="after-bench-"))
    server = start_server(directory / "couch")
    try:
        context = Context(server, directory, args.quick, {"memory_size": args.memory_size})
        rows, seconds = run_all(names, context)
    finally:
        server.close()
        shutil.rmtree(directory, ignore_errors=True)
    print("\n" + render_table(rows))
    if args.quick:
        return 0 if all(row.met is not False for row in rows) else 1
    write_results(merged(rows, names), names, seconds, context.setup_notes)
    return 0 if all(row.met is not False for row in rows) else 1


def write_results(rows: list[Row], names: list[str], seconds: dict[str, float], setup: list[str]) -> None:
    """bench/results.json (kept between runs, so ``--only`` can update one benchmark) and RESULTS.md."""
    machine = describe_machine()
    earlier = json.loads(RESULTS_JSON.read_text()) if RESULTS_JSON.exists() else {}
    runs = dict(earlier.get("runs", {}))
    for name in names:
        runs[name] = {"seconds": seconds[name], "machine": machine,
                      "setup": [note for note in setup if note.startswith(name)]}
    payload = {"rows": [asdict(row) for row in rows], "runs": runs}
    RESULTS_JSON.write_text(json.dumps(payload, indent=1) + "\n")
    RESULTS.write_text(render_markdown(rows, runs, machine))
    print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    sys.exit(main())
