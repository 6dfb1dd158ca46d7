"""sd_notify: what systemd receives on $NOTIFY_SOCKET, and silence outside systemd."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from after.systemd.notify import NullNotifier, SdNotifier, system_notifier, watchdog_interval


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def notify_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(2)
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        yield sock


def test_messages_reach_the_notify_socket(
    notify_socket: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "10000000")
    notifier = system_notifier()
    assert isinstance(notifier, SdNotifier)
    notifier.ready()
    notifier.status("armed 2, running 1, done 5, failed 0, CouchDB connected")
    notifier.watchdog()
    notifier.stopping()
    received = [notify_socket.recv(4096).decode() for _ in range(4)]
    assert received == [
        "READY=1",
        "STATUS=armed 2, running 1, done 5, failed 0, CouchDB connected",
        "WATCHDOG=1",
        "STOPPING=1",
    ]


def test_outside_systemd_everything_is_a_no_op() -> None:
    notifier = system_notifier({})
    assert isinstance(notifier, NullNotifier)
    notifier.ready()
    notifier.status("x")
    notifier.watchdog()
    notifier.stopping()


def test_watchdog_pings_at_most_every_half_period() -> None:
    sent: list[str] = []
    clock = FakeClock()
    notifier = SdNotifier(send=sent.append, environ={"WATCHDOG_USEC": "4000000"}, clock=clock)
    for step in range(50):  # the loop makes progress every 0.1 s for 5 s
        clock.now = 100.0 + step * 0.1
        notifier.watchdog()
    assert sent.count("WATCHDOG=1") == 3  # at 0 s, 2 s, 4 s


def test_no_progress_means_no_ping() -> None:
    sent: list[str] = []
    clock = FakeClock()
    notifier = SdNotifier(send=sent.append, environ={"WATCHDOG_USEC": "4000000"}, clock=clock)
    notifier.watchdog()
    clock.now += 60  # the loop hung: nobody calls watchdog(), nothing is sent
    assert sent == ["WATCHDOG=1"]


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, None),
        ({"WATCHDOG_USEC": "30000000"}, 15.0),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "junk"}, None),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "42"}, 15.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "7"}, None),  # meant for another process
    ],
)
def test_watchdog_interval(environ: dict[str, str], expected: float | None) -> None:
    assert watchdog_interval(environ, pid=42) == expected


def test_watchdog_off_sends_nothing() -> None:
    sent: list[str] = []
    SdNotifier(send=sent.append, environ={}).watchdog()
    assert sent == []


def test_unchanged_status_is_sent_once_and_kept_on_one_line() -> None:
    sent: list[str] = []
    notifier = SdNotifier(send=sent.append, environ={})
    notifier.status("armed 1\nrunning 0")
    notifier.status("armed 1 running 0")
    notifier.status("armed 2 running 0")
    assert sent == ["STATUS=armed 1 running 0", "STATUS=armed 2 running 0"]
