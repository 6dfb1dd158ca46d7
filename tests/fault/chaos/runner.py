"""The runner: which scenarios run on what, one after the other within a time budget, and the table."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.cluster import CouchDBCluster, start_cluster
from tests.fault.chaos.figures import Figures
from tests.fault.chaos.run import server_on
from tests.fault.chaos.scenarios_cluster import cluster_scenario, node_failover
from tests.fault.chaos.scenarios_hosts import link_cut, skewed_clocks
from tests.fault.chaos.scenarios_node import couchdb_restarts, kill_storm, sharing
from tests.fault.chaos.table import markdown, table
from tests.hosts import Network, faketime_missing
from tests.hosts import unavailable as hosts_unavailable
from tests.server import ServerKind, TestServer, couchdb_missing

OUTPUT = Path(__file__).resolve().parent.parent / "CHAOS.md"


class Infrastructure:
    """Servers, the cluster and the network, each started when a scenario first needs it, one kind of
    server at a time (the CPU is the limit)."""

    def __init__(self) -> None:
        self.found: dict[str, Any] = {}

    def cluster(self) -> CouchDBCluster:
        if "cluster" not in self.found:
            self.close_server()
            self.found["cluster"] = start_cluster(3)
        return self.found["cluster"]  # type: ignore[no-any-return]

    def close_cluster(self) -> None:
        cluster = self.found.pop("cluster", None)
        if cluster is not None:
            cluster.close()

    def server(self) -> TestServer:
        if "server" not in self.found:
            self.close_cluster()
            self.found["server"] = server_on(ServerKind.COUCHDB)
        return self.found["server"]  # type: ignore[no-any-return]

    def close_server(self) -> None:
        for key in ("server", "bridged"):
            server = self.found.pop(key, None)
            if server is not None:
                server.close()

    def network(self) -> Network:
        if "network" not in self.found:
            self.found["network"] = Network()
        return self.found["network"]  # type: ignore[no-any-return]

    def bridged(self) -> TestServer:
        """One CouchDB node listening on the bridge address only."""
        if "bridged" not in self.found:
            self.close_cluster()
            server = self.found.pop("server", None)
            if server is not None:
                server.close()
            self.found["bridged"] = server_on(ServerKind.COUCHDB, self.network().gateway)
        return self.found["bridged"]  # type: ignore[no-any-return]

    def close(self) -> None:
        self.close_cluster()
        self.close_server()
        network = self.found.pop("network", None)
        if network is not None:
            network.close()


Scenario = Callable[[Infrastructure, Path], Figures]
SCENARIOS: dict[str, Scenario] = {
    "kill-storm": lambda infra, where: kill_storm(infra.server(), where),
    "couchdb-restarts": lambda infra, where: couchdb_restarts(infra.server(), where),
    "sharing-2-together": lambda infra, where: sharing(infra.server(), where, 2, 0.0),
    "sharing-2-apart": lambda infra, where: sharing(infra.server(), where, 2, 10.0),
    "sharing-3-together": lambda infra, where: sharing(infra.server(), where, 3, 0.0),
    "sharing-3-apart": lambda infra, where: sharing(infra.server(), where, 3, 10.0),
    "link-cut": lambda infra, where: link_cut(infra.network(), infra.bridged(), where),
    "skewed-clocks": lambda infra, where: skewed_clocks(infra.network(), infra.bridged(), where),
    "cluster-spread": lambda infra, where: cluster_scenario(infra.cluster(), where, "cluster-spread",
                                                            2000, 20.0),
    "cluster-burst": lambda infra, where: cluster_scenario(infra.cluster(), where, "cluster-burst",
                                                           1000, 0.0),
    "cluster-node-kill": lambda infra, where: cluster_scenario(infra.cluster(), where, "cluster-node-kill",
                                                               2000, 30.0, kill_at=10.0, down_for=14.0),
    "node-failover": lambda infra, where: node_failover(infra.cluster(), where),
}
ON_HOSTS = {"link-cut", "skewed-clocks"}


def unavailable(name: str) -> str | None:
    """Why scenario ``name`` cannot run on this machine, or None."""
    reason = couchdb_missing()
    if reason is None and name in ON_HOSTS:
        reason = hosts_unavailable() or (faketime_missing() if name == "skewed-clocks" else None)
    return reason


def attempt(name: str, infra: Infrastructure, scratch: Path) -> Figures:
    """One scenario; its failure is a row of the table too (the others go on)."""
    started = time.time()
    try:
        return SCENARIOS[name](infra, scratch / name)
    except Exception as error:
        traceback.print_exc()
        return Figures(name, 0, seconds=time.time() - started,
                       error=f"{type(error).__name__}: {(str(error).splitlines() or [''])[0][:300]}")


def run_all(chosen: list[str], budget: float, load: list[float]) -> list[Figures]:
    """The scenarios ``chosen``, in turn; ``load`` gets the 1-minute load average before each, and after."""
    began = time.monotonic()
    found: list[Figures] = []
    infra = Infrastructure()
    with tempfile.TemporaryDirectory(prefix="after-chaos-") as scratch:
        try:
            for name in chosen:
                spent = time.monotonic() - began
                reason = unavailable(name)
                if reason is None and spent > budget:
                    reason = f"the budget of {budget:.0f} s was spent"
                if reason is not None:
                    found.append(Figures(name, 0, error=f"skipped: {reason}"))
                    print(f"== {name}: skipped ({reason})", flush=True)
                    continue
                load.append(os.getloadavg()[0])
                print(f"== {name} ({spent:.0f} s in, load average {load[-1]:.1f})", flush=True)
                found.append(attempt(name, infra, Path(scratch)))
                print(table(found[-1:]).splitlines()[-1], *(f"   {note}" for note in found[-1].notes),
                      sep="\n", flush=True)
        finally:
            infra.close()
    load.append(os.getloadavg()[0])
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fault.chaos",
                                     description="every fault scenario at full size, in one table of figures")
    parser.add_argument("--only", action="append", choices=sorted(SCENARIOS), help="run only these (repeat)")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument("--budget", type=float, default=1200.0,
                        help="seconds: scenarios not begun by then are skipped (default 20 minutes)")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    options = parser.parse_args(argv)
    if options.list:
        print("\n".join(SCENARIOS))
        return 0
    began = time.monotonic()
    load: list[float] = []
    chosen = [name for name in SCENARIOS if not options.only or name in options.only]
    found = run_all(chosen, options.budget, load)
    seconds = time.monotonic() - began
    print(f"\n{table(found)}")
    options.output.write_text(markdown(found, seconds, load))
    print(f"written to {options.output} ({seconds / 60:.1f} minutes)")
    ran = [figures for figures in found if not (figures.error or "").startswith("skipped")]
    return 0 if all(figures.clean for figures in ran) else 1


if __name__ == "__main__":
    sys.exit(main())
