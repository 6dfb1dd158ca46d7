// The dashboard: log in with CouchDB's session cookie, read what After keeps in the database, follow
// its changes feed, and let a client cancel or reschedule a task (nothing else is written).
// `after init` builds index.html from these files: the stylesheet and the scripts inline (one script, in
// the order couch.js, view.js, chart.js, app.js), and a JSON block #after-config (the database, index and
// view names, limits). Inline, so that a Content-Security-Policy can name them by hash (after/dashboard).

const $ = (id) => document.getElementById(id);
const state = {
  presence: new Map(), counts: {}, upcoming: [], running: [], failures: [], results: [], activity: [],
  writable: false, feed: null, refreshing: false, dirty: false, timer: null, lastRefresh: 0,
};
// For tests and bench/dashboard.py: how long the first full view took, in milliseconds from the page's
// navigation (a reload with a session) or from the login form's submit.
window.afterDashboard = { firstRenderMs: null, refreshes: 0, changes: 0 };

async function main() {
  state.config = JSON.parse(document.getElementById('after-config').textContent);
  // The page is served as /<root><page database>/_design/<name>/index.html: the server's root is what
  // comes before the page's database (a proxy may add a prefix).
  const root = location.pathname.split('/_design/')[0].replace(/[^/]*$/, '');
  state.couch = new Couch(root, state.config.database);
  $('database').textContent = state.config.database;
  const session = state.couch.session();
  const welcome = await state.couch.get(root);
  $('server').textContent = serverName(welcome);
  state.queries = isApacheCouchDB3(welcome) ? new MangoQueries(state.couch, state.config)
    : new ViewQueries(state.couch, state.config);
  wire();
  const user = await session;
  if (user.name) await enter(user, 0);
  else showLogin('');
}

function wire() {
  $('login-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const submitted = performance.now();
    const form = new FormData(event.target);
    try {
      await state.couch.login(form.get('name'), form.get('password'));
      event.target.reset();
      await enter(await state.couch.session(), submitted);
    } catch (error) {
      showLogin(error instanceof Refused ? 'Name or password incorrect.' : String(error.message));
    }
  });
  $('logout').addEventListener('click', async () => {
    leave();
    try { await state.couch.logout(); } finally { showLogin('Logged out.'); }
  });
  document.addEventListener('click', (event) => {
    const button = event.target.closest('button[data-action]');
    if (button) act(button.dataset.action, button.dataset.id);
  });
  setInterval(() => { renderWorkers(); tick(document); }, 1000);
  setInterval(() => { if (state.feed) scheduleRefresh(0); }, 30000);
}

function showLogin(message) {
  $('main').hidden = true;
  $('logout').hidden = true;
  $('user').textContent = '';
  $('login').hidden = false;
  $('login-message').textContent = message;
  setLive('offline');
}

function leave() {
  if (state.feed) state.feed.stop();
  state.feed = null;
  clearTimeout(state.timer);
  state.timer = null;
}

// Refused (logged out elsewhere, session expired, not a member): back to the login form, saying why.
// pouchdb-server answers 401 where CouchDB says 403, so the session tells the two cases apart.
async function refused() {
  leave();
  let user = null;
  try { user = await state.couch.session(); } catch (error) { user = null; }
  showLogin(user && user.name ? `Refused: ${user.name} may not read the database ${state.config.database}. ` +
    `A dashboard user needs the role ${state.config.clientRole}.` : 'Please log in (the session ended).');
}

async function enter(user, started) {
  const roles = user.roles || [];
  state.writable = roles.includes('_admin') || roles.includes(state.config.clientRole);
  $('user').textContent = `${user.name}${roles.length ? ` (${roles.join(', ')})` : ''}`;
  $('login').hidden = true;
  $('logout').hidden = false;
  $('main').hidden = false;
  try {
    const since = await state.couch.updateSeq(); // before the reads: the feed replays what they miss
    const presence = state.couch.prefixed(state.config.presence.prefix);
    await refresh(presence);
    if (window.afterDashboard.firstRenderMs === null) {
      window.afterDashboard.firstRenderMs = performance.now() - started;
    }
    document.body.dataset.ready = 'true';
    state.feed = new Feed(state.couch, state.queries, since, changed, feedState);
    state.feed.run();
  } catch (error) {
    if (error instanceof Refused) refused();
    else message(`Could not read the database: ${error.message}`);
  }
}

function workersOf() {
  const names = new Set(Object.keys(state.counts));
  for (const doc of state.presence.values()) names.add(String(doc.worker_name));
  return [...names].sort();
}

// Everything but the presence: counts, then per worker (in parallel) its lists and the last hour.
async function refresh(presence) {
  state.refreshing = true;
  try {
    const [counts, docs] = await Promise.all([state.queries.counts(), presence]);
    state.counts = counts;
    if (docs) state.presence = new Map(docs.map((doc) => [doc._id, doc]));
    const now = Date.now();
    const since = new Date(now - 3600 * 1000).toISOString();
    const until = new Date(now + 60000).toISOString();
    const perWorker = await Promise.all(workersOf().map(async (worker) => {
      const running = (state.counts[worker] || {}).running || 0;
      return Promise.all([state.queries.upcoming(worker, running), state.queries.running(worker),
        state.queries.failures(worker), state.queries.results(worker, since, until)]);
    }));
    const limits = state.config.limits;
    const byDate = (doc) => Date.parse(doc.due || doc.date) || 0;
    const ended = (doc) => Date.parse(doc.result && doc.result.ended) || 0;
    state.upcoming = perWorker.flatMap((lists) => lists[0]).sort((a, b) => byDate(a) - byDate(b))
      .slice(0, limits.upcoming);
    state.running = perWorker.flatMap((lists) => lists[1]).sort((a, b) => byDate(a) - byDate(b));
    state.failures = perWorker.flatMap((lists) => lists[2]).sort((a, b) => ended(b) - ended(a))
      .slice(0, limits.failures);
    state.results = perWorker.flatMap((lists) => lists[3]);
    window.afterDashboard.refreshes += 1;
    render();
  } finally {
    state.refreshing = false;
    state.lastRefresh = Date.now();
  }
}

// Changes come in bursts: refresh at most every two seconds, and once more if any came meanwhile.
function scheduleRefresh(delay) {
  if (state.refreshing) { state.dirty = true; return; }
  if (state.timer) return;
  const wait = delay ?? Math.max(250, state.lastRefresh + 2000 - Date.now());
  state.timer = setTimeout(async () => {
    state.timer = null;
    try {
      await refresh();
    } catch (error) {
      if (error instanceof Refused) { refused(); return; }
      message(`Refresh failed: ${error.message}`);
    }
    if (state.dirty) { state.dirty = false; scheduleRefresh(); }
  }, wait);
}

function changed(rows) {
  window.afterDashboard.changes += rows.length;
  let tasks = false;
  for (const row of rows) {
    if (row.id.startsWith(state.config.presence.prefix)) {
      if (row.deleted) state.presence.delete(row.id);
      else if (row.doc) state.presence.set(row.id, row.doc);
      continue;
    }
    if (!row.doc || !('worker' in row.doc || row.deleted)) continue;
    tasks = true;
    state.activity = [row.doc, ...state.activity.filter((doc) => doc._id !== row.id)]
      .slice(0, state.config.limits.activity);
    for (const list of ['upcoming', 'running', 'failures']) {
      state[list] = state[list].map((doc) => (doc._id === row.id ? row.doc : doc));
    }
  }
  renderWorkers();
  if (tasks) { renderTasks(); scheduleRefresh(); }
}

function feedState(value) {
  if (value instanceof Refused) refused();
  else setLive(value);
}

function setLive(value) {
  $('live').textContent = value;
  $('live').className = `live ${value === 'live' ? 'on' : 'off'}`;
}

function message(text) { $('message').textContent = text; }

function render() {
  renderWorkers();
  renderTasks();
  const found = points(state.results, Date.now());
  $('lateness-summary').textContent = summary(found);
  $('lateness').replaceChildren(chart(found, Date.now()));
}

function renderWorkers() {
  const now = Date.now();
  const ttl = state.config.presence.ttl;
  const docs = [...state.presence.values()];
  fill($('workers'), ['Worker', 'Host', 'PID', 'State', 'Seen', 'Started', 'Node', 'Done', 'Failed',
    'Armed', 'Running', 'Lateness', 'Version'], workerRows(docs, now, ttl), 'no worker has reported yet');
  const alive = {};
  for (const doc of docs) {
    if (presenceState(doc, now, ttl) === 'running') alive[doc.worker_name] = (alive[doc.worker_name] || 0) + 1;
  }
  const hosts = new Set(docs.filter((doc) => presenceState(doc, now, ttl) === 'running').map((d) => d.host));
  const total = Object.values(alive).reduce((sum, n) => sum + n, 0);
  $('workers-summary').textContent = `${total} process${total === 1 ? '' : 'es'} running on ` +
    `${hosts.size} host${hosts.size === 1 ? '' : 's'}`;
  const counts = countRows(state.counts, alive, state.config.statuses);
  fill($('counts'), counts.head, counts.rows, 'no task yet');
}

function renderTasks() {
  const { writable } = state;
  const terminal = state.config.terminal;
  const c = COLUMNS;
  fill($('running'), ['Task', 'Worker', 'Job', 'Due', 'Claimed by', 'Since', 'Lease until', ''],
    taskRows(state.running, [c.id, c.worker, c.job, c.date, c.claimedBy, c.claimedAt, c.lease], writable,
      terminal), 'nothing runs');
  fill($('upcoming'), ['Task', 'Worker', 'Job', 'Status', 'Due', ''],
    taskRows(state.upcoming, [c.id, c.worker, c.job, c.status, c.date], writable, terminal),
    'nothing scheduled');
  fill($('failures'), ['Task', 'Worker', 'Job', 'Ended', 'Reason', 'Output', ''],
    taskRows(state.failures, [c.id, c.worker, c.job, c.ended, c.reason, c.output], writable, terminal),
    'no failure');
  fill($('activity'), ['Task', 'Worker', 'Job', 'Status', 'When', ''],
    taskRows(state.activity, [c.id, c.worker, c.job, c.status, c.changed], writable, terminal),
    'no change since this page opened');
}

// --- the only writes: a client's cancel and reschedule, as the README's curl examples do them --------

async function act(action, id) {
  if (action === 'cancel') {
    await update(id, (doc) => ({ ...doc, status: 'cancel' }), 'cancel requested');
  } else if (action === 'reschedule') {
    const dialog = $('reschedule');
    $('reschedule-id').textContent = id;
    $('reschedule-date').value = localInput(new Date(Date.now() + 60000));
    dialog.returnValue = '';
    dialog.onclose = () => {
      const choice = dialog.returnValue;
      if (choice !== 'now' && choice !== 'date') return;
      const date = choice === 'now' ? new Date() : new Date($('reschedule-date').value);
      if (Number.isNaN(date.getTime())) { message('Reschedule: not a date.'); return; }
      update(id, (doc) => ({ ...doc, status: 'reschedule', date: date.toISOString() }), 'rescheduled');
    };
    dialog.showModal();
  }
}

function localInput(date) {
  const local = new Date(date.getTime() - date.getTimezoneOffset() * 60000);
  return local.toISOString().slice(0, 19);
}

// Read the current revision, change it, PUT it; a 409 means the worker wrote in between: again.
async function update(id, change, done) {
  for (let attempt = 0; attempt < 5; attempt += 1) {
    try {
      await state.couch.put(change(await state.couch.doc(id)));
      message(`${id}: ${done}`);
      return;
    } catch (error) {
      if (error.status === 409) continue;
      // pouchdb-server answers 401 where CouchDB says 403: only a lost session means logging in again.
      if (error instanceof Refused && !(await state.couch.session()).name) { refused(); return; }
      message(`${id}: ${error.message}`);
      return;
    }
  }
  message(`${id} keeps changing; try again`);
}

main().catch((error) => { document.body.prepend(h('p', { class: 'message' }, String(error))); });
