/**
 * The read-through cache (docs/watch.md, "Read-through"): a read of a node nobody watches sets a
 * data watch and keeps the node, so the next read is answered from memory until the node
 * changes; `cache=false` (REST), `no_cache` (gRPC) and `cache: false` (WebSocket) read ZooKeeper
 * without touching the cache; what it keeps is bounded (idle watches, their bytes, and the
 * let-go watches ZooKeeper still holds, counted on the server with `wchs`); an ACL change
 * through the gateway (which ZooKeeper notifies to no watch) stops answers from memory; a
 * session expiry drops it all.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { NativeZkClient } from '../../src/zk/native-client.js';
import { grpcClient, type GrpcTestClient } from '../support/grpc-client.js';
import { eventually, startTestGateway, type TestGateway } from '../support/test-gateway.js';
import { WsTestClient } from '../support/ws-client.js';
import { connectRaw } from '../support/zk-tree.js';
import { RELEASED_PER_IDLE } from '../../src/core/watch/tenant-watches.js';
import { expireSession, fourLetter, startZkServer, type ZkStandalone } from '../support/zk-server.js';

const MAX_IDLE = 5;
const MAX_IDLE_BYTES = 3000;
let zk: ZkStandalone;
let gw: TestGateway;
let raw: NativeZkClient;

before(async () => {
  zk = await startZkServer();
  gw = await startTestGateway(zk.connectString, {
    tenants: [{ name: 'default', sessionTimeoutMs: 6000 }],
    watch: { maxIdleWatches: MAX_IDLE, maxIdleBytes: MAX_IDLE_BYTES },
  });
  raw = await connectRaw(zk.connectString);
  await raw.create('/rt', Buffer.from(''), 'persistent');
});

after(async () => {
  raw?.close();
  await gw?.close();
  await zk?.close();
});

interface Read {
  status: number;
  data?: string;
  code?: string;
  source: string | null;
}
async function read(path: string, query = ''): Promise<Read> {
  const res = await fetch(`${gw.base}/v1/nodes${path}${query}`);
  const body = (await res.json()) as { data?: string; code?: string };
  return { status: res.status, data: body.data, code: body.code, source: res.headers.get('x-zkgate-source') };
}

/** Data watches ZooKeeper holds (all sessions: only the gateway's set any here). */
async function serverWatches(): Promise<number> {
  const m = /Total watches:(\d+)/.exec(await fourLetter(zk.clientPort, 'wchs'));
  assert.ok(m, 'wchs answered');
  return Number(m[1]);
}

async function metric(name: string): Promise<number> {
  const text = await (await fetch(`${gw.base}/metrics`)).text();
  const m = new RegExp(`^${name}\\{tenant="default"\\} (\\d+)`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

test('read-through › the second read of a node is answered from memory, and a change by another client reaches it', async () => {
  await raw.create('/rt/a', Buffer.from('a0'), 'persistent');
  const adoptedBefore = await metric('zkgate_read_cache_adopted');
  assert.deepEqual(await read('/rt/a'), { status: 200, data: 'a0', code: undefined, source: 'zookeeper' });
  assert.deepEqual(await read('/rt/a'), { status: 200, data: 'a0', code: undefined, source: 'cache' });
  assert.equal(await metric('zkgate_read_cache_adopted'), adoptedBefore + 1);
  // A write by another ZooKeeper client: its notification ends the answers from memory, without
  // a read of its own (the idle watch is let go), and the next read sees the new data.
  const watchesBefore = await serverWatches();
  await raw.set('/rt/a', Buffer.from('a1'), -1);
  const next = await eventually(async () => {
    const r = await read('/rt/a');
    return r.data === 'a1' ? r : undefined;
  }, 10_000, 'the direct write to be read');
  assert.equal(next.source, 'zookeeper', 'the first read after the change goes to ZooKeeper');
  assert.deepEqual(await read('/rt/a'), { status: 200, data: 'a1', code: undefined, source: 'cache' });
  assert.equal(await serverWatches(), watchesBefore, 'one watch per cached node, re-armed by the read after the change');
});

test('read-through › a write through the gateway is seen by the very next read (read-your-writes)', async () => {
  await raw.create('/rt/ryw', Buffer.from('w0'), 'persistent');
  await read('/rt/ryw');
  for (let i = 1; i <= 30; i++) {
    const put = await fetch(`${gw.base}/v1/nodes/rt/ryw`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ data: `w${i}` }) });
    assert.equal(put.status, 200);
    const r = await read('/rt/ryw');
    assert.equal(r.data, `w${i}`, `read after write ${i} (from ${r.source})`);
    assert.equal((await read('/rt/ryw')).data, `w${i}`);
  }
});

test('read-through › cache=false, no_cache and cache: false read ZooKeeper and do not fill the cache', async () => {
  await raw.create('/rt/nc', Buffer.from('n0'), 'persistent');
  for (let i = 0; i < 3; i++) assert.equal((await read('/rt/nc', '?cache=false')).source, 'zookeeper');
  const grpc: GrpcTestClient = grpcClient(gw.running.grpcPort);
  const ws = await WsTestClient.open(`ws://127.0.0.1:${gw.running.httpPort}/v1/ws`);
  try {
    for (let i = 0; i < 2; i++) {
      const g = await grpc.unary<{ source: string }>('Znodes', 'Get', { path: '/rt/nc', noCache: true });
      assert.equal(g.source, 'zookeeper');
      ws.send({ op: 'call', id: `g${i}`, method: 'Znodes.Get', params: { path: '/rt/nc', cache: false } });
      const result = (await ws.take((m) => m.type === 'result' && m.id === `g${i}`)).result as { data: string; source: string };
      assert.deepEqual([result.data, result.source], ['n0', 'zookeeper']);
    }
    // Nothing above put the node in the cache: the first default read is ZooKeeper's, then memory,
    // on every transport.
    assert.equal((await read('/rt/nc')).source, 'zookeeper');
    assert.equal((await grpc.unary<{ source: string }>('Znodes', 'Get', { path: '/rt/nc' })).source, 'cache');
    ws.send({ op: 'call', id: 'g9', method: 'Znodes.Get', params: { path: '/rt/nc' } });
    assert.equal(((await ws.take((m) => m.type === 'result' && m.id === 'g9')).result as { source: string }).source, 'cache');
    // cache=false still reads ZooKeeper for a cached node.
    assert.equal((await read('/rt/nc', '?cache=false')).source, 'zookeeper');
    const bad = await read('/rt/nc', '?cache=maybe');
    assert.deepEqual([bad.status, bad.code], [400, 'INVALID_ARGUMENT']);
  } finally {
    grpc.close();
    ws.close();
  }
});

test('read-through › a missing node is 404 in one read, and its creation is seen', async () => {
  assert.deepEqual(await read('/rt/later'), { status: 404, data: undefined, code: 'NO_NODE', source: null });
  assert.equal((await read('/rt/later')).status, 404);
  await raw.create('/rt/later', Buffer.from('here'), 'persistent');
  await eventually(async () => (await read('/rt/later')).data === 'here', 10_000, 'the created node to be read');
});

test('read-through › an ACL change through the gateway ends answers from memory at once', async () => {
  await raw.create('/rt/acl', Buffer.from('secret'), 'persistent');
  await read('/rt/acl');
  assert.equal((await read('/rt/acl')).source, 'cache');
  // Write and admin, no read: ZooKeeper notifies no watch of an ACL change.
  const put = await fetch(`${gw.base}/v1/acl/rt/acl`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ acl: [{ scheme: 'world', id: 'anyone', perms: 'wa' }] }) });
  assert.equal(put.status, 200);
  const denied = await read('/rt/acl');
  assert.deepEqual([denied.status, denied.code], [403, 'NO_AUTH']);
  assert.equal((await read('/rt/acl')).status, 403, 'still read from ZooKeeper');
  const back = await fetch(`${gw.base}/v1/acl/rt/acl`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ acl: [{ scheme: 'world', id: 'anyone', perms: 'rwcda' }] }) });
  assert.equal(back.status, 200);
  assert.equal((await read('/rt/acl')).data, 'secret');
});

test('read-through › bounded: idle watches, their bytes, and the let-go watches ZooKeeper still holds', async () => {
  await raw.create('/rt/many', Buffer.from(''), 'persistent');
  const bound = MAX_IDLE * (1 + RELEASED_PER_IDLE); // idle ones + let-go ones still on the server
  const N = bound + 20;
  for (let i = 0; i < N; i++) await raw.create(`/rt/many/n${i}`, Buffer.alloc(1000, 0x61), 'persistent');
  const before = await serverWatches();
  for (let i = 0; i < N; i++) assert.equal((await read(`/rt/many/n${i}`)).status, 200);
  assert.ok((await metric('zkgate_watch_idle_watches')) <= MAX_IDLE, 'idle watches within watch.maxIdleWatches');
  assert.ok((await metric('zkgate_watch_idle_bytes')) <= MAX_IDLE_BYTES, 'idle bytes within watch.maxIdleBytes');
  // Let-go watches stay on the server until their node changes: adoption of new nodes stops at the bound.
  const held = (await serverWatches()) - before;
  assert.ok(held <= bound, `the cache left at most ${bound} watches on ZooKeeper (${held})`);
  assert.ok(held >= MAX_IDLE, `it did cache (${held})`);
  // Past the bound reads still work, from ZooKeeper or memory, and add no watch on the server.
  for (let i = 0; i < N; i++) assert.equal((await read(`/rt/many/n${i}`)).status, 200);
  assert.equal(await serverWatches(), before + held);
  const plain = await read(`/rt/many/n${N - 1}`);
  assert.equal(plain.source, 'zookeeper', 'a node past the bound is read from ZooKeeper every time');
  // The let-go watches fire when their nodes change; then reads adopt again.
  for (let i = 0; i < N; i++) await raw.set(`/rt/many/n${i}`, Buffer.from('b'), -1);
  await eventually(async () => (await serverWatches()) === before, 10_000, 'every cache watch to fire');
  await read(`/rt/many/n${N - 1}`);
  assert.equal((await read(`/rt/many/n${N - 1}`)).source, 'cache');
});

test('read-through › after a session expiry the cache answers nothing it held before', async () => {
  await raw.create('/rt/exp', Buffer.from('e0'), 'persistent');
  await read('/rt/exp');
  assert.equal((await read('/rt/exp')).source, 'cache');
  const tenant = gw.running.gateway.tenant();
  await expireSession(zk.connectString, tenant.session.sessionId, tenant.session.sessionPassword);
  // The change in the gap is never notified to the old session.
  await raw.set('/rt/exp', Buffer.from('e1'), -1);
  const r = await eventually(async () => {
    const x = await read('/rt/exp');
    return x.status === 200 ? x : undefined;
  }, 20_000, 'a read on the new session');
  assert.deepEqual([r.data, r.source], ['e1', 'zookeeper']);
  assert.equal((await read('/rt/exp')).source, 'cache');
});
