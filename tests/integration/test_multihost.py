"""Workers on several hosts (issue 8, item 3): network namespaces with their own addresses and host names.

Each host is a network namespace on a bridge the test creates (``tests.hosts``), its worker process
in a UTS namespace of its own (so ``socket.gethostname()``, which claims and results record, differs
per host), reaching the server on the bridge address over its veth link, never over loopback: the
server listens on the bridge address only, and a host has no route but its link's. Leases are short
(8 s) so that the cases take seconds; ``make chaos`` runs them larger (``tests.fault.chaos``, whose
scenario functions these tests call).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fault.chaos import describe, link_cut, server_on, skewed_clocks
from tests.hosts import Network, faketime_missing, ip, unavailable
from tests.server import ServerKind, TestServer, missing

pytestmark = pytest.mark.skipif(unavailable() is not None, reason=f"hosts: {unavailable()}")
LEASE = 8.0
HOSTS = {"hostA", "hostB", "hostC"}


@pytest.fixture(scope="module")
def network() -> Iterator[Network]:
    with Network() as created:
        yield created
    assert created.leftovers() == []


@pytest.fixture(scope="module", params=list(ServerKind), ids=str)
def bridged(request: pytest.FixtureRequest, network: Network) -> Iterator[TestServer]:
    """A server of each kind listening on the bridge address only."""
    kind: ServerKind = request.param
    reason = missing(kind)
    if reason:
        pytest.skip(reason)
    server = server_on(kind, network.gateway)
    yield server
    server.close()


def test_a_host_has_its_own_name_and_address_and_reaches_the_bridge_only(network: Network,
                                                                         bridged: TestServer) -> None:
    host = network.hosts.get("hostA") or network.add_host("hostA")
    probe = ("import errno, socket, sys\n"
             "print(socket.gethostname())\n"
             "for address in sys.argv[2:]:\n"
             "    try:\n"
             "        socket.create_connection((address, int(sys.argv[1])), timeout=2).close()\n"
             "        print(address, 'open')\n"
             "    except OSError as error:\n"
             "        print(address, errno.errorcode.get(error.errno or 0, type(error).__name__))\n")
    done = host.run(sys.executable, "-c", probe, str(bridged.port), network.gateway, "127.0.0.1", "192.0.2.1")
    assert done.returncode == 0, done.stderr
    name, *answers = done.stdout.split("\n")
    assert name == "hostA" != os.uname().nodename
    assert answers[0] == f"{network.gateway} open", answers  # the server, over the veth link
    assert answers[1] == "127.0.0.1 ECONNREFUSED", answers  # its loopback is its own
    assert answers[2] == "192.0.2.1 ENETUNREACH", answers  # no route out of the machine
    assert network.routes(host) == [f"{network.subnet} dev eth0 proto kernel scope link src {host.address}"]
    assert network.reachable(host, bridged.port)


def test_a_host_cut_off_longer_than_its_lease_is_taken_over_without_a_stale_result_and_comes_back(
        network: Network, bridged: TestServer, tmp_path: Path) -> None:
    figures = link_cut(network, bridged, tmp_path, lease=LEASE, tasks=40, spread=20.0, long_tasks=4,
                       long_seconds=15.0, after=20)
    cut, docs, starts, context = figures.details["cut"], figures.details["docs"], figures.details["starts"], \
        figures.context()
    assert (figures.lost, figures.unrecorded, figures.conflicts) == (0, 0, 0), context
    assert set(figures.details["hosts"]) == HOSTS, figures.details["hosts"]  # each host its own name
    assert cut.task_ids, context
    for task in cut.task_ids:
        story = describe(task, docs[task], starts[task])
        assert docs[task]["status"] == "done" and docs[task]["result"]["by"] != cut.label, story  # not stale
        history = docs[task].get("history", [])
        assert any(entry.get("outcome") == "interrupted" and entry.get("by") == cut.label
                   for entry in history), story  # the takeover recorded the cut-off run
        assert all(entry.get("late") for entry in history
                   if entry.get("by") == cut.label and entry.get("outcome") != "interrupted"), story
        assert task in cut.stopped, story  # its job there was stopped, not left to run on
    assert cut.overlaps == [], context  # started elsewhere only once stopped there: never in two places
    assert cut.finished == [] and len(cut.fenced) >= len(cut.task_ids), (context, cut.fenced)
    assert cut.alive, context  # the cut-off process did not need a restart
    assert cut.ran_after >= 1, context  # back on the network, it runs tasks again


@pytest.mark.skipif(faketime_missing() is not None, reason=str(faketime_missing()))
def test_hosts_with_clocks_two_seconds_ahead_and_behind_run_each_task_exactly_once(
        network: Network, bridged: TestServer, tmp_path: Path) -> None:
    figures = skewed_clocks(network, bridged, tmp_path, skews=(2.0, -2.0, 0.0), tasks=150, spread=12.0,
                            burst=60, lease=LEASE)
    context = figures.context()
    print(context)  # the lateness per host (pytest -s, or -rP, shows it)
    assert (figures.lost, figures.unrecorded, figures.recorded, figures.conflicts) == (0, 0, 0, 0), context
    reran = {task: runs for task, runs in figures.details["starts"].items() if len(runs) != 1}
    assert reran == {}, context  # nothing crashed: exactly one start each
    for hostname, (skew, ran, offset) in figures.details["clocks"].items():
        assert ran > 0, context  # every host ran tasks ...
        assert abs(offset - skew * 1000.0) < 700.0, (hostname, context)  # ... on its own clock, as it reports
    # a clock 2 s ahead starts its tasks up to 2 s early in real time, never earlier
    assert min(figures.details["lateness"]) >= -2500.0, context


def test_the_network_is_removed_on_failure_and_when_the_test_process_is_killed(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), Network() as network:
        network.add_host("doomed")
        raise RuntimeError("a test failing with the network up")
    assert network.leftovers() == []
    script = ("import time\nfrom tests.hosts import Network\nnetwork = Network()\nnetwork.add_host('x')\n"
              "print(network.tag, flush=True)\ntime.sleep(600)\n")
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                             cwd=Path(__file__).resolve().parents[2], env={**os.environ, "PYTHONPATH": "."})
    assert child.stdout is not None
    tag = child.stdout.readline().strip()
    assert tag and f"after-{tag}-x" in ip("netns", "list")
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    deadline = time.monotonic() + 10.0
    while f"after-{tag}-x" in ip("netns", "list") or f"afb{tag}" in ip("-o", "link", "show"):
        assert time.monotonic() < deadline, "the reaper did not remove a killed run's network"
        time.sleep(0.1)
