"""Logging setup for the worker and the CLI.

Under systemd with python3-systemd importable, records go to the journal with structured fields
(AFTER_WORKER, AFTER_TASK_ID, AFTER_JOB, AFTER_STATUS), so ``journalctl -u after@NAME AFTER_TASK_ID=ID``
finds one task's lines. Otherwise they go to stderr: with sd-daemon priority prefixes (``<6>...``) when
stderr is a journal stream, and a readable line for a terminal.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from collections.abc import Callable, Mapping
from typing import Literal, TextIO

# Log record attribute (passed with extra={...}) -> journal field.
FIELDS = {"task_id": "AFTER_TASK_ID", "job": "AFTER_JOB", "status": "AFTER_STATUS"}
SYSLOG_IDENTIFIER = "after"


def priority(levelno: int) -> int:
    """The syslog priority of a logging level (3 err .. 7 debug)."""
    if levelno >= logging.ERROR:
        return 3
    if levelno >= logging.WARNING:
        return 4
    if levelno >= logging.INFO:
        return 6
    return 7


def record_fields(record: logging.LogRecord, worker: str | None) -> dict[str, str]:
    """The structured fields of a record: the worker's name and whatever the caller passed in ``extra``."""
    fields = {"AFTER_WORKER": worker} if worker else {}
    for attribute, field in FIELDS.items():
        value = getattr(record, attribute, None)
        if value is not None:
            fields[field] = str(value)
    return fields


def suffix(record: logging.LogRecord) -> str:
    """`` (task=... job=... status=...)`` for the plain-text formats, so no field is lost there."""
    values = ((name.removesuffix("_id"), getattr(record, name, None)) for name in FIELDS)
    pairs = [f"{name}={value}" for name, value in values if value is not None]
    return f" ({' '.join(pairs)})" if pairs else ""


class JournalHandler(logging.Handler):
    """Sends each record to journald natively, with the After fields; ``send`` is systemd.journal.send."""

    def __init__(self, send: Callable[..., None], worker: str | None) -> None:
        super().__init__()
        self.send = send
        self.worker = worker

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = self.format(record)
            self.send(
                message,
                PRIORITY=str(priority(record.levelno)),
                SYSLOG_IDENTIFIER=SYSLOG_IDENTIFIER,
                LOGGER=record.name,
                CODE_FILE=record.pathname,
                CODE_LINE=record.lineno,  # systemd.journal.send formats it with {:d}
                CODE_FUNC=record.funcName,
                **record_fields(record, self.worker),
            )
        except Exception:
            self.handleError(record)


class PrefixFormatter(logging.Formatter):
    """``<6>after.worker: message (task=... job=...)``: journald reads the priority from the prefix."""

    def format(self, record: logging.LogRecord) -> str:
        text = f"{record.name}: {super().format(record)}{suffix(record)}"
        return "\n".join(f"<{priority(record.levelno)}>{line}" for line in text.splitlines())


class ReadableFormatter(logging.Formatter):
    """``2024-01-01 12:00:00 INFO after.worker [manobi] message (task=... job=...)`` for a terminal."""

    def __init__(self, worker: str | None) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(worker_tag)s %(message)s", "%Y-%m-%d %H:%M:%S")
        self.worker_tag = f" [{worker}]" if worker else ""

    def format(self, record: logging.LogRecord) -> str:
        record.worker_tag = self.worker_tag
        return super().format(record) + suffix(record)


def journal_send() -> Callable[..., None] | None:
    """systemd.journal.send when python3-systemd is installed."""
    try:
        journal = importlib.import_module("systemd.journal")
    except ImportError:
        return None
    send: Callable[..., None] = journal.send
    return send


def stderr_is_journal(environ: Mapping[str, str], stream: TextIO) -> bool:
    """True when $JOURNAL_STREAM names the device:inode of ``stream`` (systemd.exec(5))."""
    try:
        device, inode = (int(part) for part in environ.get("JOURNAL_STREAM", "").split(":"))
        info = os.fstat(stream.fileno())
    except (ValueError, OSError):
        return False
    return (info.st_dev, info.st_ino) == (device, inode)


def make_handler(
    worker: str | None,
    environ: Mapping[str, str],
    stream: TextIO,
    send: Callable[..., None] | None,
) -> logging.Handler:
    if send is not None and stderr_is_journal(environ, stream):
        handler: logging.Handler = JournalHandler(send, worker)
        handler.setFormatter(logging.Formatter("%(message)s"))
        return handler
    handler = logging.StreamHandler(stream)
    handler.setFormatter(PrefixFormatter() if environ.get("JOURNAL_STREAM") else ReadableFormatter(worker))
    return handler


def configure_logging(
    worker: str | None,
    verbose: bool = False,
    environ: Mapping[str, str] | None = None,
    stream: TextIO | None = None,
    send: Callable[..., None] | None | Literal["auto"] = "auto",
) -> None:
    """Route the ``after`` loggers to the journal or stderr (see the module docstring). Idempotent.

    ``environ``, ``stream`` and ``send`` (systemd.journal.send; None: no journal) are for tests.
    """
    handler = make_handler(
        worker,
        os.environ if environ is None else environ,
        sys.stderr if stream is None else stream,
        journal_send() if send == "auto" else send,
    )
    logger = logging.getLogger("after")
    for old in list(logger.handlers):
        logger.removeHandler(old)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    logger.propagate = False
