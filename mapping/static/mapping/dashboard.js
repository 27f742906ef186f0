// 街道看板: the street office's map page (mapping/templates/mapping/dashboard.html).
//
// Everything comes from this server: MapLibre GL JS from the vendor static files, vector tiles
// from /tiles/, figures from the API, all scoped by the signed-in user's reach. No request leaves
// the server: there is no `glyphs` URL in the style, so MapLibre draws every label (Chinese,
// digits, Latin) from the browser's own fonts (TinySDF), and the basemap is drawn only when the
// server names an intranet tile server.
//
// The view's state (unit, layers, indicator, visit period, tab, gap filters, map position) lives
// in the query string, so a view can be bookmarked and sent; the export links carry it too.

import { $, $$, h } from '../ops/dom.js';
import { bboxOfGeometry } from '../ops/geometry.js';

const CONFIG = JSON.parse(document.getElementById('dashboard-config').textContent);
const maplibregl = await import(document.body.dataset.maplibre);
const timings = { maplibreLoaded: Math.round(performance.now()) };

// --------------------------------------------------------------------------------------------
// Small helpers
// --------------------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `请求失败（${status}）`);
    this.status = status;
    this.code = body && body.code;
  }
}

async function api(path, params = {}) {
  const url = new URL(path, location.origin);
  for (const [key, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== '') url.searchParams.set(key, value);
  }
  const response = await fetch(url, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
  let body = null;
  try { body = await response.json(); } catch { body = null; }
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

const TODAY = new Date(`${CONFIG.today}T00:00:00`);
function daysBetween(isoDay) {
  const day = new Date(`${isoDay.slice(0, 10)}T00:00:00`);
  return Math.round((TODAY - day) / 86400000);
}
function isoDaysAgo(days) {
  const d = new Date(TODAY);
  d.setDate(d.getDate() - days);
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
}
const percent = (v) => (v === null || v === undefined ? '—' : `${(v * 100).toFixed(1)}%`);
const localTime = (iso) => new Date(iso).toLocaleString('zh-CN', { hour12: false, timeZone: 'Asia/Shanghai' });

function status(text) {
  $('#map-status').textContent = text || '';
}

// --------------------------------------------------------------------------------------------
// State, and the query string that keeps it
// --------------------------------------------------------------------------------------------

const LAYER_GROUPS = ['grid', 'buildings', 'heat', 'checkins', 'cases', 'centres', 'outlines'];
const GAP_KINDS = CONFIG.gap_kinds.map(([kind]) => kind);
const GAP_LABELS = Object.fromEntries(CONFIG.gap_kinds);
const UNIT_TYPE_BY_LENGTH = { 9: 'street', 12: 'community', 15: 'grid_cell' };
const UNIT_LABEL = { street: '街道', community: '社区', grid_cell: '网格' };

const query = new URLSearchParams(location.search);
const listParam = (name, fallback) => (query.has(name) ? query.get(name).split(',').filter(Boolean) : fallback);
const state = {
  unit: null, // {type, code, name, bbox}
  layers: new Set(listParam('layers', ['grid', 'buildings', 'centres', 'outlines'])),
  gaps: new Set(listParam('gaps', GAP_KINDS)),
  indicator: CONFIG.shading.some(([k]) => k === query.get('ind')) ? query.get('ind') : CONFIG.shading[0][0],
  period: ['7', '30', '60', '90'].includes(query.get('period')) ? query.get('period') : String(CONFIG.visit_interval_days),
  tab: query.get('tab') || 'overview',
  gapKind: query.get('gk') || '',
  gapAge: query.get('ga') || '',
  sort: query.get('sort') || 'age',
};
const initialView = (() => {
  const parts = (query.get('map') || '').split('/').map(Number);
  return parts.length === 3 && parts.every(Number.isFinite) ? { zoom: parts[0], center: [parts[2], parts[1]] } : null;
})();

function viewQuery() {
  const q = new URLSearchParams();
  if (state.unit) q.set('unit', state.unit.code);
  q.set('layers', [...state.layers].join(','));
  if (state.gaps.size !== GAP_KINDS.length) q.set('gaps', [...state.gaps].join(','));
  q.set('ind', state.indicator);
  q.set('period', state.period);
  if (state.tab !== 'overview') q.set('tab', state.tab);
  if (state.gapKind) q.set('gk', state.gapKind);
  if (state.gapAge) q.set('ga', state.gapAge);
  if (state.sort !== 'age') q.set('sort', state.sort);
  if (map) {
    const c = map.getCenter();
    q.set('map', `${map.getZoom().toFixed(2)}/${c.lat.toFixed(5)}/${c.lng.toFixed(5)}`);
  }
  return q;
}

let saveTimer = null;
function saveState() {
  clearTimeout(saveTimer);
  saveTimer = setTimeout(() => {
    const q = viewQuery();
    history.replaceState(null, '', `${location.pathname}?${q}`);
    updateExports(q);
  }, 150);
}

function updateExports(q) {
  for (const link of $$('[data-export]')) {
    const base = CONFIG.exports[link.dataset.export];
    const offline = link.dataset.export === 'offline_map';
    // The offline map is of one community or grid (网格作战图), not of a whole street.
    const usable = !offline || (state.unit && state.unit.type !== 'street');
    link.classList.toggle('disabled', !usable);
    link.setAttribute('aria-disabled', usable ? 'false' : 'true');
    link.href = usable ? `${base}?${q}` : '#';
  }
}

// --------------------------------------------------------------------------------------------
// The map
// --------------------------------------------------------------------------------------------

const tileUrl = (layer, extra = '') =>
  new URL(CONFIG.tiles.replace('{layer}', layer), location.origin).href.replace(/%7B/g, '{').replace(/%7D/g, '}') + extra;
const visitTiles = () => tileUrl('visits', `?since=${isoDaysAgo(Number(state.period) - 1)}&until=${CONFIG.today}`);

const FONT = ['Noto Sans CJK SC', 'Noto Sans', 'sans-serif'];
const GAP_COLOURS = [
  '#d7301f', '#f16913', '#8c2d04', '#e7298a', '#7a0177', '#dd3497', '#ae017e',
  '#fd8d3c', '#b2182b', '#6a51a3', '#35978f', '#525252', '#01665e',
];
const GAP_COLOUR = Object.fromEntries(GAP_KINDS.map((k, i) => [k, GAP_COLOURS[i % GAP_COLOURS.length]]));
const BUILDING_STATUS = [
  ['members_without_group', '有党员未建党小组', '#e34a33'],
  ['not_visited', '超期未走访', '#fdae6b'],
  ['has_group', '已建楼栋党小组', '#31a354'],
  ['other', '其他', '#bdbdbd'],
];
const RATE_RAMP = [0, '#d73027', 0.5, '#fee08b', 0.8, '#a6d96a', 1, '#1a9850'];
const COUNT_RAMP = [0, '#1a9850', 1, '#fee08b', 3, '#fc8d59', 6, '#d73027'];
const NO_DATA = '#d9d9d9';

function shadingColour() {
  const ramp = state.indicator === 'open_gaps' ? COUNT_RAMP : RATE_RAMP;
  return [
    'case',
    ['==', ['typeof', ['feature-state', 'v']], 'number'],
    ['interpolate', ['linear'], ['to-number', ['feature-state', 'v'], 0], ...ramp],
    NO_DATA,
  ];
}

// A service centre's reach is a circle of `radius_m` metres: its radius in pixels doubles with
// each zoom level (Web Mercator, 512-pixel tiles, at the latitude of the reach).
function metresToPixels(latitude) {
  const metresPerPixelAtZ0 = 78271.517 * Math.cos((latitude * Math.PI) / 180);
  const radius = ['coalesce', ['get', 'radius_m'], CONFIG.centre_reach_m];
  return ['interpolate', ['exponential', 2], ['zoom'], 0, ['/', radius, metresPerPixelAtZ0], 22, ['/', ['*', radius, 2 ** 22], metresPerPixelAtZ0]];
}

const extent = CONFIG.extent || [73, 18, 135, 53];
// The layer panel covers the map's left edge: fitted views keep clear of it.
const FIT_PADDING = { top: 30, bottom: 30, left: 260, right: 40 };
const midLatitude = (extent[1] + extent[3]) / 2;

function style() {
  const vector = (layer, extra = {}) => ({ type: 'vector', tiles: [tileUrl(layer)], minzoom: 0, maxzoom: 16, ...extra });
  const sources = {
    grid: vector('grid_cells'),
    buildings: vector('buildings', { minzoom: 13, maxzoom: 17 }),
    gaps: vector('gaps', { maxzoom: 17 }),
    visits: { type: 'vector', tiles: [visitTiles()], minzoom: 0, maxzoom: 17 },
    centres: vector('service_centres'),
    communities: vector('communities'),
    streets: vector('streets'),
    checkins: { type: 'geojson', data: { type: 'FeatureCollection', features: [] } },
    // Residents' cases from /api/cases/ (a reach's list is small enough), clustered by MapLibre.
    cases: { type: 'geojson', data: { type: 'FeatureCollection', features: [] }, cluster: true, clusterRadius: 40, clusterMaxZoom: 16 },
  };
  const layers = [{ id: 'background', type: 'background', paint: { 'background-color': '#f4f1ea' } }];
  if (CONFIG.basemap) {
    sources.basemap = { type: 'raster', tiles: [CONFIG.basemap], tileSize: 256, attribution: CONFIG.basemap_attribution || '' };
    layers.push({ id: 'basemap', type: 'raster', source: 'basemap' });
  }
  const label = (id, source, sourceLayer, field, paint, layout = {}, extra = {}) => ({
    id, type: 'symbol', source, 'source-layer': sourceLayer, ...extra,
    layout: { 'text-field': field, 'text-font': FONT, 'text-size': 13, ...layout },
    paint: { 'text-color': '#222', 'text-halo-color': '#fff', 'text-halo-width': 1.5, ...paint },
  });
  layers.push(
    { id: 'grid-fill', type: 'fill', source: 'grid', 'source-layer': 'grid_cells', paint: { 'fill-color': shadingColour(), 'fill-opacity': 0.55 } },
    { id: 'communities-hit', type: 'fill', source: 'communities', 'source-layer': 'communities', filter: ['==', ['get', 'role'], 'outline'], paint: { 'fill-color': '#000', 'fill-opacity': 0 } },
    { id: 'buildings-fill', type: 'fill', source: 'buildings', 'source-layer': 'buildings', minzoom: 14,
      paint: { 'fill-color': ['match', ['get', 'status'], ...BUILDING_STATUS.slice(0, 3).flatMap(([s, , c]) => [s, c]), BUILDING_STATUS[3][2]], 'fill-opacity': 0.9, 'fill-outline-color': '#555' } },
    { id: 'grid-line', type: 'line', source: 'grid', 'source-layer': 'grid_cells', paint: { 'line-color': '#4a6fa5', 'line-width': ['interpolate', ['linear'], ['zoom'], 12, 0.5, 16, 1.5] } },
    { id: 'communities-line', type: 'line', source: 'communities', 'source-layer': 'communities', filter: ['==', ['get', 'role'], 'outline'], paint: { 'line-color': '#1f3b73', 'line-width': 2 } },
    { id: 'streets-line', type: 'line', source: 'streets', 'source-layer': 'streets', filter: ['==', ['get', 'role'], 'outline'], paint: { 'line-color': '#0b1f44', 'line-width': 3, 'line-dasharray': [3, 1.5] } },
    { id: 'heat', type: 'heatmap', source: 'visits', 'source-layer': 'visits',
      // Below z15 a feature counts the visits of a few pixels' square: four of them make a full
      // weight, so a busy compound reads dark without the whole street saturating. One purple
      // hue, apart from the red-to-green of the grid shading beneath it.
      paint: { 'heatmap-weight': ['interpolate', ['linear'], ['to-number', ['get', 'count'], 1], 0, 0, 4, 1],
        'heatmap-intensity': ['interpolate', ['linear'], ['zoom'], 10, 2, 17, 3],
        'heatmap-radius': ['interpolate', ['linear'], ['zoom'], 10, 8, 17, 24],
        'heatmap-color': ['interpolate', ['linear'], ['heatmap-density'], 0, 'rgba(140,150,198,0)', 0.15, 'rgba(158,188,218,0.55)',
          0.4, 'rgba(140,150,198,0.8)', 0.7, '#8856a7', 1, '#810f7c'],
        'heatmap-opacity': 0.85 } },
    { id: 'centres-reach', type: 'circle', source: 'centres', 'source-layer': 'service_centres',
      paint: { 'circle-radius': metresToPixels(midLatitude), 'circle-color': '#3182bd', 'circle-opacity': 0.08, 'circle-stroke-color': '#3182bd', 'circle-stroke-width': 1.5, 'circle-stroke-opacity': 0.7, 'circle-pitch-alignment': 'map' } },
  );
  for (const kind of GAP_KINDS) {
    const isKind = ['==', ['get', 'kind'], kind];
    layers.push(
      { id: `gap-${kind}-area`, type: 'fill', source: 'gaps', 'source-layer': 'gaps', filter: ['all', isKind, ['==', ['geometry-type'], 'Polygon']],
        paint: { 'fill-color': GAP_COLOUR[kind], 'fill-opacity': 0.25, 'fill-outline-color': GAP_COLOUR[kind] } },
      { id: `gap-${kind}-point`, type: 'circle', source: 'gaps', 'source-layer': 'gaps', filter: ['all', isKind, ['==', ['geometry-type'], 'Point']],
        paint: { 'circle-color': GAP_COLOUR[kind], 'circle-radius': ['interpolate', ['linear'], ['zoom'], 12, 3, 17, 7], 'circle-stroke-color': '#fff', 'circle-stroke-width': 1 } },
    );
  }
  layers.push(
    { id: 'checkins', type: 'circle', source: 'checkins', paint: { 'circle-color': '#00838f', 'circle-radius': 5, 'circle-stroke-color': '#fff', 'circle-stroke-width': 1.5 } },
    { id: 'cases-cluster', type: 'circle', source: 'cases', filter: ['has', 'point_count'], paint: { 'circle-color': '#f59e0b', 'circle-opacity': 0.8, 'circle-radius': ['step', ['get', 'point_count'], 12, 10, 16, 50, 22], 'circle-stroke-color': '#fff', 'circle-stroke-width': 1 } },
    { id: 'cases-point', type: 'circle', source: 'cases', filter: ['!', ['has', 'point_count']], paint: { 'circle-color': ['case', ['get', 'overdue'], '#b91c1c', '#2563eb'], 'circle-radius': 5, 'circle-stroke-color': '#fff', 'circle-stroke-width': 1.5 } },
    { id: 'centres-point', type: 'circle', source: 'centres', 'source-layer': 'service_centres', paint: { 'circle-color': '#08519c', 'circle-radius': 6, 'circle-stroke-color': '#fff', 'circle-stroke-width': 2 } },
    { id: 'unit-grid', type: 'line', source: 'grid', 'source-layer': 'grid_cells', filter: ['==', ['get', 'code'], ''], paint: { 'line-color': '#ff7f00', 'line-width': 4 } },
    { id: 'unit-community', type: 'line', source: 'communities', 'source-layer': 'communities', filter: ['==', ['get', 'code'], ''], paint: { 'line-color': '#ff7f00', 'line-width': 4 } },
    label('grid-label', 'grid', 'grid_cells', ['get', 'name'], { 'text-color': '#27408b' }, { 'text-size': 11 }, { minzoom: 15 }),
    label('centres-label', 'centres', 'service_centres', ['get', 'name'], { 'text-color': '#08519c' }, { 'text-size': 11, 'text-offset': [0, 1.2], 'text-anchor': 'top' }, { minzoom: 14 }),
    label('communities-label', 'communities', 'communities', ['get', 'name'], { 'text-color': '#1f3b73' }, { 'text-size': 14 }, { filter: ['==', ['get', 'role'], 'label'], maxzoom: 16 }),
    label('streets-label', 'streets', 'streets', ['get', 'name'], { 'text-color': '#0b1f44' }, { 'text-size': 17 }, { filter: ['==', ['get', 'role'], 'label'], maxzoom: 14 }),
  );
  return { version: 8, sources, layers };
}

const MAP_LAYERS = {
  grid: ['grid-fill', 'grid-line', 'grid-label'],
  buildings: ['buildings-fill'],
  heat: ['heat'],
  checkins: ['checkins'],
  cases: ['cases-cluster', 'cases-point'],
  centres: ['centres-reach', 'centres-point', 'centres-label'],
  outlines: ['communities-line', 'streets-line', 'communities-label', 'streets-label'],
};
const gapLayers = (kind) => [`gap-${kind}-area`, `gap-${kind}-point`];

let map = null;
map = new maplibregl.Map({
  container: 'map',
  style: style(),
  bounds: initialView ? undefined : extent,
  center: initialView ? initialView.center : undefined,
  zoom: initialView ? initialView.zoom : undefined,
  fitBoundsOptions: { padding: FIT_PADDING },
  maxZoom: 19,
  // Chinese from the browser's own fonts; the style has no glyph URL, so digits and Latin are
  // drawn locally too (MapLibre ≥ 5.11).
  localIdeographFontFamily: "'Noto Sans CJK SC', 'Noto Sans SC', 'Microsoft YaHei', 'PingFang SC', sans-serif",
  attributionControl: CONFIG.basemap ? { compact: true } : false,
});
map.addControl(new maplibregl.NavigationControl({ showCompass: false }), 'top-right');
map.addControl(new maplibregl.ScaleControl({ unit: 'metric' }), 'bottom-right');

const firstRender = new Promise((resolve) => map.once('idle', resolve));
const loaded = new Promise((resolve) => map.once('load', resolve));
loaded.then(() => { timings.styleLoaded = Math.round(performance.now()); });

function applyLayerVisibility() {
  for (const [group, ids] of Object.entries(MAP_LAYERS)) {
    for (const id of ids) map.setLayoutProperty(id, 'visibility', state.layers.has(group) ? 'visible' : 'none');
  }
  for (const kind of GAP_KINDS) {
    for (const id of gapLayers(kind)) map.setLayoutProperty(id, 'visibility', state.gaps.has(kind) ? 'visible' : 'none');
  }
  $('#shading').disabled = !state.layers.has('grid');
  $('#period').disabled = !state.layers.has('heat') && !state.layers.has('checkins');
  renderLegend();
}

function renderLegend() {
  const legend = $('#legend');
  legend.replaceChildren(h('h2', {}, '图例'));
  const row = (colour, text, shape = 'box') => h('div', { class: 'row' }, h('i', { class: `key ${shape}`, style: `--c:${colour}` }), text);
  if (state.layers.has('grid')) {
    const name = CONFIG.shading.find(([k]) => k === state.indicator)[1];
    const ramp = state.indicator === 'open_gaps' ? COUNT_RAMP : RATE_RAMP;
    const stops = [];
    for (let i = 0; i < ramp.length; i += 2) stops.push([ramp[i], ramp[i + 1]]);
    legend.append(
      h('h3', {}, `网格：${name}`),
      h('div', { class: 'ramp', style: `--ramp:linear-gradient(to right, ${stops.map(([, c]) => c).join(', ')})` }),
      h('div', { class: 'ramp-labels' }, ...stops.map(([v]) => h('span', {}, state.indicator === 'open_gaps' ? `${v}${v === 6 ? '+' : ''}` : `${v * 100}%`))),
      row(NO_DATA, '无数据'),
    );
  }
  if (state.layers.has('buildings')) {
    legend.append(h('h3', {}, '楼栋（放大后显示）'), ...BUILDING_STATUS.map(([, text, colour]) => row(colour, text)));
  }
  // Each gap kind's colour is beside its switch in the layer panel.
  const gaps = GAP_KINDS.filter((k) => state.gaps.has(k)).length;
  if (gaps) legend.append(row('#d7301f', `覆盖缺口：${gaps} 类（颜色见图层面板）`, 'dot'));
  if (state.layers.has('heat')) legend.append(row('#8856a7', `走访热力（近${state.period}天）`, 'heat'));
  if (state.layers.has('checkins')) legend.append(row('#00838f', `驻点签到（近${state.period}天）`, 'dot'));
  if (state.layers.has('centres')) legend.append(row('#3182bd', `党群服务中心，${CONFIG.centre_reach_m} 米服务范围`, 'ring'));
}

// --- grid cells shaded by an indicator: feature-state, set once per indicator, no tile refetch ---

let cellFigures = [];
function shadeCells() {
  const key = state.indicator;
  for (const cell of cellFigures) {
    const figure = cell.indicators[key];
    const value = key === 'open_gaps' ? figure.open : figure.value;
    map.setFeatureState({ source: 'grid', sourceLayer: 'grid_cells', id: cell.id }, { v: value });
  }
  map.setPaintProperty('grid-fill', 'fill-color', shadingColour());
  renderLegend();
}

async function loadCellFigures() {
  try {
    cellFigures = (await api('/api/indicators/grid-cells/')).results;
    shadeCells();
  } catch (err) {
    status(`网格指标加载失败：${err.message}`);
  }
}

// --- station check-ins: no tile layer exists for them; the API's GeoJSON, scoped the same way ---

async function loadCheckins() {
  if (!state.layers.has('checkins')) return;
  const params = { kind: 'check_in', since: isoDaysAgo(Number(state.period) - 1), page_size: 1000 };
  if (state.unit && state.unit.type !== 'street') params.community = state.unit.code.slice(0, 12);
  try {
    const data = await api('/api/station-contacts/', params);
    map.getSource('checkins').setData({ type: 'FeatureCollection', features: data.features });
  } catch (err) {
    status(`驻点签到加载失败：${err.message}`);
  }
}

async function loadCases() {
  if (!state.layers.has('cases')) return;
  const params = { page_size: 1000 };
  if (state.unit && state.unit.type !== 'street') params.community = state.unit.code.slice(0, 12);
  try {
    const data = await api('/api/cases/', params);
    map.getSource('cases').setData({ type: 'FeatureCollection', features: data.features });
  } catch (err) {
    status(`民情事项加载失败：${err.message}`);
  }
}

// --- popups ---

let popup = null;
function showPopup(lngLat, ...content) {
  if (popup) popup.remove();
  popup = new maplibregl.Popup({ maxWidth: '320px' }).setLngLat(lngLat).setDOMContent(h('div', { class: 'popup' }, ...content)).addTo(map);
}

function gapContent(p) {
  return h('div', { class: 'gap' },
    h('strong', { class: 'kind', style: `--c:${GAP_COLOUR[p.kind]}` }, GAP_LABELS[p.kind] || p.kind),
    h('div', {}, p.subject_label || p.subject_code || ''),
    h('div', {}, '兜底组织：', p.responsible || '（无）'),
    h('div', {}, `已存在 ${Number(p.age_days)} 天（${p.since} 发现）`),
    p.grid_code ? h('div', { class: 'meta' }, `网格 ${p.grid_code}`) : null);
}

function gapPopup(gaps, lngLat) {
  showPopup(lngLat, ...gaps.slice(0, 4).map(gapContent), gaps.length > 4 ? h('div', { class: 'meta' }, `另有 ${gaps.length - 4} 个缺口`) : null);
}

const POPUP_LAYERS = () => [
  ...GAP_KINDS.filter((k) => state.gaps.has(k)).flatMap(gapLayers),
  ...(state.layers.has('checkins') ? ['checkins'] : []),
  ...(state.layers.has('centres') ? ['centres-point'] : []),
  ...(state.layers.has('buildings') ? ['buildings-fill'] : []),
];

map.on('click', (e) => {
  const hits = map.queryRenderedFeatures(e.point, { layers: POPUP_LAYERS() });
  // Things at a point (a gap's subject, a building, a centre, a check-in) answer with a popup.
  const f = hits.find((hit) => !hit.layer.id.endsWith('-area'));
  if (f) {
    const p = f.properties;
    if (f.layer.id.startsWith('gap-')) gapPopup(hits.filter((hit) => hit.layer.id.startsWith('gap-') && !hit.layer.id.endsWith('-area')).map((hit) => hit.properties), e.lngLat);
    else if (f.layer.id === 'checkins') showPopup(e.lngLat, h('strong', {}, '驻点签到'), h('div', {}, p.reporter_name || ''), h('div', {}, localTime(p.occurred_at)), h('div', {}, p.summary || ''));
    else if (f.layer.id === 'centres-point') showPopup(e.lngLat, h('strong', {}, p.name), h('div', {}, `服务半径 ${p.radius_m || CONFIG.centre_reach_m} 米`));
    else {
      const s = BUILDING_STATUS.find(([k]) => k === p.status);
      showPopup(e.lngLat, h('strong', {}, p.name || p.code), h('div', { class: 'meta' }, p.code),
        h('div', {}, `${s ? s[1] : ''}；${p.households} 户；党员 ${p.members} 名`), h('div', {}, `最近走访：${p.last_visit || '无记录'}`));
    }
    return;
  }
  // Areas (a grid without branch, a part beyond every centre) cover whole units: the click still
  // drills down (a street's communities, a community's grid cells), and says which gaps are there.
  const areas = hits.filter((hit) => hit.layer.id.endsWith('-area')).map((hit) => hit.properties);
  if (areas.length) gapPopup(areas, e.lngLat);
  else if (popup) popup.remove();
  const depth = state.unit ? state.unit.type : 'street';
  if (depth === 'street') {
    const community = map.queryRenderedFeatures(e.point, { layers: ['communities-hit'] })[0];
    if (community) { selectUnit(community.properties.code, { fit: true }); return; }
  }
  const cell = map.queryRenderedFeatures(e.point, { layers: ['grid-fill'] })[0];
  if (cell && cell.properties.code !== state.unit?.code) selectUnit(cell.properties.code, { fit: true });
});
for (const id of ['grid-fill', 'communities-hit', 'buildings-fill', 'checkins', 'centres-point', ...GAP_KINDS.flatMap(gapLayers)]) {
  map.on('mouseenter', id, () => { map.getCanvas().style.cursor = 'pointer'; });
  map.on('mouseleave', id, () => { map.getCanvas().style.cursor = ''; });
}
map.on('moveend', saveState);

// --------------------------------------------------------------------------------------------
// The unit in view: breadcrumbs, narrowing, panels
// --------------------------------------------------------------------------------------------

const UNIT_API = { street: '/api/streets/', community: '/api/communities/', grid_cell: '/api/grid-cells/' };
const unitCache = new Map();

async function fetchUnit(code) {
  if (unitCache.has(code)) return unitCache.get(code);
  const type = UNIT_TYPE_BY_LENGTH[code.length];
  if (!type || !/^\d+$/.test(code)) throw new ApiError(404, { message: '编码无效' });
  const root = CONFIG.roots.find((r) => r.code === code);
  let unit;
  if (root) unit = { ...root };
  else {
    const feature = await api(`${UNIT_API[type]}${code}/`);
    unit = { type, code, name: feature.properties.name, bbox: bboxOfGeometry(feature.geometry) };
  }
  unitCache.set(code, unit);
  return unit;
}

// The roots are the widest units the user holds wholly; the crumbs run from the root down.
function rootOf(code) {
  return CONFIG.roots.find((r) => code.startsWith(r.code));
}

async function renderCrumbs() {
  const nav = $('#crumbs');
  nav.replaceChildren();
  if (CONFIG.roots.length > 1) {
    const select = h('select', { 'aria-label': '我的范围', onchange: (e) => selectUnit(e.target.value, { fit: true }) },
      ...CONFIG.roots.map((r) => h('option', { value: r.code }, `${UNIT_LABEL[r.type]} · ${r.name}`)));
    select.value = rootOf(state.unit.code)?.code || CONFIG.roots[0].code;
    nav.append(select);
  }
  const root = rootOf(state.unit.code);
  const codes = [9, 12, 15].filter((n) => n <= state.unit.code.length && n >= root.code.length).map((n) => state.unit.code.slice(0, n));
  for (const [i, code] of codes.entries()) {
    const unit = await fetchUnit(code).catch(() => ({ code, name: code, type: UNIT_TYPE_BY_LENGTH[code.length] }));
    if (i > 0 || CONFIG.roots.length > 1) nav.append(h('span', { class: 'sep' }, '›'));
    if (code === state.unit.code) nav.append(h('strong', { 'data-code': code }, unit.name));
    else nav.append(h('a', { href: '#', 'data-code': code, onclick: (e) => { e.preventDefault(); selectUnit(code, { fit: true }); } }, unit.name));
  }
}

function narrowMap() {
  const code = state.unit.code;
  const inUnit = (field) => ['==', ['slice', ['coalesce', ['get', field], ''], 0, code.length], code];
  map.setFilter('unit-grid', state.unit.type === 'grid_cell' ? ['==', ['get', 'code'], code] : ['==', ['get', 'code'], '']);
  map.setFilter('unit-community', state.unit.type === 'community' ? ['==', ['get', 'code'], code] : ['==', ['get', 'code'], '']);
  // Outside the unit in view the cells fade; the gaps of other units are hidden.
  map.setPaintProperty('grid-fill', 'fill-opacity', ['case', inUnit('code'), 0.6, 0.12]);
  for (const kind of GAP_KINDS) {
    for (const id of gapLayers(kind)) {
      const base = ['==', ['get', 'kind'], kind];
      const shape = ['==', ['geometry-type'], id.endsWith('-area') ? 'Polygon' : 'Point'];
      map.setFilter(id, state.unit.type === 'street' ? ['all', base, shape] : ['all', base, shape, inUnit(state.unit.type === 'grid_cell' ? 'grid_code' : 'community_code')]);
    }
  }
}

let unitToken = 0;
async function selectUnit(code, { fit = false } = {}) {
  const token = ++unitToken;
  let unit;
  try {
    unit = await fetchUnit(code);
  } catch (err) {
    // A link to a unit outside this user's reach (or gone) opens their own first unit instead.
    status(`无法打开 ${code}：${err.message}`);
    if (state.unit) return;
    unit = { ...CONFIG.roots[0] };
    fit = true;
  }
  if (token !== unitToken) return;
  state.unit = unit;
  await loaded;
  narrowMap();
  if (fit && unit.bbox) map.fitBounds(unit.bbox, { padding: FIT_PADDING, maxZoom: 17, duration: 600 });
  $('#unit-title').textContent = `${UNIT_LABEL[unit.type]} · ${unit.name}`;
  $('#unit-meta').textContent = `编码 ${unit.code}`;
  saveState();
  renderCrumbs();
  // The first map render comes first: the panels behind the tabs (hundreds of gaps and
  // organisations at street level) load once it is drawn.
  const panels = firstRender.then(() => (unit === state.unit ? Promise.all([loadGaps(unit), loadPeople(unit), loadVisits(unit), loadViolations(unit), loadCheckins(), loadCases()]) : null));
  await Promise.all([loadIndicators(unit), panels]);
}

// --- indicators and their trend ---

const INDICATOR_ROWS = [
  'household_visit_coverage', 'grid_branch_coverage', 'building_group_coverage', 'member_management_rate',
  'enterprise_org_coverage', 'enterprise_work_coverage', 'enterprise_own_org_rate', 'cadre_attendance',
];

function sparkline(values) {
  const points = values.filter((v) => v !== null && v !== undefined);
  if (points.length < 2) return h('span', { class: 'meta' }, points.length ? '仅1天' : '暂无历史');
  const min = Math.min(...points); const max = Math.max(...points);
  const span = max - min || 1;
  const w = 96; const hgt = 24;
  const xy = values
    .map((v, i) => (v === null || v === undefined ? null : `${((i / (values.length - 1)) * w).toFixed(1)},${(hgt - 2 - ((v - min) / span) * (hgt - 4)).toFixed(1)}`))
    .filter(Boolean).join(' ');
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('viewBox', `0 0 ${w} ${hgt}`);
  svg.setAttribute('class', 'spark');
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', `近${values.length}天趋势`);
  const line = document.createElementNS('http://www.w3.org/2000/svg', 'polyline');
  line.setAttribute('points', xy);
  svg.append(line);
  return svg;
}

async function loadIndicators(unit) {
  const body = $('#indicators tbody');
  const meta = $('#indicators-meta');
  body.replaceChildren(h('tr', {}, h('td', { colspan: 4, class: 'meta' }, '加载中…')));
  let data;
  try {
    data = await api('/api/indicators/', { unit: unit.code });
  } catch (err) {
    if (unit !== state.unit) return;
    meta.textContent = '';
    body.replaceChildren(h('tr', {}, h('td', { colspan: 4, class: 'meta' }, err.status === 404 ? '您的角色不能查看该单元的指标' : `指标加载失败：${err.message}`)));
    return;
  }
  if (unit !== state.unit) return;
  meta.textContent = `${data.unit.name}（${data.unit.code}） · 计算于 ${localTime(data.computed_at)} · ${data.history.length ? `趋势：近 ${data.history.length} 个每日快照` : '尚无每日快照'}`;
  meta.dataset.code = data.unit.code;
  const history = data.history;
  const rows = INDICATOR_ROWS.map((key) => {
    const f = data.indicators[key];
    const value = key === 'cadre_attendance' && f.value !== null ? `${(f.value * 100).toFixed(0)}%` : percent(f.value);
    return h('tr', { dataset: { key } },
      h('th', {}, CONFIG.indicator_names[key]),
      h('td', { class: 'num' }, value),
      h('td', { class: 'meta' }, `${f.numerator}/${f.denominator}`),
      h('td', {}, sparkline(history.map((d) => d.indicators[key]?.value ?? null))));
  });
  const gaps = data.indicators.open_gaps;
  rows.push(h('tr', { dataset: { key: 'open_gaps' } },
    h('th', {}, '未消除缺口'),
    h('td', { class: 'num' }, String(gaps.open)),
    h('td', { class: 'meta' }, gaps.median_age_days === null ? '' : `中位 ${gaps.median_age_days} 天`),
    h('td', {}, sparkline(history.map((d) => d.indicators.open_gaps?.open ?? null)))));
  rows.push(h('tr', { dataset: { key: 'visits_in_window' } },
    h('th', {}, `近${CONFIG.visit_interval_days}天走访`), h('td', { class: 'num' }, String(data.indicators.visits_in_window)), h('td'),
    h('td', {}, sparkline(history.map((d) => d.indicators.visits_in_window ?? null)))));
  body.replaceChildren(...rows);
}

// --- the gap list: sortable, filterable, each row zooms the map to its gap ---

let gapFeatures = [];
async function loadGaps(unit) {
  const param = { street: 'street', community: 'community', grid_cell: 'grid_cell' }[unit.type];
  try {
    const data = await api('/api/gaps/', { [param]: unit.code, page_size: 1000 });
    if (unit !== state.unit) return;
    gapFeatures = data.features;
    $('#gap-note').textContent = data.count > gapFeatures.length ? `共 ${data.count} 个，列出最近发现的 ${gapFeatures.length} 个` : '';
  } catch (err) {
    if (unit !== state.unit) return;
    gapFeatures = [];
    $('#gap-note').textContent = `缺口加载失败：${err.message}`;
  }
  renderGaps();
}

function renderGaps() {
  const minAge = Number(state.gapAge || 0);
  const rows = gapFeatures
    .map((f) => ({ f, p: f.properties, age: daysBetween(f.properties.since) }))
    .filter(({ p, age }) => (!state.gapKind || p.kind === state.gapKind) && age >= minAge);
  const bySort = {
    age: (a, b) => b.age - a.age,
    kind: (a, b) => a.p.kind_display.localeCompare(b.p.kind_display, 'zh-CN') || b.age - a.age,
  };
  rows.sort(bySort[state.sort] || bySort.age);
  $('#gap-count').textContent = String(rows.length);
  const body = $('#gap-list tbody');
  body.replaceChildren(...rows.map(({ f, p, age }) => h('tr', {
    tabindex: 0, dataset: { id: f.id, kind: p.kind },
    onclick: () => zoomToGap(f), onkeydown: (e) => { if (e.key === 'Enter') zoomToGap(f); },
  },
  h('td', {}, h('i', { class: 'key dot', style: `--c:${GAP_COLOUR[p.kind]}` }), p.kind_display),
  h('td', {}, p.subject_label || p.subject_code, p.grid_code ? h('div', { class: 'meta' }, p.grid_code) : null),
  h('td', {}, p.responsible_label || '—'),
  h('td', { class: 'num' }, `${age} 天`))));
  if (!rows.length) body.append(h('tr', {}, h('td', { colspan: 4, class: 'meta' }, '没有符合条件的缺口')));
  for (const b of $$('#gap-list [data-sort]')) b.classList.toggle('active', b.dataset.sort === state.sort);
}

function zoomToGap(feature) {
  const box = bboxOfGeometry(feature.geometry);
  if (!box) return;
  const centre = [(box[0] + box[2]) / 2, (box[1] + box[3]) / 2];
  if (box[2] - box[0] < 1e-4 && box[3] - box[1] < 1e-4) map.flyTo({ center: centre, zoom: 17, duration: 600 });
  else map.fitBounds(box, { padding: FIT_PADDING, maxZoom: 17, duration: 600 });
  if (!state.gaps.has(feature.properties.kind)) {
    state.gaps.add(feature.properties.kind);
    $(`[data-gap="${feature.properties.kind}"]`).checked = true;
    applyLayerVisibility();
  }
  const p = feature.properties;
  gapPopup([{ ...p, responsible: p.responsible_label, age_days: daysBetween(p.since), since: p.since.slice(0, 10) }], centre);
  for (const row of $$('#gap-list tbody tr')) row.classList.toggle('selected', row.dataset.id === String(feature.id));
}

// --- organisations, workers, cadres ---

async function loadPeople(unit) {
  const community = unit.type === 'street' ? null : unit.code.slice(0, 12);
  const list = (sel, count, items, render) => {
    $(count).textContent = String(items.length);
    $(sel).replaceChildren(...(items.length ? items.map(render) : [h('li', { class: 'meta' }, '无')]));
  };
  const safe = (p) => p.catch((err) => ({ results: [], error: err }));
  const [orgs, workers, cadres] = await Promise.all([
    safe(api('/api/organisations/', unit.type === 'street' ? { street: unit.code, page_size: 500 } : { community, page_size: 500 })),
    safe(api('/api/grid-workers/', unit.type === 'grid_cell' ? { grid: unit.code, page_size: 500 } : { community, page_size: 500 })),
    safe(community ? api('/api/stationed-cadres/', { community, date: CONFIG.today, page_size: 500 }) : api('/api/stationed-cadres/', { date: CONFIG.today, page_size: 500 })),
  ]);
  if (unit !== state.unit) return;
  let orgItems = orgs.results;
  if (unit.type === 'grid_cell') {
    // The grid's branch and the building groups under it.
    const branches = new Set(orgItems.filter((o) => o.grid_code === unit.code).map((o) => o.id));
    orgItems = orgItems.filter((o) => branches.has(o.id) || (o.parent && branches.has(o.parent.id)));
  }
  state.orgIds = new Set(orgItems.map((o) => o.id));
  list('#orgs', '#org-count', orgItems, (o) => h('li', {}, h('strong', {}, o.name), ' ', h('span', { class: 'meta' }, o.kind_display, o.weak ? ' · 软弱涣散' : '')));
  list('#workers', '#worker-count', workers.results, (w) => h('li', { class: w.active ? '' : 'inactive' },
    h('strong', {}, w.name), ' ', h('span', { class: 'meta' }, (w.grid_cells || []).map((g) => g.name || g.code).join('、'), w.active ? '' : ' · 不在岗')));
  list('#cadres', '#cadre-count', cadres.results, (c) => h('li', {}, h('strong', {}, c.name), ' ',
    h('span', { class: 'meta' }, `${c.community_name} · 每月应驻 ${c.required_days_per_month} 天`)));
  renderViolations();
}

// --- latest visits ---

async function loadVisits(unit) {
  const params = { page_size: 15 };
  if (unit.type === 'community') params.community = unit.code;
  if (unit.type === 'grid_cell') params.grid_cell = unit.code;
  const ul = $('#visits');
  try {
    const data = await api('/api/visits/', params);
    if (unit !== state.unit) return;
    ul.replaceChildren(...(data.features.length ? data.features.map(({ properties: v }) => h('li', {},
      h('strong', {}, localTime(v.occurred_at)), ' ', v.kind_display, ' · ', v.reporter_name,
      h('div', { class: 'meta' }, [v.building_code, v.household].filter(Boolean).join(' '), v.summary ? ` · ${v.summary.slice(0, 60)}` : ''))) : [h('li', { class: 'meta' }, '暂无走访记录')]));
  } catch (err) {
    ul.replaceChildren(h('li', { class: 'meta' }, `走访加载失败：${err.message}`));
  }
}

// --- organisational rule violations (/api/rules/violations/) ---

let violations = [];
async function loadViolations(unit) {
  try {
    const data = await api('/api/rules/violations/', { street: unit.code.slice(0, 9), page_size: 500 });
    if (unit !== state.unit) return;
    violations = data.results;
  } catch (err) {
    violations = [];
    $('#violations').replaceChildren(h('li', { class: 'meta' }, `规则预警加载失败：${err.message}`));
    return;
  }
  renderViolations();
}

function renderViolations() {
  // Below the street, the violations of the unit's own organisations (and of the unit itself).
  const narrow = state.unit && state.unit.type !== 'street' && state.orgIds;
  const items = narrow
    ? violations.filter((v) => state.orgIds.has(v.responsible_org_id) || (v.subject_type === 'org' && state.orgIds.has(v.subject_id)) || v.subject_name === state.unit.name)
    : violations;
  $('#rule-count').textContent = String(items.length);
  $('#violations').replaceChildren(...(items.length ? items.map((v) => h('li', {},
    h('strong', {}, v.rule_label), ' ', v.subject_name,
    h('div', {}, v.message), h('div', { class: 'meta' }, '责任组织：', v.responsible_org_name || '—'))) : [h('li', { class: 'meta' }, '没有规则预警')]));
}

// --------------------------------------------------------------------------------------------
// Search
// --------------------------------------------------------------------------------------------

let searchTimer = null;
let searchToken = 0;
$('#q').addEventListener('input', () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(runSearch, 200);
});
$('#search').addEventListener('submit', (e) => {
  e.preventDefault();
  const first = $('#search-results li button');
  if (first) first.click();
  else runSearch();
});
document.addEventListener('click', (e) => {
  if (!e.target.closest('#search')) $('#search-results').hidden = true;
});

async function runSearch() {
  const q = $('#q').value.trim();
  const ul = $('#search-results');
  if (!q) { ul.hidden = true; return; }
  const token = ++searchToken;
  let results;
  try {
    results = (await api('/api/search/', { q })).results;
  } catch (err) {
    results = [];
    ul.replaceChildren(h('li', { class: 'meta' }, err.message));
    ul.hidden = false;
    return;
  }
  if (token !== searchToken) return;
  ul.replaceChildren(...(results.length ? results.map((r) => h('li', {}, h('button', { type: 'button', onclick: () => pick(r) },
    h('span', { class: 'badge' }, r.type_display), ' ', r.label, ' ', h('span', { class: 'meta' }, [r.code, r.context].filter(Boolean).join(' · '))))) : [h('li', { class: 'meta' }, '没有找到')]));
  ul.hidden = false;
}

function pick(result) {
  $('#search-results').hidden = true;
  if (UNIT_API[result.type] && result.code) {
    unitCache.set(result.code, { type: result.type, code: result.code, name: result.label, bbox: result.bbox });
    selectUnit(result.code, { fit: true });
    return;
  }
  if (result.bbox) {
    const [w, s, e, n] = result.bbox;
    if (e - w < 1e-4 && n - s < 1e-4) map.flyTo({ center: [(w + e) / 2, (s + n) / 2], zoom: 17, duration: 600 });
    else map.fitBounds(result.bbox, { padding: FIT_PADDING, maxZoom: 17, duration: 600 });
  }
}

// --------------------------------------------------------------------------------------------
// Controls
// --------------------------------------------------------------------------------------------

function selectTab(tab) {
  state.tab = $(`[data-tab="${tab}"]`) ? tab : 'overview';
  for (const b of $$('[data-tab]')) b.setAttribute('aria-selected', String(b.dataset.tab === state.tab));
  for (const s of $$('.tab')) s.hidden = s.id !== `tab-${state.tab}`;
  saveState();
}

for (const box of $$('[data-layer]')) {
  box.checked = state.layers.has(box.dataset.layer);
  box.addEventListener('change', () => {
    if (box.checked) state.layers.add(box.dataset.layer); else state.layers.delete(box.dataset.layer);
    applyLayerVisibility();
    if (box.dataset.layer === 'checkins') loadCheckins();
    if (box.dataset.layer === 'cases') loadCases();
    saveState();
  });
}
for (const box of $$('[data-gap]')) {
  box.checked = state.gaps.has(box.dataset.gap);
  box.addEventListener('change', () => {
    if (box.checked) state.gaps.add(box.dataset.gap); else state.gaps.delete(box.dataset.gap);
    applyLayerVisibility();
    saveState();
  });
}
for (const swatch of $$('.swatch')) swatch.style.setProperty('--c', GAP_COLOUR[swatch.dataset.kind]);
for (const [id, on] of [['#gaps-all', true], ['#gaps-none', false]]) {
  $(id).addEventListener('click', (e) => {
    e.preventDefault();
    state.gaps = new Set(on ? GAP_KINDS : []);
    for (const box of $$('[data-gap]')) box.checked = on;
    applyLayerVisibility();
    saveState();
  });
}
$('#shading').value = state.indicator;
$('#shading').addEventListener('change', (e) => { state.indicator = e.target.value; shadeCells(); saveState(); });
$('#period').value = state.period;
$('#period').addEventListener('change', (e) => {
  state.period = e.target.value;
  map.getSource('visits').setTiles([visitTiles()]);
  loadCheckins();
  renderLegend();
  saveState();
});
for (const b of $$('[data-tab]')) b.addEventListener('click', () => selectTab(b.dataset.tab));
$('#gap-kind').value = state.gapKind;
$('#gap-age').value = state.gapAge;
$('#gap-kind').addEventListener('change', (e) => { state.gapKind = e.target.value; renderGaps(); saveState(); });
$('#gap-age').addEventListener('change', (e) => { state.gapAge = e.target.value; renderGaps(); saveState(); });
for (const b of $$('[data-sort]')) b.addEventListener('click', () => { state.sort = b.dataset.sort; renderGaps(); saveState(); });
for (const link of $$('[data-export]')) {
  link.addEventListener('click', (e) => { if (link.classList.contains('disabled')) e.preventDefault(); });
}

// --------------------------------------------------------------------------------------------
// Start
// --------------------------------------------------------------------------------------------

// For the browser tests and the benchmark: the map, the state, and what the first render cost.
window.dashboard = { map, state, timings, ready: false, firstRenderMs: null };

selectTab(state.tab);
if (!CONFIG.roots.length) {
  status('您的范围内还没有街道、社区或网格');
} else {
  loaded.then(() => {
    applyLayerVisibility();
    loadCellFigures();
  });
  selectUnit(query.get('unit') || CONFIG.roots[0].code, { fit: !initialView && query.has('unit') });
}
firstRender.then(() => {
  Object.assign(window.dashboard, { ready: true, firstRenderMs: Math.round(performance.now()) });
  document.body.dataset.mapReady = '1';
});
