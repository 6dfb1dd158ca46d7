"""The worker's writes, as pure functions from the current document to the next one.

Every function takes the document as it is now in the store and returns the document to write,
or None when the write no longer applies (somebody else claimed the task, the client changed it).
The writer applies them again to the fresh document after a 409, so a write can never undo a
change it did not see.

What the worker reads back of its own fields (``attempts``, ``history``, ``claim``) is never trusted:
``validate_doc_update`` checks their types, but a deployment without validation (or an admin) may
have written anything, so each is read through a function that falls back to a sane value. Copies
are shallow: a document nested too deep for ``copy.deepcopy`` is still answered, and no transition
changes anything below the top level in place. ``fit`` trims the worker's own fields so that a write
never pushes a document over ``MAX_TASK_CHARS``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from after.core.dates import format_date, parse_date
from after.core.invalid import InvalidTask
from after.core.policies import AfterRun, Again, Settle
from after.core.task import (
    ARM_STATUSES,
    MAX_TASK_CHARS,
    TERMINAL_STATUSES,
    Document,
    Status,
    json_chars,
    status_of,
)

Transform = Callable[[Document], Document | None]
# A lease is taken over this long after it ran out: leases are wall-clock dates compared across hosts,
# so this much clock difference between NTP-synchronised hosts is tolerated.
TAKEOVER_MARGIN = 1.0
HISTORY_LIMIT = 10
# A claim written at most this long before its date is for a job that starts as soon as it is written.
START_SLACK = 0.05


class StartEvidence(enum.Enum):
    """What a takeover knows of whether the claim it replaces started its job."""

    STARTED = "started"  # its process, dead on this host, noted the start in its start journal
    NOT_STARTED = "not started"  # its process is dead on this host and its journal has no such start
    UNKNOWN = "unknown"  # a live process, another host, no journal, or a journal from before a boot


# Whether a claim (``task id``, its ``claim`` field) started its job, from its process's start journal.
StartWitness = Callable[[str, dict[str, Any]], StartEvidence]


def no_witness(task_id: str, claim_field: dict[str, Any]) -> StartEvidence:
    return StartEvidence.UNKNOWN


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


def attempts_of(doc: Document) -> int:
    """``attempts`` as a count, whatever was written there."""
    value = doc.get("attempts", 0)
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        return 0
    try:
        return int(value)
    except (OverflowError, ValueError):
        return 0


def history_of(doc: Document) -> list[Any]:
    value = doc.get("history")
    return list(value) if isinstance(value, list) else []


def updated(doc: Document, **fields: Any) -> Document:
    new = dict(doc)
    new.update(fields)
    return new


def fit(doc: Document, limit: int = MAX_TASK_CHARS) -> Document:
    """``doc`` with the worker's own fields trimmed until it fits ``limit`` characters.

    The output tail goes first, then the oldest history entries, then long reasons. The client's
    fields are never touched: validation keeps them under ``MAX_CLIENT_CHARS``.
    """
    size = json_chars(doc)
    if size <= limit:
        return doc
    new = dict(doc)
    result = new.get("result")
    if isinstance(result, dict) and isinstance(result.get("output"), str) and result["output"]:
        output = result["output"]
        keep = max(0, len(output) - (size - limit) - 64)
        new["result"] = {**result, "output": output[len(output) - keep:] if keep else ""}
        size = json_chars(new)
    history = history_of(new)
    while size > limit and history:
        history.pop(0)
        new["history"] = history
        size = json_chars(new)
    if size > limit and isinstance(new.get("result"), dict):
        new["result"] = {key: value[:200] if isinstance(value, str) else value
                         for key, value in new["result"].items()}
    return new


def acknowledge(doc: Document, owner: Owner) -> Document | None:
    """A client asked for the task to run (waiting, schedule, reschedule): it is now ``scheduled``."""
    due = due_of(doc)
    if status_of(doc) not in ARM_STATUSES or doc.get("worker") != owner.worker or due is None:
        return None
    new = updated(fresh_start(doc), status=Status.SCHEDULED.value, due=format_date(due))
    new.pop("claim", None)
    return new


def fresh_start(doc: Document) -> Document:
    """A client armed a task with ``retry`` or ``repeat`` (waiting, schedule, reschedule): its retries
    count from 0 again, and a retry pending from an earlier run (``occurrence``) is forgotten."""
    if status_of(doc) not in ARM_STATUSES or (doc.get("retry") is None and doc.get("repeat") is None):
        return doc
    new = updated(doc, attempts=0)
    new.pop("occurrence", None)
    return new


def reject(doc: Document, reason: str, now: float) -> Document | None:
    """An invalid task ends as ``err`` with the reason, unless it already ended or changed owner.

    A status that is not one of After's (or none) counts as live: such a task is answered too.
    """
    if status_of(doc) in TERMINAL_STATUSES:
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
          is_dead: Callable[[dict[str, Any]], bool], history_limit: int = HISTORY_LIMIT,
          started: StartWitness = no_witness) -> Document | None:
    """Take the task to run it: status ``running`` with an expiring lease, guarded by ``_rev``.

    A ``scheduled`` task with the expected date is claimed; so is a ``waiting``, ``schedule`` or
    ``reschedule`` one that is already due (the worker skips writing ``scheduled`` first). A
    ``running`` task whose claim expired (or whose process is known dead) is taken over, and the
    interrupted attempt is recorded if its job started or may have started (``takeover_record``, with
    what ``started`` knows of it). ``attempts`` counts the claims under which the job started or may
    have started.
    """
    if doc.get("worker") != owner.worker or due_of(doc) != due:
        return None
    status = status_of(doc)
    lease_field = {"by": owner.as_dict(), "at": format_date(now), "lease_until": format_date(now + lease)}
    base = fresh_start(doc)  # a client's re-arm: retries count afresh
    new = updated(base, status=Status.RUNNING.value, claim=lease_field, attempts=attempts_of(base) + 1,
                  due=format_date(due))
    if status == Status.SCHEDULED.value or status in ARM_STATUSES:
        return new
    if status == Status.RUNNING.value and doc.get("_conflicts"):
        return None  # its branches disagree (a cluster): they are settled first, then looked at again
    if status == Status.RUNNING.value and claim_expired(doc, now, is_dead):
        record = takeover_record(doc, due, now, start_evidence(doc, is_dead, started))
        if record is None:
            new["attempts"] = attempts_of(doc)  # that claim never started its job: not an attempt
        else:
            new["history"] = [*history_of(doc), record][-history_limit:]
        return new
    return None


def start_evidence(doc: Document, is_dead: Callable[[dict[str, Any]], bool],
                   started: StartWitness) -> StartEvidence:
    """Whether the claim on ``doc`` started its job, as far as its process's start journal tells.

    Only the journal of a process known dead counts: a live one (whose lease ran out) may still start
    the job after the journal was read. ``started`` answers UNKNOWN where it has no journal to read.
    """
    found = doc.get("claim")
    if not isinstance(found, dict) or not isinstance(found.get("by"), dict) or not is_dead(found["by"]):
        return StartEvidence.UNKNOWN
    return started(str(doc.get("_id", "")), found)


def takeover_record(doc: Document, due: float, now: float,
                    evidence: StartEvidence = StartEvidence.UNKNOWN) -> dict[str, Any] | None:
    """What a takeover records of the claim it replaces; None when its job did not or cannot have started.

    The start journal of its process, when there is one (``evidence``), says. Without it: a claim
    written for an immediate start (due when it was written) ran its job, or was about to; a claim
    written ahead of the date starts its job at the date: if that date has not come yet (its process
    is known dead on this host), it never started; past the date it may have.
    """
    if evidence == StartEvidence.NOT_STARTED:
        return None
    found = doc.get("claim")
    previous: dict[str, Any] = found if isinstance(found, dict) else {}
    try:
        claimed_at: float | None = parse_date(previous.get("at"))
    except InvalidTask:
        claimed_at = None
    ahead = claimed_at is not None and due > claimed_at + START_SLACK
    if evidence == StartEvidence.UNKNOWN and ahead and now + TAKEOVER_MARGIN < due:
        return None
    why = "its process stopped (crash or kill), or could not renew its lease in time"
    if evidence == StartEvidence.STARTED:
        reason = "the job was started (its process's start journal says so) and its process stopped " \
                 "(crash or kill) before it wrote a result"
    elif ahead:
        reason = f"the claim ran out around the task's date ({why}); the job may have started"
    else:
        reason = f"the claim ran out while the job may have been running ({why})"
    return {"outcome": "interrupted", "attempt": attempts_of(doc), "by": label_of(previous.get("by")),
            "started": previous.get("at"), "reason": reason}


def claim_at(doc: Document) -> str:
    """The ``at`` of the claim on ``doc`` (when it was written): with the task id, it names the claim."""
    found = doc.get("claim")
    at = found.get("at") if isinstance(found, dict) else None
    return at if isinstance(at, str) else ""


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
    return updated(doc, claim={**doc["claim"], "lease_until": format_date(now + lease)})  # owns(): a dict


def release(doc: Document, owner: Owner, interrupted: dict[str, Any] | None = None,
            history_limit: int = HISTORY_LIMIT) -> Document | None:
    """Give back a claimed task (on stop): ``scheduled`` again, to run after a restart."""
    if doc.get("status") != Status.RUNNING.value or not owner.owns(doc):
        return None
    new = updated(doc, status=Status.SCHEDULED.value)
    new.pop("claim", None)
    if interrupted is None:
        new["attempts"] = max(0, attempts_of(doc) - 1)
    else:
        new["history"] = [*history_of(doc), interrupted][-history_limit:]
    return new


def settled(doc: Document, result: dict[str, Any], history: list[Any], history_limit: int,
            then: AfterRun) -> Document:
    """The task once its policy's answer is applied: ended, or ``scheduled`` again at a new date (with
    the fields the policy changes), the run recorded with its notes, all in one document."""
    record = {**result, **then.notes}
    if isinstance(then, Again):
        record["again"] = then.why.value
    summary = {key: value for key, value in record.items() if key != "output"}
    history = [*history, summary][-history_limit:]
    if not isinstance(then, Again):
        return updated(doc, status=then.status.value, result=record, history=history)
    date = format_date(then.date)
    new = updated(doc, status=Status.SCHEDULED.value, date=date, due=date, result=record, history=history)
    for key, value in then.fields.items():
        if value is None:
            new.pop(key, None)
        else:
            new[key] = value
    if then.new_occurrence:
        new["attempts"] = 0
    return new


def finish(doc: Document, owner: Owner, result: dict[str, Any], history_limit: int,
           then: AfterRun | None = None) -> Document | None:
    """Write a job's result. The client's later intent wins over the task's policy (``then``):

    still ours and running -> what the policy says (``after.core.policies``: by default ``done`` or
    ``err`` with the outcome, or ``scheduled`` again at a new date); the client canceled meanwhile ->
    ``canceled``; the client rescheduled meanwhile -> its status stays, so the task is armed again;
    another process took it over (our lease ran out, say a host cut off) -> nothing changes but the
    history, which records this run as ``late``, so the document still tells every run.
    """
    status = status_of(doc)
    summary = {key: value for key, value in result.items() if key != "output"}
    history = [*history_of(doc), summary][-history_limit:]
    if status == Status.RUNNING.value and owner.owns(doc):
        new = settled(doc, result, history_of(doc), history_limit,
                      then or Settle(Status.DONE if result["outcome"] == "done" else Status.ERR))
    elif status == Status.CANCEL.value:
        new = updated(doc, status=Status.CANCELED.value, result=result, history=history)
    elif status in ARM_STATUSES:
        new = updated(doc, result=result, history=history)
    elif any(isinstance(entry, dict) and entry.get("run") == result.get("run") for entry in history_of(doc)):
        return None  # recorded already
    else:  # another process took the task over (this one lost its lease): only the record is added
        late = {**summary, "late": "this process had lost its claim; the task was not changed"}
        return updated(doc, history=[*history_of(doc), late][-history_limit:])
    new.pop("claim", None)
    return new
