// 网格规划: the planners' page (mapping/templates/mapping/planning.html).
//
// A planner picks a community, opens or starts a draft (mapping.plans: today's grid, a suggested
// rebalance, an uploaded file, a copy) and edits it on the map. Every edit is one request to
// /api/plans/{id}/edits/ (or undo/redo), answered with the cells it changed and the live checks,
// which this page lists and draws. The preview names who and what moves; apply puts the draft in
// force. Nothing is computed here that the server decides: the page draws, the API judges.
//
// MapLibre has no drawing tools; the few this page needs are small state machines over map
// events and GeoJSON sources: a polygon by clicks (double-click or Enter finishes), a line for a
// split, and vertex handles for a reshape (drag a vertex, drag a midpoint to add one, right-click
// to remove). Vertices snap to the other cells' vertices within a few pixels, so shared edges
// stay shared.
//
// Everything comes from this server (MapLibre from the vendor static files, tiles from /tiles/,
// labels from the browser's own fonts: the style has no glyph URL). The community, the open plan,
// the tab and the camera live in the URL, so a view can be bookmarked.

import { $, $$, h } from '../ops/dom.js';
import { bboxOfGeometry } from '../ops/geometry.js';

const CONFIG = JSON.parse(document.getElementById('planning-config').textContent);
const CSRF = document.querySelector('meta[name="csrf-token"]').getAttribute('content');
const maplibregl = await import(document.body.dataset.maplibre);

// --------------------------------------------------------------------------------------------
// Small helpers
// --------------------------------------------------------------------------------------------


class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || (status === 0 ? '网络不通，请稍后重试' : `请求失败（${status}）`));
    this.status = status;
    this.code = body && body.code;
    this.body = body || {};
  }
}

async function api(path, { method = 'GET', body, params, form } = {}) {
  const url = new URL(path, location.origin);
  for (const [key, value] of Object.entries(params || {})) {
    if (value !== null && value !== undefined && value !== '') url.searchParams.set(key, value);
  }
  const headers = { Accept: 'application/json' };
  const init = { method, credentials: 'same-origin', headers };
  if (method !== 'GET') headers['X-CSRFToken'] = CSRF;
  if (form) init.body = form;
  else if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch {
    throw new ApiError(0, null);
  }
  let data = null;
  try { data = await response.json(); } catch { data = null; }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

// replaceChildren without the nulls of optional parts (it would print them).
const fill = (el, ...children) => el.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
const localTime = (iso) => (iso ? new Date(iso).toLocaleString('zh-CN', { hour12: false, timeZone: 'Asia/Shanghai' }) : '');
const signed = (n) => (n > 0 ? `+${n}` : String(n));
const plural = (items, render, empty = '无') => (items.length ? items.map(render) : [h('li', { class: 'meta' }, empty)]);

function hint(text, kind = '', ...actions) {
  const el = $('#hint');
  el.className = kind;
  el.replaceChildren(h('span', {}, text || ''), ...actions);
  el.hidden = !text;
}

const polygonsOf = (g) => (!g ? [] : g.type === 'Polygon' ? [g.coordinates] : g.type === 'MultiPolygon' ? g.coordinates : []);

function ringArea(ring) {
  let sum = 0;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) sum += (ring[j][0] - ring[i][0]) * (ring[j][1] + ring[i][1]);
  return Math.abs(sum / 2);
}

// Where a cell's label goes: on the widest horizontal run inside its largest part, near the
// middle (a cheap stand-in for the pole of inaccessibility; L- and U-shaped cells keep their
// label inside, where a centroid would fall out).
function labelPoint(geometry) {
  const polys = polygonsOf(geometry);
  if (!polys.length) return null;
  const poly = polys.reduce((a, b) => (ringArea(b[0]) > ringArea(a[0]) ? b : a));
  const [w, s, e, n] = bboxOfGeometry({ coordinates: poly[0] });
  let best = null;
  for (let k = 1; k < 16; k++) {
    const y = s + ((n - s) * k) / 16;
    const xs = [];
    for (const ring of poly) {
      for (let i = 0; i < ring.length - 1; i++) {
        const [x1, y1] = ring[i]; const [x2, y2] = ring[i + 1];
        if ((y1 <= y && y < y2) || (y2 <= y && y < y1)) xs.push(x1 + ((y - y1) / (y2 - y1)) * (x2 - x1));
      }
    }
    xs.sort((a, b) => a - b);
    for (let i = 0; i + 1 < xs.length; i += 2) {
      const score = (xs[i + 1] - xs[i]) / (e - w || 1) - Math.abs(k / 16 - 0.5) * 0.6;
      if (!best || score > best.score) best = { score, point: [(xs[i] + xs[i + 1]) / 2, y] };
    }
  }
  return best ? best.point : [(w + e) / 2, (s + n) / 2];
}

// --------------------------------------------------------------------------------------------
// State, and the query string that keeps it
// --------------------------------------------------------------------------------------------

const COMMUNITY = CONFIG.community;
const PLANS = CONFIG.plans_url;
const RANGE = [CONFIG.households_min, CONFIG.households_max];
const query = new URLSearchParams(location.search);
const TABS = ['checks', 'cells', 'preview', 'apply', 'log'];

const state = {
  plans: [],
  plan: null, // the open plan's detail, without its cells
  cells: new Map(), // code -> GeoJSON feature of the open plan
  checks: null,
  figures: new Map(), // code -> the checks' figures of a cell
  names: new Map(), // code -> name, of every cell seen (preview rows name retired cells too)
  selected: [], // codes, in the order picked (merge keeps the first)
  building: null, // {code, name} picked for a move
  tool: 'select',
  problem: null, // index into checks.problems
  preview: null,
  view: 'after',
  tab: TABS.includes(query.get('tab')) ? query.get('tab') : 'checks',
  busy: false,
};
const initialView = (() => {
  const parts = (query.get('map') || '').split('/').map(Number);
  return parts.length === 3 && parts.every(Number.isFinite) ? { zoom: parts[0], center: [parts[2], parts[1]] } : null;
})();

let saveTimer = null;
function saveState() {
  clearTimeout(saveTimer);
  saveTimer = setTimeout(() => {
    const q = new URLSearchParams();
    if (state.plan) q.set('plan', state.plan.id);
    if (state.tab !== 'checks') q.set('tab', state.tab);
    const c = map.getCenter();
    q.set('map', `${map.getZoom().toFixed(2)}/${c.lat.toFixed(5)}/${c.lng.toFixed(5)}`);
    history.replaceState(null, '', `${location.pathname}?${q}`);
  }, 150);
}

const editable = () => Boolean(state.plan && state.plan.state === 'draft');

// --------------------------------------------------------------------------------------------
// The map
// --------------------------------------------------------------------------------------------

const tileUrl = (layer) =>
  new URL(CONFIG.tiles.replace('{layer}', layer), location.origin).href.replace(/%7B/g, '{').replace(/%7D/g, '}');
const FONT = ['Noto Sans CJK SC', 'Noto Sans', 'sans-serif'];
const EMPTY = { type: 'FeatureCollection', features: [] };
// The toolbar covers the map's left edge: fitted views keep clear of it.
const FIT_PADDING = { top: 40, bottom: 50, left: 170, right: 40 };
const WHOLE_CELL = ['households_out_of_range', 'cell_without_worker', 'cell_not_compact', 'plan_cell_not_contiguous'];
const COLOURS = {
  ok: '#b8e0a8', low: '#9ecae1', high: '#f4a3a8', unknown: '#d9d9d9', locked: '#bdbdbd',
  error: '#d7301f', warning: '#f16913', selected: '#ff7f00', moved: '#7b3294', sketch: '#1f78b4',
};

function style() {
  const sources = {
    outline: { type: 'geojson', data: { type: 'Feature', geometry: COMMUNITY.outline, properties: {} } },
    cells: { type: 'geojson', data: EMPTY },
    labels: { type: 'geojson', data: EMPTY },
    before: { type: 'geojson', data: EMPTY },
    buildings: { type: 'vector', tiles: [tileUrl('buildings')], minzoom: 13, maxzoom: 17 },
    today: { type: 'vector', tiles: [tileUrl('grid_cells')], minzoom: 0, maxzoom: 16 },
    problems: { type: 'geojson', data: EMPTY },
    sketch: { type: 'geojson', data: EMPTY },
    handles: { type: 'geojson', data: EMPTY },
  };
  const layers = [{ id: 'background', type: 'background', paint: { 'background-color': '#f4f1ea' } }];
  if (CONFIG.basemap) {
    sources.basemap = { type: 'raster', tiles: [CONFIG.basemap], tileSize: 256, attribution: CONFIG.basemap_attribution || '' };
    layers.push({ id: 'basemap', type: 'raster', source: 'basemap' });
  }
  const isPoly = ['match', ['geometry-type'], ['Polygon', 'MultiPolygon'], true, false];
  const isLine = ['match', ['geometry-type'], ['LineString', 'MultiLineString'], true, false];
  const isPoint = ['match', ['geometry-type'], ['Point', 'MultiPoint'], true, false];
  const severity = ['match', ['get', 'severity'], 'error', COLOURS.error, COLOURS.warning];
  layers.push(
    { id: 'outline-fill', type: 'fill', source: 'outline', paint: { 'fill-color': '#ffffff', 'fill-opacity': 0.5 } },
    { id: 'cells-fill', type: 'fill', source: 'cells',
      paint: { 'fill-color': ['match', ['get', 'status'], 'ok', COLOURS.ok, 'low', COLOURS.low, 'high', COLOURS.high, COLOURS.unknown], 'fill-opacity': 0.5 } },
    { id: 'cells-locked', type: 'fill', source: 'cells', filter: ['==', ['get', 'locked'], true], paint: { 'fill-pattern': 'hatch', 'fill-opacity': 0.9 } },
    { id: 'buildings-fill', type: 'fill', source: 'buildings', 'source-layer': 'buildings', minzoom: 14,
      paint: { 'fill-color': '#8a8a8a', 'fill-opacity': 0.85, 'fill-outline-color': '#4d4d4d' } },
    { id: 'buildings-moved', type: 'fill', source: 'buildings', 'source-layer': 'buildings', minzoom: 14, filter: ['in', ['get', 'code'], ['literal', []]],
      paint: { 'fill-color': COLOURS.moved, 'fill-opacity': 0.9 } },
    { id: 'buildings-picked', type: 'line', source: 'buildings', 'source-layer': 'buildings', filter: ['==', ['get', 'code'], ''],
      paint: { 'line-color': COLOURS.selected, 'line-width': 3 } },
    { id: 'today-line', type: 'line', source: 'today', 'source-layer': 'grid_cells', filter: ['==', ['get', 'community_code'], COMMUNITY.code],
      paint: { 'line-color': '#27408b', 'line-width': 1.5, 'line-dasharray': [3, 2] } },
    { id: 'cells-line', type: 'line', source: 'cells', paint: { 'line-color': '#27408b', 'line-width': ['interpolate', ['linear'], ['zoom'], 13, 1, 17, 2.5] } },
    { id: 'before-line', type: 'line', source: 'before', layout: { visibility: 'none' }, paint: { 'line-color': '#333', 'line-width': 2, 'line-dasharray': [2, 1.5] } },
    { id: 'outline-line', type: 'line', source: 'outline', paint: { 'line-color': '#1f3b73', 'line-width': 3 } },
    // Problems about a part of the community (a gap, an overlap, a building) are filled; those
    // about a whole cell (households, worker, shape) only outlined, so the cell keeps its colour.
    { id: 'problems-fill', type: 'fill', source: 'problems', filter: ['all', isPoly, ['!', ['in', ['get', 'code'], ['literal', WHOLE_CELL]]]],
      paint: { 'fill-color': severity, 'fill-opacity': 0.45 } },
    { id: 'problems-line', type: 'line', source: 'problems', filter: ['any', isPoly, isLine], paint: { 'line-color': severity, 'line-width': 1.5, 'line-dasharray': [3, 2] } },
    { id: 'problems-point', type: 'circle', source: 'problems', filter: isPoint,
      paint: { 'circle-color': severity, 'circle-radius': 6, 'circle-stroke-color': '#fff', 'circle-stroke-width': 1.5 } },
    { id: 'problem-picked', type: 'line', source: 'problems', filter: ['==', ['get', 'index'], -1], paint: { 'line-color': '#b10026', 'line-width': 4 } },
    { id: 'cells-selected', type: 'line', source: 'cells', filter: ['in', ['get', 'code'], ['literal', []]], paint: { 'line-color': COLOURS.selected, 'line-width': 4 } },
    { id: 'sketch-fill', type: 'fill', source: 'sketch', filter: isPoly, paint: { 'fill-color': COLOURS.sketch, 'fill-opacity': 0.2 } },
    { id: 'sketch-line', type: 'line', source: 'sketch', filter: ['any', isPoly, isLine], paint: { 'line-color': COLOURS.sketch, 'line-width': 2.5 } },
    { id: 'sketch-vertex', type: 'circle', source: 'sketch', filter: isPoint,
      paint: { 'circle-color': '#fff', 'circle-radius': 4, 'circle-stroke-color': COLOURS.sketch, 'circle-stroke-width': 2 } },
    { id: 'handles-mid', type: 'circle', source: 'handles', filter: ['==', ['get', 'mid'], true],
      paint: { 'circle-color': COLOURS.selected, 'circle-opacity': 0.5, 'circle-radius': 4 } },
    { id: 'handles-vertex', type: 'circle', source: 'handles', filter: ['!=', ['get', 'mid'], true],
      paint: { 'circle-color': '#fff', 'circle-radius': 5.5, 'circle-stroke-color': COLOURS.selected, 'circle-stroke-width': 2.5 } },
    { id: 'cells-label', type: 'symbol', source: 'labels',
      layout: { 'text-field': ['get', 'label'], 'text-font': FONT, 'text-size': 12.5, 'text-line-height': 1.25, 'text-max-width': 30 },
      paint: { 'text-color': ['match', ['get', 'status'], 'low', '#08519c', 'high', '#a50f15', '#1a2f5e'], 'text-halo-color': '#fff', 'text-halo-width': 1.8 } },
    { id: 'before-label', type: 'symbol', source: 'before', layout: { visibility: 'none', 'text-field': ['get', 'label'], 'text-font': FONT, 'text-size': 12 },
      paint: { 'text-color': '#333', 'text-halo-color': '#fff', 'text-halo-width': 1.5 } },
  );
  return { version: 8, sources, layers };
}

const extent = COMMUNITY.bbox;
const map = new maplibregl.Map({
  container: 'map',
  style: style(),
  bounds: initialView ? undefined : extent,
  center: initialView ? initialView.center : undefined,
  zoom: initialView ? initialView.zoom : undefined,
  fitBoundsOptions: { padding: FIT_PADDING },
  maxZoom: 20,
  doubleClickZoom: false, // a double click finishes a drawing here
  boxZoom: false, // Shift+click adds a second cell to the selection
  localIdeographFontFamily: "'Noto Sans CJK SC', 'Noto Sans SC', 'Microsoft YaHei', 'PingFang SC', sans-serif",
  attributionControl: CONFIG.basemap ? { compact: true } : false,
});
map.addControl(new maplibregl.NavigationControl({ showCompass: false }), 'top-right');
map.addControl(new maplibregl.ScaleControl({ unit: 'metric' }), 'bottom-right');

// Locked cells are hatched: a small diagonal pattern made here (no sprite server).
function hatchImage() {
  const size = 12;
  const data = new Uint8Array(size * size * 4);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const on = (x + y) % size < 2;
      const i = (y * size + x) * 4;
      data.set(on ? [90, 90, 90, 200] : [200, 200, 200, 90], i);
    }
  }
  return { width: size, height: size, data };
}
map.on('styleimagemissing', (e) => { if (e.id === 'hatch' && !map.hasImage('hatch')) map.addImage('hatch', hatchImage()); });
const loaded = new Promise((resolve) => map.once('load', resolve));
loaded.then(() => { if (!map.hasImage('hatch')) map.addImage('hatch', hatchImage()); });
map.on('moveend', saveState);

function fitTo(box, maxZoom = 18) {
  if (!box) return;
  if (box[2] - box[0] < 1e-5 && box[3] - box[1] < 1e-5) map.flyTo({ center: [box[0], box[1]], zoom: Math.min(maxZoom, 18), duration: 500 });
  else map.fitBounds(box, { padding: FIT_PADDING, maxZoom, duration: 500 });
}

// --- what the map shows of the open plan ---

function cellStatus(code) {
  const f = state.figures.get(code);
  if (!f) return 'unknown';
  return f.deviation < 0 ? 'low' : f.deviation > 0 ? 'high' : 'ok';
}

function drawCells() {
  const features = [];
  const labels = [];
  for (const [code, feature] of state.cells) {
    const f = state.figures.get(code);
    const status = cellStatus(code);
    features.push({ type: 'Feature', geometry: feature.geometry, properties: { ...feature.properties, status } });
    const at = labelPoint(feature.geometry);
    if (!at) continue;
    const name = feature.properties.name || `…${code.slice(-3)}`;
    const figure = f ? `${f.households} 户${f.deviation ? `（${signed(f.deviation)}）` : ''}` : '';
    labels.push({
      type: 'Feature', geometry: { type: 'Point', coordinates: at },
      // Three short lines rather than two long ones: narrow cells keep their label.
      properties: { code, status, label: [`${name}${feature.properties.locked ? '（锁定）' : ''}`, `…${code.slice(-3)}`, figure].filter(Boolean).join('\n') },
    });
  }
  map.getSource('cells').setData({ type: 'FeatureCollection', features });
  map.getSource('labels').setData({ type: 'FeatureCollection', features: labels });
  drawSelection();
}

function drawSelection() {
  map.setFilter('cells-selected', ['in', ['get', 'code'], ['literal', state.selected]]);
  map.setFilter('buildings-picked', ['==', ['get', 'code'], state.building ? state.building.code : '']);
}

function drawProblems() {
  const problems = (state.checks && state.checks.problems) || [];
  const features = problems
    .map((p, index) => (p.geometry ? { type: 'Feature', geometry: p.geometry, properties: { index, severity: p.severity, code: p.code } } : null))
    .filter(Boolean);
  map.getSource('problems').setData({ type: 'FeatureCollection', features });
  map.setFilter('problem-picked', ['==', ['get', 'index'], state.problem === null ? -1 : state.problem]);
}

function renderLegend() {
  const row = (colour, text, cls = 'key') => h('div', { class: 'row' }, h('i', { class: cls, style: `--c:${colour}` }), text);
  $('#legend').replaceChildren(
    h('h2', {}, '图例'),
    row(COLOURS.ok, `户数在 ${RANGE[0]}–${RANGE[1]} 范围内`),
    row(COLOURS.low, `少于 ${RANGE[0]} 户`),
    row(COLOURS.high, `多于 ${RANGE[1]} 户`),
    row(COLOURS.locked, '已锁定（不调整）', 'key hatch'),
    row('#8a8a8a', '楼栋（放大后显示）'),
    row(COLOURS.error, '检查：错误（应用时会被拒绝）'),
    row(COLOURS.warning, '检查：警告'),
    ...(state.preview ? [row(COLOURS.moved, '预览：换网格的楼栋')] : []),
    ...(state.plan ? [] : [row('#27408b', '现行网格（打开方案后显示方案的网格）', 'key line')]),
  );
}

// --------------------------------------------------------------------------------------------
// Drafts of the community
// --------------------------------------------------------------------------------------------

const STATE_CLASS = { draft: 'draft', applied: 'applied', abandoned: 'abandoned' };

async function loadPlans() {
  const body = $('#plan-list tbody');
  let plans;
  try {
    plans = (await api(PLANS, { params: { community: COMMUNITY.code, page_size: 100 } })).results;
  } catch (err) {
    body.replaceChildren(h('tr', {}, h('td', { colspan: 2, class: 'meta' }, `方案加载失败：${err.message}`)));
    return;
  }
  state.plans = plans;
  renderPlans();
  // The list does not say whether a draft is stale (its community's boundaries changed since it
  // started); each draft's detail does.
  await Promise.all(plans.filter((p) => p.state === 'draft').slice(0, 20).map(async (p) => {
    try {
      p.stale = (await api(`${PLANS}${p.id}/`)).stale;
    } catch { p.stale = null; }
  }));
  renderPlans();
}

function renderPlans() {
  const body = $('#plan-list tbody');
  if (!state.plans.length) {
    body.replaceChildren(h('tr', {}, h('td', { colspan: 2, class: 'meta' }, '本社区还没有方案：从现行网格新建一个草稿开始。')));
    return;
  }
  body.replaceChildren(...state.plans.map((p) => {
    const open = state.plan && state.plan.id === p.id;
    const actions = [h('button', { type: 'button', class: 'link', onclick: () => openPlan(p.id) }, open ? '已打开' : '打开')];
    actions.push(h('button', { type: 'button', class: 'link', onclick: () => copyPlan(p) }, '复制'));
    if (p.state === 'draft') {
      actions.push(h('button', { type: 'button', class: 'link', onclick: () => renamePlan(p) }, '改名'));
      actions.push(h('button', { type: 'button', class: 'link', onclick: () => abandonPlan(p) }, '放弃'));
    }
    if (p.state === 'applied') actions.push(h('button', { type: 'button', class: 'link', onclick: () => revertPlan(p) }, '恢复'));
    actions.push(h('button', { type: 'button', class: 'link', onclick: () => comparePlan(p) }, '比较'));
    return h('tr', { class: open ? 'selected' : '', dataset: { id: p.id, state: p.state } },
      h('td', { class: 'name' }, h('strong', {}, p.name), ' ',
        h('span', { class: `state ${STATE_CLASS[p.state] || ''}` }, p.state_display),
        p.stale ? h('span', { class: 'stale' }, ' 已过时') : null,
        h('div', { class: 'meta' }, `${p.origin_display} · ${p.created_by_name || '—'} ${localTime(p.created_at)}`)),
      h('td', { class: 'actions' }, ...actions));
  }));
}

function defaultName() {
  const now = new Date();
  const hm = `${String(now.getHours()).padStart(2, '0')}:${String(now.getMinutes()).padStart(2, '0')}`;
  return `${COMMUNITY.name}调整方案 ${CONFIG.today} ${hm}`;
}

async function createToday() {
  const name = await ask({ title: '从现行网格新建草稿', message: '草稿从本社区现行的网格开始；在应用之前，不会改变任何现行数据。', input: defaultName(), ok: '新建' });
  if (name === null) return;
  try {
    const plan = await api(PLANS, { method: 'POST', body: { community: COMMUNITY.code, name } });
    await loadPlans();
    await openPlan(plan.id, { detail: plan });
    hint(`已新建草稿“${plan.name}”`, 'ok');
  } catch (err) {
    hint(`新建失败：${err.message}`, 'error');
  }
}

async function createSuggested() {
  const ok = await ask({ title: '从建议方案开始', message: '系统从现行网格出发，以尽量小的改动使每个网格的户数落在范围内，结果建为一个新草稿，可继续编辑。', ok: '生成建议' });
  if (ok === null) return;
  hint('正在计算调整建议…');
  try {
    const plan = await api(CONFIG.suggest_url, { method: 'POST', body: { community: COMMUNITY.code } });
    await loadPlans();
    await openPlan(plan.id, { detail: plan });
    const s = plan.suggestion || {};
    const summary = s.summary || {};
    const findings = (s.findings || []).map((f) => f.message).filter(Boolean);
    hint(`已生成建议草稿：${summary.cells_in_range ?? '?'}/${summary.cells ?? '?'} 个网格户数在范围内${findings.length ? `；${findings.join('；')}` : ''}`, 'ok');
  } catch (err) {
    hint(`生成建议失败：${err.message}`, 'error');
  }
}

async function copyPlan(p) {
  try {
    const copy = await api(`${PLANS}${p.id}/copy/`, { method: 'POST', body: {} });
    await loadPlans();
    await openPlan(copy.id, { detail: copy });
    hint(`已复制为“${copy.name}”${copy.stale ? '（所依据的网格已变化，副本同样已过时）' : ''}`, copy.stale ? 'error' : 'ok');
  } catch (err) {
    hint(`复制失败：${err.message}`, 'error');
  }
}

async function renamePlan(p) {
  const name = await ask({ title: '草稿改名', input: p.name, ok: '改名' });
  if (name === null || name === p.name) return;
  try {
    const detail = await api(`${PLANS}${p.id}/`, { method: 'PATCH', body: { name } });
    await loadPlans();
    if (state.plan && state.plan.id === p.id) setPlan(detail);
  } catch (err) {
    hint(`改名失败：${err.message}`, 'error');
  }
}

async function abandonPlan(p) {
  const ok = await ask({ title: '放弃草稿', message: `放弃“${p.name}”？放弃后保留记录，但不能再编辑或应用。`, ok: '放弃草稿', danger: true });
  if (ok === null) return;
  try {
    const detail = await api(`${PLANS}${p.id}/`, { method: 'DELETE' });
    await loadPlans();
    if (state.plan && state.plan.id === p.id) setPlan(detail);
    hint(`已放弃“${p.name}”`, 'ok');
  } catch (err) {
    hint(`放弃失败：${err.message}`, 'error');
  }
}

async function revertPlan(p) {
  const ok = await ask({ title: '恢复已应用的方案', message: `以“${p.name}”应用时的网格新建草稿；应用该草稿即恢复到那时的网格。`, ok: '新建恢复草稿' });
  if (ok === null) return;
  try {
    const draft = await api(`${PLANS}${p.id}/revert/`, { method: 'POST', body: {} });
    await loadPlans();
    await openPlan(draft.id, { detail: draft });
  } catch (err) {
    hint(`恢复失败：${err.message}`, 'error');
  }
}

async function comparePlan(p) {
  let data;
  try {
    data = await api(`${PLANS}${p.id}/compare/`);
  } catch (err) {
    hint(`比较失败：${err.message}`, 'error');
    return;
  }
  const [a, b] = data.scores;
  const table = h('table', { class: 'list compare' },
    h('thead', {}, h('tr', {}, h('th', {}, '网格'), h('th', { class: 'num' }, data.names[0]), h('th', { class: 'num' }, data.names[1]), h('th', { class: 'num' }, '差'))),
    h('tbody', {}, ...data.cells.map((c) => h('tr', {},
      h('td', {}, state.names.get(c.code) || '', ' ', h('span', { class: 'meta' }, c.code)),
      h('td', { class: 'num' }, c.households[0] ?? '—'),
      h('td', { class: 'num' }, c.households[1] ?? '—'),
      h('td', { class: 'num' }, signed(c.households_difference))))));
  await ask({
    title: `比较：${data.names[0]} / ${data.names[1]}（户数）`,
    body: [h('p', {}, `在范围内的网格：${a.cells_in_range}/${a.cells} 与 ${b.cells_in_range}/${b.cells}；平均紧凑度 ${a.polsby_popper_mean ?? '—'} 与 ${b.polsby_popper_mean ?? '—'}`), table],
    ok: '关闭', cancel: false,
  });
}

// --- upload: per-feature errors in Chinese, nothing created when any feature is bad ---

function openUpload() {
  $('#upload-name').value = `${COMMUNITY.name}上传方案 ${CONFIG.today}`;
  $('#upload-issues').replaceChildren();
  $('#upload').showModal();
}
$('#upload-cancel').addEventListener('click', () => $('#upload').close());
$('#upload-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const file = $('#upload-file').files[0];
  if (!file) return;
  const form = new FormData();
  form.append('community', COMMUNITY.code);
  form.append('name', $('#upload-name').value.trim());
  form.append('file', file, file.name);
  if ($('#upload-crs').value) form.append('crs', $('#upload-crs').value);
  form.append('code_field', $('#upload-code-field').value.trim() || 'code');
  form.append('name_field', $('#upload-name-field').value.trim() || 'name');
  const out = $('#upload-issues');
  out.replaceChildren(h('p', { class: 'meta' }, '正在检查文件…'));
  try {
    const plan = await api(PLANS, { method: 'POST', form });
    $('#upload').close();
    await loadPlans();
    await openPlan(plan.id, { detail: plan });
    const warnings = plan.warnings || [];
    hint(`已从文件新建草稿“${plan.name}”${warnings.length ? `（${warnings.length} 条提示：${warnings.slice(0, 3).map((w) => w.message).join('；')}）` : ''}`, 'ok');
  } catch (err) {
    const issues = err.body.issues || [];
    fill(out, h('p', { class: 'alert' }, err.message),
      issues.length ? h('table', { class: 'list issues' },
        h('thead', {}, h('tr', {}, h('th', {}, '要素'), h('th', {}, '编码'), h('th', {}, '问题'))),
        h('tbody', {}, ...issues.map((i) => h('tr', { class: i.severity },
          h('td', { class: 'num' }, i.index === null || i.index === undefined ? '—' : `第 ${i.index} 个`),
          h('td', {}, i.code || '—'),
          h('td', {}, h('span', { class: `sev ${i.severity}` }, i.severity === 'error' ? '错误' : '提示'), ' ', i.message))))) : null);
  }
});

// --- a small dialog for confirm / prompt (no window.prompt: it blocks and cannot be styled) ---

function ask({ title, message = '', input = null, ok = '确定', cancel = true, danger = false, body = [] }) {
  const dialog = $('#ask');
  $('#ask-title').textContent = title;
  $('#ask-body').replaceChildren(...(message ? [h('p', {}, message)] : []), ...body);
  const field = $('#ask-input');
  field.hidden = input === null;
  field.required = input !== null;
  field.value = input ?? '';
  $('#ask-ok').textContent = ok;
  $('#ask-ok').classList.toggle('danger', danger);
  dialog.querySelector('button[value="cancel"]').hidden = !cancel;
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => {
      if (dialog.returnValue !== 'ok') resolve(null);
      else resolve(input === null ? true : field.value.trim());
    }, { once: true });
    dialog.returnValue = '';
    dialog.showModal();
    if (input !== null) field.select();
  });
}

// --------------------------------------------------------------------------------------------
// The open plan
// --------------------------------------------------------------------------------------------

async function openPlan(id, { detail = null, fit = false } = {}) {
  let plan = detail;
  try {
    if (!plan || !plan.cells) plan = await api(`${PLANS}${id}/`);
  } catch (err) {
    hint(err.status === 404 ? '没有这个方案，或您不能查看它' : `方案加载失败：${err.message}`, 'error');
    return;
  }
  if (!state.plan || state.plan.id !== plan.id) $('#apply-result').replaceChildren();
  setPlan(plan);
  state.cells = new Map(plan.cells.features.map((f) => [f.properties.code, f]));
  for (const [code, f] of state.cells) state.names.set(code, f.properties.name);
  state.selected = [];
  state.building = null;
  state.problem = null;
  clearPreview();
  cancelSketch();
  drawCells();
  if (fit) fitTo(bboxOfGeometry(COMMUNITY.outline));
  renderPlans();
  saveState();
  try {
    setChecks(await api(`${PLANS}${id}/checks/`));
  } catch (err) {
    hint(`检查加载失败：${err.message}`, 'error');
  }
  if (state.tab === 'log') loadLog();
  if (state.tab === 'preview') loadPreview();
}

function setPlan(plan) {
  const { cells, warnings, suggestion, ...rest } = plan;
  state.plan = { ...(state.plan && state.plan.id === plan.id ? state.plan : {}), ...rest };
  $('#plan').hidden = false;
  $('#plan-title').textContent = state.plan.name;
  const p = state.plan;
  const meta = [`${p.state_display} · ${p.origin_display}`, `${p.created_by_name || '—'} 起草于 ${localTime(p.created_at)}`];
  if (p.state === 'applied') meta.push(`${p.applied_by_name || '—'} 于 ${localTime(p.applied_at)} 应用，自 ${p.valid_from} 起生效；事由：${p.reason}`);
  $('#plan-meta').textContent = meta.join('；');
  const stale = $('#plan-stale');
  stale.hidden = !(p.state === 'draft' && p.stale);
  stale.textContent = STALE_MESSAGE;
  if (p.state !== 'draft') { cancelSketch(); state.tool = 'select'; state.building = null; }
  $('#apply-form').hidden = p.state !== 'draft';
  if (p.state === 'applied' && p.result) renderApplied(p.result);
  else if (p.state === 'abandoned') $('#apply-result').replaceChildren(h('p', { class: 'meta' }, '此方案已放弃，不能应用；可复制后继续调整。'));
  map.setLayoutProperty('today-line', 'visibility', 'none');
  renderLegend();
  renderTools();
}

const STALE_MESSAGE = '本社区的网格在此草稿起草后已被另一方案修改，此草稿已过时，不能应用。请从现行网格新建草稿重新调整（可对照本草稿），或在已应用的方案上使用“恢复”。';

function setChecks(checks) {
  state.checks = checks;
  state.figures = new Map(checks.cells.map((c) => [c.code, c]));
  if (state.problem !== null && state.problem >= checks.problems.length) state.problem = null;
  drawCells();
  drawProblems();
  renderChecks();
  renderCellsTable();
}

function renderChecks() {
  const c = state.checks;
  const s = c.summary;
  $('#problem-count').textContent = String(c.problems.length);
  $('#problem-count').className = `badge ${s.errors ? 'error' : s.warnings ? 'warning' : 'ok'}`;
  $('#checks-summary').replaceChildren(
    h('strong', { class: s.errors ? 'bad' : 'good' }, s.errors ? `${s.errors} 个错误，应用时会被拒绝` : '没有错误'),
    `；${s.warnings} 个警告。`, h('br'),
    `${s.cells} 个网格，${s.cells_in_range} 个户数在 ${RANGE[0]}–${RANGE[1]} 范围内；共 ${s.households} 户、${s.buildings} 栋楼。`, h('br'),
    `相对现行网格调整 ${s.households_moved} 户（${s.buildings_moved} 栋）；平均紧凑度 ${s.polsby_popper_mean ?? '—'}。`,
    h('span', { class: 'meta' }, ` 检查用时 ${c.elapsed_ms} 毫秒`));
  $('#problems').replaceChildren(...plural(c.problems, (p, index) => h('li', {
    tabindex: 0, class: `problem ${p.severity}${state.problem === index ? ' selected' : ''}`, dataset: { index, code: p.code },
    onclick: () => pickProblem(index), onkeydown: (e) => { if (e.key === 'Enter') pickProblem(index); },
  }, h('span', { class: `sev ${p.severity}` }, p.severity === 'error' ? '错误' : '警告'), ' ', p.message,
  p.area_m2 ? h('span', { class: 'meta' }, `（${p.area_m2} 平方米）`) : null), '没有发现问题'));
}

function pickProblem(index) {
  state.problem = index;
  const p = state.checks.problems[index];
  drawProblems();
  for (const li of $$('#problems li')) li.classList.toggle('selected', li.dataset.index === String(index));
  if (p.cells.length) { state.selected = p.cells.filter((c) => state.cells.has(c)).slice(0, 2); drawSelection(); }
  fitTo(bboxOfGeometry(p.geometry), 18);
}

function renderCellsTable() {
  $('#cells-range').textContent = `每个网格应有 ${RANGE[0]}–${RANGE[1]} 户；偏差为超出范围的户数（少为负，多为正）。点击一行在地图上选中该网格。`;
  const rows = state.checks.cells.map((c) => h('tr', {
    dataset: { code: c.code }, class: state.selected.includes(c.code) ? 'selected' : '',
    onclick: (e) => { if (e.target.type !== 'checkbox') selectCell(c.code, { zoom: true }); },
  },
  h('td', {}, c.name, c.new ? h('span', { class: 'tag' }, '新') : null, h('div', { class: 'meta' }, c.code)),
  h('td', { class: 'num' }, String(c.households)),
  h('td', { class: `num ${c.deviation ? 'bad' : 'good'}` }, c.deviation ? signed(c.deviation) : '0'),
  h('td', { class: 'num' }, String(c.buildings)),
  h('td', { class: 'num' }, c.polsby_popper === null ? '—' : c.polsby_popper.toFixed(2)),
  h('td', { class: c.workers ? '' : 'bad' }, c.workers ? `${c.workers} 名` : '无'),
  h('td', {}, h('input', {
    type: 'checkbox', checked: c.locked, disabled: !editable(), 'aria-label': `锁定 ${c.code}`,
    onchange: (e) => edit(e.target.checked ? 'lock' : 'unlock', { code: c.code }),
  }))));
  $('#cells tbody').replaceChildren(...rows);
}

// After every edit, undo and redo: the changed cells, the cursor, the checks.
function applyAnswer(answer) {
  Object.assign(state.plan, answer.plan);
  for (const [code, feature] of Object.entries(answer.changed)) {
    if (feature) {
      state.cells.set(code, feature);
      state.names.set(code, feature.properties.name);
    } else state.cells.delete(code);
  }
  state.selected = state.selected.filter((c) => state.cells.has(c));
  state.problem = null;
  clearPreview();
  setChecks(answer.checks);
  renderTools();
  if (state.tab === 'log') loadLog();
}

async function edit(kind, payload) {
  if (!editable() || state.busy) return false;
  setBusy(true);
  try {
    const answer = await api(`${PLANS}${state.plan.id}/edits/`, { method: 'POST', body: { kind, payload, cursor: state.plan.cursor } });
    applyAnswer(answer);
    hint(`已${answer.edit.summary}。检查：${answer.checks.summary.errors} 个错误，${answer.checks.summary.warnings} 个警告。`, 'ok');
    return true;
  } catch (err) {
    await editRefused(err);
    return false;
  } finally {
    setBusy(false);
  }
}

async function replay(undo) {
  if (!editable() || state.busy) return;
  if (undo ? !state.plan.can_undo : !state.plan.can_redo) return;
  cancelSketch();
  setBusy(true);
  try {
    const answer = await api(`${PLANS}${state.plan.id}/${undo ? 'undo' : 'redo'}/`, { method: 'POST', body: { cursor: state.plan.cursor } });
    applyAnswer(answer);
    hint(`已${undo ? '撤销' : '重做'}：${answer.edit.summary}`, 'ok');
  } catch (err) {
    await editRefused(err);
  } finally {
    setBusy(false);
  }
}

async function editRefused(err) {
  if (err.code === 'plan_edit_conflict' || err.code === 'plan_not_draft') {
    hint(err.code === 'plan_edit_conflict' ? '此草稿已在别处（另一窗口或另一位规划人员）修改，已重新载入最新状态，请再操作一次。' : `此方案已不是草稿，不能修改：${err.message}`, 'error');
    await openPlan(state.plan.id);
    await loadPlans();
    return;
  }
  const cells = (err.body.cells || []).filter((c) => state.cells.has(c));
  if (cells.length) { state.selected = cells.slice(0, 2); drawSelection(); }
  if (state.checks) renderCellsTable(); // a lock box ticked for a refused edit goes back
  hint(`未执行：${err.message}`, 'error');
}

function setBusy(busy) {
  state.busy = busy;
  document.body.classList.toggle('busy', busy);
  renderTools();
}

// --------------------------------------------------------------------------------------------
// Tools
// --------------------------------------------------------------------------------------------

const TOOL_HINTS = {
  select: '单击网格选中它；按住 Shift 再点一个相邻网格，可用“合并网格”合并。',
  reshape: '单击要调整的网格，然后拖动顶点；拖动边上的小点可加顶点，右键顶点可删除；回车或“完成”提交，Esc 取消。',
  draw: '在地图上逐点单击画新网格，双击或回车完成，退格删去上一点，Esc 取消。与现有网格重叠的部分由它们让出。',
  split: '先单击要拆分的网格，再画一条从一侧边界穿到另一侧的线，双击或回车完成。',
  merge: '先单击要保留的网格，再单击要并入的相邻网格（并入的网格应用后撤销）。',
  move: '先单击楼栋，再单击它要调整到的相邻网格。',
  lock: '单击网格锁定或解锁；锁定的网格不会被任何编辑改动。',
};

function renderTools() {
  const can = editable() && !state.busy;
  for (const b of $$('[data-tool]')) {
    b.disabled = !editable();
    b.setAttribute('aria-pressed', String(b.dataset.tool === state.tool));
  }
  $('#undo').disabled = !can || !state.plan.can_undo;
  $('#redo').disabled = !can || !state.plan.can_redo;
  $('#apply').disabled = !can;
  $('#new-today').disabled = state.busy;
}

function setTool(tool) {
  if (!editable()) return;
  cancelSketch();
  state.tool = tool;
  state.building = null;
  if (tool === 'merge' && state.selected.length === 2) {
    const [keep, other] = state.selected;
    edit('merge', { code: keep, other });
    state.tool = 'select';
  } else if (tool === 'split' && state.selected.length) {
    state.selected = state.selected.slice(0, 1);
    sketch = { kind: 'line', cell: state.selected[0], points: [] };
  } else if (tool === 'reshape' && state.selected.length) {
    startReshape(state.selected[0]);
  } else if (tool === 'merge') {
    state.selected = state.selected.slice(0, 1); // a picked cell is the one kept
  } else if (tool === 'draw') {
    state.selected = [];
    sketch = { kind: 'polygon', points: [] };
  } else if (tool !== 'select') {
    state.selected = [];
  }
  drawSelection();
  renderTools();
  toolHint();
}

function toolHint() {
  if (!editable()) return;
  const actions = [];
  if (sketch) {
    actions.push(h('button', { type: 'button', id: 'sketch-done', onclick: finishSketch }, '完成'));
    actions.push(h('button', { type: 'button', onclick: () => setTool(state.tool) }, '重来'));
    actions.push(h('button', { type: 'button', onclick: () => { cancelSketch(); state.selected = []; setTool('select'); } }, '取消'));
  }
  let text = TOOL_HINTS[state.tool];
  if (state.tool === 'split' && sketch) text = `拆分 ${state.names.get(sketch.cell) || sketch.cell}：画一条从一侧边界穿到另一侧的线，双击或回车完成。`;
  if (state.tool === 'move' && state.building) text = `楼栋 ${state.building.name || state.building.code}：单击它要调整到的相邻网格。`;
  if (state.tool === 'merge' && state.selected.length === 1) text = `保留 ${state.names.get(state.selected[0]) || state.selected[0]}：单击要并入的相邻网格。`;
  if (state.tool === 'reshape' && sketch) text = `调整 ${state.names.get(sketch.cell) || sketch.cell}：${TOOL_HINTS.reshape.slice(TOOL_HINTS.reshape.indexOf('拖动顶点'))}`;
  hint(text, 'tool', ...actions);
}

function cellAt(point) {
  const hit = map.queryRenderedFeatures(point, { layers: ['cells-fill'] })[0];
  return hit ? hit.properties.code : null;
}

function selectCell(code, { add = false, zoom = false } = {}) {
  if (!code) state.selected = [];
  else if (add && state.selected.length && !state.selected.includes(code)) state.selected = [state.selected[0], code];
  else state.selected = [code];
  drawSelection();
  for (const row of $$('#cells tbody tr')) row.classList.toggle('selected', state.selected.includes(row.dataset.code));
  if (code) {
    const f = state.figures.get(code);
    const name = state.names.get(code) || code;
    const text = f ? `${name}（${code}）：${f.households} 户${f.deviation ? `，偏差 ${signed(f.deviation)}` : '，在范围内'}；${f.buildings} 栋楼；网格员 ${f.workers} 名${f.locked ? '；已锁定' : ''}` : `${name}（${code}）`;
    hint(state.selected.length === 2 ? `已选两个网格：${state.selected.map((c) => state.names.get(c) || c).join('、')}，可“合并网格”（保留第一个）。` : text);
    if (zoom && state.cells.has(code)) fitTo(bboxOfGeometry(state.cells.get(code).geometry));
  }
}

// --- sketches: a polygon or a line by clicks, or a cell's vertices being moved ---

let sketch = null; // {kind: 'polygon'|'line'|'reshape', points, cell?, geometry?}
let pointer = null; // the mouse position while sketching (rubber band)

function cancelSketch() {
  sketch = null;
  pointer = null;
  if (map.getSource('sketch')) {
    map.getSource('sketch').setData(EMPTY);
    map.getSource('handles').setData(EMPTY);
  }
}

// Snap to a vertex of another cell (or of the community's outline) within a few pixels.
const SNAP_PX = 10;
function snapped(lngLat, skipCell = null) {
  const at = map.project(lngLat);
  let best = null;
  let bestD = SNAP_PX * SNAP_PX;
  const visit = (geometry) => {
    for (const poly of polygonsOf(geometry)) {
      for (const ring of poly) {
        for (const c of ring) {
          const q = map.project(c);
          const d = (q.x - at.x) ** 2 + (q.y - at.y) ** 2;
          if (d < bestD) { bestD = d; best = c; }
        }
      }
    }
  };
  for (const [code, f] of state.cells) if (code !== skipCell) visit(f.geometry);
  visit(COMMUNITY.outline);
  return best ? [best[0], best[1]] : [lngLat.lng, lngLat.lat];
}

function drawSketch() {
  if (!sketch) return;
  const features = [];
  if (sketch.kind === 'reshape') {
    features.push({ type: 'Feature', geometry: sketch.geometry, properties: {} });
    map.getSource('sketch').setData({ type: 'FeatureCollection', features });
    drawHandles();
    return;
  }
  const pts = pointer ? [...sketch.points, pointer] : sketch.points;
  if (sketch.kind === 'polygon' && pts.length >= 3) {
    features.push({ type: 'Feature', geometry: { type: 'Polygon', coordinates: [[...pts, pts[0]]] }, properties: {} });
  } else if (pts.length >= 2) {
    features.push({ type: 'Feature', geometry: { type: 'LineString', coordinates: pts }, properties: {} });
  }
  for (const p of sketch.points) features.push({ type: 'Feature', geometry: { type: 'Point', coordinates: p }, properties: {} });
  map.getSource('sketch').setData({ type: 'FeatureCollection', features });
}

async function finishSketch() {
  if (!sketch || state.busy) return;
  const s = sketch;
  if (s.kind === 'polygon') {
    if (s.points.length < 3) { hint('新网格至少需要三个点', 'error'); return; }
    const done = await edit('draw', { geometry: { type: 'Polygon', coordinates: [[...s.points, s.points[0]]] } });
    if (done) { cancelSketch(); state.tool = 'select'; renderTools(); }
  } else if (s.kind === 'line') {
    if (s.points.length < 2) { hint('分割线至少需要两个点', 'error'); return; }
    const done = await edit('split', { code: s.cell, line: { type: 'LineString', coordinates: s.points } });
    if (done) { cancelSketch(); state.tool = 'select'; state.selected = []; drawSelection(); renderTools(); }
  } else if (s.kind === 'reshape') {
    const done = await edit('reshape', { code: s.cell, geometry: s.geometry });
    if (done) { cancelSketch(); state.tool = 'select'; state.selected = []; drawSelection(); renderTools(); }
  }
}

// Reshape: every ring's vertices become handles (the closing vertex is the first one).
function startReshape(code) {
  const feature = state.cells.get(code);
  if (!feature) return;
  if (feature.properties.locked) { hint(`网格 ${code} 已锁定，先解锁再调整`, 'error'); return; }
  state.selected = [code];
  sketch = { kind: 'reshape', cell: code, geometry: JSON.parse(JSON.stringify(feature.geometry)) };
  drawSelection();
  drawSketch();
  toolHint();
}

function ringsOf(geometry) {
  return geometry.type === 'Polygon' ? [geometry.coordinates] : geometry.coordinates;
}

function drawHandles() {
  const features = [];
  ringsOf(sketch.geometry).forEach((poly, p) => poly.forEach((ring, r) => {
    const n = ring.length - 1;
    for (let v = 0; v < n; v++) {
      features.push({ type: 'Feature', geometry: { type: 'Point', coordinates: ring[v] }, properties: { p, r, v } });
      const next = ring[v + 1];
      features.push({ type: 'Feature', geometry: { type: 'Point', coordinates: [(ring[v][0] + next[0]) / 2, (ring[v][1] + next[1]) / 2] }, properties: { p, r, v, mid: true } });
    }
  }));
  map.getSource('handles').setData({ type: 'FeatureCollection', features });
}

function moveVertex(p, r, v, coord) {
  const ring = ringsOf(sketch.geometry)[p][r];
  ring[v] = coord;
  if (v === 0) ring[ring.length - 1] = coord;
}

let dragging = null;
map.on('mousedown', 'handles-vertex', (e) => startDrag(e, false));
map.on('mousedown', 'handles-mid', (e) => startDrag(e, true));
function startDrag(e, mid) {
  if (!sketch || sketch.kind !== 'reshape' || e.originalEvent.button !== 0) return;
  e.preventDefault(); // no map pan while a vertex moves
  const hits = map.queryRenderedFeatures(e.point, { layers: ['handles-vertex'] });
  const f = (mid && !hits.length ? e.features[0] : hits[0] || e.features[0]);
  let { p, r, v } = f.properties;
  if (mid && !hits.length) {
    const ring = ringsOf(sketch.geometry)[p][r];
    ring.splice(v + 1, 0, [e.lngLat.lng, e.lngLat.lat]);
    v += 1;
  }
  dragging = { p, r, v };
  map.getCanvas().style.cursor = 'grabbing';
}
map.on('mousemove', (e) => {
  if (dragging) {
    moveVertex(dragging.p, dragging.r, dragging.v, [e.lngLat.lng, e.lngLat.lat]);
    drawSketch();
    return;
  }
  if (sketch && (sketch.kind === 'polygon' || (sketch.kind === 'line' && sketch.cell))) {
    pointer = [e.lngLat.lng, e.lngLat.lat];
    drawSketch();
  }
});
map.on('mouseup', (e) => {
  if (!dragging) return;
  moveVertex(dragging.p, dragging.r, dragging.v, snapped(e.lngLat, sketch.cell));
  dragging = null;
  map.getCanvas().style.cursor = '';
  drawSketch();
});
map.on('contextmenu', 'handles-vertex', (e) => {
  if (!sketch || sketch.kind !== 'reshape') return;
  e.preventDefault();
  const { p, r, v } = e.features[0].properties;
  const ring = ringsOf(sketch.geometry)[p][r];
  if (ring.length <= 4) { hint('一个环至少要有三个顶点', 'error'); return; }
  ring.splice(v, 1);
  if (v === 0) ring[ring.length - 1] = ring[0];
  drawSketch();
});

// --- clicks on the map, by tool ---

map.on('click', async (e) => {
  if (!editable() || state.busy) {
    selectCell(cellAt(e.point));
    return;
  }
  const code = cellAt(e.point);
  switch (state.tool) {
    case 'select':
      selectCell(code, { add: e.originalEvent.shiftKey });
      break;
    case 'lock':
      if (code) await edit(state.cells.get(code).properties.locked ? 'unlock' : 'lock', { code });
      break;
    case 'merge':
      if (!code) break;
      if (!state.selected.length) { selectCell(code); toolHint(); break; }
      if (code === state.selected[0]) break;
      state.selected = [state.selected[0], code];
      drawSelection();
      if (await edit('merge', { code: state.selected[0], other: code })) { state.selected = [state.selected[0]]; setTool('select'); }
      else { state.selected = []; drawSelection(); }
      break;
    case 'move': {
      if (!state.building) {
        const b = map.queryRenderedFeatures(e.point, { layers: ['buildings-fill'] })[0];
        if (!b) { hint('请单击一栋楼（放大地图后楼栋才会显示）', 'error'); break; }
        state.building = { code: b.properties.code, name: b.properties.name };
        drawSelection();
        toolHint();
        break;
      }
      if (!code) break;
      const building = state.building;
      state.building = null;
      drawSelection();
      await edit('move_building', { building: building.code, to: code });
      break;
    }
    case 'reshape':
      if (!sketch && code) startReshape(code);
      break;
    case 'split':
      if (!sketch || !sketch.cell) {
        if (!code) break;
        state.selected = [code];
        drawSelection();
        sketch = { kind: 'line', cell: code, points: [] };
        toolHint();
        break;
      }
      addPoint(e);
      break;
    case 'draw':
      if (!sketch) sketch = { kind: 'polygon', points: [] };
      addPoint(e);
      break;
    default:
      break;
  }
});

function addPoint(e) {
  const point = snapped(e.lngLat);
  const last = sketch.points[sketch.points.length - 1];
  // The two clicks of a double click land on the same spot: one vertex.
  if (last) {
    const a = map.project(last); const b = map.project(point);
    if ((a.x - b.x) ** 2 + (a.y - b.y) ** 2 < 16) return;
  }
  sketch.points.push(point);
  drawSketch();
  toolHint();
}

map.on('dblclick', (e) => {
  if (sketch && (sketch.kind === 'polygon' || sketch.kind === 'line')) {
    e.preventDefault();
    finishSketch();
  }
});

document.addEventListener('keydown', (e) => {
  if (e.target.closest('input, textarea, select, dialog')) return;
  const key = e.key.toLowerCase();
  if ((e.ctrlKey || e.metaKey) && key === 'z') { e.preventDefault(); replay(!e.shiftKey); return; }
  if ((e.ctrlKey || e.metaKey) && key === 'y') { e.preventDefault(); replay(false); return; }
  if (!sketch) return;
  // Esc drops the sketch and the cell it was for: the tool starts again from picking a cell.
  if (e.key === 'Escape') { cancelSketch(); state.selected = []; setTool(state.tool); }
  else if (e.key === 'Enter') finishSketch();
  else if (e.key === 'Backspace' && sketch.points) { sketch.points.pop(); drawSketch(); }
});

for (const b of $$('[data-tool]')) b.addEventListener('click', () => setTool(b.dataset.tool));
$('#undo').addEventListener('click', () => replay(true));
$('#redo').addEventListener('click', () => replay(false));

// --------------------------------------------------------------------------------------------
// Preview, before/after, apply, edit log
// --------------------------------------------------------------------------------------------

function clearPreview() {
  state.preview = null;
  $('#preview').replaceChildren(h('p', { class: 'meta' }, state.plan ? '打开此页或点“刷新预览”计算影响。' : ''));
  $('#view-toggle').hidden = true;
  setView('after');
  map.setFilter('buildings-moved', ['in', ['get', 'code'], ['literal', []]]);
  renderLegend();
}

function setView(view) {
  state.view = view;
  for (const r of $$('[name="view"]')) r.checked = r.value === view;
  const before = view === 'before';
  for (const id of ['cells-fill', 'cells-locked', 'cells-line', 'cells-label', 'cells-selected', 'problems-fill', 'problems-line', 'problems-point', 'problem-picked']) {
    map.setLayoutProperty(id, 'visibility', before ? 'none' : 'visible');
  }
  for (const id of ['before-line', 'before-label']) map.setLayoutProperty(id, 'visibility', before ? 'visible' : 'none');
}
for (const r of $$('[name="view"]')) r.addEventListener('change', () => setView(r.value));

const cellName = (code) => (code ? `${state.names.get(code) || ''}（…${code.slice(-3)}）` : '（无网格）');
const names = (people) => (people && people.length ? people.map((w) => w.name).join('、') : '无');

async function loadPreview() {
  if (!state.plan) return;
  const id = state.plan.id;
  const out = $('#preview');
  out.replaceChildren(h('p', { class: 'meta' }, '正在试算影响（含覆盖缺口试算）…'));
  let p;
  try {
    p = await api(`${PLANS}${id}/preview/`);
  } catch (err) {
    out.replaceChildren(h('p', { class: 'alert' }, `预览失败：${err.message}`));
    return;
  }
  if (!state.plan || state.plan.id !== id) return;
  state.preview = p;
  for (const f of p.before.features) if (!state.names.has(f.properties.code)) state.names.set(f.properties.code, '');
  // Today's cells, labelled by name (the preview names them by code only).
  map.getSource('before').setData({
    type: 'FeatureCollection',
    features: p.before.features.map((f) => ({ ...f, properties: { ...f.properties, label: `${state.names.get(f.properties.code) || ''}\n…${f.properties.code.slice(-3)}` } })),
  });
  map.setFilter('buildings-moved', ['in', ['get', 'code'], ['literal', p.buildings.map((b) => b.code)]]);
  $('#view-toggle').hidden = false;
  renderLegend();
  const s = p.summary;
  const section = (title, count, ...content) => h('section', { class: 'preview-part' }, h('h3', {}, title, ' ', h('span', { class: 'badge' }, String(count))), ...content);
  const list = (items, render, empty) => h('ul', { class: 'plain' }, ...plural(items, render, empty));
  fill(out,
    p.stale ? h('p', { class: 'alert' }, STALE_MESSAGE) : null,
    h('table', { class: 'figures' }, h('tbody', {},
      ...[['换网格的楼栋', s.buildings_moved], ['涉及户数', s.households_moved], ['涉及党员（按居住地）', s.members_moved],
        ['涉及两新组织', s.enterprises_moved], ['涉及楼栋党小组', `${s.groups_concerned}（其中被拆开 ${s.groups_split}）`],
        ['随楼栋换网格的现存缺口', s.open_gaps_moving], ['新建网格', s.cells_created], ['撤销网格', s.cells_retired], ['边界变化的网格', s.cells_reshaped]]
        .map(([k, v]) => h('tr', {}, h('th', {}, k), h('td', { class: 'num' }, String(v)))))),
    section('谁从哪个网格到哪个网格', p.flows.length, p.flows.length ? h('table', { class: 'list flows' },
      h('thead', {}, h('tr', {}, h('th', {}, '从'), h('th', {}, '到'), h('th', { class: 'num' }, '楼栋'), h('th', { class: 'num' }, '户'), h('th', { class: 'num' }, '党员'), h('th', {}, '网格员交接'))),
      h('tbody', {}, ...p.flows.map((f) => h('tr', {},
        h('td', {}, cellName(f.from)), h('td', {}, cellName(f.to)),
        h('td', { class: 'num' }, String(f.buildings)), h('td', { class: 'num' }, String(f.households)), h('td', { class: 'num' }, String(f.members)),
        h('td', { class: 'meta' }, `${names(f.workers_from)} → ${names(f.workers_to)}`))))) : h('p', { class: 'meta' }, '没有楼栋换网格')),
    h('details', {}, h('summary', {}, `换网格的楼栋（${p.buildings.length}）`),
      list(p.buildings, (b) => h('li', {}, h('strong', {}, b.name || b.code), ` ${b.households} 户，党员 ${b.members} 名：${cellName(b.from)} → ${cellName(b.to)}`))),
    section('网格党支部', p.branches.length, list(p.branches, (b) => h('li', { class: b.status === 'loses_grid' ? 'bad' : '' },
      h('strong', {}, b.name), ' ', b.status === 'loses_grid' ? `失去网格 ${cellName(b.cell)}，应用后需重新挂靠` : `网格 ${cellName(b.cell)} 获得 ${b.takes_from.map(cellName).join('、')} 的区域`), '没有支部失去或获得网格'),
    p.cells_without_branch.length ? h('p', { class: 'meta' }, `尚无网格党支部的保留网格：${p.cells_without_branch.map(cellName).join('、')}`) : null),
    section('撤销的网格', p.retired.length, list(p.retired, (r) => h('li', {}, `${cellName(r.code)} 的区域并入 ${r.area_goes_to.map(cellName).join('、') || '—'}`), '没有撤销的网格')),
    section('失去网格的网格员', p.workers.length, list(p.workers, (w) => h('li', {}, `${w.name}：${cellName(w.cell)} 撤销，区域并入 ${w.area_goes_to.map(cellName).join('、') || '—'}`), '无')),
    section('楼栋党小组', p.groups.length, list(p.groups, (g) => h('li', { class: g.split ? 'bad' : '' }, h('strong', {}, g.name), g.split ? ' 将被拆到不同网格：' : '：',
      g.buildings.map((b) => `${b.building} ${cellName(b.from)}→${cellName(b.to)}`).join('；')), '无')),
    section('两新组织', p.enterprises.length, list(p.enterprises, (e) => h('li', {}, `${e.name}：${cellName(e.from)} → ${cellName(e.to)}`), '无')),
    section('随之换网格的现存缺口', p.open_gaps_moving.length, list(p.open_gaps_moving, (g) => h('li', {}, `${g.subject_label || g.subject_code}：${cellName(g.from)} → ${cellName(g.to)}`), '无')),
    section('应用后将新增的覆盖缺口', p.gaps.opened.length, list(p.gaps.opened, (g) => h('li', { class: 'bad' }, h('strong', {}, g.kind_label), ' ', g.subject_label || g.subject_code || '', g.cell ? h('span', { class: 'meta' }, ` ${cellName(g.cell)}`) : null), '不新增缺口')),
    section('应用后将消除的覆盖缺口', p.gaps.resolved.length, list(p.gaps.resolved, (g) => h('li', { class: 'good' }, h('strong', {}, g.kind_label), ' ', g.subject_label || g.subject_code || ''), '不消除缺口')),
  );
}
$('#preview-load').addEventListener('click', loadPreview);

async function loadLog() {
  if (!state.plan) return;
  const ol = $('#edit-log');
  try {
    const edits = await api(`${PLANS}${state.plan.id}/edits/`);
    ol.replaceChildren(...plural(edits, (e) => h('li', { class: e.seq > state.plan.cursor ? 'undone' : '' },
      h('strong', {}, `${e.seq}. ${e.kind_display}`), ' ', e.summary, e.seq > state.plan.cursor ? '（已撤销，可重做）' : '',
      h('div', { class: 'meta' }, `${e.created_by_name || '—'} ${localTime(e.created_at)}`)), '还没有编辑'));
  } catch (err) {
    ol.replaceChildren(h('li', { class: 'meta' }, `记录加载失败：${err.message}`));
  }
}

// What an apply did (the apply's answer, or an applied plan's `result`).
function renderApplied(result) {
  $('#apply-result').replaceChildren(h('div', { class: 'done' },
    h('strong', {}, `已应用，自 ${result.valid_from} 起生效。`),
    h('p', {}, `新建网格 ${result.created.length} 个、撤销 ${result.retired.length} 个、重绘边界 ${result.redrawn} 个，${result.buildings_moved} 栋楼变更网格。`),
    result.branches_without_grid.length ? h('p', { class: 'bad' }, `失去网格的网格党支部（需重新挂靠）：${result.branches_without_grid.map((b) => b.name).join('、')}`) : null,
    result.workers_on_retired_cells.length ? h('p', { class: 'bad' }, `所在网格被撤销的网格员：${result.workers_on_retired_cells.map((w) => w.name).join('、')}`) : null,
    ...(result.warnings || []).map((w) => h('p', { class: 'meta' }, w.message))));
}

$('#valid-from').value = CONFIG.today;
$('#apply-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  if (!editable()) return;
  const validFrom = $('#valid-from').value || CONFIG.today;
  const reason = $('#reason').value.trim();
  if (!reason) { $('#reason').focus(); return; }
  const s = state.checks ? state.checks.summary : null;
  const p = state.preview ? state.preview.summary : null;
  const body = [
    h('p', {}, `自 ${validFrom} 起，“${state.plan.name}”的网格成为${COMMUNITY.name}的现行网格：楼栋及其上的党员、党组织、两新组织随之重新归属，覆盖缺口随后重算。`),
    p ? h('p', {}, `影响：${p.buildings_moved} 栋楼、${p.households_moved} 户、${p.members_moved} 名党员换网格；新建 ${p.cells_created} 个、撤销 ${p.cells_retired} 个网格。`) : h('p', { class: 'meta' }, '（尚未查看影响预览）'),
    s && s.errors ? h('p', { class: 'alert' }, `检查还有 ${s.errors} 个错误，应用会被拒绝。`) : null,
    h('p', {}, `事由：${reason}`),
  ];
  const ok = await ask({ title: '确认应用方案', body, ok: '确认应用', danger: true });
  if (ok === null) return;
  setBusy(true);
  const out = $('#apply-result');
  try {
    const result = await api(`${PLANS}${state.plan.id}/apply/`, { method: 'POST', body: { valid_from: validFrom, reason } });
    renderApplied(result);
    hint(`方案已应用，自 ${result.valid_from} 起生效`, 'ok');
    await loadPlans();
    await openPlan(state.plan.id);
  } catch (err) {
    if (err.code === 'plan_stale') {
      out.replaceChildren(h('p', { class: 'alert' }, '未应用：另一个方案已先应用到本社区，此草稿所依据的网格已经变化。', h('br'),
        '为避免覆盖他人的调整，请从现行网格新建草稿重新调整（可对照本草稿），或在已应用的方案上使用“恢复”。'));
      state.plan.stale = true;
      setPlan(state.plan);
      loadPlans();
    } else if (err.code === 'plan_not_draft') {
      out.replaceChildren(h('p', { class: 'alert' }, `未应用：${err.message}`));
      await openPlan(state.plan.id);
    } else {
      out.replaceChildren(h('p', { class: 'alert' }, `未应用：${err.message}`));
    }
  } finally {
    setBusy(false);
  }
});

// --------------------------------------------------------------------------------------------
// Tabs, community switch, start
// --------------------------------------------------------------------------------------------

function selectTab(tab) {
  state.tab = TABS.includes(tab) ? tab : 'checks';
  for (const b of $$('[data-tab]')) b.setAttribute('aria-selected', String(b.dataset.tab === state.tab));
  for (const s of $$('.tab')) s.hidden = s.id !== `tab-${state.tab}`;
  if (state.tab === 'preview' && state.plan && !state.preview) loadPreview();
  if (state.tab === 'log') loadLog();
  saveState();
}
for (const b of $$('[data-tab]')) b.addEventListener('click', () => selectTab(b.dataset.tab));

$('#community').addEventListener('change', (e) => {
  location.href = CONFIG.page_url.replace('{code}', e.target.value);
});
$('#new-today').addEventListener('click', createToday);
if ($('#new-suggest')) $('#new-suggest').addEventListener('click', createSuggested);
$('#new-upload').addEventListener('click', openUpload);

// For the browser tests: the map and the state.
window.planning = { map, state, ready: false };

await loaded;
renderLegend();
renderTools();
selectTab(state.tab);
hint('选择一个方案打开，或新建草稿。');
await loadPlans();
const wanted = Number(query.get('plan'));
if (wanted) await openPlan(wanted);
else {
  const draft = state.plans.find((p) => p.state === 'draft');
  if (draft) await openPlan(draft.id);
}
map.once('idle', () => {
  window.planning.ready = true;
  document.body.dataset.mapReady = '1';
});
map.triggerRepaint();
