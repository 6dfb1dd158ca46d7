"""Worker logging: journal fields when journald is there, priority-prefixed or readable stderr otherwise."""

from __future__ import annotations

import io
import logging
import os
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest

from after.systemd.logs import configure_logging, stderr_is_journal


class Journal:
    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def send(self, message: str, CODE_LINE: int | None = None, **fields: Any) -> None:
        """The signature of systemd.journal.send, which formats CODE_LINE with {:d}."""
        self.entries.append({"MESSAGE": message, "CODE_LINE": f"{CODE_LINE:d}", **fields})


@pytest.fixture(autouse=True)
def restore_after_logger() -> Iterator[None]:
    logger = logging.getLogger("after")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved


@pytest.fixture
def journal_stream() -> Iterator[tuple[io.TextIOWrapper, dict[str, str]]]:
    with tempfile.TemporaryFile("w+") as stream:
        info = os.fstat(stream.fileno())
        yield stream, {"JOURNAL_STREAM": f"{info.st_dev}:{info.st_ino}"}  # type: ignore[misc]


Stream = tuple[io.TextIOWrapper, dict[str, str]]


def test_journal_entries_carry_the_after_fields(journal_stream: Stream) -> None:
    stream, environ = journal_stream
    journal = Journal()
    configure_logging("manobi", environ=environ, stream=stream, send=journal.send)
    extra = {"task_id": "t1", "job": "noop", "status": "done"}
    logging.getLogger("after.worker").info("task %s ended %s", "t1", "done", extra=extra)
    (entry,) = journal.entries
    assert entry["MESSAGE"] == "task t1 ended done"
    assert entry["PRIORITY"] == "6"
    assert entry["SYSLOG_IDENTIFIER"] == "after"
    assert {key: entry[key] for key in entry if key.startswith("AFTER_")} == {
        "AFTER_WORKER": "manobi", "AFTER_TASK_ID": "t1", "AFTER_JOB": "noop", "AFTER_STATUS": "done",
    }
    assert stream.tell() == 0  # nothing went to stderr


def test_records_without_task_fields_carry_only_the_worker(
    journal_stream: tuple[io.TextIOWrapper, dict[str, str]],
) -> None:
    stream, environ = journal_stream
    journal = Journal()
    configure_logging("manobi", environ=environ, stream=stream, send=journal.send)
    logging.getLogger("after.worker").error("CouchDB unreachable")
    (entry,) = journal.entries
    assert entry["PRIORITY"] == "3"
    assert [key for key in entry if key.startswith("AFTER_")] == ["AFTER_WORKER"]


def test_without_python3_systemd_the_journal_gets_priority_prefixes(
    journal_stream: tuple[io.TextIOWrapper, dict[str, str]],
) -> None:
    stream, environ = journal_stream
    configure_logging("manobi", environ=environ, stream=stream, send=None)
    logger = logging.getLogger("after.worker")
    logger.warning("late by %.1f s", 2.5, extra={"task_id": "t1", "job": "noop"})
    logger.debug("hidden unless verbose")
    stream.seek(0)
    assert stream.read() == "<4>after.worker: late by 2.5 s (task=t1 job=noop)\n"


def test_verbose_shows_debug_with_priority_7(journal_stream: tuple[io.TextIOWrapper, dict[str, str]]) -> None:
    stream, environ = journal_stream
    configure_logging(None, verbose=True, environ=environ, stream=stream, send=None)
    logging.getLogger("after.worker").debug("tick")
    stream.seek(0)
    assert stream.read() == "<7>after.worker: tick\n"


def test_a_terminal_gets_readable_lines() -> None:
    stream = io.StringIO()
    configure_logging("manobi", environ={}, stream=stream, send=Journal().send)
    logging.getLogger("after.worker").info("task ran", extra={"task_id": "t1", "status": "done"})
    line = stream.getvalue()
    assert line.endswith(" INFO after.worker [manobi] task ran (task=t1 status=done)\n")
    assert not line.startswith("<")


def test_configuring_twice_keeps_one_handler() -> None:
    stream = io.StringIO()
    configure_logging("a", environ={}, stream=stream, send=None)
    configure_logging("a", environ={}, stream=stream, send=None)
    logging.getLogger("after.worker").info("once")
    assert stream.getvalue().count("once") == 1


def test_journal_stream_of_another_file_is_not_ours() -> None:
    with tempfile.TemporaryFile("w") as stream:
        assert not stderr_is_journal({"JOURNAL_STREAM": "1:2"}, stream)  # type: ignore[arg-type]
        assert not stderr_is_journal({}, stream)  # type: ignore[arg-type]
