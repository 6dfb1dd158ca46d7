"""Service notifications (sd_notify; the contract is ``after.contracts.Notifier``). Outside systemd
every call is a no-op."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from after.contracts import Notifier


class NullNotifier:
    def ready(self) -> None:
        pass

    def status(self, text: str) -> None:
        pass

    def watchdog(self) -> None:
        pass

    def stopping(self) -> None:
        pass


class RecordingNotifier:
    """Keeps every message, for tests."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def ready(self) -> None:
        self.messages.append("READY=1")

    def status(self, text: str) -> None:
        self.messages.append(f"STATUS={text}")

    def watchdog(self) -> None:
        self.messages.append("WATCHDOG=1")

    def stopping(self) -> None:
        self.messages.append("STOPPING=1")


class SdNotifier:
    """sd_notify over $NOTIFY_SOCKET (the ``sdnotify`` package).

    ``watchdog()`` is called by the loop whenever it makes progress; WATCHDOG=1 goes out at most every half
    of $WATCHDOG_USEC, so a loop that stops making progress stops pinging and systemd kills it.
    """

    def __init__(
        self,
        send: Callable[[str], None] | None = None,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if send is None:
            import sdnotify  # the package is a hard dependency, imported only under systemd

            send = sdnotify.SystemdNotifier().notify
        self._send = send
        self._clock = clock
        self.interval = watchdog_interval(os.environ if environ is None else environ, os.getpid())
        self._last_ping: float | None = None
        self._last_status: str | None = None

    def ready(self) -> None:
        self._send("READY=1")

    def status(self, text: str) -> None:
        line = " ".join(text.split())
        if line != self._last_status:
            self._last_status = line
            self._send(f"STATUS={line}")

    def watchdog(self) -> None:
        if self.interval is None:
            return
        now = self._clock()
        if self._last_ping is None or now - self._last_ping >= self.interval:
            self._last_ping = now
            self._send("WATCHDOG=1")

    def stopping(self) -> None:
        self._send("STOPPING=1")


def watchdog_interval(environ: Mapping[str, str], pid: int) -> float | None:
    """Half of $WATCHDOG_USEC in seconds, or None when the watchdog is off or meant for another process."""
    try:
        usec = int(environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    owner = environ.get("WATCHDOG_PID", "")
    if usec <= 0 or (owner and owner != str(pid)):
        return None
    return usec / 2_000_000


def system_notifier(environ: Mapping[str, str] | None = None) -> Notifier:
    """SdNotifier under systemd (NOTIFY_SOCKET set), NullNotifier everywhere else."""
    env = os.environ if environ is None else environ
    if env.get("NOTIFY_SOCKET"):
        return SdNotifier(environ=env)
    return NullNotifier()
