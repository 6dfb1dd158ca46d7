"""The worker's writes to CouchDB: ``StoreWriter`` (one thread, batched, retried, isolated per
document) and ``RoutedWriter`` (claims, urgent writes and answers to clients on three of them).

A writer reports back to the worker's loop only through its inbox (``Written``, ``Loaded``,
``Connection``), so the loop itself never blocks on I/O.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from after.contracts import Store
from after.core.task import Document
from after.core.transitions import fit
from after.core.writes import Purpose, WriteRequest
from after.store.types import StoreError, Unavailable, Unreadable, WriteResult
from after.worker.events import Event, Loaded, Written
from after.worker.io.reconnecting import GiveUp, Reconnecting
from after.worker.io.settling import ConflictSettler, ResolveRequest

log = logging.getLogger("after.worker")



# Writes per _bulk_docs: on Apache CouchDB each document of a request waits for validate_doc_update in
# turn and none is answered before all are, so smaller requests give the first answers (and jobs) sooner.
BATCH = 100


ROUNDS = 6  # write attempts per request before it is reported as not written


# Writes whose success must be exclusive: on a CouchDB cluster two writes of the same _rev can both
# succeed, one with a quorum (201) and the others 202 Accepted, which the loop treats as lost.
CONFIRMED = frozenset({Purpose.CLAIM, Purpose.RENEW})


@dataclass(frozen=True)
class LoadRequest:
    until: float


Item = WriteRequest | LoadRequest | ResolveRequest


class WriteLatency:
    """How long the store's writes take now (an exponential average, shared by the writer threads).

    Leases are written to last ``lease`` seconds from when the write lands, not from when it is built,
    so a slow server (seconds per write under load) does not eat the lease before its owner has it.
    """

    def __init__(self, smoothing: float = 0.2) -> None:
        self.value, self.smoothing, self.lock = 0.0, smoothing, threading.Lock()

    def observe(self, seconds: float) -> None:
        with self.lock:
            self.value += self.smoothing * (seconds - self.value)

    def seconds(self) -> float:
        return self.value


class StoreWriter:
    """Applies the loop's write requests in bulk; after a 409 re-reads and re-applies the transform."""

    def __init__(self, store: Store, worker: str, inbox: queue.Queue[Event],
                 give_up: threading.Event, wall: Callable[[], float] = time.time,
                 latency: WriteLatency | None = None) -> None:
        self.store, self.worker, self.inbox, self.give_up = store, worker, inbox, give_up
        self.wall = wall
        self.latency = latency or WriteLatency()
        self.requests: queue.Queue[Item] = queue.Queue()
        self.pending = 0
        self.lock = threading.Lock()
        self.retrying = Reconnecting(store, inbox, give_up)
        self.conflicts = ConflictSettler(store, self.retrying, self.bulk_write, wall, give_up)

    def submit(self, request: WriteRequest) -> None:
        self.enqueue(request)

    def load(self, until: float) -> None:
        self.enqueue(LoadRequest(until))

    def resolve(self, task_id: str, doc: Document) -> None:
        self.enqueue(ResolveRequest(task_id, doc))

    def enqueue(self, item: Item) -> None:
        with self.lock:
            self.pending += 1
        self.requests.put(item)

    def idle(self) -> bool:
        with self.lock:
            return self.pending == 0

    def write_seconds(self) -> float:
        return self.latency.seconds()

    def run(self) -> None:
        while not self.give_up.is_set():
            self.conflicts.recheck()
            try:
                first = self.requests.get(timeout=0.5)
            except queue.Empty:
                continue
            batch = [first]
            while len(batch) < BATCH:
                try:
                    batch.append(self.requests.get_nowait())
                except queue.Empty:
                    break
            self.process(batch)

    def flush(self) -> None:
        """Process everything queued, in this thread (for tests and for the final drain)."""
        batch: list[Item] = []
        while True:
            try:
                batch.append(self.requests.get_nowait())
            except queue.Empty:
                break
        if batch:
            self.process(batch)

    def process(self, batch: list[Item]) -> None:
        writes = [item for item in batch if isinstance(item, WriteRequest)]
        try:
            self.write_all(writes)
            for item in batch:
                if isinstance(item, LoadRequest):
                    docs = self.retrying(self.reader(item.until))
                    self.inbox.put(Loaded(docs, item.until, reconnect=False))
                elif isinstance(item, ResolveRequest):
                    self.conflicts.settle(item)
        except GiveUp:
            log.error("gave up writing %d requests: CouchDB is unreachable and the worker is stopping",
                      len(batch))
        except Exception:  # a bug: each request is answered, the thread goes on
            log.exception("writing %d requests failed", len(batch))
            for request in writes:
                self.inbox.put(Written(request, False, None))
        finally:
            with self.lock:
                self.pending -= len(batch)

    def reader(self, until: float) -> Callable[[], list[Document]]:
        return lambda: list(self.store.live_tasks(self.worker, until))

    def write_all(self, requests: list[WriteRequest]) -> None:
        """Write every request in as few round trips as possible.

        Each round writes one request per document in one ``_bulk_docs``; the conflicted ones are
        re-read together in one request, and the next round applies their transforms again.
        """
        pending: list[tuple[WriteRequest, Document | None]] = [(request, None) for request in requests]
        takeovers = [request.task_id for request in requests if request.fresh]
        if takeovers:  # a takeover decides on a read that merges the copies and lists every branch
            read: list[Document | None] = self.retrying(lambda: [self.store.get(task) for task in takeovers])
            now_read = dict(zip(takeovers, read, strict=True))
            pending = [(request, now_read[request.task_id] or {"_id": request.task_id, "_deleted": True})
                       if request.fresh else (request, None) for request in requests]
        for _ in range(ROUNDS):
            if not pending:
                return
            pending = self.write_round(pending)
            if pending:
                fresh = self.retrying(self.reader_of([request.task_id for request, _ in pending]))
                pending = [(request, latest) for (request, _), latest in zip(pending, fresh, strict=True)]
        for request, latest in pending:
            self.inbox.put(Written(request, False, latest))

    def write_round(self, pending: list[tuple[WriteRequest, Document | None]]
                    ) -> list[tuple[WriteRequest, Document | None]]:
        """One bulk write; returns what must be re-read and tried again."""
        again: list[tuple[WriteRequest, Document | None]] = []
        prepared: list[tuple[WriteRequest, Document]] = []
        seen: set[str] = set()
        for request, latest in pending:
            if request.task_id in seen:  # one write per document per round
                again.append((request, latest))
                continue
            seen.add(request.task_id)
            new = self.prepare(request, latest, again)
            if new is not None:
                prepared.append((request, new))
        if prepared:
            results = self.retrying(lambda: self.bulk_write([doc for _, doc in prepared]))
            for (request, new), result in zip(prepared, results, strict=True):
                if result.ok and result.accepted and request.purpose in CONFIRMED:
                    log.info("the %s of task %s was taken by fewer CouchDB copies than the quorum "
                             "(202 Accepted): not counted as ours", request.purpose, request.task_id,
                             extra={"task_id": request.task_id})
                    self.inbox.put(Written(request, False, None))
                elif result.ok:
                    self.inbox.put(Written(request, True, {**new, "_rev": result.rev}))
                elif result.error == "conflict":
                    again.append((request, None))
                else:
                    reason = f"CouchDB refused it: {result.reason or result.error}"
                    log.error("CouchDB refused the %s of task %s: %s", request.purpose, request.task_id,
                              result.reason or result.error, extra={"task_id": request.task_id})
                    self.inbox.put(Written(request, False, None, failure=reason))
        return again

    def bulk_write(self, docs: list[Document]) -> list[WriteResult]:
        """One ``_bulk_docs``; if the request as a whole is refused, each document alone, so one bad
        document (one CouchDB cannot take) fails by itself instead of sinking its batch."""
        started = time.monotonic()
        try:
            results = self.store.bulk_write(docs)
            self.latency.observe(time.monotonic() - started)

            return results
        except (Unavailable, Unreadable):
            raise
        except StoreError as error:
            if len(docs) == 1:
                return [WriteResult(str(docs[0].get("_id")), error="refused", reason=str(error))]
            log.warning("a batch of %d writes was refused (%s); writing them one by one", len(docs), error)
            return [result for doc in docs for result in self.bulk_write([doc])]

    def prepare(self, request: WriteRequest, latest: Document | None,
                again: list[tuple[WriteRequest, Document | None]]) -> Document | None:
        """The document to write, or None when the request is settled (or must be re-read first).

        A transform that raises fails its own request only (answered with the error as ``failure``).
        """
        try:
            return self.prepared(request, latest, again)
        except Exception as error:
            log.exception("building the %s of task %s failed", request.purpose, request.task_id,
                          extra={"task_id": request.task_id})
            failure = f"After could not build its {request.purpose} write: {type(error).__name__}: {error}"
            self.inbox.put(Written(request, False, latest, failure=failure))
            return None

    def prepared(self, request: WriteRequest, latest: Document | None,
                 again: list[tuple[WriteRequest, Document | None]]) -> Document | None:
        if latest is None:  # first round: the loop's copy, which may be stale
            new = request.transform(request.base)
            if new is None:
                again.append((request, None))
            return None if new is None else fit(new)
        if latest.get("_deleted"):
            self.inbox.put(Written(request, False, None))
            return None
        if request.applied(latest):
            self.inbox.put(Written(request, True, latest))
            return None
        new = request.transform(latest)
        if new is None:
            self.inbox.put(Written(request, False, latest))
        return None if new is None else fit(new)

    def reader_of(self, task_ids: list[str]) -> Callable[[], list[Document | None]]:
        def read() -> list[Document | None]:
            found = self.store.get_many(task_ids)
            return [doc if doc is not None else {"_id": task_id, "_deleted": True}
                    for task_id, doc in zip(task_ids, found, strict=True)]

        return read

URGENT = frozenset({Purpose.RENEW, Purpose.FINISH, Purpose.RELEASE})


ANSWERS = frozenset({Purpose.ACKNOWLEDGE, Purpose.REJECT, Purpose.CANCEL})


class RoutedWriter:
    """Three writers, so lease renewals and results never queue behind a backlog of claims, and a
    client's new task is answered without waiting for a batch of claims either.

    Under load the claim writer can be seconds behind; a renewal stuck behind it would let the
    lease run out and another process take over a job that is running (or has run). On Apache
    CouchDB with validation in JavaScript a batch of 100 claims takes a few hundred milliseconds.
    """

    def __init__(self, claims: StoreWriter, urgent: StoreWriter, answers: StoreWriter | None = None) -> None:
        self.claims, self.urgent = claims, urgent
        self.answers = answers or claims

    def submit(self, request: WriteRequest) -> None:
        if request.purpose in URGENT:
            self.urgent.submit(request)
        elif request.purpose in ANSWERS:
            self.answers.submit(request)
        else:
            self.claims.submit(request)

    def load(self, until: float) -> None:
        self.claims.load(until)

    def resolve(self, task_id: str, doc: Document) -> None:
        self.claims.resolve(task_id, doc)

    def idle(self) -> bool:
        return self.claims.idle() and self.urgent.idle() and self.answers.idle()

    def write_seconds(self) -> float:
        return max(self.claims.write_seconds(), self.urgent.write_seconds())

