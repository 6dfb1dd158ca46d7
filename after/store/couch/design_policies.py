"""The optional controls of a task (``repeat``, ``retry``, ``missed``, ``grace``) in the JavaScript of
``validate_doc_update``: pasted into it by ``after.store.couch.design``, whose functions (``has``,
``pyRepr``, ``typeName``, ``stripSpaces``, ``parseDate``, ``parseDuration``) it uses. ES5."""

from __future__ import annotations

from after.core.cron import FIELDS, ITEM_PATTERN, MACROS, MONTH_DAYS, SEPARATOR_PATTERN, named
from after.core.missed import MISSED_REASON, Missed
from after.core.recurrence import CRON_KEYS, INTERVAL_PATTERN, MIN_PERIOD, zone_names
from after.core.recurrence import SHAPE as REPEAT_SHAPE
from after.core.retry import MAX_FACTOR, MAX_RETRIES, RETRY_KEYS
from after.core.retry import SHAPE as RETRY_SHAPE
from after.store.couch.templates import fill, js

# Mirrors after.core.recurrence.parse_repeat, after.core.cron.check_cron, after.core.retry.parse_retry and
# after.core.missed (the optional controls, checked in after.core.task.task_policies' order).
POLICIES_JS = fill(r"""
  var INTERVAL_RE = new RegExp({{interval_pattern}}), ITEM_RE = new RegExp({{item_pattern}});
  var SEPARATOR_RE = new RegExp({{separator_pattern}});
  var CRON_FIELDS = {{cron_fields}}, MACROS = {{macros}}, MONTH_DAYS = {{month_days}};
  var ZONES = {{zones}}, CRON_KEYS = {{cron_keys}}, RETRY_KEYS = {{retry_keys}}, MISSED = {{missed}};
  function cronValue(text, spec) {
    if (/^[0-9]+$/.test(text)) { return parseInt(text, 10); }
    var index = spec.names.indexOf(text.toLowerCase());
    return index >= 0 ? index + spec.first : null;
  }
  function expandField(text, spec) {  // the values matched, or null
    var values = [], items = text.split(',');
    for (var i = 0; i < items.length; i++) {
      var m = ITEM_RE.exec(items[i]);
      if (m === null) { return null; }
      var parts = m[1] === '*' ? [spec.low, spec.high] : m[1].split('-').map(function (p) {
        return cronValue(p, spec);
      });
      var low = parts[0], high = parts[parts.length - 1], step = m[2] ? parseInt(m[2], 10) : 1;
      if (m[2] && parts.length === 1) { return null; }
      if (low === null || high === null || !(spec.low <= low && low <= high && high <= spec.high) ||
          !(step >= 1 && step <= spec.high)) { return null; }
      for (var v = low; v <= high; v += step) { values.push(v); }
    }
    return values;
  }
  function checkCron(value) {
    if (typeof value !== 'string') {
      return 'repeat.cron must be a string like "0 8 * * 1-5", not ' + typeName(value);
    }
    var text = stripSpaces(value), lowered = text.toLowerCase();
    var fields = (has(MACROS, lowered) ? MACROS[lowered] : text).split(SEPARATOR_RE);
    if (fields.length !== CRON_FIELDS.length) {
      return 'repeat.cron ' + pyRepr(value) + ' must have 5 fields (minute hour day-of-month month ' +
        'day-of-week) or be one of @hourly @daily @weekly @monthly @yearly';
    }
    var sets = [];
    for (var i = 0; i < fields.length; i++) {
      var spec = CRON_FIELDS[i], values = expandField(fields[i], spec);
      if (values === null) {
        return 'repeat.cron ' + pyRepr(value) + ': the ' + spec.name + ' field ' + pyRepr(fields[i]) +
          ' is not valid (values ' + spec.low + '-' + spec.high + spec.named +
          ', ranges a-b, steps */n or a-b/n)';
      }
      sets.push(values);
    }
    var firstDay = Math.min.apply(null, sets[2]), longest = 0;
    for (var k = 0; k < sets[3].length; k++) { longest = Math.max(longest, MONTH_DAYS[sets[3][k] - 1]); }
    if (fields[4] === '*' && firstDay > longest) {
      return 'repeat.cron ' + pyRepr(value) + ' never runs: no month it names has day ' + firstDay;
    }
    return null;
  }
  function checkInterval(text) {
    var m = INTERVAL_RE.exec(text);
    if (m === null) {
      return 'repeat ' + pyRepr(text) + ' is not an ISO 8601 repeating interval like ' +
        '"R5/2026-12-01T08:00:00Z/PT1H"';
    }
    if (m[1] && parseInt(m[1], 10) === 0) { return 'repeat ' + pyRepr(text) + ' has no occurrences (R0)'; }
    var start = parseDate(m[2]);
    if (start.error) { return start.error; }
    var period = parseDuration(m[3], 'repeat period');
    if (period.error) { return period.error; }
    return period.seconds < {{min_period}} ? 'repeat period must be at least 1 second (PT1S)' : null;
  }
  function isObject(v) { return v !== null && typeof v === 'object' && !Array.isArray(v); }
  function onlyKeys(o, keys) {
    for (var key in o) { if (has(o, key) && keys.indexOf(key) < 0) { return false; } }
    return true;
  }
  function checkRepeat(value) {
    if (typeof value === 'string') { return checkInterval(value); }
    if (!isObject(value)) { return {{repeat_shape}} + ', not ' + typeName(value); }
    if (!onlyKeys(value, CRON_KEYS)) { return 'repeat must have only the fields cron and tz'; }
    var cron = checkCron(has(value, 'cron') ? value.cron : null), zone = has(value, 'tz') ? value.tz : null;
    if (cron !== null || zone === null) { return cron; }
    if (typeof zone !== 'string') {
      return 'repeat.tz must be a time zone name like "Europe/Lisbon", not ' + typeName(zone);
    }
    if (!has(ZONES, zone)) {
      return 'repeat.tz ' + pyRepr(zone) + ' is not a time zone of the tz database (like "Europe/Lisbon")';
    }
    return null;
  }
  function wholeUpTo(v, high) { return typeof v === 'number' && v >= 0 && v <= high && Math.floor(v) === v; }
  function checkDuration(o, key, name) {
    if (!has(o, key)) { return null; }
    var parsed = parseDuration(o[key], name);
    return parsed.error || null;
  }
  function checkRetry(value) {
    if (!isObject(value)) {
      if (wholeUpTo(value, {{max_retries}})) { return null; }
      return {{retry_shape}} + (typeof value === 'number' ? '' : ', not ' + typeName(value));
    }
    if (!onlyKeys(value, RETRY_KEYS)) {
      return 'retry must have only the fields retries, delay, factor, max_delay and jitter';
    }
    if (!wholeUpTo(has(value, 'retries') ? value.retries : null, {{max_retries}})) {
      return 'retry.retries must be a whole number from 0 to 100';
    }
    var delay = checkDuration(value, 'delay', 'retry.delay');
    if (delay !== null) { return delay; }
    var factor = has(value, 'factor') ? value.factor : 2;
    if (typeof factor !== 'number' || !(factor >= 1 && factor <= {{max_factor}})) {
      return 'retry.factor must be a number from 1 to 100';
    }
    return checkDuration(value, 'max_delay', 'retry.max_delay') ||
      checkDuration(value, 'jitter', 'retry.jitter');
  }
  function present(doc, key) { return doc[key] !== undefined && doc[key] !== null; }
  function checkPolicies(doc) {
    var reason = present(doc, 'repeat') ? checkRepeat(doc.repeat) : null;
    reason = reason || (present(doc, 'retry') ? checkRetry(doc.retry) : null);
    if (reason === null && present(doc, 'missed') && MISSED.indexOf(doc.missed) < 0) {
      reason = {{missed_reason}};
    }
    return reason || (present(doc, 'grace') ? parseDuration(doc.grace, 'grace').error || null : null);
  }
""",
    interval_pattern=js(INTERVAL_PATTERN), item_pattern=js(ITEM_PATTERN),
    separator_pattern=js(SEPARATOR_PATTERN),
    cron_fields=js([{"name": f.name, "low": f.low, "high": f.high, "names": list(f.names),
                     "first": f.first_name, "named": named(f)} for f in FIELDS]),
    macros=js(MACROS), month_days=js(list(MONTH_DAYS)), zones=js(dict.fromkeys(sorted(zone_names()), 1)),
    cron_keys=js(list(CRON_KEYS)), retry_keys=js(list(RETRY_KEYS)), missed=js(sorted(Missed)),
    min_period=js(MIN_PERIOD), max_retries=str(MAX_RETRIES), max_factor=str(MAX_FACTOR),
    repeat_shape=js(REPEAT_SHAPE), retry_shape=js(RETRY_SHAPE), missed_reason=js(MISSED_REASON),
)
