/**
 * The watch-fed read cache (docs/watch.md, "Read cache"): a node the hub watches is read from
 * the watch's state (`X-Zkgate-Source: cache`) only while that watch vouches for it; writes
 * through the gateway are seen by the next read; `?sync=true` reads ZooKeeper after a sync;
 * while the session is down nothing is answered from memory, and after an expiry (when a
 * notification may have been lost) the first answers come from ZooKeeper with the change made
 * in the gap.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { NativeZkClient } from '../../src/zk/native-client.js';
import { eventually, startTestGateway, type TestGateway } from '../support/test-gateway.js';
import { WsTestClient } from '../support/ws-client.js';
import { connectRaw } from '../support/zk-tree.js';
import { expireSession, fourLetter, parseMntr, startZkServer, type ZkStandalone } from '../support/zk-server.js';

let zk: ZkStandalone;
let gw: TestGateway;
let raw: NativeZkClient;
let ws: WsTestClient;

before(async () => {
  zk = await startZkServer();
  gw = await startTestGateway(zk.connectString, { tenants: [{ name: 'default', sessionTimeoutMs: 6000 }] });
  await eventually(() => gw.running.gateway.health().ready, 20_000, 'gateway ready');
  raw = await connectRaw(zk.connectString);
  await raw.create('/rc', Buffer.from('v0'), 'persistent');
  ws = await WsTestClient.open(`ws://127.0.0.1:${gw.running.httpPort}/v1/ws`);
  ws.send({ op: 'subscribe', id: 'rc', path: '/rc', kind: 'data' });
  await ws.event('rc', 'current');
});

after(async () => {
  ws?.close();
  raw?.close();
  await gw?.close();
  await zk?.close();
});

async function read(query = ''): Promise<{ status: number; data?: string; source: string | null }> {
  const res = await fetch(`${gw.base}/v1/nodes/rc${query}`);
  const body = (await res.json()) as { data?: string };
  return { status: res.status, data: body.data, source: res.headers.get('x-zkgate-source') };
}

test('read cache › a watched node is answered from the watch, an unwatched one from ZooKeeper', async () => {
  await eventually(async () => (await read()).source === 'cache', 10_000, 'a cache answer');
  assert.deepEqual(await read(), { status: 200, data: 'v0', source: 'cache' });
  await raw.create('/unwatched', Buffer.from('u'), 'persistent');
  const res = await fetch(`${gw.base}/v1/nodes/unwatched`);
  assert.equal(res.headers.get('x-zkgate-source'), 'zookeeper');
  const metrics = await (await fetch(`${gw.base}/metrics`)).text();
  assert.match(metrics, /zkgate_read_cache_hits\{tenant="default"\} [1-9]/);
});

test('read cache › every write through the gateway is seen by the next read (REST and gRPC-shaped WebSocket calls)', async () => {
  for (let i = 1; i <= 40; i++) {
    const put = await fetch(`${gw.base}/v1/nodes/rc`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ data: `w${i}` }) });
    assert.equal(put.status, 200);
    const r = await read();
    assert.equal(r.data, `w${i}`, `read after write ${i} (from ${r.source})`);
  }
  ws.send({ op: 'call', id: 'g', method: 'Znodes.Get', params: { path: '/rc' } });
  const result = (await ws.take((m) => m.type === 'result' && m.id === 'g')).result as { data: string; source: string };
  assert.equal(result.data, 'w40');
  assert.match(result.source, /^(cache|zookeeper)$/);
});

test('read cache › sync=true reads ZooKeeper after a sync and sees a write made by another client', async () => {
  await raw.set('/rc', Buffer.from('direct'), -1);
  const r = await read('?sync=true');
  assert.deepEqual(r, { status: 200, data: 'direct', source: 'zookeeper' });
  // The watch notification follows: the cache then holds the new state too.
  await eventually(async () => {
    const c = await read();
    return c.source === 'cache' && c.data === 'direct';
  }, 10_000, 'the cache to follow the direct write');
});

test('read cache › nothing is answered from memory while ZooKeeper is away; after it is back the cache serves again', async () => {
  await eventually(async () => (await read()).source === 'cache', 10_000, 'a cache answer');
  await zk.stop();
  try {
    await eventually(() => !gw.running.gateway.health().ready, 10_000, 'the session to be suspended');
    const r = await read();
    assert.equal(r.status, 503, `answered ${r.status} from ${r.source} with ZooKeeper away`);
  } finally {
    await zk.start();
  }
  await eventually(async () => (await read()).source === 'cache', 20_000, 'a cache answer after the reconnect');
  assert.equal((await read()).data, 'direct');
});

test('read cache › after a session expiry the change made in the gap is read, never the state from before', async () => {
  await eventually(async () => (await read()).source === 'cache', 10_000, 'a cache answer');
  const tenant = gw.running.gateway.tenant();
  await expireSession(zk.connectString, tenant.session.sessionId, tenant.session.sessionPassword);
  // The old session is gone with its watch: this change is never notified to the gateway.
  // The test's own client may still be reconnecting after the previous test's ZooKeeper restart.
  await eventually(() => raw.set('/rc', Buffer.from('in-the-gap'), -1).then(() => true, () => false), 20_000, 'the gap write');
  const sources = new Set<string>();
  await eventually(async () => {
    const r = await read();
    if (r.status === 200) {
      assert.equal(r.data, 'in-the-gap', `stale answer from ${r.source}`);
      sources.add(r.source ?? '');
    }
    return sources.has('cache');
  }, 20_000, 'the cache to serve the new session\'s state');
});

test('read cache › an uncontended lock acquire takes its node\'s stat from the ownership watch: two ZooKeeper reads per cycle, not three', async () => {
  const post = async (path: string, body: unknown): Promise<Record<string, string>> =>
    (await (await fetch(`${gw.base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })).json()) as Record<string, string>;
  const lease = await post('/v1/leases', { ttlMs: 30_000 });
  const cycle = async (): Promise<void> => {
    const hold = await post('/v1/locks/rc-lock', { leaseId: lease.id });
    assert.match(hold.fencingToken ?? '', /^\d+$/);
    const res = await fetch(`${gw.base}/v1/locks/rc-lock?leaseId=${lease.id}&node=${encodeURIComponent(hold.node ?? '')}`, { method: 'DELETE' });
    assert.equal(res.status, 200);
  };
  const reads = async (): Promise<number> => Number(parseMntr(await fourLetter(zk.clientPort, 'mntr')).get('zk_cnt_readlatency'));
  await cycle(); // creates the lock's parent
  const before = await reads();
  for (let i = 0; i < 10; i++) await cycle();
  // The listing and the ownership watch's read; the holder's stat no longer costs a third.
  const perCycle = ((await reads()) - before) / 10;
  assert.ok(perCycle <= 2.2, `${perCycle} ZooKeeper reads per acquire + release`);
});
