"""Presence: every worker process keeps one small document in CouchDB saying it is alive. Pure code.

``after-presence:<worker>:<host>:<pid>`` holds who the process is (worker name, host, pid, start,
version), when it last wrote (``last_seen``), which CouchDB node it talks to, what it has done and is
doing, and its ``state`` (``running``, or ``stopped`` when it stopped cleanly). It is rewritten every
``INTERVAL`` seconds. A process whose document is older than ``TTL`` is gone (it died, or cannot reach
CouchDB). The processes of one worker name read each other's documents to share tasks
(``after.worker.sharing``); ``after list`` and the dashboard show them.

Presence documents have no ``worker`` or ``job`` field, so they are never taken for tasks, and the
changes feeds that workers follow do not carry them. One document per process: a clean stop marks it
``stopped``; documents silent for ``FORGET_AFTER`` are deleted by the other processes of that worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from after import __version__
from after.core.dates import format_date, parse_date
from after.core.invalid import InvalidTask
from after.core.task import Document

PREFIX = "after-presence:"
KIND = "after-presence"
INTERVAL = 5.0  # seconds between two writes of a process's presence
TTL = 15.0  # a process silent this long is gone (three missed writes, and a few seconds of clock skew)
FORGET_AFTER = 24 * 3600.0  # a gone process's document is deleted after this long


def prefix_of(worker: str) -> str:
    return f"{PREFIX}{worker}:"


def presence_id(worker: str, host: str, pid: int) -> str:
    return f"{prefix_of(worker)}{host}:{pid}"


@dataclass(frozen=True)
class Report:
    """What a process says of itself in each write."""

    node: str = ""
    connected: bool = False
    done: int = 0
    failed: int = 0
    armed: int = 0
    running: tuple[str, ...] = ()
    lateness_ms: float | None = None  # of the last job started


def presence_document(worker: str, host: str, pid: int, started: float, now: float, report: Report,
                      stopped: bool = False) -> Document:
    return {
        "_id": presence_id(worker, host, pid), "type": KIND, "worker_name": worker, "host": host,
        "pid": pid, "started": format_date(started), "version": __version__, "last_seen": format_date(now),
        "interval": INTERVAL, "state": "stopped" if stopped else "running", "node": report.node,
        "connected": report.connected, "counts": {"done": report.done, "failed": report.failed,
                                                  "armed": report.armed, "running": len(report.running)},
        "running": list(report.running[:20]), "lateness_ms": report.lateness_ms,
    }


def process_of(doc: Document) -> dict[str, Any]:
    """The process a presence document stands for, as a claim's ``by`` names it (for ``is_dead``)."""
    try:
        started: float | None = parse_date(doc.get("started"))
    except InvalidTask:
        started = None
    return {"worker": doc.get("worker_name"), "host": doc.get("host"), "pid": doc.get("pid"),
            "started": started}


def last_seen(doc: Document) -> float | None:
    try:
        return parse_date(doc.get("last_seen"))
    except InvalidTask:
        return None


def is_alive(doc: Document, now: float) -> bool:
    """Running, and written within ``TTL`` (a document from the future counts: clocks differ)."""
    seen = last_seen(doc)
    return doc.get("type") == KIND and doc.get("state") == "running" and seen is not None and \
        now - seen <= TTL


def state_of(doc: Document, now: float) -> str:
    """``running``, ``stopped`` (a clean stop) or ``gone`` (silent for longer than ``TTL``)."""
    if doc.get("state") == "stopped":
        return "stopped"
    return "running" if is_alive(doc, now) else "gone"


def live_members(docs: list[Document], now: float) -> list[str]:
    """The ids of the presence documents of live processes, sorted."""
    return sorted(str(doc["_id"]) for doc in docs if is_alive(doc, now))


def forgotten(docs: list[Document], now: float) -> list[Document]:
    """Documents of processes gone or stopped for longer than ``FORGET_AFTER``: to delete."""
    old = []
    for doc in docs:
        seen = last_seen(doc)
        if seen is None or now - seen > FORGET_AFTER:
            old.append(doc)
    return old


def describe(doc: Document, now: float) -> dict[str, Any]:
    """One row of ``after list``: who, where, its state and how long ago it was seen."""
    seen = last_seen(doc)
    return {"worker": doc.get("worker_name"), "host": doc.get("host"), "pid": doc.get("pid"),
            "state": state_of(doc, now), "seen_ago": None if seen is None else round(now - seen, 1),
            "node": doc.get("node"), "counts": doc.get("counts"), "version": doc.get("version")}
