"""A Debian bookworm container with systemd as PID 1 (systemd-nspawn), for the system tests.

The rootfs is built once per machine with debootstrap and cached as a tarball under CACHE_DIR; every boot
extracts it and runs with ``--volatile=overlay``, so nothing a test does survives the container. The
container shares the host network: a server on the host's loopback is reachable from inside.
See DESIGN.md section 6 for why every flag is there.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import psutil

log = logging.getLogger(__name__)

SUITE = "bookworm"
CACHE_DIR = Path(os.environ.get("AFTER_TEST_CACHE", "/var/cache/after-test"))
BASE_PACKAGES = ("systemd", "systemd-sysv", "dbus", "python3")
SOURCES = (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list"))
CGROUP_ROOTS = (Path("/sys/fs/cgroup/systemd"), Path("/sys/fs/cgroup/unified"))
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SHARE = "/srv/after-test"
# apt-get inside the container waits for the dpkg lock (apt-daily may hold it right after boot).
APT_GET = ("apt-get", "-o", "DPkg::Lock::Timeout=600")
BOOTS = itertools.count(1)


class ContainerError(RuntimeError):
    pass


def mirror_url() -> str:
    """The Debian mirror this machine's apt uses (never a host name written in the repo)."""
    for source in SOURCES:
        if not source.exists():
            continue
        for line in source.read_text().splitlines():
            fields = line.split()
            if line.startswith("URIs:") and len(fields) > 1 and "security" not in fields[1]:
                return fields[1]
            if fields[:1] == ["deb"] and "security" not in line:
                return next(field for field in fields[1:] if "://" in field)
    raise ContainerError("no Debian mirror found in the apt sources")


def rootfs(packages: Sequence[str]) -> Path:
    """The cached rootfs tarball with ``packages`` installed; built with debootstrap when missing."""
    wanted = sorted({*BASE_PACKAGES, *packages})
    key = hashlib.sha256(f"{SUITE} {' '.join(wanted)}".encode()).hexdigest()[:12]
    tarball = CACHE_DIR / f"{SUITE}-{key}.tar.zst"
    if tarball.exists():
        return tarball
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(dir=CACHE_DIR) as tmp:
        root = Path(tmp) / "root"
        subprocess.run(
            ["debootstrap", "--variant=minbase", f"--include={','.join(wanted)}", SUITE, str(root),
             mirror_url()],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        (root / "etc/hostname").write_text("after-test\n")
        partial = Path(tmp) / "rootfs.tar.zst"
        subprocess.run(["tar", "-C", str(root), "--zstd", "-cf", str(partial), "."], check=True)
        partial.rename(tarball)
    log.info("built %s in %.0f s", tarball, time.monotonic() - started)
    return tarball


class Container:
    """A booted container; ``run`` executes a command inside it like a root shell would."""

    def __init__(self, tarball: Path, share: Path, name: str = "after-test") -> None:
        self.tarball = tarball
        self.share = share
        self.name = f"{name}-{os.getpid()}-{next(BOOTS)}"  # one per boot: a session boots one per server
        self.workdir = Path(tempfile.mkdtemp(prefix="after-nspawn-"))
        self.root = self.workdir / "root"
        self.console = self.workdir / "console.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.pid1 = 0

    def boot(self, timeout: float = 60.0) -> None:
        self.root.mkdir()
        subprocess.run(["tar", "-C", str(self.root), "--zstd", "-xf", str(self.tarball)], check=True)
        cgroups = self.make_cgroups()
        argv = [
            "systemd-nspawn", "-D", str(self.root), "--register=no", "--keep-unit", "--link-journal=no",
            "--volatile=overlay", f"--machine={self.name}", f"--bind-ro={self.share}:{SHARE}", "-b",
        ]
        with self.console.open("wb") as console:
            self.process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT,
                preexec_fn=lambda: join_cgroups(cgroups),
            )
        self.pid1 = self.find_pid1(timeout)
        self.wait_running(timeout)

    def make_cgroups(self) -> list[Path]:
        made = []
        for root in CGROUP_ROOTS:
            if root.is_dir():
                path = root / self.name
                path.mkdir(exist_ok=True)
                made.append(path)
        return made

    def find_pid1(self, timeout: float) -> int:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ContainerError(f"systemd-nspawn exited: {self.console.read_text()[-2000:]}")
            with contextlib.suppress(psutil.Error):
                for child in psutil.Process(self.process.pid).children(recursive=True):
                    if child.name() == "systemd":
                        return int(child.pid)
            time.sleep(0.05)
        raise ContainerError("the container's systemd did not start")

    def wait_running(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            state = self.run(["systemctl", "is-system-running"], check=False).stdout.strip()
            if state in ("running", "degraded"):
                return
            time.sleep(0.1)
        raise ContainerError(f"the container did not boot (state {state!r})")

    def run(
        self, argv: Sequence[str], check: bool = True, timeout: float = 120.0, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` in the container with a clean root environment."""
        full = ["nsenter", "-t", str(self.pid1), "-a", "env", "-i", f"PATH={PATH}", "LANG=C.UTF-8", *argv]
        result = subprocess.run(full, capture_output=True, text=True, timeout=timeout, input=input)
        if check and result.returncode != 0:
            raise ContainerError(
                f"{' '.join(argv)} exited {result.returncode}\n"
                f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            )
        return result

    def sh(self, script: str, check: bool = True, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        return self.run(["sh", "-c", script], check=check, timeout=timeout)

    def write(self, path: str, text: str) -> None:
        self.run(["sh", "-c", f"mkdir -p \"$(dirname '{path}')\" && cat > '{path}'"], input=text)

    def shutdown(self, journal_to: Path | None = None) -> None:
        if self.process is not None and self.process.poll() is None:
            if journal_to is not None:
                with contextlib.suppress(Exception):
                    text = self.run(["journalctl", "--no-pager", "-o", "short-precise"]).stdout
                    journal_to.write_text(text)
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.remove_cgroups()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def remove_cgroups(self) -> None:
        for root in CGROUP_ROOTS:
            path = root / self.name
            if path.is_dir():
                for sub in sorted(path.rglob("*"), key=lambda item: len(item.parts), reverse=True):
                    if sub.is_dir():
                        with contextlib.suppress(OSError):
                            sub.rmdir()
                with contextlib.suppress(OSError):
                    path.rmdir()


def join_cgroups(cgroups: Sequence[Path]) -> None:
    for path in cgroups:
        (path / "cgroup.procs").write_text(str(os.getpid()))


@contextlib.contextmanager
def booted(tarball: Path, share: Path, journal_to: Path | None = None) -> Iterator[Container]:
    container = Container(tarball, share)
    try:
        container.boot()
        yield container
    finally:
        container.shutdown(journal_to)
