"""One table of task documents, checked by ``after.core.task.validate`` and by the design document's
JavaScript.

The JavaScript (``validate_doc_update``, the date parser and the ``live`` map) runs in ``node`` once per
module, on every case; Python and JavaScript must give the same reason and the same due date in epoch ms.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from after.core.dates import format_date, parse_date, parse_date_ms, parse_duration
from after.core.invalid import InvalidTask
from after.core.task import NOT_CLIENT_SIZE, json_chars, validate
from after.store.couch.design import DATE_JS, DURATION_JS, design_document
from after.store.types import live_view_key

EXAMPLE: dict[str, Any] = {"worker": "manobi", "date": "2011-10-12", "job": {"name": "start_campaign", "arguments": [2, 3, "teste"]}, "status": "waiting"}  # noqa: E501  (verbatim from DESIGN.md)
MISSING = object()


@dataclass(frozen=True)
class Case:
    name: str
    doc: dict[str, Any]
    expected: str | None  # None: valid; else a substring of the reason
    python_bug: str = ""  # a known divergence of after.core.task from the intended rule (see the report)
    extra: dict[str, Any] = field(default_factory=dict)


def with_(name: str, expected: str | None, python_bug: str = "", **changes: Any) -> Case:
    doc = json.loads(json.dumps(EXAMPLE))
    for key, value in changes.items():
        path = key.split("__")
        target = doc if len(path) == 1 else doc[path[0]]
        if value is MISSING:
            target.pop(path[-1], None)
        else:
            target[path[-1]] = value
    return Case(name, doc, expected, python_bug)


NOT_REAL = "is not a real date"
NOT_ISO = "is not ISO 8601"
STATUS = "status must be one of cancel, reschedule, schedule, waiting"
DURATION = "is not an ISO 8601 duration such as PT30S or P1D"

OUT_OF_RANGE = "is out of range: in UTC it must fall in the years 1 to 9999"
DEEP = "task document is nested deeper than 32 levels of objects and lists"
ATTEMPTS = "attempts must be a whole number, at least 0 (it is written by the worker)"
DUE = "due must be the task's date in UTC (2011-10-12T00:00:00.000Z); it is written by the worker"
CANCELED = "canceled must be a date in UTC like 2011-10-12T08:30:00.000Z (it is written by the worker)"


def nested(levels: int) -> Any:
    """A list nested ``levels`` deep: ``[[...[]...]]``."""
    value: Any = []
    for _ in range(levels - 1):
        value = [value]
    return value


CASES = [
    Case("original-example", EXAMPLE, None),
    with_("date-z", None, date="2011-10-12T08:30:00Z"),
    with_("date-offset-colon", None, date="2011-10-12T10:30:00+02:00"),
    with_("date-offset-compact", None, date="2011-10-12T03:00:00-0530"),
    with_("date-offset-hours", None, date="2011-10-12T09:30+01"),
    with_("date-fraction", None, date="2011-10-12T08:30:00.123Z"),
    with_("date-fraction-9", None, date="2011-10-12T08:30:00.123456789+05:45"),
    with_("date-fraction-comma", None, date="2011-10-12T08:30:00,5"),
    with_("date-space-no-seconds", None, date="2011-10-12 08:30"),
    with_("date-no-offset", None, date="2011-10-12T08:30:00"),
    with_("date-padded", None, date="  2011-10-12T08:30:00Z "),
    with_("date-padded-ascii-controls", None, date="\t\x0b\x0c2011-10-12\r\n"),
    with_("date-bom", NOT_ISO, date="\ufeff2011-10-12"),
    with_("date-file-separator", NOT_ISO, date="\x1c2011-10-12"),
    with_("date-next-line", NOT_ISO, date="2011-10-12\x85"),
    with_("date-no-break-space", NOT_ISO, date="\u00a02011-10-12"),
    with_("date-leap-day", None, date="2012-02-29"),
    with_("date-year-1", None, date="0001-01-01T00:00:00Z"),
    with_("date-year-1-east", OUT_OF_RANGE, date="0001-01-01T00:00:00+01:00"),
    with_("date-year-50", None, date="0050-06-15T12:00:00Z"),
    with_("date-year-9999", None, date="9999-12-31T23:59:59.999Z"),
    with_("date-year-9999-east", None, date="9999-12-31T23:59:59+14:00"),
    with_("date-year-10000-in-utc", OUT_OF_RANGE, date="9999-12-31T23:59:59-12:00"),
    with_("date-year-10000-in-utc-far", OUT_OF_RANGE, date="9999-12-31T23:59:59.999-23:59"),
    with_("date-year-0-in-utc", OUT_OF_RANGE, date="0001-01-01T00:00:00+14:00"),
    with_("date-year-1-in-utc-west", None, date="0001-01-01T00:00:00-01:00"),
    with_("date-1900-not-leap", NOT_REAL, date="1900-02-29"),
    with_("date-feb-30", NOT_REAL, date="2011-02-30"),
    with_("date-month-13", "month must be in 1..12", date="2011-13-01"),
    with_("date-day-0", "day is out of range", date="2011-10-00"),
    with_("date-year-0", "year 0 is out of range", date="0000-01-01"),
    with_("date-hour-24", "hour must be in 0..23", date="2011-10-12T24:00"),
    with_("date-minute-60", "minute must be in 0..59", date="2011-10-12T08:60"),
    with_("date-second-60", "second must be in 0..59", date="2011-10-12T08:30:60Z"),
    with_("date-offset-24h", "offset +24:00 out of range", date="2011-10-12T08:30+24:00"),
    with_("date-offset-60m", "offset -0160 out of range", date="2011-10-12T08:30-0160"),
    with_("date-garbage", NOT_ISO, date="tomorrow"),
    with_("date-quote", NOT_ISO, date="it's \"late\""),
    with_("date-slashes", NOT_ISO, date="2011/10/12"),
    with_("date-short-hour", NOT_ISO, date="2011-10-12T8:30"),
    with_("date-fraction-10", NOT_ISO, date="2011-10-12T08:30:00.1234567890"),
    with_("date-empty", NOT_ISO, date=""),
    with_("date-newline", NOT_ISO, date="2011-10-12\nx"),
    with_("date-unicode-digits", NOT_ISO, date="\uff12011-10-12"),
    with_("date-number", "date must be an ISO 8601 string, not a number", date=1318406400),
    with_("date-null", "not null", date=None),
    with_("date-list", "not a list", date=["2011-10-12"]),
    with_("date-missing", "date is missing", date=MISSING),
    with_("worker-missing", "worker must be a name", worker=MISSING),
    with_("worker-empty", "worker must be a name", worker=""),
    with_("worker-space", "worker must be a name", worker="man obi"),
    with_("worker-slash", "worker must be a name", worker="a/b"),
    with_("worker-65", "worker must be a name", worker="w" * 65),
    with_("worker-64", None, worker="w" * 64),
    with_("worker-number", "worker must be a name", worker=5),
    with_("worker-newline", "worker must be a name", worker="manobi\n"),
    with_("job-missing", "job must be an object", job=MISSING),
    with_("job-string", "job must be an object", job="start_campaign"),
    with_("job-list", "job must be an object", job=["start_campaign"]),
    with_("job-null", "job must be an object", job=None),
    with_("job-name-missing", "job.name must be a name", job__name=MISSING),
    with_("job-name-bad", "job.name must be a name", job__name="rm -rf"),
    with_("job-name-number", "job.name must be a name", job__name=3),
    with_("arguments-missing", None, job__arguments=MISSING),
    with_("arguments-empty", None, job__arguments=[]),
    with_("arguments-string", "job.arguments must be a list, not a string", job__arguments="2 3"),
    with_("arguments-object", "job.arguments must be a list, not an object", job__arguments={"a": 1}),
    with_("arguments-null", "job.arguments must be a list, not null", job__arguments=None),
    with_("status-missing", STATUS, status=MISSING),
    with_("status-unknown", STATUS, status="later"),
    with_("status-number", STATUS, status=1),
    with_("status-list", STATUS, status=["waiting"]),
    with_("status-done", None, status="done"),
    with_("status-cancel", None, status="cancel"),
    with_("timeout-iso", None, timeout="PT30S"),
    with_("timeout-days-hours", None, timeout="P1DT2H"),
    with_("timeout-weeks-fraction", None, timeout="P1.5W"),
    with_("timeout-number", None, timeout=90),
    with_("timeout-float", None, timeout=0.5),
    with_("timeout-null", None, timeout=None),
    with_("timeout-p", DURATION, timeout="P"),
    with_("timeout-pt", DURATION, timeout="PT"),
    with_("timeout-trailing-t", DURATION, timeout="P1DT"),
    with_("timeout-words", DURATION, timeout="30 seconds"),
    with_("timeout-lowercase", DURATION, timeout="pt30s"),
    with_("timeout-zero", "timeout must be longer than zero", timeout=0),
    with_("timeout-zero-iso", "timeout must be longer than zero", timeout="PT0S"),
    with_("timeout-negative", "timeout must be longer than zero", timeout=-5),
    with_("timeout-boolean", "not a boolean", timeout=True),
    with_("timeout-list", "not a list", timeout=["PT30S"]),
    with_("timeout-366-days", None, timeout="P366D"),
    with_("timeout-367-days", "timeout must be at most 366 days", timeout="P367D"),
    with_("timeout-huge-number", "timeout must be at most 366 days", timeout=1e300),
    with_("size-1mb", "the limit is 65536", job__arguments=["x" * 1_000_000]),
    with_("size-client-just-under", None, job__arguments=["x" * 49000]),
    with_("size-client-over", "without the worker's fields; the limit is 49152",
          job__arguments=["x" * 50000]),
    with_("size-with-worker-fields", None, job__arguments=["x" * 49000], result={"output": "y" * 16000}),
    with_("size-total-over", "the limit is 65536", job__arguments=["x" * 49000],
          result={"output": "y" * 17000}),
    with_("size-unicode-counts-code-points", None, job__arguments=["\U0001f600" * 49000]),
    with_("nesting-32", None, job__arguments=nested(30)),  # the document, job, then 30 lists
    with_("nesting-33", DEEP, job__arguments=nested(31)),
    with_("nesting-1500", DEEP, job__arguments=nested(1500)),
    with_("nesting-in-an-extra-field", DEEP, notes=nested(40)),
    with_("attempts-int", None, attempts=3),
    with_("attempts-whole-float", None, attempts=3.0),
    with_("attempts-string", ATTEMPTS, attempts="3"),
    with_("attempts-negative", ATTEMPTS, attempts=-1),
    with_("attempts-fraction", ATTEMPTS, attempts=1.5),
    with_("attempts-boolean", ATTEMPTS, attempts=True),
    with_("attempts-null", ATTEMPTS, attempts=None),
    with_("history-list", None, history=[{"outcome": "done"}]),
    with_("history-object", "history must be a list", history={"outcome": "done"}),
    with_("history-string", "history must be a list", history="done"),
    with_("claim-object", None, claim={"by": "x"}),
    with_("claim-string", "claim must be an object", claim="me"),
    with_("claim-null", "claim must be an object", claim=None),
    with_("claim-list", "claim must be an object", claim=[]),
    with_("result-string", "result must be an object", result="done"),
    with_("due-matches", None, status="scheduled", due="2011-10-12T00:00:00.000Z"),
    with_("due-matches-offset", None, status="running", date="2011-10-12T02:00:00+02:00",
          due="2011-10-12T00:00:00.000Z"),
    with_("due-other-instant", DUE, status="scheduled", due="2011-10-13T00:00:00.000Z"),
    with_("due-not-canonical", DUE, status="running", due="2011-10-12"),
    with_("due-number", DUE, status="scheduled", due=1318377600000),
    with_("due-stale-after-reschedule", None, status="reschedule", due="2001-01-01T00:00:00.000Z"),
    with_("due-one-ms-off", DUE.replace("00:00:00.000Z", "08:30:00.000Z"), status="scheduled",
          date="2011-10-12T08:30:00Z", due="2011-10-12T08:30:00.001Z"),
    with_("due-far-future-ms", None, status="scheduled", date="9999-06-15T12:00:00.228Z",
          due="9999-06-15T12:00:00.228Z"),
    with_("date-fraction-past-ms-dropped", None, status="running", date="2011-10-12T00:00:00.9999996Z",
          due="2011-10-12T00:00:00.999Z"),
    with_("canceled-date", None, status="canceled", canceled="2011-10-12T00:00:01.000Z"),
    with_("canceled-long", CANCELED, canceled="x" * 20000),
    with_("canceled-number", CANCELED, canceled=5),
]
CRON = "repeat.cron"
CASES += [  # the optional controls of issue 10: repeat, retry, missed, grace (and the worker's occurrence)
    with_("repeat-interval", None, repeat="R5/2026-12-01T08:00:00Z/PT1H"),
    with_("repeat-endless", None, repeat="R/2026-12-01T08:00:00+01:00/P1DT2H"),
    with_("repeat-null", None, repeat=None),
    with_("repeat-r0", "has no occurrences (R0)", repeat="R000/2026-12-01T08:00:00Z/PT1H"),
    with_("repeat-words", "is not an ISO 8601 repeating interval", repeat="every hour"),
    with_("repeat-months", "repeat period 'P1M' is not an ISO 8601 duration", repeat="R/2026-12-01/P1M"),
    with_("repeat-bad-start", NOT_REAL, repeat="R/2026-02-30T08:00:00Z/PT1H"),
    with_("repeat-short", "repeat period must be at least 1 second", repeat="R/2026-12-01/PT0.5S"),
    with_("repeat-number", "repeat must be an ISO 8601 repeating interval like", repeat=5),
    with_("repeat-list", "not a list", repeat=["0 8 * * *"]),
    with_("cron-weekdays", None, repeat={"cron": "0 8 * * 1-5", "tz": "Europe/Lisbon"}),
    with_("cron-names-steps", None, repeat={"cron": " */15 9-17/2 1,15 Jan-MAR mon-fri\t", "tz": None}),
    with_("cron-macro", None, repeat={"cron": "@Daily", "tz": "America/New_York"}),
    with_("cron-sunday-7", None, repeat={"cron": "0 0 * * 7"}),
    with_("cron-either-day", None, repeat={"cron": "0 0 30 2 fri"}),
    with_("cron-leap-day", None, repeat={"cron": "0 12 29 2 *"}),
    with_("cron-extra-key", "repeat must have only the fields cron and tz",
          repeat={"cron": "@daily", "x": 1}),
    with_("cron-missing", f'{CRON} must be a string like "0 8 * * 1-5", not null', repeat={"tz": "UTC"}),
    with_("cron-number", f'{CRON} must be a string like "0 8 * * 1-5", not a number', repeat={"cron": 5}),
    with_("cron-four", "must have 5 fields (minute hour", repeat={"cron": "0 8 * *"}),
    with_("cron-six", "must have 5 fields", repeat={"cron": "0 0 8 * * *"}),
    with_("cron-empty", "must have 5 fields", repeat={"cron": ""}),
    with_("cron-minute", "the minute field '60' is not valid (values 0-59, ranges",
          repeat={"cron": "60 * * * *"}),
    with_("cron-hour-range", "the hour field '5-1' is not valid", repeat={"cron": "0 5-1 * * *"}),
    with_("cron-step-zero", "the minute field '*/0' is not valid", repeat={"cron": "*/0 * * * *"}),
    with_("cron-bare-step", "the minute field '5/15' is not valid", repeat={"cron": "5/15 * * * *"}),
    with_("cron-month-name", "the month field 'foo' is not valid (values 1-12 or jan-dec",
          repeat={"cron": "0 8 * foo *"}),
    with_("cron-day-name", "the day-of-week field 'sun-mon-tue' is not valid (values 0-7 or sun-sat",
          repeat={"cron": "0 8 * * sun-mon-tue"}),
    with_("cron-day-zero", "the day-of-month field '0' is not valid", repeat={"cron": "0 8 0 * *"}),
    with_("cron-empty-item", "the minute field '1,,2' is not valid", repeat={"cron": "1,,2 * * * *"}),
    with_("cron-huge", "the minute field '99999999999999999999' is not valid",
          repeat={"cron": "99999999999999999999 * * * *"}),
    with_("cron-never", "never runs: no month it names has day 30", repeat={"cron": "0 0 30 2 *"}),
    with_("cron-never-31", "no month it names has day 31", repeat={"cron": "0 0 31 4,6,9,11 *"}),
    with_("cron-quote", "repeat.cron \"it's\" must have 5 fields", repeat={"cron": "it's"}),
    with_("cron-tz-unknown", "repeat.tz 'Mars/Olympus' is not a time zone of the tz database",
          repeat={"cron": "@hourly", "tz": "Mars/Olympus"}),
    with_("cron-tz-number", 'repeat.tz must be a time zone name like "Europe/Lisbon", not a number',
          repeat={"cron": "@hourly", "tz": 1}),
    with_("retry-number", None, retry=5),
    with_("retry-float-whole", None, retry=5.0),
    with_("retry-full", None, retry={"retries": 5, "delay": "PT10S", "factor": 2, "max_delay": "PT10M",
                                     "jitter": "PT1S"}),
    with_("retry-null", None, retry=None),
    with_("retry-negative", "retry must be a whole number of retries from 0 to 100, or an object", retry=-1),
    with_("retry-fraction", "retry must be a whole number of retries from 0 to 100", retry=1.5),
    with_("retry-string", "retry must be a whole number of retries from 0 to 100, or an object like {",
          retry="5"),
    with_("retry-true", "not a boolean", retry=True),
    with_("retry-extra", "retry must have only the fields retries, delay, factor, max_delay and jitter",
          retry={"retries": 1, "backoff": 2}),
    with_("retry-no-retries", "retry.retries must be a whole number from 0 to 100", retry={"delay": "PT1S"}),
    with_("retry-too-many", "retry.retries must be a whole number from 0 to 100", retry={"retries": 101}),
    with_("retry-delay", "retry.delay 'soon' is not an ISO 8601 duration",
          retry={"retries": 1, "delay": "soon"}),
    with_("retry-delay-null", "retry.delay must be an ISO 8601 duration such as PT30S, not null",
          retry={"retries": 1, "delay": None}),
    with_("retry-factor", "retry.factor must be a number from 1 to 100", retry={"retries": 1, "factor": 0.5}),
    with_("retry-factor-text", "retry.factor must be a number", retry={"retries": 1, "factor": "2"}),
    with_("retry-max-delay", "retry.max_delay must be longer than zero",
          retry={"retries": 1, "max_delay": 0}),
    with_("retry-jitter", "retry.jitter 'x' is not an ISO 8601", retry={"retries": 1, "jitter": "x"}),
    with_("missed-skip", None, missed="skip", grace="PT5M"),
    with_("missed-run-once", None, missed="run_once"),
    with_("missed-other", 'missed must be "run_once" or "skip"', missed="always"),
    with_("missed-number", 'missed must be "run_once" or "skip"', missed=1),
    with_("grace-bad", "grace 'PT5' is not an ISO 8601 duration", grace="PT5"),
    with_("grace-zero", "grace must be longer than zero", grace=0),
    with_("occurrence", None, occurrence="2011-10-12T00:00:00.000Z"),
    with_("occurrence-bad", "occurrence must be a date in UTC like 2011-10-12T08:30:00.000Z",
          occurrence="2011-10-12"),
    with_("repeat-before-retry", "repeat 'x' is not", repeat="x", retry=-1),
]


def python_reason(doc: dict[str, Any]) -> str | None:
    try:
        validate(doc)
    except InvalidTask as error:
        return error.reason
    return None


def python_due_ms(doc: dict[str, Any]) -> float:
    return float(parse_date_ms(doc["date"]))


NODE_HARNESS = """
var emitted = [];
function emit(key, value) { emitted.push(key); }
var design = JSON.parse(process.argv[2] ? require('fs').readFileSync(process.argv[2], 'utf8') : '{}');
var validate = eval('(' + design.validate_doc_update + ')');
var liveMap = eval('(' + design.views.live.map + ')');
var parsers = (function () { %(parsers)s; return {date: parseDate, duration: parseDuration}; })();
var input = JSON.parse(require('fs').readFileSync(0, 'utf8'));
function attempt(doc, oldDoc, roles) {
  try { validate(doc, oldDoc, {name: 'someone', roles: roles}, {}); return null; }
  catch (e) { return e.forbidden === undefined ? 'NOT FORBIDDEN: ' + JSON.stringify(e) : e.forbidden; }
}
var out = {
  reasons: input.docs.map(function (doc) { return attempt(doc, null, ['_admin']); }),
  roles: input.roles.map(function (c) { return attempt(c.doc, c.old, c.roles); }),
  dates: input.dates.map(function (d) { return parsers.date(d); }),
  durations: input.durations.map(function (d) { return parsers.duration(d, 'timeout'); }),
  live: input.docs.map(function (doc) { emitted = []; liveMap(doc); return emitted; })
};
process.stdout.write(JSON.stringify(out));
"""

WORKER_ONLY = "may only be written by a worker (role after_worker)"
RoleCase = tuple[str, dict[str, Any], dict[str, Any] | None, list[str], str | None]
ROLE_CASES: list[RoleCase] = [  # (name, new doc, old doc, user's roles, expected)
    ("client-writes-waiting", EXAMPLE, None, ["after_client"], None),
    ("client-writes-done", {**EXAMPLE, "status": "done"}, None, ["after_client"], WORKER_ONLY),
    ("client-writes-scheduled", {**EXAMPLE, "status": "scheduled"}, EXAMPLE, [], WORKER_ONLY),
    ("client-keeps-done", {**EXAMPLE, "status": "done", "date": "2012-01-01"}, {**EXAMPLE, "status": "done"},
     ["after_client"], None),
    ("worker-writes-done", {**EXAMPLE, "status": "done"}, EXAMPLE, ["after_worker"], None),
    ("worker-writes-running", {**EXAMPLE, "status": "running"}, EXAMPLE, ["after_worker"], None),
    ("worker-invalid-still-refused", {**EXAMPLE, "date": "soon"}, EXAMPLE, ["after_worker"], NOT_ISO),
    ("client-not-a-task", {"title": "notes"}, None, [], None),
    ("client-deletes", {"_deleted": True}, EXAMPLE, [], None),
    ("client-design", {"_id": "_design/x", "views": {}}, None, ["after_worker"], "only admins"),
]


@pytest.fixture(scope="module")
def node_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    node = shutil.which("node")
    assert node is not None, "node is needed to run the design document's JavaScript"
    folder: Path = tmp_path_factory.mktemp("node")
    (folder / "design.json").write_text(json.dumps(design_document()))
    (folder / "harness.js").write_text(NODE_HARNESS % {"parsers": DATE_JS + DURATION_JS})
    roles = [{"doc": {"_id": f"role-{index}", **doc}, "old": old, "roles": user_roles}
             for index, (_, doc, old, user_roles, _) in enumerate(ROLE_CASES)]
    payload = {"docs": [{"_id": f"case-{index}", **case.doc} for index, case in enumerate(CASES)],
               "roles": roles, "dates": [case.doc.get("date") for case in CASES],
               "durations": [value for value, _ in DURATIONS]}
    depth = sys.getrecursionlimit()
    sys.setrecursionlimit(10_000)  # json.dumps recurses, and one case is nested 1500 deep
    try:
        text = json.dumps(payload)
    finally:
        sys.setrecursionlimit(depth)
    done = subprocess.run([node, str(folder / "harness.js"), str(folder / "design.json")],
                          input=text, capture_output=True, text=True, timeout=60, check=True)
    results: dict[str, Any] = json.loads(done.stdout)
    return results


def check_python(case: Case, check: Any) -> None:
    """Run ``check``; a case with a known Python divergence must still diverge (then it is xfail)."""
    try:
        check()
    except (AssertionError, TypeError) as error:
        if case.python_bug:
            pytest.xfail(case.python_bug)
        raise error
    if case.python_bug:
        pytest.fail(f"fixed in after.core.task? remove python_bug from {case.name}: {case.python_bug}")


@pytest.mark.parametrize("index", range(len(CASES)), ids=[case.name for case in CASES])
def test_python_validate(index: int) -> None:
    case = CASES[index]

    def check() -> None:
        reason = python_reason({"_id": f"case-{index}", **case.doc})
        if case.expected is None:
            assert reason is None
        else:
            assert reason is not None and case.expected in reason
    check_python(case, check)


@pytest.mark.parametrize("index", range(len(CASES)), ids=[case.name for case in CASES])
def test_javascript_validate(index: int, node_results: dict[str, Any]) -> None:
    case, reason = CASES[index], node_results["reasons"][index]
    if case.expected is None:
        assert reason is None
    else:
        assert reason is not None and case.expected in reason
    if not case.python_bug:
        assert reason == python_reason({"_id": f"case-{index}", **case.doc})  # the very same words


@pytest.mark.parametrize("index", range(len(CASES)), ids=[case.name for case in CASES])
def test_due_date_and_live_key_agree(index: int, node_results: dict[str, Any]) -> None:
    case, parsed = CASES[index], node_results["dates"][index]
    if case.python_bug:
        pytest.skip(case.python_bug)
    doc = {"_id": f"case-{index}", **case.doc}
    try:
        expected: dict[str, Any] = {"ms": python_due_ms(doc)}
    except (InvalidTask, KeyError) as error:
        expected = {"error": error.reason} if isinstance(error, InvalidTask) else parsed
    assert parsed == expected
    key = live_view_key(doc)
    assert node_results["live"][index] == ([] if key is None else [[doc["worker"], key]])


@pytest.mark.parametrize("index", range(len(ROLE_CASES)), ids=[case[0] for case in ROLE_CASES])
def test_javascript_roles(index: int, node_results: dict[str, Any]) -> None:
    expected, reason = ROLE_CASES[index][4], node_results["roles"][index]
    assert reason is None if expected is None else (reason is not None and expected in reason)


DURATIONS: list[tuple[Any, float | str]] = [  # (value, seconds or a substring of the reason)
    ("PT30S", 30.0), ("PT1M", 60.0), ("PT1H", 3600.0), ("P1D", 86400.0), ("P2W", 1209600.0),
    ("P1DT2H3M4.5S", 93784.5), ("PT0.25S", 0.25), (" PT5S ", 5.0), ("P1.5D", 129600.0), (45, 45.0),
    (0.5, 0.5), ("PT", DURATION), ("P", DURATION), ("P1DT", DURATION), ("1H", DURATION), ("PT-5S", DURATION),
    ("", DURATION), ("P1H", DURATION), (0, "longer than zero"), (-1, "longer than zero"),
    ("PT0S", "longer than zero"), (True, "not a boolean"), (None, "not null"), ({}, "not an object"),
]


@pytest.mark.parametrize(("value", "expected"), DURATIONS, ids=[repr(value) for value, _ in DURATIONS])
def test_parse_duration(value: Any, expected: float | str, node_results: dict[str, Any]) -> None:
    parsed = node_results["durations"][[item for item, _ in DURATIONS].index(value)]
    if isinstance(expected, float):
        assert parse_duration(value, "timeout") == expected
        assert parsed == {"seconds": expected}
    else:
        with pytest.raises(InvalidTask, match=None) as raised:
            parse_duration(value, "timeout")
        assert expected in raised.value.reason
        assert parsed == {"error": raised.value.reason}


FORMATTED = [  # (epoch seconds, canonical form)
    (0.0, "1970-01-01T00:00:00.000Z"),
    (1318406400.0, "2011-10-12T08:00:00.000Z"),
    (1318406400.25, "2011-10-12T08:00:00.250Z"),
    (1318406400.9999, "2011-10-12T08:00:00.999Z"),  # truncated, never rounded into the next second
    (951782400.0, "2000-02-29T00:00:00.000Z"),
]


@pytest.mark.parametrize(("epoch", "text"), FORMATTED, ids=[text for _, text in FORMATTED])
def test_format_date(epoch: float, text: str) -> None:
    assert format_date(epoch) == text
    assert abs(parse_date(text) - epoch) < 0.001


def test_an_integer_too_big_for_a_float_is_answered_not_raised() -> None:
    """Python reads a 400-digit ``attempts`` as an int (CouchDB itself answers such a write with a 500)."""
    assert python_reason({**EXAMPLE, "_id": "big", "attempts": 10**400}) is None
    assert "attempts must be" in str(python_reason({**EXAMPLE, "_id": "big", "attempts": -(10**400)}))


def test_revisions_are_not_counted_in_the_sizes() -> None:
    """A task written at exactly the client limit still fits when read back with its ``_rev``."""
    doc: dict[str, Any] = {**EXAMPLE, "_id": "edge", "job": {"name": "start_campaign", "arguments": [""]}}
    doc["job"]["arguments"] = ["x" * (49152 - json_chars(doc, NOT_CLIENT_SIZE))]
    assert json_chars(doc, NOT_CLIENT_SIZE) == 49152 and python_reason(doc) is None
    assert python_reason({**doc, "_rev": "12-" + "a" * 32, "status": "scheduled"}) is None
