"""Service notifications (sd_notify). Outside systemd every call is a no-op."""

from __future__ import annotations

from typing import Protocol


class Notifier(Protocol):
    def ready(self) -> None:
        """READY=1: the worker finished its first reconcile."""

    def status(self, text: str) -> None:
        """STATUS=...: one line of live counts."""

    def watchdog(self) -> None:
        """WATCHDOG=1: called by the loop each time it makes progress; rate-limited inside."""

    def stopping(self) -> None:
        """STOPPING=1."""


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
