"""Preparing a database: write-time validation off and on, loading many documents, building indexes.

Validation: ``after.initialize.initialize(store, Validation.NONE)`` installs the design document without
``validate_doc_update``; ``initialize(store)`` (idempotent) puts it back. On Apache CouchDB every
written document is a round trip to the JavaScript process while a validation function exists (~930
docs/s against ~10,800 without), so large loads switch it off first.

Indexes are built without knowing their names (the store chooses them, and they changed): a worker of
another name, with a long read timeout, is started until it reports ready and stopped. Its reads use
the same indexes as the measured worker's (they are per database, not per worker), so afterwards they
are built, and it touches none of the benchmark's tasks.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator

from after.contracts import Store
from after.core.task import Document
from after.initialize import Validation, initialize
from bench.common import READY, wait_for
from bench.db import Database
from tests.integration.deployment import Deployment

BATCH = 2000
WARM_TIMEOUT = 60 * 60.0  # seconds: building indexes over 1,000,000 documents can take many minutes
WARM_WORKER = "warmup"


def validation_off(db: Database, store: Store) -> None:
    """``after init --validation none``: the design document without ``validate_doc_update``."""
    initialize(store, Validation.NONE)
    left = [str(design["_id"]) for design in design_docs(db) if "validate_doc_update" in design]
    if left:
        raise RuntimeError(f"validation is still on after initialize(Validation.NONE): {left}")


def validation_on(store: Store) -> None:
    """``after init`` again: the design documents as After installs them, validation included."""
    initialize(store)


def design_docs(db: Database) -> list[Document]:
    body = db.json("GET", "/_all_docs",
                   params={"startkey": '"_design/"', "endkey": '"_design0"', "include_docs": "true"})
    return [row["doc"] for row in body.get("rows", []) if isinstance(row.get("doc"), dict)]


def batches(docs: Iterable[Document], size: int = BATCH) -> Iterator[list[Document]]:
    batch: list[Document] = []
    for doc in docs:
        batch.append(doc)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def load(db: Database, store: Store, docs: Iterable[Document], budget: float = float("inf"),
         keep_off: bool = False) -> tuple[int, float]:
    """Write ``docs`` in ``_bulk_docs`` batches with validation off, then (unless ``keep_off``) on again.

    Stops early when ``budget`` seconds have passed; returns how many were written and the seconds.
    """
    started = time.monotonic()
    validation_off(db, store)
    written = 0
    for batch in batches(docs):
        db.bulk(batch)
        written += len(batch)
        if time.monotonic() - started > budget:
            break
    if not keep_off:
        validation_on(store)
    return written, time.monotonic() - started


def warm_up(deploy: Deployment, worker: str = WARM_WORKER) -> float:
    """Start ``worker`` with a long read timeout, wait until it is ready and stop it; the seconds to ready.

    Its first reads build whatever indexes they use; the config is restored afterwards.
    """
    original = deploy.config.read_text()
    if "[couchdb]\n" not in original:
        raise RuntimeError(f"no [couchdb] section in {deploy.config} to set the warm-up's read timeout")
    deploy.config.write_text(original.replace("[couchdb]\n", f"[couchdb]\ntimeout = {WARM_TIMEOUT}\n", 1))
    try:
        process = deploy.start_worker(worker)
        seconds = wait_for(process, READY, 1, WARM_TIMEOUT, "the warm-up worker to be ready", poll=0.02)
        process.terminate()
    finally:
        deploy.config.write_text(original)
    return seconds
