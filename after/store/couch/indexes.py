"""The Mango indexes After reads on Apache CouchDB, and the selectors that read them. Pure data.

Apache CouchDB runs JavaScript (views, ``_changes`` filters, ``validate_doc_update``) in a separate
process, one round trip per document; Mango indexes and selectors run in Erlang inside the server
(``../shared/couchdb/README.md`` has the measured costs). So on Apache CouchDB the worker finds its
tasks only through these indexes, kept in ``_design/after-mango``:

- ``live-due``: armed tasks (``scheduled``, ``running``) by ``[worker, due]``; ``due`` is the canonical
  UTC date the worker wrote (``YYYY-MM-DDTHH:MM:SS.mmmZ``), which sorts as a string.
- ``live-date``: tasks with a client status (``waiting``, ``schedule``, ``reschedule``, ``cancel``) by
  ``[worker, date]``. A client's ``date`` may carry any offset, so strings do not sort by instant; a
  date's local day is at most one day after its UTC day, so every task due by ``until`` has a date that
  sorts before the day after ``until``'s UTC day plus one (``day_bound``). The few read beyond are
  dropped by the caller. Non-string dates (null, numbers, booleans) sort before every string: they come
  with the first range and are answered ``err``.
- ``live-odd``: tasks whose status is not one of After's (or missing), and live tasks whose date (or,
  for armed ones, ``due``) is missing or not shaped like a date, which no range can place: read
  whole, they end ``err`` at once.
- ``by-date`` and ``by-status``: for the command line (listing by worker and date, counts by worker and
  status through the index's built-in ``_count`` reduce).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from after.core.dates import CANONICAL_DATE_PATTERN, DATE_PATTERN
from after.core.task import CLIENT_STATUSES, LIVE_STATUSES, Status

MANGO_ID = "_design/after-mango"
MANGO_DDOC = MANGO_ID.split("/", 1)[1]
ARMED = sorted({Status.SCHEDULED.value, Status.RUNNING.value})
LIVE_DUE, LIVE_DATE, LIVE_ODD = "live-due", "live-date", "live-odd"
BY_DATE, BY_STATUS = "by-date", "by-status"
# DATE_PATTERN allows surrounding white space (the parser strips it); Erlang's re is PCRE like Python's.
LOOSE_DATE = r"^\s*" + DATE_PATTERN[1:-1] + r"\s*$"

ODD_SELECTOR: dict[str, Any] = {
    "$or": [
        {"status": {"$exists": False}},
        {"status": {"$nin": sorted(Status)}},  # not one of After's: answered err, like a bad date
        {"status": {"$in": sorted(LIVE_STATUSES)}, "date": {"$exists": False}},
        {"status": {"$in": sorted(LIVE_STATUSES)}, "date": {"$not": {"$regex": LOOSE_DATE}}},
        {"status": {"$in": ARMED}, "due": {"$exists": False}},
        {"status": {"$in": ARMED}, "due": {"$not": {"$regex": CANONICAL_DATE_PATTERN}}},
    ],
}


def mango_view(fields: list[str], partial: dict[str, Any] | None = None) -> dict[str, Any]:
    """One Mango JSON index as CouchDB stores it in a ``"language": "query"`` design document."""
    definition: dict[str, Any] = {"fields": fields}
    if partial:
        definition["partial_filter_selector"] = partial
    return {
        "map": {"fields": {field: "asc" for field in fields}, "partial_filter_selector": partial or {}},
        "reduce": "_count",
        "options": {"def": definition},
    }


def mango_document() -> dict[str, Any]:
    """``_design/after-mango``, installed by ``after init`` (idempotent: compared without ``_rev``)."""
    return {
        "_id": MANGO_ID,
        "language": "query",
        "views": {
            LIVE_DUE: mango_view(["worker", "due"], {"status": {"$in": ARMED}}),
            LIVE_DATE: mango_view(["worker", "date"], {"status": {"$in": sorted(CLIENT_STATUSES)}}),
            LIVE_ODD: mango_view(["worker"], ODD_SELECTOR),
            BY_DATE: mango_view(["worker", "date"]),
            BY_STATUS: mango_view(["worker", "status"]),
        },
    }


def day_bound(until: float) -> str:
    """A string that sorts after every ISO date due by ``until``: its UTC day plus two, ``YYYY-MM-DD``."""
    day = datetime.fromtimestamp(until, UTC).date() + timedelta(days=2)
    return f"{day.year:04d}-{day.month:02d}-{day.day:02d}"


def live_queries(worker: str, until: float | None, canonical_until: str | None) -> list[tuple[str, Any]]:
    """``(index, selector)`` pairs whose results together hold every live task due by ``until``.

    ``canonical_until`` is ``until`` as the worker writes dates (``after.core.task.format_date``).
    """
    armed: dict[str, Any] = {"worker": worker}
    dated: dict[str, Any] = {"worker": worker}
    if until is not None and canonical_until is not None:
        armed["due"] = {"$lte": canonical_until}
        dated["date"] = {"$lt": day_bound(until)}
    else:
        armed["due"] = {"$gt": None}
        dated["date"] = {"$gt": None}
    # the odd index holds dates that are missing or null: "$gt": null would miss the latter, so no bound
    return [(LIVE_ODD, {"worker": worker}), (LIVE_DUE, armed), (LIVE_DATE, dated)]
