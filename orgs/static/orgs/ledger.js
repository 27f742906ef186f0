// 民情台账: the cases list with its filters (kept in the URL), their map (clustered), one case with
// its timeline and the actions the user may take, the statistics and the inbox. Everything is read
// from the same origin's JSON APIs; nothing leaves the server.
const maplibregl = await import(document.body.dataset.maplibre);
const CONFIG = JSON.parse(document.getElementById('ledger-config').textContent);
const CSRF = document.querySelector('meta[name="csrf-token"]').getAttribute('content');
const ACTION_LABEL = Object.fromEntries(CONFIG.actions);
const GRID_NAME = Object.fromEntries(CONFIG.grids);
const REASON_REQUIRED = new Set(['decline', 'send_back', 'feedback']);
const PAGE_SIZE = 200;

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v == null) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) if (c != null) el.append(c instanceof Node ? c : String(c));
  return el;
}
const when = (iso) => (iso ? new Date(iso).toLocaleString('zh-CN', { hour12: false, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit' }) : '—');

function toast(text) {
  const box = document.getElementById('toast');
  box.textContent = text;
  box.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { box.hidden = true; }, 6000);
}

async function api(path, { method = 'GET', body } = {}) {
  const headers = { Accept: 'application/json' };
  if (method !== 'GET') { headers['Content-Type'] = 'application/json'; headers['X-CSRFToken'] = CSRF; }
  const answer = await fetch(path, { method, headers, credentials: 'same-origin', body: body ? JSON.stringify(body) : undefined });
  let data = null;
  try { data = await answer.json(); } catch (_) { data = null; }
  if (!answer.ok) {
    const error = new Error((data && data.message) || `请求失败（${answer.status}）`);
    error.status = answer.status;
    error.code = data && data.code;
    throw error;
  }
  return data;
}

// ---- filters in the URL ---------------------------------------------------------------------
const form = document.getElementById('filters');
const FILTERS = ['category', 'state', 'grid', 'source', 'overdue'];
function readUrl() {
  const params = new URLSearchParams(location.search);
  for (const name of FILTERS) {
    const field = form.elements[name];
    if (field.type === 'checkbox') field.checked = params.get(name) === 'true';
    else field.value = params.get(name) || '';
  }
  return params.get('case');
}
function filterParams() {
  const params = new URLSearchParams();
  for (const name of FILTERS) {
    const field = form.elements[name];
    if (field.type === 'checkbox') { if (field.checked) params.set(name, 'true'); }
    else if (field.value) params.set(name, field.value);
  }
  return params;
}
function writeUrl(caseId) {
  const params = filterParams();
  if (caseId) params.set('case', caseId);
  const query = params.toString();
  history.replaceState(null, '', query ? `?${query}${location.hash}` : `${location.pathname}${location.hash}`);
  document.getElementById('export').href = `/ledger/export.xlsx?${filterParams()}`;
}

// ---- the map ----------------------------------------------------------------------------------
const style = { version: 8, sources: {}, layers: [{ id: 'background', type: 'background', paint: { 'background-color': '#f4f1ea' } }] };
if (CONFIG.basemap) {
  style.sources.basemap = { type: 'raster', tiles: [CONFIG.basemap], tileSize: 256 };
  style.layers.push({ id: 'basemap', type: 'raster', source: 'basemap' });
}
const map = new maplibregl.Map({ container: 'map', style, center: [116.4, 39.9], zoom: 11, attributionControl: false, maxZoom: 19 });
map.addControl(new maplibregl.NavigationControl({ showCompass: false }), 'top-right');
const mapReady = new Promise((resolve) => map.on('load', resolve));
await mapReady;
map.addSource('cases', { type: 'geojson', data: { type: 'FeatureCollection', features: [] }, cluster: true, clusterRadius: 40, clusterMaxZoom: 16 });
map.addLayer({ id: 'case-clusters', type: 'circle', source: 'cases', filter: ['has', 'point_count'],
  paint: { 'circle-color': '#f59e0b', 'circle-opacity': 0.8, 'circle-stroke-color': '#fff', 'circle-stroke-width': 1,
    'circle-radius': ['step', ['get', 'point_count'], 12, 10, 16, 50, 22] } });
map.addLayer({ id: 'case-points', type: 'circle', source: 'cases', filter: ['!', ['has', 'point_count']],
  paint: { 'circle-radius': 6, 'circle-stroke-color': '#fff', 'circle-stroke-width': 1.5,
    'circle-color': ['case', ['get', 'overdue'], '#b91c1c', ['in', ['get', 'state'], ['literal', ['closed', 'rejected', 'merged']]], '#6b7280', '#2563eb'] } });
map.on('click', 'case-points', (e) => openCase(e.features[0].properties.id));
map.on('click', 'case-clusters', async (e) => {
  const feature = e.features[0];
  const zoom = await map.getSource('cases').getClusterExpansionZoom(feature.properties.cluster_id);
  map.easeTo({ center: feature.geometry.coordinates, zoom });
});
for (const layer of ['case-points', 'case-clusters']) {
  map.on('mouseenter', layer, () => { map.getCanvas().style.cursor = 'pointer'; });
  map.on('mouseleave', layer, () => { map.getCanvas().style.cursor = ''; });
}

// ---- the list ---------------------------------------------------------------------------------
let features = [];
let nextPage = null;
let openId = null;
function row(p) {
  return h('tr', { 'data-id': p.id, class: p.id === openId ? 'selected' : null, onclick: () => openCase(p.id) },
    h('td', {}, `#${p.id}`), h('td', {}, when(p.reported_at)), h('td', {}, p.category_name),
    h('td', {}, p.state_display), h('td', {}, p.grid_code ? (GRID_NAME[p.grid_code] || p.grid_code) : '—'),
    h('td', {}, p.address || p.description.slice(0, 40)),
    h('td', { class: p.overdue ? 'late' : null }, p.overdue ? `超期 ${when(p.deadline)}` : when(p.deadline)));
}
async function loadList({ more = false } = {}) {
  const url = more && nextPage ? nextPage : `/api/cases/?${filterParams()}&page_size=${PAGE_SIZE}`;
  let page;
  try { page = await api(url); } catch (error) { toast(error.message); return; }
  features = more ? features.concat(page.features) : page.features;
  nextPage = page.next ? new URL(page.next, location.href).pathname + new URL(page.next, location.href).search : null;
  const body = document.querySelector('#cases tbody');
  body.replaceChildren(...features.map((f) => row({ ...f.properties, id: f.id ?? f.properties.id })));
  document.getElementById('count').textContent = `共${page.count}件`;
  document.getElementById('more').hidden = !nextPage;
  map.getSource('cases').setData({ type: 'FeatureCollection', features: features.map((f) => ({ ...f, properties: { ...f.properties, id: f.id ?? f.properties.id } })) });
  if (!more && features.length) {
    const bounds = new maplibregl.LngLatBounds();
    for (const f of features) if (f.geometry) bounds.extend(f.geometry.coordinates);
    map.fitBounds(bounds, { padding: 40, maxZoom: 16, duration: 0 });
  }
}
document.querySelector('#more button').addEventListener('click', () => loadList({ more: true }));
form.addEventListener('change', () => { writeUrl(openId); loadList(); });
form.addEventListener('submit', (e) => e.preventDefault());

// ---- one case ---------------------------------------------------------------------------------
async function openCase(id) {
  let c;
  try { c = await api(`/api/cases/${id}/`); } catch (error) { toast(error.status === 404 ? '事项不存在或不在您的范围内' : error.message); return; }
  openId = c.id;
  writeUrl(c.id);
  for (const tr of document.querySelectorAll('#cases tbody tr')) tr.classList.toggle('selected', Number(tr.dataset.id) === c.id);
  const reason = h('textarea', { rows: 2, maxlength: 1000, placeholder: '说明（不予立案、退回、反馈时必填）', 'aria-label': '说明' });
  const buttons = c.allowed_actions
    .filter((a) => a !== 'verify' && a !== 'merge')
    .map((a) => h('button', { type: 'button', 'data-action': a, onclick: () => act(c, a, reason.value.trim()) }, ACTION_LABEL[a] || a));
  const onSite = c.allowed_actions.includes('verify') ? h('span', { class: 'hint' }, '核查须在平板上现场定位完成') : null;
  const detail = document.getElementById('detail');
  detail.replaceChildren(
    h('h2', {}, `#${c.id} ${c.category_name}（${c.state_display}）`),
    h('dl', {},
      h('dt', {}, '问题描述'), h('dd', {}, c.description),
      h('dt', {}, '地址'), h('dd', {}, c.address || '—'),
      h('dt', {}, '网格'), h('dd', {}, c.grid_name ? `${c.grid_name}（${c.grid_code}）` : c.community_name),
      h('dt', {}, '来源'), h('dd', {}, `${c.source_display} · ${c.reporter_name} · ${when(c.reported_at)}`),
      h('dt', {}, '承办单位'), h('dd', {}, c.assignee_name || '—'),
      h('dt', {}, '本环节时限'), h('dd', { class: c.overdue ? 'late' : null }, c.deadline ? `${when(c.deadline)}${c.overdue ? '（已超期）' : ''}` : '已办结'),
      h('dt', {}, '督办'), h('dd', {}, c.escalation_level ? `第${c.escalation_level}级 · ${c.escalated_to_name}` : '未督办')),
    h('h3', {}, '流转记录'),
    h('ol', { class: 'timeline' }, c.timeline.map((t) => h('li', {},
      h('span', { class: 'when' }, when(t.at)), h('b', {}, t.action_display), ` ${t.actor_name || '系统'}`,
      t.assignee_name ? ` → ${t.assignee_name}` : '', t.reason ? `：${t.reason}` : '', t.overdue ? '（超期）' : ''))),
    h('h3', {}, '照片'),
    h('p', { class: 'photos' }, c.photos && c.photos.length ? `${c.photos.length}张` : '暂无照片'),
    buttons.length ? h('div', { class: 'actions' }, reason, ...buttons) : h('p', { class: 'hint' }, onSite ? '' : '您现在没有可执行的操作'),
    onSite);
  detail.hidden = false;
  const f = features.find((x) => (x.id ?? x.properties.id) === c.id);
  if (f && f.geometry) map.easeTo({ center: f.geometry.coordinates, zoom: Math.max(map.getZoom(), 15) });
}

async function act(c, action, reason) {
  if (REASON_REQUIRED.has(action) && !reason) { toast(`「${ACTION_LABEL[action]}」须填写说明`); return; }
  try {
    await api(`/api/cases/${c.id}/transitions/`, { method: 'POST', body: { action, reason, expected_version: c.version } });
    toast(`已${ACTION_LABEL[action]}`);
  } catch (error) {
    toast(error.status === 409 ? '已被他人更新，请刷新' : error.message);
    if (error.status !== 409) return;
  }
  await Promise.all([openCase(c.id), loadList(), loadStats()]);
  window.dispatchEvent(new Event('inbox:refresh'));
}

// ---- statistics -------------------------------------------------------------------------------
const pct = (r) => (r == null ? '—' : `${(r * 100).toFixed(1)}%`);
function table(head, rows) {
  return h('table', {}, h('thead', {}, h('tr', {}, head.map((x) => h('th', {}, x)))), h('tbody', {}, rows.map((r) => h('tr', {}, r.map((x) => h('td', {}, x))))));
}
async function loadStats() {
  const box = document.querySelector('#stats .body');
  let s;
  try { s = await api('/api/cases/statistics/'); } catch (error) { box.textContent = error.message; return; }
  const t = s.totals;
  const counts = (r) => [r.opened, r.closed, pct(r.on_time_rate), r.overdue_now];
  box.replaceChildren(
    h('p', {}, `${s.since} 至 ${s.until}：上报${t.opened}件，结案${t.closed}件，按期办结率${pct(t.on_time_rate)}，当前超期${t.overdue_now}件，督办${t.escalated}件；重复发生点位${s.repeat_places.length}处。`),
    h('div', { class: 'tables' },
      table(['类别', '上报', '结案', '按期办结率', '当前超期'], s.by_category.map((r) => [r.category_name, ...counts(r)])),
      table(['网格', '上报', '结案', '按期办结率', '当前超期'], s.by_grid.map((r) => [r.grid_code ? (GRID_NAME[r.grid_code] || r.grid_code) : '（无网格）', ...counts(r)]))),
    table(['环节', '停留时长中位数（小时）'], s.median_hours_by_state.map((r) => [r.state_display, r.median_hours.toFixed(1)])));
}

// ---- the inbox --------------------------------------------------------------------------------
async function loadInbox() {
  let page;
  try { page = await api('/api/inbox/?page_size=20'); } catch (error) { return; }
  const list = document.querySelector('#inbox ul');
  list.replaceChildren(...(page.results.length ? page.results.map((m) => h('li', { class: m.read_at ? null : 'unread', 'data-id': m.id },
    h('span', { class: 'when' }, when(m.created_at)), ' ', h('a', { href: m.link || '#', onclick: (e) => readOne(e, m) }, m.title), `：${m.body}`)) : [h('li', {}, '暂无消息')]));
}
async function readOne(event, m) {
  if (m.read_at) return;
  event.preventDefault();
  try { await api('/api/inbox/read/', { method: 'POST', body: { ids: [m.id] } }); } catch (error) { toast(error.message); return; }
  window.dispatchEvent(new Event('inbox:refresh'));
  if (m.link) location.assign(m.link); else loadInbox();
}
document.getElementById('read-all').addEventListener('click', async () => {
  try { await api('/api/inbox/read/', { method: 'POST', body: { all: true } }); } catch (error) { toast(error.message); return; }
  window.dispatchEvent(new Event('inbox:refresh'));
  loadInbox();
});
window.addEventListener('inbox:refresh', loadInbox);

// ---- start ------------------------------------------------------------------------------------
const initialCase = readUrl();
writeUrl(initialCase);
await Promise.all([loadList(), loadStats(), loadInbox()]);
if (initialCase) await openCase(Number(initialCase));
document.body.dataset.ready = 'true';
