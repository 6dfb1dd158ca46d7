"""Hostile task documents: what a careless or malicious client, or an unlucky operator, writes (issue 7).

``hostile_documents()`` is a hypothesis strategy of ``Hostile`` documents: valid tasks (``worker``
``manobi``, job ``record`` or ``noop``) mixed with wrong types in every field, dates at the edges of
what After represents, sizes near and over the limits, nesting around 32 levels and far deeper,
unicode (astral characters, controls, NUL, lone surrogates), and the worker's own fields (``due``,
``claim``, ``attempts``, ``history``, ``result``, worker statuses) filled in as an admin would.

A ``Hostile`` is a template: dates near "now" and the canonical ``due`` are rendered by
``materialize(index, now)``, which gives the document as Python data (``Written.doc``, for the
in-memory store and the oracle) and as the JSON text a client sends (``Written.text``; a value nested
1500 deep exists only as text, since Python's JSON encoder cannot write it).

``expect(doc, ...)`` is the oracle: what the worker must make of a document, decided by
``after.core.task.validate`` (the one table), the job registry and the dates. ``KNOWN_BUGS`` names the
documents that show a bug reported to the lead; the property tests set them apart (each has a strict
xfail regression test), so that the rest of the mix still checks everything else.
"""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from after.core.dates import format_date, parse_date
from after.core.invalid import InvalidTask
from after.core.task import (
    ARM_STATUSES,
    MAX_CLIENT_CHARS,
    MAX_TASK_CHARS,
    META,
    NOT_CLIENT_SIZE,
    READ_BACK_SLACK,
    TERMINAL_STATUSES,
    WORKER_FIELDS,
    Document,
    Status,
    Task,
    is_task,
    json_chars,
    status_of,
    validate,
)
from after.core.transitions import TAKEOVER_MARGIN

WORKER = "manobi"
JOBS = ("record", "noop")
HOST = socket.gethostname()
MISSING: Any = object()  # a field left out

# ---- templates: values rendered when a batch is written ----------------------------------------------


@dataclass(frozen=True)
class Near:
    """A date ``offset`` seconds from the moment the batch is written, in one of many ISO 8601 styles."""

    offset: float
    style: str = "z"

    def render(self, now: float, scale: float = 1.0) -> str:
        instant = now + (self.offset * scale if self.offset > 0 else self.offset)
        moment = datetime.fromtimestamp(instant, UTC)
        text = moment.strftime("%Y-%m-%dT%H:%M:%S")
        if self.style == "z":
            return text + "Z"
        if self.style == "ms":
            return format_date(instant)
        if self.style == "frac9":
            return text + f".{moment.microsecond:06d}417Z"
        if self.style == "comma":
            return text + f",{moment.microsecond // 100000}"
        if self.style == "space-minutes":
            return moment.strftime("%Y-%m-%d %H:%M")
        if self.style == "padded":
            return "  " + text + "Z\t\n"
        for style, (delta, suffix) in OFFSETS.items():
            if self.style == style:
                local = moment.astimezone(timezone(delta))
                return local.strftime("%Y-%m-%dT%H:%M:%S") + f".{local.microsecond // 1000:03d}" + suffix
        for style, prefix in WHITESPACE.items():
            if self.style == style:
                return prefix + text + "Z" + prefix
        raise ValueError(self.style)


OFFSETS = {
    "plus-0545": (timedelta(hours=5, minutes=45), "+05:45"),
    "minus-0530": (-timedelta(hours=5, minutes=30), "-0530"),
    "plus-01": (timedelta(hours=1), "+01"),
    "minus-2359": (-timedelta(hours=23, minutes=59), "-23:59"),
    "plus-2359": (timedelta(hours=23, minutes=59), "+23:59"),
}
# Whitespace around a date: Python's str.strip and JavaScript's trim() do not agree on all of it.
WHITESPACE = {"nbsp": "\u00a0", "em-space": "\u2003", "line-sep": "\u2028", "bom": "\ufeff",
              "file-sep": "\x1c", "next-line": "\x85", "vtab": "\x0b"}
NEAR_STYLES = ["z", "ms", "frac9", "comma", "space-minutes", "padded", *OFFSETS, *WHITESPACE]


@dataclass(frozen=True)
class Due:
    """The worker's ``due`` as the worker writes it: the document's date, canonical."""

    shift_ms: int = 0  # off by this much (an admin's mistake)


@dataclass(frozen=True)
class Deep:
    """A list (or object) nested ``levels`` deep: built without recursion, written as raw JSON text."""

    levels: int
    kind: str = "list"

    def python(self) -> Any:
        value: Any = [] if self.kind == "list" else {}
        for _ in range(self.levels - 1):
            value = [value] if self.kind == "list" else {"a": value}
        return value

    def text(self) -> str:
        if self.kind == "list":
            return "[" * self.levels + "]" * self.levels
        return '{"a":' * (self.levels - 1) + "{}" + "}" * (self.levels - 1)


@dataclass(frozen=True)
class Pad:
    """Fill ``where`` with ``char`` until the document is ``size`` characters (After's JSON count).

    ``scope`` "client" counts without the worker's fields (the 48 KiB rule), "total" the whole document.
    """

    where: str
    scope: str
    size: int
    char: str = "x"


@dataclass
class Hostile:
    """A template of one document; ``materialize`` makes it concrete."""

    fields: dict[str, Any]
    id_suffix: str = ""
    pad: Pad | None = None
    tags: tuple[str, ...] = ()

    def materialize(self, index: int, now: float, prefix: str = "h", scale: float = 1.0) -> Written:
        """The document numbered ``index``, its dates near ``now`` (those ahead brought ``scale`` nearer)."""
        doc_id = f"{prefix}{index:04d}{self.id_suffix}"
        doc: Document = {"_id": doc_id}
        doc.update((key, render(value, now, scale)) for key, value in self.fields.items()
                   if value is not MISSING)
        if isinstance(doc.get("job"), dict):
            doc["job"] = {key: value for key, value in doc["job"].items() if value is not MISSING}
        if "due" in doc and isinstance(self.fields.get("due"), Due):
            shift = self.fields["due"].shift_ms / 1000.0
            try:
                doc["due"] = format_date(parse_date(doc.get("date")) + shift)
            except (InvalidTask, ValueError, OverflowError):
                doc["due"] = "2011-10-12T00:00:00.000Z"
        if self.pad is not None:
            padded(doc, self.pad)
        deep = {key: value for key, value in deep_values(doc)}
        text = json.dumps(doc, default=placeholder)
        for marker, value in deep.items():
            text = text.replace(json.dumps(marker), value.text())
        return Written(doc_id, with_deep(doc), text, self.tags, bool(deep))


def render(value: Any, now: float, scale: float = 1.0) -> Any:
    """Dates near now rendered; the rest as it is (Deep markers stay until the text is made)."""
    if isinstance(value, Near):
        return value.render(now, scale)
    if isinstance(value, dict):
        return {key: render(item, now, scale) for key, item in value.items() if item is not MISSING}
    if isinstance(value, list):
        return [render(item, now, scale) for item in value]
    return value


def deep_values(doc: Document) -> list[tuple[str, Deep]]:
    """The Deep markers of a document (at most a few levels down, where the generator puts them)."""
    found: list[tuple[str, Deep]] = []
    stack: list[Any] = [doc]
    while stack:
        value = stack.pop()
        items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else []
        for item in items:
            if isinstance(item, Deep):
                found.append((placeholder(item), item))
            elif isinstance(item, dict | list):
                stack.append(item)
    return found


def placeholder(value: object) -> str:
    if isinstance(value, Deep):
        return f"@@deep-{value.kind}-{value.levels}@@"
    raise TypeError(f"{type(value).__name__} is not JSON")


def with_deep(doc: Document) -> Document:
    """The document with its Deep markers built as Python data."""
    def build(value: Any) -> Any:
        if isinstance(value, Deep):
            return value.python()
        if isinstance(value, dict):
            return {key: build(item) for key, item in value.items()}
        if isinstance(value, list):
            return [build(item) for item in value]
        return value

    return {key: build(value) for key, value in doc.items()}


def chars(doc: Document, leave_out: tuple[str, ...] = ()) -> int:
    kept = {key: value for key, value in doc.items() if key not in leave_out}
    return len(json.dumps(kept, separators=(",", ":"), ensure_ascii=False, default=placeholder))


def padded(doc: Document, pad: Pad) -> None:
    """Grow ``doc[pad.where]`` (a string, or a list it appends a string to) to reach ``pad.size``."""
    leave_out = WORKER_FIELDS if pad.scope == "client" else ()
    if pad.where == "history":
        history = doc.get("history")
        doc["history"] = [*history, ""] if isinstance(history, list) else [""]
    elif pad.where == "argument":
        job = doc.get("job")
        if isinstance(job, dict) and isinstance(job.get("arguments"), list):
            job["arguments"] = [*job["arguments"], ""]
        else:
            doc["note"] = ""
            pad = Pad("note", pad.scope, pad.size, pad.char)
    elif not isinstance(doc.get(pad.where), str):
        doc[pad.where] = ""

    def set_text(text: str) -> None:
        if pad.where == "history":
            doc["history"][-1] = text
        elif pad.where == "argument":
            doc["job"]["arguments"][-1] = text
        else:
            doc[pad.where] = text

    def current() -> str:
        if pad.where == "history":
            return str(doc["history"][-1])
        if pad.where == "argument":
            return str(doc["job"]["arguments"][-1])
        return str(doc[pad.where])

    base = current()
    width = len(json.dumps(pad.char, ensure_ascii=False)) - 2
    missing = pad.size - chars(doc, leave_out)
    if missing <= 0:
        return
    set_text(base + pad.char * (missing // width) + "x" * (missing % width))


@dataclass
class Written:
    """One materialized document: its id, the Python data, the JSON text, and the generator's tags."""

    id: str
    doc: Document
    text: str
    tags: tuple[str, ...]
    deep: bool


# ---- strategies --------------------------------------------------------------------------------------

def weighted(valid: st.SearchStrategy[Any], hostile: st.SearchStrategy[Any],
             percent_hostile: int = 15) -> st.SearchStrategy[Any]:
    """``valid`` mostly, ``hostile`` sometimes; shrinking goes towards valid."""
    return st.integers(0, 99).flatmap(lambda roll: hostile if roll >= 100 - percent_hostile else valid)


LONE_SURROGATES = ["\ud800", "\udbff", "\udc00", "\udfff"]
ODD_CHARACTERS = ["\x00", "\x01", "\x1f", "\x7f", "\u0085", "\u00a0", "\u200b", "\u200d", "\u2028",
                  "\u2029", "\ufeff", "\ufffd", "\uffff", "\U0001f600", "\U0001d518", "\U0010ffff", "é",
                  "\u0301", "\u0661", "\uff11", "\u202e", '"', "\\", "/", "\n", "\t"]
# Lone surrogates in a few texts only: Apache CouchDB refuses a whole request that holds one (400).
texts = weighted(
    st.text(st.one_of(st.characters(codec="utf-8"), st.sampled_from(ODD_CHARACTERS)), max_size=12),
    st.text(st.sampled_from(LONE_SURROGATES), min_size=1, max_size=2), percent_hostile=3)
# Numbers CouchDB keeps (it refuses integers beyond the float range with 500 badarith).
integers = st.one_of(st.integers(-(2 ** 63), 2 ** 63),
                     st.sampled_from([2 ** 53 + 1, -(2 ** 53) - 1, 10 ** 300, -(10 ** 300)]))
floats = st.one_of(st.floats(allow_nan=False, allow_infinity=False),
                   st.sampled_from([-0.0, 5e-324, 1.7976931348623157e308, 1e16, 0.1]))
scalars = st.one_of(st.none(), st.booleans(), integers, floats, texts)
json_values = st.recursive(scalars, lambda children: st.one_of(
    st.lists(children, max_size=4), st.dictionaries(texts, children, max_size=4)), max_leaves=12)


def nested(levels: int) -> Any:
    value: Any = []
    for _ in range(levels - 1):
        value = [value]
    return value


# Total depth of the document (the document itself is level 1) around MAX_DEPTH, and far beyond.
DEPTHS = [31, 32, 33, 34, 64, 200, 500, 1500]


@st.composite
def deep_arguments(draw: st.DrawFn) -> tuple[list[Any], str]:
    """Arguments that make the document ``depth`` levels deep (doc 1, job 2, arguments 3)."""
    depth = draw(st.sampled_from(DEPTHS))
    kind = draw(st.sampled_from(["list", "dict"]))
    inner = depth - 3  # levels below the arguments list
    value: Any = Deep(inner, kind) if depth >= 500 else \
        (nested(inner) if kind == "list" else Deep(inner, "dict").python())
    return [value], f"depth-{depth}"


worker_names = weighted(st.just(WORKER), st.one_of(
    st.sampled_from(["other", "", "manobi ", " manobi", "MANOBI", "man/obi", "mánobi", "m" * 65,
                     "manobi\x00", MISSING]),
    st.sampled_from([None, 7, True, ["manobi"], {"name": "manobi"}])))

job_names = weighted(st.sampled_from(JOBS), st.one_of(
    st.sampled_from(["start_campaign", "re cord", "", "record\n", "r" * 65, "recörd", "../record",
                     "noop\x00"]),
    st.sampled_from([None, 1, ["record"], {"name": "record"}, True])), percent_hostile=10)

arguments = weighted(st.lists(json_values, max_size=4), st.one_of(
    deep_arguments(),
    st.sampled_from(["x", None, 3, {"a": 1}, True, MISSING]).map(lambda value: (value, "arguments-type")),
    st.lists(st.sampled_from(["with\x00nul", "\ud800", "\U0001f600" * 3, "-n", "$(touch pwned)", "*", ""]),
             min_size=1, max_size=3).map(lambda values: (values, "arguments-odd")),
), percent_hostile=25)


@st.composite
def jobs(draw: st.DrawFn) -> tuple[Any, tuple[str, ...]]:
    shape = draw(st.integers(0, 99))
    if shape >= 94:
        return draw(st.sampled_from([MISSING, "record", None, [], ["record"], 5])), ("job-type",)
    name = draw(job_names)
    args = draw(arguments)
    tags: tuple[str, ...] = ()
    if isinstance(args, tuple):
        args, tag = args
        tags = (tag,)
    job: dict[str, Any] = {"name": name, "arguments": args}
    if draw(st.integers(0, 99)) >= 95:
        job["extra"] = draw(json_values)
    return job, tags


FAR_DATES = [
    "2011-10-12", "0001-01-01T00:00:00Z", "0001-01-01", "1970-01-01T00:00:00Z", "1969-12-31T23:59:59.999Z",
    "0001-01-01T00:00:00-14:00", "0001-01-01T23:59:59+23:59", "2000-02-29", "2024-02-29T12:00:00Z",
    "9999-12-31T23:59:59Z", "9999-12-31T23:59:59.9999Z", "9999-12-31T00:00:00+23:59",
    "9999-06-15T12:00:00.228Z",
    "3000-01-01", "2300-07-04T04:05:06.0019994Z", "2100-02-28T23:59:59,5-01:00",
]
BAD_DATES = [
    "9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59.9999999999Z",
    "9999-12-31T23:59:59.999999999Z", "0000-12-31T23:59:59Z", "10000-01-01", "2023-02-29", "2100-02-29",
    "2011-10-12T24:00:00", "2011-10-12T24:00", "2011-10-12T23:60:00Z", "2011-10-12T23:59:60Z", "2011-13-01",
    "2011-00-10", "2011-10-32", "2011-10-12T08:30:00+24:00", "2011-10-12T08:30:00+23:60",
    "2011-10-12t08:30:00Z", "2011-10-12T08:30:00ZZ", "2011-10-12T08:30:00.Z", "next tuesday", "", " ",
    "\uff12\uff10\uff11\uff11-10-12", "\u0662\u0660\u0661\u0661-10-12", "2011-10-12T08:30:00z", "20111012",
    "2011-10-12T08:30:00+2", "2011-10-12T08", "2011-1-2", "+2011-10-12", "2011-10-12T08:30:00.123456789012Z",
]
dates = weighted(
    st.one_of(st.builds(Near, st.floats(-120.0, 25.0), st.sampled_from(NEAR_STYLES[:6])),
              st.sampled_from(FAR_DATES)),
    st.one_of(st.sampled_from(BAD_DATES),
              st.builds(Near, st.floats(-120.0, 25.0), st.sampled_from(NEAR_STYLES)),
              st.sampled_from([MISSING, None, 20111012, 1.5, True, [], {}, ["2011-10-12"]])))

statuses = weighted(
    st.sampled_from(["waiting", "waiting", "waiting", "schedule", "reschedule", "cancel"]),
    st.one_of(st.sampled_from(["scheduled", "running", "done", "err", "canceled"]),
              st.sampled_from(["WAITING", "", " waiting", "waiting\x00", "\u0461aiting", "started", MISSING,
                               None, 1, ["waiting"], {"status": "waiting"}])), percent_hostile=30)

timeouts = weighted(st.sampled_from([MISSING, MISSING, MISSING, "PT10M", 60, 30.5, "P1D", "P366D", None,
                                     " PT1H "]),
                    st.sampled_from([0, -1, "P367D", 366 * 86400 + 1, "PT", "P", "P1DT", "1h", True, [], {},
                                     "PT0S", "P1W2D", 1e300, "\u0661\u0660S"]))

claims = st.one_of(
    st.builds(lambda at, until, host, pid: {
        "by": {"worker": WORKER, "host": host, "pid": pid, "started": 1.0},
        "at": Near(at, "ms"), "lease_until": Near(until, "ms")},
              st.floats(-90.0, 0.0), st.one_of(st.floats(-90.0, 12.0), st.just(10 ** 7)),
              st.sampled_from(["elsewhere", HOST]), st.sampled_from([4194303, 1, -3, 2 ** 40])),
    st.sampled_from([{}, {"by": "someone"}, {"lease_until": "garbage"},
                     {"by": {"pid": "x"}, "lease_until": 5},
                     {"by": {"worker": WORKER, "host": "elsewhere", "pid": 9}, "at": "2011-10-12",
                      "lease_until": "9999-12-31T00:00:00.000Z"}]),
)
history_entries = st.one_of(
    st.just({"outcome": "interrupted", "attempt": 1, "by": "manobi@elsewhere:9", "reason": "killed"}),
    json_values)


@st.composite
def worker_fields(draw: st.DrawFn) -> dict[str, Any]:
    """The worker's own fields as an admin (or a restored backup) may have left them."""
    found: dict[str, Any] = {}
    if draw(st.integers(0, 99)) < 60:
        return found
    choose = st.integers(0, 99)
    if draw(choose) < 40:
        found["due"] = draw(st.one_of(
            st.builds(Due, st.sampled_from([0, 0, 0, 1, -1, 999])),
            st.sampled_from(["2011-10-12T00:00:00Z", 12345, None, [], "0001-01-01T00:00:00.000Z"])))
    if draw(choose) < 35:
        found["attempts"] = draw(st.sampled_from([0, 1, 7, -1, 1.5, 2.0, "3", True, None, 1e300, 2 ** 53 + 1,
                                                  10 ** 300, [], {"n": 1}]))
    if draw(choose) < 35:
        found["history"] = draw(st.one_of(st.lists(history_entries, max_size=12),
                                          st.sampled_from([{"a": 1}, "history", None, 3])))
    if draw(choose) < 30:
        found["result"] = draw(st.one_of(
            st.fixed_dictionaries({"outcome": st.sampled_from(["done", "failed", "invalid"]),
                                   "reason": texts}),
            st.sampled_from([{}, [], "x", None, 5])))
    if draw(choose) < 35:
        found["claim"] = draw(st.one_of(claims, st.sampled_from([[], "x", None, 0])))
    if draw(choose) < 10:
        found["canceled"] = draw(st.one_of(st.builds(Near, st.floats(-60.0, 0.0)),
                                           st.sampled_from(["x", 5, None])))
    return found


id_suffixes = weighted(st.just(""), st.sampled_from(
    ["-é", "-\U0001f600", " with space", "-" + "x" * 200, "/slash", "+plus%25", "-\u202eevil", "?q=1#f",
     "-\x00nul"]), percent_hostile=15)

PAD_PLACES = {"client": ["note", "argument", "date"], "total": ["history", "canceled", "note"]}


@st.composite
def pads(draw: st.DrawFn) -> Pad | None:
    if draw(st.integers(0, 99)) < 85:
        return None
    scope = draw(st.sampled_from(["client", "total"]))
    limit = MAX_CLIENT_CHARS if scope == "client" else MAX_TASK_CHARS
    delta = draw(st.one_of(st.integers(-64, 8), st.sampled_from([-3000, -200, 200, 20000])))
    where = draw(st.sampled_from(PAD_PLACES[scope]))
    char = draw(st.sampled_from(["x", "é", "\U0001f600", "\n", "\u2028", " "]))
    return Pad(where, scope, limit + delta, char)


@st.composite
def hostile_documents(draw: st.DrawFn) -> Hostile:
    """One document a hostile client or an unlucky operator could write."""
    fields: dict[str, Any] = {}
    tags: list[str] = []
    fields["worker"] = draw(worker_names)
    job, job_tags = draw(jobs())
    fields["job"] = job
    tags.extend(job_tags)
    fields["date"] = draw(dates)
    fields["status"] = draw(statuses)
    fields["timeout"] = draw(timeouts)
    if draw(st.integers(0, 99)) >= 90:
        keys = texts.filter(lambda key: not key.startswith("_") and key not in fields)
        fields.update(draw(st.dictionaries(keys, json_values, max_size=2)))
    if draw(st.integers(0, 99)) >= 97:
        fields["nested"], tag = draw(st.sampled_from([(nested(31), "depth-32"), (nested(32), "depth-33"),
                                                      (Deep(1499), "depth-1500")]))
        tags.append(tag)
    fields.update(draw(worker_fields()))
    if draw(st.integers(0, 99)) >= 97:  # neither worker nor job: not a task
        fields.pop("worker", None)
        fields.pop("job", None)
    return Hostile(fields, id_suffix=draw(id_suffixes), pad=draw(pads()), tags=tuple(tags))


def batches(min_size: int = 1, max_size: int = 25) -> st.SearchStrategy[list[Hostile]]:
    return st.lists(hostile_documents(), min_size=min_size, max_size=max_size)


def materialize(batch: list[Hostile], now: float, prefix: str | None = None,
                scale: float = 1.0) -> list[Written]:
    prefix = prefix if prefix is not None else f"h{uuid.uuid4().hex[:4]}-"
    return [hostile.materialize(index, now, prefix, scale) for index, hostile in enumerate(batch)]


# ---- the oracle --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Expected:
    """What the worker must make of a document by the end of a run.

    ``outcome``: "untouched" (not a task, another worker's, ended, or held by a live claim), "done" (its
    job ran exactly once), "err" (with a reason; its job never ran, unless ``ran_ok``), "canceled", or
    "later" (valid, due after the run: not run, not answered err).
    """

    outcome: str
    why: str
    job: str | None = None
    ran_ok: bool = False  # err after the job ran (it failed): e.g. an executable that cannot take NUL
    alternative: Expected | None = None  # also right: what it ends as if read after all


def beyond(doc: Document, horizon: float) -> bool:
    """Whether a store may leave ``doc`` out of a horizon load up to ``horizon``: its date (or, for an armed
    task, its ``due``) is, or as a string sorts like, a date after it (the Mango indexes compare strings)."""
    bound = format_date(horizon)
    for name in ("date", "due"):
        value = doc.get(name)
        if name == "due" and status_of(doc) not in ("scheduled", "running"):
            continue
        if (due_of({"date": value}) or 0.0) > horizon:
            return True
        if isinstance(value, str) and value.strip()[:1].isdigit() and value.strip() > bound:
            return True
    return False


def expect(doc: Document, now: float, until: float, registry: Collection[str],
           is_dead: Callable[[dict[str, Any]], bool] = lambda by: False,
           executables: Collection[str] = (), unread_after: float | None = None) -> Expected:
    """What ``doc`` (as the worker reads it) must end as, for a worker that runs from ``now`` to ``until``.

    ``registry``: the jobs the worker knows; ``executables``: those that run as processes (argv and
    environment cannot carry NUL characters). ``unread_after``: for a document written before the worker
    started, the end of the horizon it loaded; one dated later is read when the horizon reaches its date
    (README, "How a worker works"), valid or not.
    """
    if not is_task(doc) or doc.get("worker") != WORKER:
        return Expected("untouched", "not a task of this worker")
    if status_of(doc) in TERMINAL_STATUSES:
        return Expected("untouched", "ended already")
    if unread_after is not None and beyond(doc, unread_after):
        read = expect(doc, now, until, registry, is_dead, executables)
        return Expected("untouched", "written before the worker started, dated beyond its horizon "
                        f"(or, if read anyway: {read.outcome})", read.job, alternative=read)
    try:
        task = validate(doc, slack=READ_BACK_SLACK)  # as the worker reads it back
    except InvalidTask as error:
        return Expected("err", error.reason)
    if near_a_size_limit(doc):  # the worker tolerates a little over a limit; CouchDB's count may differ
        return lenient(expect_valid(doc, task, now, until, registry, is_dead, executables))
    return expect_valid(doc, task, now, until, registry, is_dead, executables)


def near_a_size_limit(doc: Document) -> bool:
    """Within ``READ_BACK_SLACK`` characters of a size limit, as Python counts (another count may differ)."""
    try:
        sizes = ((json_chars(doc, META), MAX_TASK_CHARS),
                 (json_chars(doc, NOT_CLIENT_SIZE), MAX_CLIENT_CHARS))
    except (TypeError, ValueError, RecursionError):
        return False
    return any(abs(size - limit) <= READ_BACK_SLACK for size, limit in sizes)


def lenient(expected: Expected) -> Expected:
    """Also right: err, with the size reason, for a task at the edge of a limit."""
    return Expected(expected.outcome, expected.why, expected.job, expected.ran_ok,
                    Expected("err", "at the edge of a size limit"))


def expect_valid(doc: Document, task: Task, now: float, until: float, registry: Collection[str],
                 is_dead: Callable[[dict[str, Any]], bool], executables: Collection[str]) -> Expected:
    known = task.job_name in registry
    if task.status == Status.CANCEL:
        return Expected("canceled", "a valid cancel")
    if not known and task.status in ARM_STATUSES:
        return Expected("err", f"unknown job {task.job_name}")
    if task.status == Status.RUNNING and takeover(doc, now, is_dead) > until:
        return Expected("untouched", "held by another process's live claim", task.job_name)
    if task.due > until:  # armed (scheduled), or beyond the horizon (left alone)
        return Expected("untouched" if task.status == Status.SCHEDULED else "later", "due after the run",
                        task.job_name)
    if not known:
        return Expected("err", f"unknown job {task.job_name}")
    if task.job_name in executables:
        cannot = argv_problem(doc, task.arguments)
        if cannot:
            return Expected("err", cannot, task.job_name, ran_ok=True)
    return Expected("done", "a valid task", task.job_name)


def due_of(doc: Document) -> float | None:
    try:
        return parse_date(doc.get("date"))
    except (InvalidTask, ValueError, OverflowError):
        return None


def takeover(doc: Document, now: float, is_dead: Callable[[dict[str, Any]], bool]) -> float:
    """When a watching process takes over a ``running`` task's claim."""
    claim = doc.get("claim")
    if not isinstance(claim, dict):
        return now
    by = claim.get("by")
    if isinstance(by, dict) and is_dead(by):
        return now
    try:
        return parse_date(claim.get("lease_until")) + TAKEOVER_MARGIN
    except InvalidTask:
        return now


def argv_problem(doc: Document, arguments: list[Any]) -> str | None:
    """Why an executable cannot be started with this task (``after.jobs.executable.passable``): NUL or a
    lone surrogate cannot be in argv or the environment."""
    from after.jobs.executable import job_argv, passable

    try:
        job_argv(Path("job"), arguments)
        passable(str(doc.get("_id")), "the task id", "the environment")
    except ValueError as error:
        return str(error)
    except RecursionError:
        return None
    return None


def dead_on_this_host(by: dict[str, Any]) -> bool:
    """What a real worker on this machine tells of a claim's process (``after.app.dead_on_this_host``)."""
    from after.app import dead_on_this_host as real

    return real(HOST)(by)


# ---- what is known to end otherwise than the table says, and why ---------------------------------------

def lone_surrogates(doc: Document) -> bool:
    try:
        text = json.dumps(doc, ensure_ascii=False, default=placeholder)
    except RecursionError:
        return False
    return any(0xD800 <= ord(character) <= 0xDFFF for character in text)


EXECUTABLES = ("record", "sleepy")  # the jobs the integration deployment installs as executables


def surrogates_to_a_process(doc: Document) -> bool:
    """A valid task for an executable whose arguments hold a lone surrogate (argv cannot carry it)."""
    job = doc.get("job")
    if not isinstance(job, dict) or job.get("name") not in EXECUTABLES or \
            not lone_surrogates({"arguments": job.get("arguments")}):
        return False
    try:
        validate(doc)
    except (InvalidTask, ValueError, OverflowError, RecursionError):
        return False
    return True


# name -> (where it shows: "memory", "couchdb", "pouchdb"; with validation at write or not) -> does it show
def too_deep_for_node(doc: Document) -> bool:
    from after.core.task import nesting_depth

    return nesting_depth(doc, 1200) > 1200


KNOWN_BUGS: dict[str, Callable[[Document, str, bool], bool]] = {
    # A limit of pouchdb-server, not of After: its view indexer leaves out a document nested about 1500
    # deep, so one written while the worker is down is not read when it starts (the changes feed still
    # brings one written while it runs; Apache CouchDB's Mango indexes hold it). Validation refuses them.
    "pouchdb-view-leaves-out-deep-documents": lambda doc, where, validation:
        where == "pouchdb" and not validation and too_deep_for_node(doc),
}


def known_bug(doc: Document, where: str, validation: bool = False) -> str | None:
    """The name of the known bug ``doc`` shows on ``where`` ("memory", "couchdb" or "pouchdb"), if any."""
    for name, shows in KNOWN_BUGS.items():
        if shows(doc, where, validation):
            return name
    return None


def seconds_since(start: float) -> float:
    return time.monotonic() - start
