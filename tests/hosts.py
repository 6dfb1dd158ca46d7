"""Hosts for tests: network namespaces on a bridge, each with its own address and host name (issue 8).

A ``Network`` is a Linux bridge in the root namespace, with an address from a private range the test
picks (``10.231.X.1/24``), and ``Host``s: each a network namespace joined to the bridge by a veth pair,
with its own address (``10.231.X.10``, ``.11``, ...). A CouchDB bound to the bridge address
(``BIND=10.231.X.1``) is reached from every host over its veth link, never over loopback. A host has no
default route, only its link's subnet: whatever runs on it reaches the bridge and the other hosts and
nothing else, so no traffic leaves the machine (``routes(host)`` shows it). A process
run with ``Host.command`` lives in the host's namespace and in a UTS namespace of its own whose host
name is the host's, so ``socket.gethostname()`` (what a worker writes into its claims) differs per host.

``cut(host)`` takes the bridge end of the host's link down, like a cable pulled at the switch: the
host keeps its address and route (its ``eth0`` only loses its carrier), its packets go nowhere, so
requests hang until their timeout instead of being refused at once. ``mend(host)`` puts it back.

Everything is named with a random tag (``after-<tag>-<host>`` namespaces, ``afb<tag>`` bridge,
``afv<tag><i>`` veth ends), removed by ``close()`` (a context manager and fixtures call it even on
failure), and also by a reaper process that dies with the test process, so a killed test run leaks
no namespace, link or address. ``sweep()`` removes the leftovers of runs whose process is gone.

A clock ``skew`` (seconds) runs the process under libfaketime (Debian's ``faketime`` package):
``LD_PRELOAD`` with ``FAKETIME="+2s"``, the monotonic clock left alone. libfaketime 0.9.10 breaks
Python 3.11's ``time.sleep`` when the monotonic clock is not faked (it rewrites an absolute
``clock_nanosleep`` deadline into a negative time: EINVAL; upstream wolfcw/libfaketime#426), and
faking the monotonic clock too makes ``threading`` waits hang (#390). So a skewed Python process gets
a ``time.sleep`` that waits on a ``threading.Event`` (a monotonic wait that works) and nothing else
changed; its wall clock (``time.time``, ``datetime.now``, and its children's) is the skewed one.

No pytest here: ``unavailable()`` says why namespaces cannot be used (not root, no ``ip``), and
callers skip with that reason.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.server import die_with_parent

FAKETIME_LIBRARY = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")
STATE = Path("/run/after-test-hosts")  # one file per live network: its tag and the pid that owns it
RANGE = ipaddress.ip_network("10.231.0.0/16")  # the /24 of each network is picked in there
# A skewed Python process: time.sleep as a monotonic Event wait (see the module's docstring), then
# the module named first in argv runs as __main__ with the rest of argv.
SKEWED_PYTHON = (
    "import runpy, sys, threading, time\n"
    "def sleep(seconds, wait=threading.Event().wait):\n"
    "    wait(max(0.0, seconds))\n"
    "time.sleep = sleep\n"
    "module = sys.argv.pop(1)\n"
    "runpy.run_module(module, run_name='__main__', alter_sys=True)\n"
)


class HostsError(RuntimeError):
    """A command that sets up or tears down the network failed."""


def unavailable() -> str | None:
    """Why network namespaces cannot be used here, or None when they can."""
    if sys.platform != "linux":
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "network namespaces need root (ip netns add)"
    for tool in ("ip", "unshare"):
        if shutil.which(tool) is None:
            return f"`{tool}` is missing (Debian packages iproute2 and util-linux)"
    probe = f"after-probe-{secrets.token_hex(3)}"
    done = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if done.returncode != 0:
        return f"`ip netns add` does not work here: {done.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def faketime_missing() -> str | None:
    if not FAKETIME_LIBRARY.exists():
        return f"libfaketime is missing ({FAKETIME_LIBRARY}; Debian package faketime, `make fault-deps`)"
    return None


def ip(*arguments: str, check: bool = True) -> str:
    done = subprocess.run(["ip", *arguments], capture_output=True, text=True, timeout=30)
    if check and done.returncode != 0:
        raise HostsError(f"ip {' '.join(arguments)}: {done.stderr.strip()}")
    return done.stdout


def used_networks() -> list[ipaddress.IPv4Network]:
    """The IPv4 networks with a route or an address on this machine."""
    found = []
    for line in ip("-4", "route", "show", "table", "all").splitlines() + \
            [" ".join(line.split()[3:4]) for line in ip("-o", "-4", "addr", "show").splitlines()]:
        word = line.split()[0] if line.split() else ""
        with contextlib.suppress(ValueError):
            found.append(ipaddress.ip_network(word, strict=False))
    return [net for net in found if isinstance(net, ipaddress.IPv4Network)]


def free_subnet() -> ipaddress.IPv4Network:
    used = used_networks()
    for _ in range(100):
        third = secrets.randbelow(254) + 1
        candidate = ipaddress.IPv4Network(f"10.231.{third}.0/24")
        if not any(candidate.overlaps(net) for net in used if net.prefixlen > 0):
            return candidate
    raise HostsError(f"no free /24 in {RANGE}")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def teardown_script(tag: str) -> str:
    """Shell that removes every namespace and link of the network ``tag`` (idempotent)."""
    return (f"for ns in $(ip netns list | awk '{{print $1}}' | grep '^after-{tag}-'); do "
            "ip netns pids \"$ns\" 2>/dev/null | xargs -r kill -9 2>/dev/null; "
            "ip netns del \"$ns\" 2>/dev/null; done; "
            f"for link in $(ip -o link show | awk -F': ' '{{print $2}}' | sed 's/@.*//' "
            f"| grep -E '^af[bv]{tag}'); do ip link del \"$link\" 2>/dev/null; done; "
            f"rm -f {STATE}/{tag}.json")


def sweep() -> list[str]:
    """Remove the networks of test runs whose process is gone; the tags removed."""
    removed = []
    for path in sorted(STATE.glob("*.json")) if STATE.exists() else []:
        try:
            owner = int(json.loads(path.read_text())["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            owner = 0
        if owner and alive(owner):
            continue
        subprocess.run(["sh", "-c", teardown_script(path.stem)], capture_output=True, timeout=60)
        removed.append(path.stem)
    return removed


@dataclass
class Host:
    """One namespace on the bridge: ``address`` on its ``eth0``, ``hostname`` for what runs in it."""

    name: str
    namespace: str
    address: str
    outside: str  # the bridge end of its veth pair, in the root namespace
    hostname: str
    cut_at: float | None = None
    cuts: list[tuple[float, float]] = field(default_factory=list)  # (cut, mended), time.time()

    def command(self, argv: Sequence[str], skew: float = 0.0, environment: dict[str, str] | None = None,
                ) -> tuple[list[str], dict[str, str]]:
        """argv and environment that run ``argv`` on this host (its namespace and host name).

        With ``skew`` the wall clock of the process (and its children) is off by that many seconds.
        A Python argv (``sys.executable -m MODULE ...``) gets the sleep fix libfaketime needs.
        """
        env = dict(os.environ if environment is None else environment)
        inner = list(argv)
        if skew:
            reason = faketime_missing()
            if reason:
                raise HostsError(reason)
            env.update(LD_PRELOAD=str(FAKETIME_LIBRARY), FAKETIME=f"{skew:+g}s",
                       FAKETIME_DONT_FAKE_MONOTONIC="1", FAKETIME_NO_CACHE="1")
            if len(inner) >= 3 and inner[0] == sys.executable and inner[1] == "-m":
                inner = [sys.executable, "-c", SKEWED_PYTHON, *inner[2:]]
        # ip netns exec, unshare (without --fork) and sh's exec all exec: the pid is the process's own
        wrapped = ["ip", "netns", "exec", self.namespace, "unshare", "--uts", "sh", "-c",
                   'hostname "$0" && exec "$@"', self.hostname, *inner]
        return wrapped, env

    def run(self, *argv: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        wrapped, env = self.command(argv)
        return subprocess.run(wrapped, env=env, capture_output=True, text=True, timeout=timeout)


class Network:
    """A bridge with an address of its own and hosts attached to it; ``close()`` removes everything."""

    def __init__(self, subnet: ipaddress.IPv4Network | None = None) -> None:
        STATE.mkdir(parents=True, exist_ok=True)
        sweep()
        self.tag = secrets.token_hex(3)  # 6 hex digits: "afv" + tag + 2 digits stays within 15 bytes
        self.subnet = subnet or free_subnet()
        self.gateway = str(self.subnet.network_address + 1)
        self.bridge = f"afb{self.tag}"
        self.hosts: dict[str, Host] = {}
        self.reaper: subprocess.Popen[bytes] | None = None
        (STATE / f"{self.tag}.json").write_text(json.dumps({"pid": os.getpid(), "subnet": str(self.subnet)}))
        try:
            self.watch()
            ip("link", "add", self.bridge, "type", "bridge")
            ip("addr", "add", f"{self.gateway}/{self.subnet.prefixlen}", "dev", self.bridge)
            ip("link", "set", self.bridge, "up")
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        return f"Network({self.subnet}, bridge {self.bridge}, hosts {sorted(self.hosts)})"

    def watch(self) -> None:
        """A reaper that tears the network down when this process dies (SIGTERM via PDEATHSIG)."""
        script = (f"cleanup() {{ {teardown_script(self.tag)}; }}; "
                  "trap 'cleanup; kill $s 2>/dev/null; exit 0' TERM; "
                  "while :; do sleep 3600 & s=$!; wait $s; done")
        self.reaper = subprocess.Popen(["sh", "-c", script], stdin=subprocess.DEVNULL,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                       start_new_session=True, preexec_fn=die_with_parent)

    def add_host(self, name: str, hostname: str | None = None) -> Host:
        """A namespace with its own address on the bridge, and a host name for what runs in it."""
        index = len(self.hosts)
        namespace = f"after-{self.tag}-{name}"
        address = str(self.subnet.network_address + 10 + index)
        outside = f"afv{self.tag}{index:02d}"
        host = Host(name, namespace, address, outside, hostname or name)
        self.hosts[name] = host
        ip("netns", "add", namespace)
        ip("link", "add", outside, "type", "veth", "peer", "name", "eth0", "netns", namespace)
        ip("link", "set", outside, "master", self.bridge)
        ip("link", "set", outside, "up")
        ip("-n", namespace, "link", "set", "lo", "up")
        ip("-n", namespace, "addr", "add", f"{address}/{self.subnet.prefixlen}", "dev", "eth0")
        ip("-n", namespace, "link", "set", "eth0", "up")
        return host  # no default route: only the bridge's subnet is reachable from the host

    def routes(self, host: Host) -> list[str]:
        """The host's routes (one: its link's subnet)."""
        return [line.strip() for line in ip("-n", host.namespace, "-4", "route", "show").splitlines()]

    def reachable(self, host: Host, port: int, timeout: float = 10.0) -> bool:
        """Whether ``host`` reaches the bridge address on ``port`` (a TCP connect from inside)."""
        probe = (f"import socket; socket.create_connection(('{self.gateway}', {port}), timeout=2).close()")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if host.run(sys.executable, "-c", probe, timeout=10).returncode == 0:
                return True
            time.sleep(0.2)
        return False

    def cut(self, host: Host) -> None:
        """Pull the host's cable at the switch: its packets go nowhere, nothing fails fast."""
        ip("link", "set", host.outside, "down")
        host.cut_at = time.time()

    def mend(self, host: Host) -> None:
        ip("link", "set", host.outside, "up")
        if host.cut_at is not None:
            host.cuts.append((host.cut_at, time.time()))
        host.cut_at = None

    def close(self) -> None:
        """Remove every namespace (killing what still runs in it), link and address; idempotent."""
        subprocess.run(["sh", "-c", teardown_script(self.tag)], capture_output=True, timeout=60)
        if self.reaper is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.reaper.pid, signal.SIGKILL)
            self.reaper.wait()
            self.reaper = None
        self.hosts.clear()

    def leftovers(self) -> list[str]:
        """Namespaces and links of this network that still exist (empty after ``close()``)."""
        namespaces = [line.split()[0] for line in ip("netns", "list").splitlines()
                      if line.startswith(f"after-{self.tag}-")]
        links = [line.split(": ")[1].split("@")[0] for line in ip("-o", "link", "show").splitlines()
                 if line.split(": ")[1].startswith((f"afb{self.tag}", f"afv{self.tag}"))]
        return namespaces + links

    def __enter__(self) -> Network:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
