// The lateness chart: one dot per job started in the last hour (x: result.started, y: result.lateness_ms
// on a log scale from 1 ms), red for failures; drawn as SVG, no library.

const SVG = 'http://www.w3.org/2000/svg';
const WIDTH = 640;
const HEIGHT = 200;
const PAD = { left: 56, right: 12, top: 10, bottom: 24 };

function svg(tag, attributes, text) {
  const element = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
  if (text !== undefined) element.textContent = text;
  return element;
}

// Results as points: [{id, started (ms), lateness (ms), failed}] within the hour before `now`.
function points(docs, now) {
  const since = now - 3600 * 1000;
  const found = [];
  for (const doc of docs) {
    const result = doc.result || {};
    const started = Date.parse(result.started);
    if (Number.isNaN(started) || started < since || started > now) continue;
    if (typeof result.lateness_ms !== 'number') continue;
    found.push({ id: doc._id, started, lateness: result.lateness_ms,
      failed: doc.status === 'err' || ['failed', 'timeout', 'invalid'].includes(result.outcome) });
  }
  return found;
}

function quantile(sorted, q) {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] : 0;
}

function summary(found) {
  if (!found.length) return 'no job started in the last hour';
  const sorted = found.map((point) => point.lateness).sort((a, b) => a - b);
  return `${found.length} started · median ${span(quantile(sorted, 0.5))} · ` +
    `p95 ${span(quantile(sorted, 0.95))} · max ${span(sorted[sorted.length - 1])}`;
}

function chart(found, now) {
  const top = Math.max(1000, ...found.map((point) => point.lateness));
  const decades = Math.ceil(Math.log10(top));
  const plotWidth = WIDTH - PAD.left - PAD.right;
  const plotHeight = HEIGHT - PAD.top - PAD.bottom;
  const x = (ms) => PAD.left + plotWidth * (1 - (now - ms) / 3600000);
  const y = (lateness) => PAD.top + plotHeight * (1 - Math.log10(Math.max(1, lateness)) / decades);
  const root = svg('svg', { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: 'img', class: 'chart',
    'aria-label': 'lateness of the jobs started in the last hour' });
  for (let decade = 0; decade <= decades; decade += 1) {
    const level = y(10 ** decade);
    root.append(svg('line', { x1: PAD.left, x2: WIDTH - PAD.right, y1: level, y2: level, class: 'grid' }));
    root.append(svg('text', { x: PAD.left - 6, y: level + 4, 'text-anchor': 'end' }, span(10 ** decade)));
  }
  for (let minutes = 60; minutes >= 0; minutes -= 10) {
    const at = x(now - minutes * 60000);
    root.append(svg('line', { x1: at, x2: at, y1: PAD.top, y2: HEIGHT - PAD.bottom, class: 'grid' }));
    root.append(svg('text', { x: at, y: HEIGHT - 6, 'text-anchor': 'middle' },
      minutes ? `-${minutes} min` : 'now'));
  }
  for (const point of found) {
    const dot = svg('circle', { cx: x(point.started).toFixed(1), cy: y(point.lateness).toFixed(1), r: 2.5,
      class: point.failed ? 'dot failed' : 'dot' });
    dot.append(svg('title', {}, `${point.id}: ${span(point.lateness)} late, ` +
      `started ${new Date(point.started).toLocaleTimeString()}`));
    root.append(dot);
  }
  return root;
}
