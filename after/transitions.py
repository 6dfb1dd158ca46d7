"""The worker's writes, as pure functions from the current document to the next one.

Every function takes the document as it is now in the store and returns the document to write,
or None when the write no longer applies (somebody else claimed the task, the client changed it).
The writer applies them again to the fresh document after a 409, so a write can never undo a
change it did not see.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from after.model import ARM_STATUSES, LIVE_STATUSES, Document, InvalidTask, Status, format_date, parse_date

Transform = Callable[[Document], Document | None]
# A lease is taken over this long after it ran out: leases are wall-clock dates compared across hosts,
# so this much clock difference between NTP-synchronised hosts is tolerated.
TAKEOVER_MARGIN = 1.0


@dataclass(frozen=True)
class Owner:
    """One worker process: the claims it writes carry this, so a restart can spot its dead claims."""

    worker: str
    host: str
    pid: int
    started: float  # the process's start time, so a reused pid is not mistaken for it

    @property
    def label(self) -> str:
        return f"{self.worker}@{self.host}:{self.pid}"

    def as_dict(self) -> dict[str, Any]:
        return {"worker": self.worker, "host": self.host, "pid": self.pid, "started": self.started}

    def owns(self, doc: Document) -> bool:
        claim = doc.get("claim")
        return isinstance(claim, dict) and claim.get("by") == self.as_dict()


def due_of(doc: Document) -> float | None:
    try:
        return parse_date(doc.get("date"))
    except InvalidTask:
        return None


def updated(doc: Document, **fields: Any) -> Document:
    new = copy.deepcopy(doc)
    new.update(fields)
    return new


def acknowledge(doc: Document, owner: Owner) -> Document | None:
    """A client asked for the task to run (waiting, schedule, reschedule): it is now ``scheduled``."""
    due = due_of(doc)
    if doc.get("status") not in ARM_STATUSES or doc.get("worker") != owner.worker or due is None:
        return None
    new = updated(doc, status=Status.SCHEDULED.value, due=format_date(due))
    new.pop("claim", None)
    return new


def reject(doc: Document, reason: str, now: float) -> Document | None:
    """An invalid task ends as ``err`` with the reason, unless it already ended or changed owner."""
    if doc.get("status") not in LIVE_STATUSES:
        return None
    new = updated(doc, status=Status.ERR.value,
                  result={"outcome": "invalid", "reason": reason, "ended": format_date(now)})
    new.pop("claim", None)
    return new


def cancel(doc: Document, now: float) -> Document | None:
    """A client's ``cancel`` is honoured: ``canceled``."""
    if doc.get("status") != Status.CANCEL.value:
        return None
    new = updated(doc, status=Status.CANCELED.value, canceled=format_date(now))
    new.pop("claim", None)
    return new


def claim(doc: Document, owner: Owner, now: float, lease: float, due: float,
          is_dead: Callable[[dict[str, Any]], bool]) -> Document | None:
    """Take the task to run it: status ``running`` with an expiring lease, guarded by ``_rev``.

    A ``scheduled`` task with the expected date is claimed; so is a ``waiting``, ``schedule`` or
    ``reschedule`` one that is already due (the worker skips writing ``scheduled`` first). A
    ``running`` task whose claim expired (or whose process is known dead) is taken over, and the
    interrupted attempt is recorded.
    """
    if doc.get("worker") != owner.worker or due_of(doc) != due:
        return None
    status = doc.get("status")
    lease_field = {"by": owner.as_dict(), "at": format_date(now), "lease_until": format_date(now + lease)}
    attempts = int(doc.get("attempts", 0)) + 1
    new = updated(doc, status=Status.RUNNING.value, claim=lease_field, attempts=attempts)
    new["due"] = format_date(due)
    if status == Status.SCHEDULED.value or status in ARM_STATUSES:
        return new
    if status == Status.RUNNING.value and claim_expired(doc, now, is_dead):
        previous = doc.get("claim") or {}
        interrupted = {"outcome": "interrupted", "attempt": int(doc.get("attempts", 1)),
                       "by": label_of(previous.get("by")), "started": previous.get("at"),
                       "reason": "the worker process stopped while the job ran (crash or kill)"}
        new["history"] = [*doc.get("history", []), interrupted]
        return new
    return None


def label_of(by: object) -> str:
    if isinstance(by, dict):
        return f"{by.get('worker')}@{by.get('host')}:{by.get('pid')}"
    return str(by)


def claim_expired(doc: Document, now: float, is_dead: Callable[[dict[str, Any]], bool]) -> bool:
    claim_field = doc.get("claim")
    if not isinstance(claim_field, dict):
        return True
    by = claim_field.get("by")
    if isinstance(by, dict) and is_dead(by):
        return True
    try:
        return parse_date(claim_field.get("lease_until")) + TAKEOVER_MARGIN <= now
    except InvalidTask:
        return True


def lease_end(doc: Document) -> float | None:
    claim_field = doc.get("claim")
    if not isinstance(claim_field, dict):
        return None
    try:
        return parse_date(claim_field.get("lease_until"))
    except InvalidTask:
        return None


def renew(doc: Document, owner: Owner, now: float, lease: float) -> Document | None:
    """Extend our lease on a task whose job still runs."""
    if doc.get("status") != Status.RUNNING.value or not owner.owns(doc):
        return None
    return updated(doc, claim={**doc["claim"], "lease_until": format_date(now + lease)})


def release(doc: Document, owner: Owner, interrupted: dict[str, Any] | None = None) -> Document | None:
    """Give back a claimed task (on stop): ``scheduled`` again, to run after a restart."""
    if doc.get("status") != Status.RUNNING.value or not owner.owns(doc):
        return None
    new = updated(doc, status=Status.SCHEDULED.value)
    new.pop("claim", None)
    if interrupted is None:
        new["attempts"] = max(0, int(doc.get("attempts", 1)) - 1)
    else:
        new["history"] = [*doc.get("history", []), interrupted]
    return new


def finish(doc: Document, owner: Owner, result: dict[str, Any], history_limit: int) -> Document | None:
    """Write a job's result. The client's later intent wins over the outcome's status:

    still ours and running -> ``done``/``err``; the client canceled meanwhile -> ``canceled``;
    the client rescheduled meanwhile -> its status stays, so the task is armed again.
    """
    status = doc.get("status")
    summary = {key: value for key, value in result.items() if key != "output"}
    history = [*doc.get("history", []), summary][-history_limit:]
    if status == Status.RUNNING.value and owner.owns(doc):
        final = Status.DONE if result["outcome"] == "done" else Status.ERR
        new = updated(doc, status=final.value, result=result, history=history)
    elif status == Status.CANCEL.value:
        new = updated(doc, status=Status.CANCELED.value, result=result, history=history)
    elif status in ARM_STATUSES:
        new = updated(doc, result=result, history=history)
    else:
        return None
    new.pop("claim", None)
    return new
