// CouchDB's HTTP API as the dashboard uses it: the session (cookie login), JSON requests, and the
// queries that differ by server. Apache CouchDB 3 gets Mango indexes (_design/after-mango and the
// dashboard's own _design/after-dashboard, all evaluated in Erlang) and a _changes feed filtered with a
// POSTed _selector; pouchdb-server gets the JavaScript views of _design/after and an unfiltered feed (it
// crashes on a POSTed _selector, and runs JavaScript in its own process, where views cost nothing extra).

class Refused extends Error {
  // 401 or 403: logged out, the session expired, or this user is no member of the database.
  constructor(status, reason) {
    super(reason);
    this.status = status;
  }
}

class Couch {
  constructor(root, database) {
    this.root = root; // the server's URL path, "/" unless behind a proxy that adds a prefix
    this.db = root + encodeURIComponent(database);
  }

  async request(method, path, body) {
    // pouchdb-server answers text/plain unless the request asks for JSON.
    const init = { method, headers: { Accept: 'application/json' }, credentials: 'same-origin' };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    const text = await response.text();
    let answer = null;
    try { answer = text ? JSON.parse(text) : null; } catch (error) { answer = { reason: text }; }
    if (response.status === 401 || response.status === 403) {
      throw new Refused(response.status, (answer && (answer.reason || answer.error)) || 'refused');
    }
    if (!response.ok) {
      const reason = answer && (answer.reason || answer.error);
      const error = new Error(`${method} ${path}: HTTP ${response.status}${reason ? ` (${reason})` : ''}`);
      error.status = response.status;
      throw error;
    }
    return answer;
  }

  get(path) { return this.request('GET', path); }

  // --- the session: CouchDB's own login, a cookie the browser keeps ------------------------------
  async session() { return (await this.get(this.root + '_session')).userCtx || { name: null, roles: [] }; }
  login(name, password) { return this.request('POST', this.root + '_session', { name, password }); }
  logout() { return this.request('DELETE', this.root + '_session'); }

  // --- documents ---------------------------------------------------------------------------------
  doc(id) { return this.get(`${this.db}/${encodeURIComponent(id)}`); }
  put(doc) { return this.request('PUT', `${this.db}/${encodeURIComponent(doc._id)}`, doc); }
  async updateSeq() { return (await this.get(this.db)).update_seq; }

  async prefixed(prefix) {
    const query = params({ startkey: prefix, endkey: prefix + '\ufff0', include_docs: true });
    const answer = await this.get(`${this.db}/_all_docs?${query}`);
    return answer.rows.map((row) => row.doc).filter((doc) => doc);
  }

  async view(ddoc, name, options) {
    const answer = await this.get(`${this.db}/_design/${ddoc}/_view/${name}?${params(options)}`);
    return answer.rows;
  }

  async find(body) { return (await this.request('POST', `${this.db}/_find`, body)).docs; }
}

// CouchDB wants every view parameter JSON-encoded (keys, booleans, numbers alike).
function params(options) {
  return Object.entries(options)
    .map(([key, value]) => `${key}=${encodeURIComponent(JSON.stringify(value))}`).join('&');
}

function serverName(welcome) {
  const pouchdb = Object.keys(welcome).find((key) => key.endsWith('pouchdb'));
  return `${welcome.couchdb ? 'Apache CouchDB' : pouchdb || 'CouchDB-protocol server'} ${welcome.version || ''}`;
}

function isApacheCouchDB3(welcome) {
  const major = parseInt(String(welcome.version || '0').split('.')[0], 10);
  return 'couchdb' in welcome && major >= 3;
}

function docs(rows) { return rows.map((row) => row.doc).filter((doc) => doc); }

function countsOf(rows) {
  const counts = {};
  for (const row of rows) {
    const [worker, status] = row.key;
    counts[worker] = counts[worker] || {};
    counts[worker][String(status)] = (counts[worker][String(status)] || 0) + row.value;
  }
  return counts;
}

// Apache CouchDB 3: Mango indexes read through _view (their keys are the indexed fields) or _find.
class MangoQueries {
  constructor(couch, config) { this.couch = couch; this.m = config.mango; this.limits = config.limits; }

  async counts() {
    return countsOf(await this.couch.view(this.m.ddoc, this.m.byStatus, { group_level: 2 }));
  }

  async upcoming(worker, running) {
    const range = { startkey: [worker], endkey: [worker, {}], reduce: false, include_docs: true };
    const [armed, asked] = await Promise.all([
      this.couch.view(this.m.ddoc, this.m.liveDue, { ...range, limit: this.limits.upcoming + running }),
      this.couch.view(this.m.ddoc, this.m.liveDate, { ...range, limit: this.limits.upcoming }),
    ]);
    return docs(armed).filter((doc) => doc.status !== 'running').concat(docs(asked));
  }

  async running(worker) {
    return docs(await this.couch.view(this.m.ddoc, this.m.byStatus, {
      key: [worker, 'running'], reduce: false, include_docs: true, limit: this.limits.running }));
  }

  async failures(worker) {
    return docs(await this.couch.view(this.m.dashboard, this.m.failures, {
      startkey: [worker, {}], endkey: [worker], descending: true, reduce: false, include_docs: true,
      limit: this.limits.failures }));
  }

  // The jobs started within [since, until] (ISO strings), the most recent first, from the keys of the
  // dashboard's index [worker, result.started, result.lateness_ms, status]: no document is read.
  async results(worker, since, until) {
    const rows = await this.couch.view(this.m.dashboard, this.m.lateness, {
      startkey: [worker, until, {}], endkey: [worker, since], descending: true, reduce: false,
      limit: this.limits.chart });
    return rows.map((row) => ({ _id: row.id, status: row.key[3],
      result: { started: row.key[1], lateness_ms: row.key[2] } }));
  }

  feed(since) {
    const selector = { $or: [{ worker: { $exists: true } }, { type: 'after-presence' }, { _deleted: true }] };
    return { method: 'POST', query: { filter: '_selector', since }, body: { selector } };
  }
}

// pouchdb-server (and other CouchDB-protocol servers): the JavaScript views of _design/after.
class ViewQueries {
  constructor(couch, config) { this.couch = couch; this.v = config.views; this.limits = config.limits; }

  async counts() { return countsOf(await this.couch.view(this.v.ddoc, this.v.counts, { group: true })); }

  async upcoming(worker, running) {
    return docs(await this.couch.view(this.v.ddoc, this.v.live, {
      startkey: [worker], endkey: [worker, {}], include_docs: true, limit: this.limits.upcoming + running,
    })).filter((doc) => doc.status !== 'running');
  }

  async running(worker) {
    return docs(await this.couch.view(this.v.ddoc, this.v.byWorkerStatus, {
      startkey: [worker, 'running'], endkey: [worker, 'running', {}], include_docs: true,
      limit: this.limits.running }));
  }

  async failures(worker) {
    return docs(await this.couch.view(this.v.ddoc, this.v.byWorkerStatus, {
      startkey: [worker, 'err', {}], endkey: [worker, 'err'], descending: true, include_docs: true,
      limit: this.limits.failures }));
  }

  async results(worker, since, until) {
    return docs(await this.couch.view(this.v.ddoc, this.v.byWorker, {
      startkey: [worker, Date.parse(until)], endkey: [worker, Date.parse(since)], descending: true,
      include_docs: true, limit: this.limits.chart }));
  }

  feed(since) { return { method: 'GET', query: { since }, body: undefined }; }
}

// Follows _changes with longpoll requests until stop(); onChanges gets each batch of rows, onState
// 'live', 'reconnecting' or a Refused error (then it stops: the page asks for a login).
class Feed {
  constructor(couch, queries, since, onChanges, onState) {
    Object.assign(this, { couch, queries, since, onChanges, onState });
    this.controller = new AbortController();
  }

  stop() { this.controller.abort(); }

  async run() {
    let failures = 0;
    while (!this.controller.signal.aborted) {
      try {
        const batch = await this.poll();
        failures = 0;
        if (batch.results.length) this.onChanges(batch.results);
      } catch (error) {
        if (this.controller.signal.aborted) return;
        if (error instanceof Refused) { this.onState(error); return; }
        failures += 1;
        this.onState('reconnecting');
        await new Promise((resolve) => setTimeout(resolve, Math.min(10000, 500 * 2 ** failures)));
      }
    }
  }

  async poll() {
    const request = this.queries.feed(this.since);
    // heartbeat: pouchdb-server sends its headers only with the first row or heartbeat, and ignores
    // timeout (CouchDB ends the request after it, with no rows).
    const query = Object.entries({ feed: 'longpoll', include_docs: true, heartbeat: 5000, timeout: 55000,
      limit: 500, ...request.query }).map(([key, value]) => `${key}=${encodeURIComponent(value)}`).join('&');
    const init = { method: request.method, headers: { Accept: 'application/json' },
      signal: this.controller.signal, credentials: 'same-origin' };
    if (request.body) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(request.body);
    }
    const response = await fetch(`${this.couch.db}/_changes?${query}`, init);
    if (response.status === 401 || response.status === 403) throw new Refused(response.status, 'refused');
    if (!response.ok) throw new Error(`_changes: HTTP ${response.status}`);
    this.onState('live'); // the headers: connected, waiting for changes
    const batch = JSON.parse(await response.text()); // heartbeats are leading new lines
    this.since = batch.last_seq;
    return batch;
  }
}
