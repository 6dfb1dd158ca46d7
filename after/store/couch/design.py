"""The design document ``_design/after``: views, the changes filter and ``validate_doc_update``.

CouchDB functions cannot import code, so shared JavaScript (the date parser, the validation rules) is
kept in Python strings and pasted into each function that needs it. Every rule here mirrors
``after.core.task`` (``validate``), ``after.core.dates`` (``parse_date``, ``parse_duration``) and
``after.store.types.live_view_key``;
``tests/unit/test_validation.py`` runs one table against both implementations (the JS in ``node``).
The JavaScript is ES5 so that any CouchDB query server (SpiderMonkey 1.8.5 up) runs it.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from after.core.dates import CANONICAL_DATE_PATTERN, DATE_PATTERN, DURATION_PATTERN, END_INSTANT, MIN_INSTANT
from after.core.task import (
    CLIENT_STATUSES,
    MAX_CLIENT_CHARS,
    MAX_DEPTH,
    MAX_TASK_CHARS,
    MAX_TIMEOUT,
    NAME_PATTERN,
    NOT_CLIENT_SIZE,
    TERMINAL_STATUSES,
    WORKER_ROLE,
    WORKER_STATUSES,
    Status,
)
from after.store.couch.design_policies import POLICIES_JS
from after.store.couch.templates import fill, js

DESIGN_ID = "_design/after"


def unprintable_bmp_class() -> str:
    """A JavaScript regex class of the Basic Multilingual Plane characters Python's ``repr()`` escapes
    (``str.isprintable()`` false), leaving out unassigned, private-use and surrogate code points as the
    Erlang validation does. Made from this Python's Unicode tables; astral characters are not escaped."""
    chars = [char for char in range(0x10000) if not chr(char).isprintable()
             and unicodedata.category(chr(char)) not in ("Cn", "Co", "Cs")]
    ranges: list[list[int]] = []
    for char in chars:
        if ranges and ranges[-1][1] == char - 1:
            ranges[-1][1] = char
        else:
            ranges.append([char, char])
    parts = (f"\\u{low:04x}" + (f"-\\u{high:04x}" if high > low else "") for low, high in ranges)
    return "[" + "".join(parts) + "]"


# Python's repr() of a string: the quotes it picks, and the escapes (\\ \n \r \t, then \xhh and \uhhhh).
PY_REPR_JS = fill(r"""
  var UNPRINTABLE = new RegExp('{{unprintable}}');
  function pyEscape(c) {
    if (c === '\\') { return '\\\\'; }
    if (c === '\n') { return '\\n'; }
    if (c === '\r') { return '\\r'; }
    if (c === '\t') { return '\\t'; }
    var code = c.charCodeAt(0), hex = code.toString(16);
    if (code < 0x100) { return '\\x' + ('0' + hex).slice(-2); }
    return '\\u' + ('000' + hex).slice(-4);
  }
  function pyRepr(s) {
    var quote = (s.indexOf("'") >= 0 && s.indexOf('"') < 0) ? '"' : "'";
    var out = '';
    for (var i = 0; i < s.length; i++) {
      var c = s.charAt(i);
      if (c === quote) { out += '\\' + c; }
      else if (c === '\\' || UNPRINTABLE.test(c)) { out += pyEscape(c); }
      else { out += c; }
    }
    return quote + out + quote;
  }
  function stripSpaces(s) { return s.replace(/^[ \t\n\r\v\f]+|[ \t\n\r\v\f]+$/g, ''); }
  function typeName(v) {
    if (v === null) { return 'null'; }
    if (Array.isArray(v)) { return 'a list'; }
    var names = {object: 'an object', string: 'a string', 'boolean': 'a boolean', number: 'a number'};
    return names[typeof v] || 'a value';
  }
""", unprintable=unprintable_bmp_class())

# Mirrors after.core.task.parse_date: returns {ms: epoch milliseconds} or {error: reason}.
# Date.UTC maps years 0-99 to 1900-1999, so such years are shifted by 400 Gregorian years
# (146097 days, exactly 12622780800000 ms) and back. Never the server's local time zone.
DATE_JS = PY_REPR_JS + fill(r"""
  var DATE_RE = new RegExp({{date_pattern}});
  function dateError(text, why) {
    return {error: 'date ' + pyRepr(text) + ' is not a real date: ' + why};
  }
  function parseDate(text) {
    if (typeof text !== 'string') {
      return {error: 'date must be an ISO 8601 string, not ' + typeName(text)};
    }
    var m = DATE_RE.exec(stripSpaces(text));
    if (m === null) {
      return {error: 'date ' + pyRepr(text) + ' is not ISO 8601 (for example 2011-10-12T08:30:00Z)'};
    }
    var offset = 0, off = m[8];
    if (off !== undefined && off !== 'Z') {
      var digits = off.substring(1).replace(':', '');
      var oh = parseInt(digits.substring(0, 2), 10), om = parseInt(digits.substring(2) || '0', 10);
      if (oh > 23 || om > 59) { return dateError(text, 'offset ' + off + ' out of range'); }
      offset = (off.charAt(0) === '-' ? -1 : 1) * (oh * 3600 + om * 60);
    }
    var y = parseInt(m[1], 10), mo = parseInt(m[2], 10), d = parseInt(m[3], 10);
    var h = parseInt(m[4] || '0', 10), mi = parseInt(m[5] || '0', 10), s = parseInt(m[6] || '0', 10);
    var leap = (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
    var days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if (y < 1) { return dateError(text, 'year ' + y + ' is out of range'); }
    if (mo < 1 || mo > 12) { return dateError(text, 'month must be in 1..12'); }
    if (d < 1 || d > days[mo - 1]) { return dateError(text, 'day is out of range for month'); }
    if (h > 23) { return dateError(text, 'hour must be in 0..23'); }
    if (mi > 59) { return dateError(text, 'minute must be in 0..59'); }
    if (s > 59) { return dateError(text, 'second must be in 0..59'); }
    var utc = y < 100 ? Date.UTC(y + 400, mo - 1, d, h, mi, s) - 12622780800000
                      : Date.UTC(y, mo - 1, d, h, mi, s);
    var fractionMs = m[7] ? parseInt((m[7] + '00').substring(0, 3), 10) : 0;
    var ms = utc - offset * 1000 + fractionMs;  // whole milliseconds, exact: digits past them dropped
    if (ms < {{min_instant}} * 1000 || ms >= {{end_instant}} * 1000) {
      return {error: 'date ' + pyRepr(text) + ' is out of range: in UTC it must fall in the years 1 to 9999'};
    }
    return {ms: ms};
  }
""", date_pattern=js(DATE_PATTERN), min_instant=js(MIN_INSTANT), end_instant=js(END_INSTANT))

# Mirrors after.core.task.parse_duration.
DURATION_JS = fill(r"""
  var DURATION_RE = new RegExp({{duration_pattern}});
  function parseDuration(value, name) {
    if (typeof value !== 'number' && typeof value !== 'string') {
      return {error: name + ' must be an ISO 8601 duration such as PT30S, not ' + typeName(value)};
    }
    if (typeof value === 'string') {
      var t = stripSpaces(value), m = DURATION_RE.exec(t);
      if (m === null || t === 'P' || t === 'PT' || t.charAt(t.length - 1) === 'T') {
        return {error: name + ' ' + pyRepr(value) + ' is not an ISO 8601 duration such as PT30S or P1D'};
      }
      var n = [];
      for (var i = 1; i <= 5; i++) { n.push(m[i] ? parseFloat(m[i]) : 0); }
      value = (((n[0] * 7 + n[1]) * 24 + n[2]) * 60 + n[3]) * 60 + n[4];
    }
    if (value <= 0) { return {error: name + ' must be longer than zero'}; }
    return {seconds: value};
  }
""", duration_pattern=js(DURATION_PATTERN))

# Mirrors after.core.task.validate: returns null for a valid task, else the reason.
VALIDATE_JS = DATE_JS + DURATION_JS + POLICIES_JS + fill(r"""
  var NAME_RE = new RegExp({{name_pattern}});
  var CANONICAL_RE = new RegExp({{canonical_pattern}});
  var STATUSES = {{statuses}};
  function has(o, key) { return Object.prototype.hasOwnProperty.call(o, key); }
  function isName(v) { return typeof v === 'string' && NAME_RE.test(v); }
  var NOT_CLIENT_SIZE = {{not_client_size}};
  function taskSize(doc, leaveOut) {
    var copy = {};
    for (var key in doc) {
      if (key !== '_revisions' && key !== '_rev' && leaveOut.indexOf(key) < 0) { copy[key] = doc[key]; }
    }
    // characters as Python counts them: a surrogate pair is one code point
    return JSON.stringify(copy).replace(/[\uD800-\uDBFF][\uDC00-\uDFFF]/g, '_').length;
  }
  function tooDeep(doc, limit) {  // without recursion, like after.core.task.nesting_depth
    var stack = [[doc, 1]];
    while (stack.length > 0) {
      var top = stack.pop(), value = top[0], level = top[1];
      if (value === null || typeof value !== 'object') { continue; }
      if (level > limit) { return true; }
      for (var key in value) {
        if (has(value, key) && !(level === 1 && key === '_revisions')) {
          stack.push([value[key], level + 1]);
        }
      }
    }
    return false;
  }
  function checkShape(doc) {
    if (tooDeep(doc, {{max_depth}})) {
      return 'task document is nested deeper than {{max_depth}} levels of objects and lists';
    }
    var size = taskSize(doc, []);
    if (size > {{max_chars}}) {
      return 'task document is ' + size + ' characters; the limit is {{max_chars}}';
    }
    size = taskSize(doc, NOT_CLIENT_SIZE);
    if (size > {{max_client_chars}}) {
      return 'task document is ' + size + " characters without the worker's fields; " +
        'the limit is {{max_client_chars}}';
    }
    return null;
  }
  function checkWorkerFields(doc, dueMs) {
    var attempts = has(doc, 'attempts') ? doc.attempts : 0;
    if (typeof attempts !== 'number' || attempts < 0 || Math.floor(attempts) !== attempts) {
      return 'attempts must be a whole number, at least 0 (it is written by the worker)';
    }
    if (has(doc, 'history') && !Array.isArray(doc.history)) {
      return 'history must be a list (it is written by the worker)';
    }
    var objects = ['claim', 'result'];
    for (var i = 0; i < objects.length; i++) {
      var v = doc[objects[i]];
      if (has(doc, objects[i]) && (v === null || typeof v !== 'object' || Array.isArray(v))) {
        return objects[i] + ' must be an object (it is written by the worker)';
      }
    }
    var dates = ['canceled', 'occurrence'];
    for (var j = 0; j < dates.length; j++) {
      var d = doc[dates[j]];
      if (has(doc, dates[j]) && !(typeof d === 'string' && CANONICAL_RE.test(d))) {
        return dates[j] + ' must be a date in UTC like 2011-10-12T08:30:00.000Z ' +
          '(it is written by the worker)';
      }
    }
    if ((doc.status === 'scheduled' || doc.status === 'running') && has(doc, 'due')) {
      var written = typeof doc.due === 'string' && CANONICAL_RE.test(doc.due) ? parseDate(doc.due) : null;
      if (written === null || written.error || written.ms !== dueMs) {
        return "due must be the task's date in UTC (" + new Date(dueMs).toISOString() +
          '); it is written by the worker';
      }
    }
    return null;
  }
  function validateTask(doc) {
    var shape = checkShape(doc);
    if (shape !== null) { return shape; }
    if (!isName(doc.worker)) { return 'worker must be a name of 1-64 characters from A-Z a-z 0-9 _ . -'; }
    var job = doc.job;
    if (job === null || typeof job !== 'object' || Array.isArray(job)) {
      return 'job must be an object like {"name": "start_campaign", "arguments": []}';
    }
    if (!isName(job.name)) { return 'job.name must be a name of 1-64 characters from A-Z a-z 0-9 _ . -'; }
    var args = has(job, 'arguments') ? job.arguments : [];
    if (!Array.isArray(args)) { return 'job.arguments must be a list, not ' + typeName(args); }
    if (!has(doc, 'date')) { return 'date is missing (ISO 8601, for example 2011-10-12T08:30:00Z)'; }
    var due = parseDate(doc.date);
    if (due.error) { return due.error; }
    if (typeof doc.status !== 'string' || STATUSES.indexOf(doc.status) < 0) {
      return {{status_reason}};
    }
    if (doc.timeout !== undefined && doc.timeout !== null) {
      var timeout = parseDuration(doc.timeout, 'timeout');
      if (timeout.error) { return timeout.error; }
      if (timeout.seconds > {{max_timeout}}) { return 'timeout must be at most 366 days (P366D)'; }
    }
    var policies = checkPolicies(doc);
    if (policies !== null) { return policies; }
    return checkWorkerFields(doc, due.ms);
  }
""",
    name_pattern=js(NAME_PATTERN),
    canonical_pattern=js(CANONICAL_DATE_PATTERN),
    statuses=js(sorted(Status)),
    max_chars=str(MAX_TASK_CHARS),
    max_client_chars=str(MAX_CLIENT_CHARS),
    max_depth=str(MAX_DEPTH),
    max_timeout=js(MAX_TIMEOUT),
    not_client_size=js(list(NOT_CLIENT_SIZE)),
    status_reason=js("status must be one of " + ", ".join(sorted(CLIENT_STATUSES))),
)

# Mirrors after.store.types.live_view_key: tasks not ended keyed [worker, due epoch ms]; bad dates sort first.
LIVE_MAP = "function (doc) {" + DATE_JS + fill(r"""
  var ENDED = {{ended}};
  if (typeof doc.worker !== 'string' || ENDED.indexOf(doc.status) >= 0) { return; }
  var due = parseDate(doc.date);
  emit([doc.worker, due.error ? 0 : due.ms], null);
}""", ended=js(sorted(TERMINAL_STATUSES)))

# Listing: every document with a worker (a task, or a malformed one), by due date within the key range.
LISTING_MAP = "function (doc) {" + DATE_JS + r"""
  if (!('worker' in doc)) { return; }
  var due = parseDate(doc.date), ms = due.error ? 0 : due.ms;
  var status = doc.status === undefined ? null : doc.status;
  emit(KEY, null);
}"""

COUNTS_MAP = r"""function (doc) {
  if (!('worker' in doc)) { return; }
  emit([doc.worker, doc.status === undefined ? null : doc.status], null);
}"""

TASKS_FILTER = r"""function (doc, req) {
  return doc.worker === req.query.worker || !!doc._deleted;
}"""

VALIDATE_DOC_UPDATE = "function (newDoc, oldDoc, userCtx, secObj) {" + VALIDATE_JS + fill(r"""
  var roles = (userCtx && userCtx.roles) || [];
  var admin = roles.indexOf('_admin') >= 0;
  if (newDoc._id.indexOf('_design/') === 0) {
    if (!admin) { throw({forbidden: 'only admins may change design documents'}); }
    return;
  }
  if (newDoc._deleted) { return; }
  if (!('worker' in newDoc) && !('job' in newDoc)) { return; }
  var reason = validateTask(newDoc);
  if (reason !== null) { throw({forbidden: reason}); }
  var workerOnly = {{worker_only}}, ROLE = {{role}};
  var unchanged = oldDoc && !oldDoc._deleted && oldDoc.status === newDoc.status;
  if (workerOnly.indexOf(newDoc.status) >= 0 && !unchanged && !admin && roles.indexOf(ROLE) < 0) {
    throw({forbidden: 'status ' + newDoc.status + ' may only be written by a worker (role ' + ROLE + ')'});
  }
}""", worker_only=js(sorted(WORKER_STATUSES)), role=js(WORKER_ROLE))


def design_document(validate: bool = True) -> dict[str, Any]:
    """The design document After installs (``after init``); compare it without ``_rev``.

    ``validate=False`` leaves out ``validate_doc_update`` (``after init --validation none``). The views
    are not built in the background (``autoupdate: false``): on Apache CouchDB the worker reads the
    Mango indexes of ``after.store.couch.indexes`` instead, and these JavaScript views cost only when queried.
    """
    design: dict[str, Any] = {
        "_id": DESIGN_ID,
        "language": "javascript",
        "options": {"autoupdate": False},
        "views": {
            "live": {"map": LIVE_MAP},
            "by_worker": {"map": LISTING_MAP.replace("KEY", "[doc.worker, ms]")},
            "by_worker_status": {"map": LISTING_MAP.replace("KEY", "[doc.worker, status, ms]")},
            "by_status": {"map": LISTING_MAP.replace("KEY", "[status, doc.worker, ms]")},
            "counts": {"map": COUNTS_MAP, "reduce": "_count"},
        },
        "filters": {"tasks": TASKS_FILTER},
    }
    if validate:
        design["validate_doc_update"] = VALIDATE_DOC_UPDATE
    return design
