"""journalctl argv for `after log`, and the clean mark."""

from __future__ import annotations

from pathlib import Path

from after.systemd import journal


def test_plain_log() -> None:
    assert journal.log("after@a.service") == ["journalctl", "--unit=after@a.service"]


def test_every_option() -> None:
    argv = journal.log("after@a.service", 50, True, "1 hour ago", output="json", task="t-1", pager=False)
    assert argv == [
        "journalctl", "--unit=after@a.service", "--no-pager", "--lines=50", "--follow", "--since=1 hour ago",
        "--output=json", "AFTER_TASK_ID=t-1",
    ]


def test_tail_for_a_failed_start() -> None:
    assert journal.tail("after@a.service", 20, "@1700000000.000000") == [
        "journalctl", "--unit=after@a.service", "--lines=20", "--no-pager", "--quiet", "--output=short",
        "--since=@1700000000.000000",
    ]


def test_clean_mark_round_trip() -> None:
    assert journal.mark_path("a", Path("/var/lib/after")) == Path("/var/lib/after/a/log-cleaned-at")
    assert journal.parse_mark(journal.format_mark(1700000000.25)) == 1700000000.25
    assert journal.parse_mark("") is None
    assert journal.parse_mark("garbage") is None


def test_since_prefers_the_users_choice_over_the_mark() -> None:
    assert journal.since_argument(None, None) is None
    assert journal.since_argument(None, 1700000000.5) == "@1700000000.500000"
    assert journal.since_argument("today", 1700000000.5) == "today"
