// Rendering: plain DOM, no HTML strings (every value from a document is text, never markup).
// Times: `data-at` elements hold an instant and show it relative to now; tick() keeps them current.

function h(tag, attributes, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') element.className = value;
    else if (key === 'dataset') Object.assign(element.dataset, value);
    else element.setAttribute(key, value === true ? '' : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

function parseInstant(text) {
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? null : ms;
}

function span(ms) {
  const seconds = Math.abs(ms) / 1000;
  if (seconds < 1) return `${Math.round(Math.abs(ms))} ms`;
  if (seconds < 90) return `${seconds < 10 ? seconds.toFixed(1) : Math.round(seconds)} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  if (seconds < 172800) return `${Math.round(seconds / 3600)} h`;
  return `${Math.round(seconds / 86400)} d`;
}

function relative(ms, now) {
  if (ms === null) return '-';
  return ms > now ? `in ${span(ms - now)}` : `${span(now - ms)} ago`;
}

// An instant shown as "12 s ago" / "in 3 min", the exact date as its tooltip.
function when(text) {
  const ms = parseInstant(text);
  if (ms === null) return h('span', {}, text === undefined ? '-' : String(text));
  return h('time', { datetime: new Date(ms).toISOString(), title: new Date(ms).toString(),
    dataset: { at: String(ms) } }, relative(ms, Date.now()));
}

function tick(root) {
  const now = Date.now();
  for (const element of root.querySelectorAll('[data-at]')) {
    element.textContent = relative(Number(element.dataset.at), now);
  }
}

function badge(text, kind) { return h('span', { class: `badge ${kind || text}` }, text); }

function taskLink(doc) { return h('code', { class: 'task-id', title: doc._id }, doc._id); }

function jobName(doc) { return doc.job && typeof doc.job === 'object' ? String(doc.job.name) : '-'; }

function claimText(claim) {
  const by = claim && claim.by;
  return by ? `${by.worker}@${by.host}:${by.pid}` : '-';
}

// Buttons carry the task id; app.js listens once, on the document (rows are re-rendered freely).
function actions(doc, writable, terminal) {
  if (!writable) return h('td', {});
  const cell = h('td', { class: 'actions' });
  if (!terminal.includes(doc.status) && doc.status !== 'cancel') {
    cell.append(h('button', { type: 'button', dataset: { action: 'cancel', id: doc._id } }, 'Cancel'));
  }
  cell.append(h('button', { type: 'button', dataset: { action: 'reschedule', id: doc._id } }, 'Reschedule'));
  return cell;
}

// Replaces a table's content only when what it shows changed, so a click is not lost to a redraw.
function fill(table, head, rows, empty) {
  const signature = JSON.stringify([head, rows.map((row) => row.key)]);
  if (table.dataset.signature === signature) return;
  table.dataset.signature = signature;
  const body = rows.length ? rows.map((row) => row.element)
    : [h('tr', {}, h('td', { colspan: head.length, class: 'empty' }, empty))];
  table.replaceChildren(h('thead', {}, h('tr', {}, head.map((name) => h('th', {}, name)))),
    h('tbody', {}, body));
}

function keyOf(doc, ...more) { return [doc._id, doc._rev, ...more].join(' '); }

function taskRows(docs, columns, writable, terminal) {
  return docs.map((doc) => ({
    key: keyOf(doc, writable),
    element: h('tr', { dataset: { id: doc._id, status: String(doc.status) } },
      columns.map((column) => h('td', {}, column(doc))), actions(doc, writable, terminal)),
  }));
}

const COLUMNS = {
  id: taskLink,
  worker: (doc) => String(doc.worker),
  job: jobName,
  status: (doc) => badge(String(doc.status)),
  date: (doc) => when(doc.due || doc.date),
  claimedBy: (doc) => claimText(doc.claim),
  claimedAt: (doc) => when(doc.claim && doc.claim.at),
  lease: (doc) => when(doc.claim && doc.claim.lease_until),
  ended: (doc) => when(doc.result && doc.result.ended),
  reason: (doc) => h('span', { class: 'reason' }, (doc.result && doc.result.reason) || '-'),
  output: (doc) => outputTail(doc.result && doc.result.output),
  changed: (doc) => when(doc.result && doc.result.ended && doc.status !== 'running'
    ? doc.result.ended : (doc.claim && doc.claim.at) || doc.date),
};

function outputTail(output) {
  if (!output) return '-';
  const lines = String(output).trimEnd().split('\n');
  const tail = lines.slice(-6).join('\n');
  return h('details', {}, h('summary', {}, lines[lines.length - 1].slice(0, 80) || '(output)'),
    h('pre', {}, tail));
}

// One row per process, from its presence document; state as after.presence.state_of says it.
function presenceState(doc, now, ttl) {
  if (doc.state === 'stopped') return 'stopped';
  const seen = parseInstant(doc.last_seen);
  return doc.state === 'running' && seen !== null && now - seen <= ttl * 1000 ? 'running' : 'gone';
}

function workerRows(presence, now, ttl) {
  const sorted = [...presence].sort((a, b) => String(a.worker_name).localeCompare(String(b.worker_name))
    || String(a.host).localeCompare(String(b.host)) || (a.pid || 0) - (b.pid || 0));
  return sorted.map((doc) => {
    const state = presenceState(doc, now, ttl);
    const counts = doc.counts || {};
    const seen = parseInstant(doc.last_seen);
    const cells = [doc.worker_name, doc.host, doc.pid, badge(state),
      seen === null ? '-' : `${span(Math.max(0, now - seen))} ago`, when(doc.started),
      doc.connected === false ? badge('disconnected', 'gone') : String(doc.node || '-'),
      counts.done, counts.failed, counts.armed, counts.running,
      typeof doc.lateness_ms === 'number' ? span(doc.lateness_ms) : '-', doc.version];
    return { key: JSON.stringify([doc._id, doc._rev, state, cells[4]]),
      element: h('tr', { dataset: { id: doc._id, state } }, cells.map((cell) => h('td', {}, cell ?? '-'))) };
  });
}

function countRows(counts, alive, order) {
  const workers = [...new Set([...Object.keys(counts), ...Object.keys(alive)])].sort();
  const seen = new Set(workers.flatMap((worker) => Object.keys(counts[worker] || {})));
  const statuses = order.filter((status) => seen.has(status)).concat([...seen].filter((s) => !order.includes(s)));
  const rows = workers.map((worker) => {
    const mine = counts[worker] || {};
    const total = Object.values(mine).reduce((sum, n) => sum + n, 0);
    const processes = alive[worker] || 0;
    const health = processes ? badge(`${processes} alive`, 'running') : badge('no process', 'gone');
    const cells = [worker, health, ...statuses.map((status) => (mine[status] || 0).toLocaleString()),
      total.toLocaleString()];
    return { key: JSON.stringify([worker, processes, mine]),
      element: h('tr', { dataset: { worker } }, cells.map((cell, index) => h('td',
        { class: index > 1 ? 'number' : undefined, dataset: index > 1 && index <= statuses.length + 1
          ? { status: statuses[index - 2] } : undefined }, cell))) };
  });
  return { head: ['Worker', 'Health', ...statuses, 'total'], rows };
}
