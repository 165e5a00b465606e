/**
 * Picks and listings from memory (docs/registry.md, "Picks from memory"): a service picked or
 * listed once is followed through the watch hub, and later picks are answered from its instance
 * set (`X-Zkgate-Source: cache`) while its watches vouch for it — no ZooKeeper read per pick.
 * Writes through the gateway are seen by the next pick; a deletion by another ZooKeeper client
 * once its notification arrives; after a session expiry the answers come from ZooKeeper with
 * the change made in the gap; the followed services stay within `watch.maxCachedServices`.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { NativeZkClient } from '../../src/zk/native-client.js';
import { eventually, startTestGateway, type TestGateway } from '../support/test-gateway.js';
import { connectRaw } from '../support/zk-tree.js';
import { expireSession, fourLetter, parseMntr, startZkServer, type ZkStandalone } from '../support/zk-server.js';

let zk: ZkStandalone;
let gw: TestGateway;
let raw: NativeZkClient;
let lease: string;

const MAX_SERVICES = 3;
// Long enough that following five services one after another under load outlasts no one of them.
const IDLE_MS = 4000;

before(async () => {
  zk = await startZkServer();
  gw = await startTestGateway(zk.connectString, {
    tenants: [{ name: 'default', sessionTimeoutMs: 6000 }],
    watch: { maxCachedServices: MAX_SERVICES, cachedServiceIdleMs: IDLE_MS },
  });
  await eventually(() => gw.running.gateway.health().ready, 20_000, 'gateway ready');
  raw = await connectRaw(zk.connectString);
  lease = await eventually(async () => ((await post('/v1/leases', { ttlMs: 60_000 })).body as { id?: string }).id, 20_000, 'a lease');
});

after(async () => {
  raw?.close();
  await gw?.close();
  await zk?.close();
});

async function post(path: string, body: unknown, method = 'POST'): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${gw.base}${path}`, { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
}

interface Answer {
  status: number;
  source: string | null;
  body: { id?: string; code?: string; instances?: { id: string; enabled: boolean }[] };
}

async function get(path: string): Promise<Answer> {
  const res = await fetch(`${gw.base}${path}`);
  return { status: res.status, source: res.headers.get('x-zkgate-source'), body: (await res.json()) as Answer['body'] };
}

const list = (base: string, svc: string, query = ''): Promise<Answer> => get(`/v1/services/${svc}?base=${base}${query}`);
const pick = (base: string, svc: string, query = ''): Promise<Answer> => get(`/v1/services/${svc}/pick?base=${base}&caller=t${query}`);
const ids = (a: Answer): string[] => (a.body.instances ?? []).map((i) => i.id);

async function register(base: string, svc: string, id: string): Promise<void> {
  const r = await post(`/v1/services/${svc}/instances?base=${base}`, { leaseId: lease, id, address: '10.0.0.1', port: 80 });
  assert.equal(r.status, 201, JSON.stringify(r.body));
}

/** An instance node written by another ZooKeeper client (as a Curator process would). */
async function rawInstance(base: string, svc: string, id: string): Promise<void> {
  const doc = { name: svc, id, address: '10.9.9.9', port: 9, sslPort: null, payload: null, registrationTimeUTC: 1, serviceType: 'DYNAMIC', uriSpec: null };
  await raw.create(`${base}/${svc}/${id}`, Buffer.from(JSON.stringify(doc)), 'persistent');
}

/** Lists until the answer comes from memory. */
const untilCached = (base: string, svc: string): Promise<Answer> =>
  eventually(async () => {
    const a = await list(base, svc);
    return a.source === 'cache' ? a : undefined;
  }, 10_000, `${svc} to be answered from memory`);

/** Creates `path` and its missing ancestors (persistent). */
async function mkdirp(path: string): Promise<void> {
  const parts = path.split('/').filter(Boolean);
  for (let i = 1; i <= parts.length; i++) {
    await raw.create(`/${parts.slice(0, i).join('/')}`, Buffer.alloc(0), 'persistent').catch((err: unknown) => {
      if (!String((err as Error).message).includes('exists')) throw err;
    });
  }
}

/** A service with instances written by another client, listed once and then answered from memory. */
async function followedService(base: string, svc: string, ...instanceIds: string[]): Promise<Answer> {
  await mkdirp(`${base}/${svc}`);
  for (const id of instanceIds) await rawInstance(base, svc, id);
  await list(base, svc);
  return untilCached(base, svc);
}

const zkReads = async (): Promise<number> => Number(parseMntr(await fourLetter(zk.clientPort, 'mntr')).get('zk_cnt_readlatency'));
let n = 0;
const newBase = (): string => `/rc-${++n}`;

test('registry cache › repeated picks of a followed service read ZooKeeper no more', async () => {
  const base = newBase();
  for (const id of ['a', 'b', 'c']) await register(base, 'svc', id);
  const first = await pick(base, 'svc');
  assert.equal(first.source, 'zookeeper');
  await untilCached(base, 'svc');
  const before = await zkReads();
  const started = Date.now();
  const seen = new Set<string>();
  for (let i = 0; i < 30; i++) {
    const p = await pick(base, 'svc');
    assert.equal(p.status, 200);
    assert.equal(p.source, 'cache');
    seen.add(p.body.id ?? '');
  }
  // 30 picks read ZooKeeper 120 times without the cache (a listing and three instances each).
  // What may remain: the session's heartbeat (`exists /` after a sixth of the 6 s timeout of
  // silence, src/zk/liveness.ts), one a second at most.
  const reads = (await zkReads()) - before;
  const heartbeats = Math.ceil((Date.now() - started) / 1000) + 1;
  assert.ok(reads <= heartbeats, `${reads} ZooKeeper reads for 30 picks (heartbeats allowed: ${heartbeats})`);
  assert.deepEqual([...seen].sort(), ['a', 'b', 'c'], 'round robin still goes round');
  const metrics = await (await fetch(`${gw.base}/metrics`)).text();
  assert.match(metrics, /zkgate_registry_cache_hits\{tenant="default"\} [1-9]/);
});

test('registry cache › a registration, update or deregistration through the gateway is seen by the very next pick', async () => {
  const base = newBase();
  await register(base, 'svc', 'x0');
  await list(base, 'svc');
  for (let i = 1; i <= 8; i++) {
    await untilCached(base, 'svc');
    await register(base, 'svc', `x${i}`);
    assert.ok(ids(await list(base, 'svc')).includes(`x${i}`), `x${i} listed right after its registration`);
    await untilCached(base, 'svc');
    // Disable all but the new one: the next pick must choose it.
    for (let j = 0; j < i; j++) {
      const up = await post(`/v1/services/svc/instances/x${j}?base=${base}`, { leaseId: lease, enabled: false }, 'PUT');
      assert.equal(up.status, 200);
    }
    const p = await pick(base, 'svc');
    assert.equal(p.body.id, `x${i}`, `pick right after the updates (from ${p.source})`);
    await untilCached(base, 'svc');
    const del = await fetch(`${gw.base}/v1/services/svc/instances/x${i}?base=${base}&leaseId=${lease}`, { method: 'DELETE' });
    assert.equal(del.status, 200);
    const none = await pick(base, 'svc');
    assert.equal(none.body.code, 'NO_INSTANCES', `pick right after the deregistration (from ${none.source})`);
    for (let j = 0; j < i; j++) await post(`/v1/services/svc/instances/x${j}?base=${base}`, { leaseId: lease, enabled: true }, 'PUT');
    await register(base, 'svc', `x${i}`);
  }
});

test('registry cache › an instance deleted by another ZooKeeper client leaves the picks once its notification arrives', async () => {
  const base = newBase();
  assert.deepEqual(ids(await followedService(base, 'svc', 'r1', 'r2')), ['r1', 'r2']);
  await raw.delete(`${base}/svc/r1`, -1);
  await eventually(async () => !ids(await list(base, 'svc')).includes('r1'), 10_000, 'r1 to leave the listing');
  for (let i = 0; i < 10; i++) assert.equal((await pick(base, 'svc')).body.id, 'r2');
  assert.deepEqual(ids(await untilCached(base, 'svc')), ['r2'], 'the followed set holds the deletion');
});

test('registry cache › sync=true reads ZooKeeper after a sync and sees another client\'s instance at once', async () => {
  const base = newBase();
  await followedService(base, 'svc', 's1');
  await rawInstance(base, 'svc', 's2');
  const a = await list(base, 'svc', '&sync=true');
  assert.equal(a.source, 'zookeeper');
  assert.deepEqual(ids(a), ['s1', 's2']);
  const p = await pick(base, 'svc', '&sync=true&strategy=sticky');
  assert.equal(p.source, 'zookeeper');
  const missing = await list(base, 'nosuch', '&sync=true');
  assert.deepEqual([missing.status, missing.source, ids(missing)], [200, 'zookeeper', []]);
});

test('registry cache › after a session expiry picks read ZooKeeper and see the change made in the gap, then memory serves again', async () => {
  const base = newBase();
  await followedService(base, 'svc', 'e1', 'e2');
  const tenant = gw.running.gateway.tenant();
  await expireSession(zk.connectString, tenant.session.sessionId, tenant.session.sessionPassword);
  // The old session's watches are gone: this deletion is never notified to the gateway.
  await raw.delete(`${base}/svc/e1`, -1);
  const sources = new Set<string>();
  await eventually(async () => {
    const a = await list(base, 'svc');
    if (a.status === 200) {
      assert.deepEqual(ids(a), ['e2'], `stale listing from ${a.source}`);
      sources.add(a.source ?? '');
    }
    return sources.has('cache');
  }, 20_000, 'memory to serve the new session\'s state');
  assert.equal((await pick(base, 'svc')).body.id, 'e2');
});

test('registry cache › at most watch.maxCachedServices services are followed, and an unused one is let go', async () => {
  const base = newBase();
    const names = ['svc0', 'svc1', 'svc2', 'svc3', 'svc4'];
  for (const s of names) await followedService(base, s, 'i');
  const followed = async (): Promise<number> => {
    const m = (await (await fetch(`${gw.base}/metrics`)).text()).match(/zkgate_registry_followed_services\{tenant="default"\} (\d+)/);
    return Number(m?.[1]);
  };
  assert.equal(await followed(), MAX_SERVICES);
  // The least recently used went first: svc0 and svc1 are read again, svc4 is still in memory.
  assert.equal((await list(base, 'svc4')).source, 'cache');
  assert.equal((await list(base, 'svc0')).source, 'zookeeper');
  // Nobody picks for a while: every followed service is let go.
  await eventually(async () => (await followed()) === 0, IDLE_MS * 4, 'the unused services to be let go');
  assert.equal((await list(base, 'svc4')).source, 'zookeeper');
});

test('registry cache › nothing is answered from memory while ZooKeeper is away; once it is back the set is read again before memory serves', async () => {
  const base = newBase();
  await followedService(base, 'svc', 'd1');
  await zk.stop();
  try {
    await eventually(() => !gw.running.gateway.health().ready, 10_000, 'the session to be suspended');
    const p = await pick(base, 'svc');
    assert.equal(p.status, 503, `answered ${p.status} from ${p.source} with ZooKeeper away`);
  } finally {
    await zk.start();
  }
  // The test's own client reconnects too; its write lands once ZooKeeper answers it.
  await eventually(() => rawInstance(base, 'svc', 'd2').then(() => true, (err: Error) => err.message.includes('exists')), 20_000, 'a write after the restart');
  await eventually(async () => {
    const a = await list(base, 'svc');
    return a.status === 200 && a.source === 'cache' && ids(a).join() === 'd1,d2';
  }, 20_000, 'memory to serve the set with d2 after the reconnect');
});
