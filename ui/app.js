// The zkgate console: plain ES modules, no framework and no build step, served by the gateway.
// It talks to the gateway's own REST API and its WebSocket watch stream (docs/websocket.md).

const $ = (sel) => document.querySelector(sel);
const state = {
  key: sessionStorage.getItem('zkgate.key') || '',
  tenant: sessionStorage.getItem('zkgate.tenant') || '',
  who: null,
  selected: null, // { path, version }
  expanded: new Set(['/']),
  ws: null,
  subs: new Map(), // subscription id -> handler
  nextId: 1,
  lockPath: '',
  electionPath: '',
};

// ---------------------------------------------------------------- REST

class Problem extends Error {
  constructor(status, body) {
    super(body.detail || `HTTP ${status}`);
    this.status = status;
    this.code = body.code || `HTTP_${status}`;
    this.details = body.details || {};
  }
}

function route(api, path) {
  const segs = path.split('/').filter(Boolean).map(encodeURIComponent);
  return `/v1/${api}${segs.length ? '/' + segs.join('/') : ''}`;
}

async function api(method, url, body) {
  const headers = { accept: 'application/json' };
  if (state.key) headers.authorization = `Bearer ${state.key}`;
  if (state.tenant) headers['zkgate-tenant'] = state.tenant;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (res.status === 204) return null;
  const text = await res.text();
  let json;
  try { json = text ? JSON.parse(text) : null; } catch { json = { detail: text }; }
  if (!res.ok) {
    if (res.status === 401) showLogin(true);
    throw new Problem(res.status, json || {});
  }
  return json;
}

function status(msg, error = false) {
  const el = $('#status');
  el.textContent = msg;
  el.className = error ? 'error' : '';
}

function fail(err) {
  status(err instanceof Problem ? `${err.code}: ${err.message}` : String(err), true);
}

// ---------------------------------------------------------------- data views

function bytesOf(b64) {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function hexDump(bytes) {
  const lines = [];
  for (let i = 0; i < bytes.length; i += 16) {
    const row = Array.from(bytes.slice(i, i + 16));
    const hex = row.map((b) => b.toString(16).padStart(2, '0')).join(' ');
    const asc = row.map((b) => (b >= 32 && b < 127 ? String.fromCharCode(b) : '.')).join('');
    lines.push(`${i.toString(16).padStart(8, '0')}  ${hex.padEnd(47)}  ${asc}`);
  }
  return lines.join('\n');
}

/** Text when the bytes are printable UTF-8, pretty JSON when they parse, else a hex dump. */
function render(bytes, mode) {
  let text = null;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    if (/[\u0000-\u0008\u000e-\u001f]/.test(text)) text = null;
  } catch { text = null; }
  if (mode === 'hex' || (mode === 'auto' && text === null)) return { kind: 'binary (hex)', text: hexDump(bytes), editable: text };
  if (mode === 'json' || mode === 'auto') {
    try { return { kind: 'JSON', text: JSON.stringify(JSON.parse(text), null, 2), editable: text }; } catch { /* not JSON */ }
  }
  return { kind: text === null ? 'binary (hex)' : 'text', text: text ?? hexDump(bytes), editable: text };
}

function table(el, rows, head) {
  el.innerHTML = '';
  if (head) {
    const tr = el.insertRow();
    for (const h of head) { const th = document.createElement('th'); th.textContent = h; tr.appendChild(th); }
  }
  for (const r of rows) {
    const tr = el.insertRow();
    for (const c of r) tr.insertCell().textContent = c == null ? '' : String(c);
  }
}

const when = (ms) => (ms ? new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '');

// ---------------------------------------------------------------- tree

function childPath(parent, name) { return parent === '/' ? `/${name}` : `${parent}/${name}`; }

function rowFor(path) { return document.querySelector(`.node-row[data-path="${CSS.escape(path)}"]`); }

async function loadChildren(path, ul) {
  const listing = await api('GET', `${route('children', path)}?stat=true`);
  ul.innerHTML = '';
  for (const c of listing.children) ul.appendChild(treeItem(childPath(path, c.name), c.name, c.stat ? c.stat.numChildren : 0));
}

function treeItem(path, name, count) {
  const li = document.createElement('li');
  const row = document.createElement('div');
  row.className = 'node-row';
  row.dataset.path = path;
  const toggle = document.createElement('span');
  toggle.className = 'toggle';
  toggle.textContent = count > 0 ? (state.expanded.has(path) ? '▾' : '▸') : '';
  const label = document.createElement('span');
  label.className = 'name';
  label.textContent = name;
  const badge = document.createElement('span');
  badge.className = 'count';
  badge.textContent = count > 0 ? ` (${count})` : '';
  row.append(toggle, label, badge);
  const ul = document.createElement('ul');
  li.append(row, ul);
  toggle.addEventListener('click', (e) => { e.stopPropagation(); void toggleNode(path, ul, toggle); });
  label.addEventListener('click', () => void select(path));
  if (state.expanded.has(path) && count > 0) void expand(path, ul);
  return li;
}

async function expand(path, ul) {
  await loadChildren(path, ul).catch(fail);
  subscribe(`children:${path}`, { op: 'subscribe', path, kind: 'children' }, (ev) => {
    if (ev.type === 'children_changed' || ev.type === 'resync' || ev.type === 'created') void loadChildren(path, ul).catch(fail);
  });
}

async function toggleNode(path, ul, toggle) {
  if (state.expanded.has(path)) {
    state.expanded.delete(path);
    unsubscribe(`children:${path}`);
    ul.innerHTML = '';
    toggle.textContent = '▸';
  } else {
    state.expanded.add(path);
    toggle.textContent = '▾';
    await expand(path, ul);
  }
}

async function loadTree() {
  const root = $('#tree');
  root.innerHTML = '';
  const rootStat = await api('GET', route('nodes', '/'));
  root.appendChild(treeItem('/', '/', rootStat.stat.numChildren));
}

// ---------------------------------------------------------------- node pane

async function select(path) {
  document.querySelectorAll('.node-row.selected').forEach((r) => r.classList.remove('selected'));
  rowFor(path)?.classList.add('selected');
  const previous = state.selected?.path;
  if (previous && previous !== path) unsubscribe(`data:${previous}`);
  try {
    const node = await api('GET', `${route('nodes', path)}?encoding=base64`);
    showNode(node);
    status('');
  } catch (err) { fail(err); return; }
  subscribe(`data:${path}`, { op: 'subscribe', path, kind: 'data', encoding: 'base64' }, (ev) => {
    if (ev.type === 'deleted') { status(`${path} was deleted`); $('#node-pane').hidden = true; return; }
    if (ev.stat && (ev.type === 'data_changed' || ev.type === 'resync' || ev.type === 'created')) {
      showNode({ path, data: ev.data, encoding: ev.encoding, stat: ev.stat }, true);
    }
  });
  api('GET', route('acl', path)).then((a) => table($('#node-acl'), a.acl.map((e) => [e.scheme, e.id, e.perms]), ['scheme', 'id', 'perms'])).catch(() => table($('#node-acl'), [['(no permission to read the ACL)']]));
}

function showNode(node, live = false) {
  $('#node-pane').hidden = false;
  const bytes = node.encoding === 'base64' ? bytesOf(node.data) : new TextEncoder().encode(node.data);
  const editing = live && state.selected?.path === node.path && state.selected.dirty;
  // While the user edits, a live change must not replace their text nor the version their save
  // is based on: the save is then refused (compare-and-set) instead of overwriting the change.
  state.selected = editing ? { ...state.selected, bytes } : { path: node.path, baseVersion: node.stat.version, bytes, dirty: false };
  $('#node-path').textContent = node.path;
  const view = render(bytes, $('#view-mode').value);
  $('#node-kind').textContent = `${view.kind}, ${bytes.length} bytes${live ? ' — updated live' : ''}`;
  $('#node-data').textContent = view.text;
  const edit = $('#edit-area');
  if (editing) {
    status(`${node.path} changed to version ${node.stat.version} while you were editing version ${state.selected.baseVersion}`, true);
  } else {
    edit.value = view.editable ?? '';
    edit.disabled = view.editable === null;
  }
  $('#node-version').textContent = String(state.selected.baseVersion);
  const s = node.stat;
  table($('#node-stat'), [
    ['version', s.version], ['cversion', s.cversion], ['aversion', s.aversion], ['numChildren', s.numChildren],
    ['dataLength', s.dataLength], ['czxid', s.czxid], ['mzxid', s.mzxid], ['pzxid', s.pzxid],
    ['ctime', when(s.ctimeMs)], ['mtime', when(s.mtimeMs)],
    ['ephemeralOwner', s.ephemeralOwner === '0' ? '(persistent)' : `0x${BigInt(s.ephemeralOwner).toString(16)}`],
  ]);
  if (live) {
    const row = rowFor(node.path);
    row?.classList.add('flash');
    setTimeout(() => row?.classList.remove('flash'), 1500);
  }
}

async function save() {
  const sel = state.selected;
  if (!sel) return;
  try {
    const out = await api('PUT', route('nodes', sel.path), { data: $('#edit-area').value, version: sel.baseVersion });
    status(`saved ${sel.path}: now version ${out.stat.version}`);
    await select(sel.path);
  } catch (err) {
    if (err.code === 'BAD_VERSION') status(`conflict: ${sel.path} changed since version ${sel.baseVersion}; nothing was overwritten (select the node again to edit the current data)`, true);
    else fail(err);
  }
}

async function createChild() {
  const sel = state.selected;
  const name = $('#child-name').value.trim();
  if (!sel || !name) return;
  try {
    const out = await api('POST', route('nodes', childPath(sel.path, name)), { data: $('#child-data').value, mode: $('#child-mode').value });
    status(`created ${out.path}`);
  } catch (err) { fail(err); }
}

async function deleteNode() {
  const sel = state.selected;
  $('#delete-confirm').hidden = true;
  try {
    await api('DELETE', `${route('nodes', sel.path)}${$('#delete-recursive').checked ? '?recursive=true' : ''}`);
    status(`deleted ${sel.path}`);
    $('#node-pane').hidden = true;
  } catch (err) { fail(err); }
}

// ---------------------------------------------------------------- locks, elections, leases, cluster

async function inspectLock() {
  const path = $('#lock-path').value.trim();
  if (!path) return;
  try {
    const lock = await api('GET', `${route('locks', path)}?flavour=${$('#lock-flavour').value}`);
    const row = (c) => [c.node.split('/').pop(), c.data, c.fencingToken, when(c.ctimeMs), `0x${BigInt(c.ephemeralOwner).toString(16)}`];
    const head = ['node', 'data', 'fencing token', 'since', 'session'];
    table($('#lock-holder'), lock.holder ? [row(lock.holder)] : [['(free)']], head);
    table($('#lock-queue'), lock.queue.map(row), head);
    status('');
  } catch (err) { fail(err); return; }
  if (state.lockPath !== path) {
    if (state.lockPath) unsubscribe(`lock:${state.lockPath}`);
    state.lockPath = path;
    subscribe(`lock:${path}`, { op: 'subscribe', path, kind: 'children' }, () => void inspectLock());
  }
}

async function observeElection() {
  const path = $('#election-path').value.trim();
  if (!path) return;
  if (state.electionPath) unsubscribe(`election:${state.electionPath}`);
  state.electionPath = path;
  const showLeader = (s) => table($('#election-leader'), s.leader ? [[s.leader.node.split('/').pop(), s.leader.value, s.leader.term]] : [['(no leader)']], ['node', 'value', 'term']);
  // Candidates in the recipe's own order come from the gateway's election listing (core), never sorted here.
  const showCandidates = async () => {
    try {
      const l = await api('GET', `${route('recipes/elections', path)}`);
      const e = l.elections.find((x) => x.electionPath === path);
      table($('#election-candidates'), (e ? e.candidates : []).map((c) => [c.node.split('/').pop(), c.data, c.fencingToken, when(c.ctimeMs)]), ['node', 'value', 'czxid', 'since']);
    } catch (err) { if (err.code === 'NO_NODE') table($('#election-candidates'), []); else fail(err); }
  };
  try { showLeader(await api('GET', route('elections', path))); } catch (err) { fail(err); }
  void showCandidates();
  subscribe(`election:${path}`, { op: 'observe', path }, (s) => { showLeader(s); void showCandidates(); });
}

async function loadLeases() {
  try {
    const { leases, incomplete, unanswered } = await api('GET', '/v1/leases');
    table($('#leases'), leases.map((l) => [l.id, l.ownerName ?? l.owner, l.state, l.ttlMs, l.remainingMs, l.owned.map((o) => `${o.kind} ${o.path}`).join('\n')]), ['id', 'owner', 'state', 'ttl ms', 'left ms', 'owns']);
    // A cluster instance that did not answer: its leases are missing from the table, say so.
    status(incomplete ? `incomplete: no leases of ${unanswered.map((u) => `${u.instance} (${u.reason})`).join(', ')}` : '');
  } catch (err) { fail(err); }
}

async function loadCluster() {
  const ready = await fetch('/readyz').then((r) => r.json()).catch(() => null);
  if (ready) table($('#tenants'), ready.tenants.map((t) => [t.name, t.chroot, t.zkState, t.sessionId, t.ready ? 'ready' : 'not ready']), ['tenant', 'chroot', 'session state', 'session id', '']);
  const text = await fetch('/metrics').then((r) => (r.ok ? r.text() : '')).catch(() => '');
  const wanted = /^(zkgate_zk_session_connected|zkgate_tenant_quota_used|zkgate_tenant_quota_max|zkgate_watch_subscribers|zkgate_watch_zk_watches|zkgate_watch_slow_consumers)\{/;
  table($('#metrics'), text.split('\n').filter((l) => wanted.test(l)).map((l) => { const i = l.lastIndexOf(' '); return [l.slice(0, i), l.slice(i + 1)]; }), ['series', 'value']);
}

// ---------------------------------------------------------------- WebSocket

function connect() {
  const protocols = ['zkgate.v1'];
  if (state.key) protocols.push(`zkgate.bearer.${state.key}`);
  if (state.tenant) protocols.push(`zkgate.tenant.${state.tenant}`);
  const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/v1/ws`, protocols);
  state.ws = ws;
  ws.onopen = () => {
    $('#live').textContent = 'live';
    $('#live').className = 'on';
    for (const [id, s] of state.subs) ws.send(JSON.stringify({ ...s.msg, id }));
  };
  ws.onclose = () => {
    $('#live').textContent = 'offline';
    $('#live').className = 'off';
    if (state.ws === ws) setTimeout(connect, 2000);
  };
  ws.onmessage = (m) => {
    const msg = JSON.parse(m.data);
    const sub = msg.id && state.subs.get(msg.id);
    if (msg.type === 'event' && sub) sub.handler(msg.event);
    else if (msg.type === 'leader' && sub) sub.handler(msg.state);
    else if (msg.type === 'error' && msg.code !== 'NO_NODE') status(`watch: ${msg.code}: ${msg.message}`, true);
  };
}

function subscribe(id, msg, handler) {
  if (state.subs.has(id)) { state.subs.get(id).handler = handler; return; }
  state.subs.set(id, { msg, handler });
  if (state.ws?.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify({ ...msg, id }));
}

function unsubscribe(id) {
  if (!state.subs.delete(id)) return;
  if (state.ws?.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify({ op: 'unsubscribe', id }));
}

// ---------------------------------------------------------------- start

function showLogin(show) { $('#login').hidden = !show; }

async function start() {
  try {
    state.who = await api('GET', '/v1/whoami');
  } catch (err) { fail(err); showLogin(true); return; }
  showLogin(false);
  $('#who').textContent = `${state.who.tenant} · ${state.who.role}${state.who.prefixes.length ? ` · ${state.who.prefixes.join(',')}` : ''}`;
  document.body.classList.toggle('read-only', state.who.role === 'read');
  if (state.ws) { const old = state.ws; state.ws = null; old.close(); }
  connect();
  await loadTree().catch(fail);
}

for (const b of document.querySelectorAll('#tabs button')) {
  b.addEventListener('click', () => {
    document.querySelectorAll('#tabs button').forEach((x) => x.classList.toggle('active', x === b));
    document.querySelectorAll('.tab').forEach((t) => (t.hidden = t.id !== `tab-${b.dataset.tab}`));
    if (b.dataset.tab === 'leases') void loadLeases();
    if (b.dataset.tab === 'cluster') void loadCluster();
  });
}
$('#key-form').addEventListener('submit', (e) => {
  e.preventDefault();
  state.key = $('#key-input').value.trim();
  state.tenant = $('#tenant-input').value.trim();
  sessionStorage.setItem('zkgate.key', state.key);
  sessionStorage.setItem('zkgate.tenant', state.tenant);
  void start();
});
$('#save-btn').addEventListener('click', () => void save());
$('#edit-area').addEventListener('input', () => { if (state.selected) state.selected.dirty = true; });
$('#create-btn').addEventListener('click', () => void createChild());
$('#delete-btn').addEventListener('click', () => {
  $('#delete-what').textContent = `${state.selected?.path}${$('#delete-recursive').checked ? ' and everything below it' : ''}`;
  $('#delete-confirm').hidden = false;
});
$('#delete-yes').addEventListener('click', () => void deleteNode());
$('#delete-no').addEventListener('click', () => ($('#delete-confirm').hidden = true));
$('#view-mode').addEventListener('change', () => state.selected && void select(state.selected.path));
$('#lock-form').addEventListener('submit', (e) => { e.preventDefault(); void inspectLock(); });
$('#election-form').addEventListener('submit', (e) => { e.preventDefault(); void observeElection(); });
$('#leases-refresh').addEventListener('click', () => void loadLeases());
$('#cluster-refresh').addEventListener('click', () => void loadCluster());
void start();
