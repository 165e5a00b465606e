import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess } from 'node:child_process';
import { spawnClean } from '../../src/zk/index.js';
import { createInterface } from 'node:readline';
import { generateApiKey, hashApiKey, type Tenant } from '../../src/core/index.js';
import { expireSession, fourLetter, startZkServer, type ZkStandalone } from '../support/zk-server.js';
import { eventually, startTestGateway, type TestGateway } from '../support/test-gateway.js';
import { restClient, type RestClient } from '../support/openapi.js';
import { WsTestClient, type Json } from '../support/ws-client.js';

const PY_CLIENT = `
import json, sys, websocket
ws = websocket.create_connection(sys.argv[1], timeout=15)
print(json.loads(ws.recv())["type"], flush=True)
ws.send(json.dumps({"op": "subscribe", "id": "py", "path": sys.argv[2]}))
for _ in range(int(sys.argv[3])):
    m = json.loads(ws.recv())
    if m["type"] == "event":
        print(m["event"]["type"], m["event"].get("data"), flush=True)
    else:
        print(m["type"], flush=True)
ws.close()
`;

/**
 * Subscribes with a small fixed receive buffer, then stops reading until stdin says so. Then,
 * with `close` as the third argument, reads to the close frame and prints its code; else prints
 * each message's type (for an event, its type and the part of its data before a colon) until the
 * event whose data is that argument.
 */
const PY_STALLED_CLIENT = `
import json, socket, sys, websocket
ws = websocket.create_connection(sys.argv[1], timeout=60, sockopt=((socket.SOL_SOCKET, socket.SO_RCVBUF, 4096),))
ws.recv()
ws.send(json.dumps({"op": "subscribe", "id": "slow", "path": sys.argv[2]}))
print("subscribed", flush=True)
sys.stdin.readline()
while sys.argv[3] == "close":
    op, data = ws.recv_data(control_frame=True)
    if op == websocket.ABNF.OPCODE_CLOSE:
        print("closed", int.from_bytes(data[:2], "big"), data[2:].decode(), flush=True)
        sys.exit(0)
while True:
    m = json.loads(ws.recv())
    if m["type"] != "event":
        print(m["type"], flush=True)
        continue
    data = m["event"].get("data") or ""
    print(m["event"]["type"], data.split(":")[0], flush=True)
    if data == sys.argv[3]:
        break
ws.close()
`;

describe('watch over WebSocket', () => {
  let zk: ZkStandalone;
  let gw: TestGateway;
  let rest: RestClient;
  let tenant: Tenant;
  let url: string;
  const clients: WsTestClient[] = [];
  const procs: ChildProcess[] = [];
  const zkc = () => tenant.client();
  const open = async (headers?: Record<string, string>) => {
    const c = await WsTestClient.open(url, headers);
    clients.push(c);
    return c;
  };
  /** Runs a Python client (`script` with `args`), its output lines in `out`, once it says `subscribed`. */
  const python = async (script: string, args: string[]) => {
    const p = spawnClean('/usr/bin/python3', ['-c', script, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
    procs.push(p);
    const out: string[] = [];
    createInterface({ input: p.stdout as NodeJS.ReadableStream }).on('line', (l) => out.push(l));
    await eventually(() => out.includes('subscribed'), 10_000, 'python client subscribed');
    return { p, out };
  };
  /** A subscriber of `path` on `wsUrl` (id `f`) that reads, once it has the current state. */
  const reader = async (wsUrl: string, path: string) => {
    const c = await WsTestClient.open(wsUrl);
    clients.push(c);
    c.send({ op: 'subscribe', id: 'f', path });
    await c.event('f', 'current');
    return c;
  };

  before(async () => {
    zk = await startZkServer();
    gw = await startTestGateway(zk.connectString, {
      // The longest session the harness's tickTime allows: fewer suspensions on a loaded machine.
      tenants: [{ name: 'default', sessionTimeoutMs: 10_000 }],
      // Pings every 1.5 s: quick enough to test, slow enough that a loaded machine answers in time.
      watch: { heartbeatMs: 1500, queueSize: 8 },
      limits: { wsMaxMessageBytes: 2048, wsMessagesPerSecond: 5000, maxSubscriptionsPerTenant: 5000 },
    });
    rest = restClient(gw.base);
    tenant = gw.running.gateway.tenant();
    url = `${gw.base.replace('http', 'ws')}/v1/ws`;
  });
  after(async () => {
    for (const p of procs) p.kill('SIGKILL'); // a failed test must not leave a child holding this process open
    for (const c of clients) c.ws.terminate();
    await gw?.close();
    await zk?.close();
  });

  test('one socket carries many subscriptions by id; unsubscribe stops only that one', async () => {
    await zkc().create('/w2', Buffer.alloc(0), 'persistent');
    const c = await open();
    c.send({ op: 'subscribe', id: 'kids', path: '/w2', kind: 'children' });
    c.send({ op: 'subscribe', id: 'data', path: '/w2', kind: 'data', encoding: 'base64' });
    await c.event('kids', 'current');
    await c.event('data', 'current');
    await zkc().create('/w2/x', Buffer.alloc(0), 'persistent');
    assert.deepEqual((await c.event('kids', 'children_changed')).event.children, ['x']);
    c.send({ op: 'unsubscribe', id: 'kids' });
    await c.take((m) => m.type === 'unsubscribed' && m.id === 'kids');
    await zkc().create('/w2/y', Buffer.alloc(0), 'persistent');
    await zkc().set('/w2', Buffer.from('hi'));
    const d = await c.event('data', 'data_changed');
    assert.deepEqual({ data: d.event.data, encoding: d.event.encoding }, { data: Buffer.from('hi').toString('base64'), encoding: 'base64' });
    assert.equal(c.inbox.filter((m) => m.type === 'event' && m.id === 'kids').length, 0, 'no events after unsubscribe');
    c.close();
  });

  test('bad messages get error replies and leave the socket usable', async () => {
    const c = await open();
    const cases: [string, string, string][] = [
      ['{"op":"fly","id":"x"}', 'INVALID_ARGUMENT', 'fly'],
      ['{"op":"subscribe","id":"b1","path":"no-slash"}', 'INVALID_PATH', 'subscribe'],
      ['{"op":"subscribe","id":"b2","path":"/a","kind":"everything"}', 'INVALID_ARGUMENT', 'subscribe'],
      ['not json', 'INVALID_ARGUMENT', ''],
      ['{"op":"unsubscribe","id":"nope"}', 'NOT_FOUND', 'unsubscribe'],
    ];
    for (const [text, code, op] of cases) {
      c.send(text);
      const err = await c.take((m) => m.type === 'error');
      assert.equal(err.code, code, text.slice(0, 60));
      if (op) assert.equal(err.op, op);
    }
    c.ws.send(Buffer.from([1, 2, 3]));
    assert.equal((await c.take((m) => m.type === 'error')).code, 'INVALID_ARGUMENT');
    c.send({ op: 'subscribe', id: 'dup', path: '/w1' });
    await c.event('dup', 'current');
    c.send({ op: 'subscribe', id: 'dup', path: '/w1' });
    assert.equal((await c.take((m) => m.type === 'error')).id, 'dup');
    c.send({ op: 'ping', data: 7 });
    assert.deepEqual(await c.take((m) => m.type === 'pong'), { type: 'pong', data: 7 });
    assert.equal(c.ws.readyState, c.ws.OPEN);
    c.close();
  });

  test('a message over limits.wsMaxMessageBytes closes the socket with 1009 (cut at the protocol level)', async () => {
    const c = await open();
    c.send(JSON.stringify({ op: 'ping', data: 'x'.repeat(5000) }));
    assert.equal((await c.closed).code, 1009);
    assert.equal(c.all.filter((m) => m.type === 'error').length, 0, 'no error reply: the message was not read');
  });

  test('the server pings; a client answering pongs stays connected', async () => {
    const c = await open();
    let pings = 0;
    c.ws.on('ping', () => pings++);
    await eventually(() => pings >= 2, 10_000, 'two pings');
    assert.equal(c.ws.readyState, c.ws.OPEN);
    c.close();
  });

  test('an unknown tenant is refused at the upgrade with the REST error', async () => {
    await assert.rejects(WsTestClient.open(url, { 'Zkgate-Tenant': 'nobody' }), /HTTP 404/);
  });

  test('a lease bound to the socket is kept alive while it is open; its ephemerals go TTL after it closes', async () => {
    const c = await open();
    c.send({ op: 'lease_grant', ttlMs: 1500 });
    const { lease } = await c.take((m) => m.type === 'lease');
    assert.equal(lease.state, 'active');
    const r = await rest.json('POST', '/v1/nodes/eph', { mode: 'ephemeral', leaseId: lease.id });
    assert.equal(r.status, 201);
    await new Promise((res) => setTimeout(res, 2500)); // longer than the TTL: the socket keeps it alive
    assert.notEqual(await zkc().exists('/eph'), null);
    const closedAt = Date.now();
    c.close();
    await eventually(async () => (await zkc().exists('/eph')) === null, 6000, 'ephemeral removed after the TTL');
    const took = Date.now() - closedAt;
    assert.ok(took >= 1000 && took < 4000, `removed ${took} ms after the socket closed`);
  });

  test('a lease granted over REST can be attached to a socket', async () => {
    const grant = await rest.json('POST', '/v1/leases', { ttlMs: 1000 });
    const id = (grant.body as { id: string }).id;
    const c = await open();
    c.send({ op: 'lease_attach', leaseId: id });
    assert.equal((await c.take((m) => m.type === 'lease')).lease.id, id);
    await new Promise((res) => setTimeout(res, 1800));
    assert.equal(((await rest.json('GET', `/v1/leases/${id}`)).body as { state: string }).state, 'active');
    c.send({ op: 'lease_attach', leaseId: 'gw-x.0000' });
    assert.equal((await c.take((m) => m.type === 'error')).code, 'INVALID_ARGUMENT', 'one lease per socket');
    c.close();
  });

  test('1,000 subscriptions on one path over WebSocket hold one ZooKeeper watch (wchc, /metrics); the 1,001st is refused', async () => {
    await zkc().create('/hot', Buffer.from('0'), 'persistent');
    const c = await open();
    let pending = Array.from({ length: 1000 }, (_, i) => `h${i}`);
    // On a loaded machine the session may be suspended for a moment: subscribes then fail fast
    // with UNAVAILABLE (as REST calls do) and are sent again.
    for (let round = 0; pending.length > 0 && round < 5; round++) {
      for (const id of pending) c.send({ op: 'subscribe', id, path: '/hot' });
      const settled = (id: string) => (m: Json) => m.id === id && ((m.type === 'event' && m.event.type === 'current') || m.type === 'error');
      await eventually(() => pending.every((id) => c.all.some(settled(id))), 30_000, 'every subscribe answered').catch((e: Error) => {
        const missing = pending.filter((id) => !c.all.some(settled(id)));
        const seen = c.all.filter((m) => m.id === missing[0]).map((m) => m.type);
        throw new Error(`${e.message}: ${missing.length} unanswered (${missing[0]} got ${JSON.stringify(seen)}); hub ${JSON.stringify(gw.running.gateway.watches.stats())}; session ${tenant.session.state}`);
      });
      const failed = new Set(c.inbox.filter((m) => m.type === 'error' && m.code === 'UNAVAILABLE').map((m) => m.id as string));
      c.inbox.splice(0, c.inbox.length, ...c.inbox.filter((m) => !(m.type === 'error' && failed.has(m.id))));
      c.all.splice(0, c.all.length, ...c.all.filter((m) => !(m.type === 'error' && failed.has(m.id))));
      pending = pending.filter((id) => failed.has(id));
      if (pending.length) await eventually(() => tenant.ready, 15_000, 'session back');
    }
    assert.equal(c.all.filter((m) => m.type === 'event' && m.event.type === 'current').length, 1000);
    await zkc().set('/hot', Buffer.from('1'));
    await eventually(() => c.all.filter((m) => m.type === 'event' && m.event.type === 'data_changed').length >= 1000, 30_000, '1000 changes');
    const dump = await fourLetter(zk.clientPort, 'wchc');
    const mine = dump.split(/\n(?=0x)/).find((s) => s.startsWith(`0x${tenant.session.sessionId}`)) ?? '';
    assert.equal(mine.split('\n').filter((l) => l.trim() === '/hot').length, 1, `wchc:\n${dump}`);
    const metrics = (await rest.request('GET', '/metrics')).body as string;
    assert.match(metrics, /zkgate_watch_subscribers\{tenant="default",kind="data"\} 1000/);
    c.send({ op: 'subscribe', id: 'one-too-many', path: '/hot' });
    assert.equal((await c.take((m) => m.type === 'error' && m.id === 'one-too-many', 20_000)).code, 'LIMIT_EXCEEDED');
    c.close();
    await eventually(() => (gw.running.gateway.watches.stats()[0]?.subscribers.data ?? 1) === 0, 20_000, 'subscriptions released on close');
  });

  test('a slow consumer is cut with SLOW_CONSUMER (close 4408) while another socket continues', async () => {
    // A gateway of its own with slow heartbeats: here the socket that stops reading must be cut
    // by its full queue, not dropped for missing pongs.
    const gw2 = await startTestGateway(zk.connectString, { watch: { queueSize: 8 } });
    const t2 = gw2.running.gateway.tenant();
    const url2 = `${gw2.base.replace('http', 'ws')}/v1/ws`;
    try {
      await t2.client().create('/flood', Buffer.alloc(0), 'persistent');
      // The slow one: Python's websocket client with a small fixed receive buffer that stops reading.
      const { p: slow, out } = await python(PY_STALLED_CLIENT, [url2, '/flood', 'close']);
      const fast = await reader(url2, '/flood');
      const big = 'x'.repeat(400_000);
      const cut = () => (gw2.running.gateway.watches.stats()[0]?.slowConsumers ?? 0) >= 1;
      for (let i = 0; i < 100 && !cut(); i++) {
        await t2.client().set('/flood', Buffer.from(`${i}:${big}`));
        await fast.event('f', 'data_changed');
      }
      await eventually(cut, 10_000, 'slow consumer detected');
      slow.stdin?.end('read\n'); // now read: the buffered events, then the close frame
      const code = await new Promise<number | null>((r) => slow.on('exit', r));
      assert.equal(code, 0);
      assert.match(out.at(-1) ?? '', /^closed 4408 SLOW_CONSUMER: /);
      await t2.client().set('/flood', Buffer.from('after'));
      assert.equal((await fast.event('f', 'data_changed')).event.data, 'after');
      assert.equal(fast.ws.readyState, fast.ws.OPEN);
      fast.close();
    } finally {
      await gw2.close();
    }
  });

  test('a subscriber that falls behind within queueSize gets every event in order once it reads again, then live ones', async () => {
    // More event bytes than the kernel buffers of a socket whose reader stopped: the pump must
    // wait for the socket and resume once it drained (events meanwhile in the bounded queue).
    const gw2 = await startTestGateway(zk.connectString, { watch: { queueSize: 64 } });
    const t2 = gw2.running.gateway.tenant();
    const url2 = `${gw2.base.replace('http', 'ws')}/v1/ws`;
    try {
      await t2.client().create('/behind', Buffer.from('start'), 'persistent');
      const { p: py, out } = await python(PY_STALLED_CLIENT, [url2, '/behind', 'after']);
      // A second subscriber that reads: each set is published (not coalesced) before the next.
      const fast = await reader(url2, '/behind');
      const big = 'x'.repeat(400_000);
      const sets = 24; // 9.6 MB of events
      for (let i = 0; i < sets; i++) {
        await t2.client().set('/behind', Buffer.from(`${i}:${big}`));
        await fast.event('f', 'data_changed');
      }
      py.stdin?.end('read\n');
      await eventually(() => out.at(-1) === `data_changed ${sets - 1}`, 30_000, 'caught up');
      await t2.client().set('/behind', Buffer.from('after'));
      const code = await new Promise<number | null>((r) => py.on('exit', r));
      assert.equal(code, 0);
      const events = out.slice(out.indexOf('subscribed') + 1);
      assert.deepEqual(events, ['subscribed', 'current start', ...Array.from({ length: sets }, (_, i) => `data_changed ${i}`), 'data_changed after']);
      assert.equal(gw2.running.gateway.watches.stats()[0]?.slowConsumers, 0);
      fast.close();
    } finally {
      await gw2.close();
    }
  });

  test("Python's websocket client (Debian python3-websocket) subscribes and gets events with data", async () => {
    await zkc().create('/py', Buffer.from('one'), 'persistent');
    const py = spawnClean('/usr/bin/python3', ['-c', PY_CLIENT, url, '/py', '3'], { stdio: ['ignore', 'pipe', 'inherit'] });
    procs.push(py);
    const lines: string[] = [];
    createInterface({ input: py.stdout as NodeJS.ReadableStream }).on('line', (l) => lines.push(l));
    await eventually(() => lines.length >= 3, 10_000, 'welcome, subscribed, current');
    await zkc().set('/py', Buffer.from('two'));
    const code = await new Promise<number | null>((r) => py.on('exit', r));
    assert.equal(code, 0);
    assert.deepEqual(lines, ['welcome', 'subscribed', 'current one', 'data_changed two']);
  });

  test('a forced session expiry yields resync events and a lease-loss event naming what was lost', async () => {
    await zkc().create('/exp', Buffer.from('v'), 'persistent');
    const c = await open();
    c.send({ op: 'lease_grant', ttlMs: 10_000 });
    const { lease } = await c.take((m) => m.type === 'lease');
    await rest.json('POST', '/v1/nodes/exp-eph', { mode: 'ephemeral', leaseId: lease.id });
    c.send({ op: 'subscribe', id: 'e', path: '/exp' });
    c.send({ op: 'subscribe', id: 'k', path: '/', kind: 'children' });
    await c.event('e', 'current');
    await c.event('k', 'current');
    await expireSession(zk.connectString, tenant.session.sessionId, tenant.session.sessionPassword);
    const lost = await c.take((m) => m.type === 'lease_state' && m.state === 'lost', 20_000);
    assert.equal(lost.reason, 'session_expired');
    assert.deepEqual(lost.owned, [{ path: '/exp-eph', kind: 'node' }]);
    // The old session may reconnect once before it is gone (a race of the forced expiry); the
    // resync that matters is the one of the new session.
    const afterExpiry = (id: string) => (m: Json) => m.type === 'event' && m.id === id && m.event.type === 'resync' && /expired/.test(m.event.note);
    const r1 = await c.take(afterExpiry('e'), 20_000);
    assert.equal(r1.event.data, 'v');
    assert.match(r1.event.note, /coalesced/);
    const r2 = await c.take(afterExpiry('k'), 20_000);
    assert.ok(!r2.event.children.includes('exp-eph'), 'the lost ephemeral is gone from the resynced listing');
    c.close();
  });
  test('election observe sends the current leader first, then every change including "no leader"', async () => {
    const lease = (await rest.json('POST', '/v1/leases', { ttlMs: 10_000 })).body as { id: string };
    const c = await open();
    c.send({ op: 'observe', id: 'el', path: '/elect/svc' });
    assert.equal((await c.take((m) => m.type === 'subscribed' && m.id === 'el')).kind, 'election');
    assert.equal((await c.take((m) => m.type === 'leader' && m.id === 'el')).state.leader, null);
    const won = await rest.json('POST', '/v1/elections/elect/svc', { leaseId: lease.id, value: 'node-a', waitMs: 5000 });
    assert.equal(won.status, 200, JSON.stringify(won.body));
    const node = (won.body as { node: string }).node;
    const led = await c.take((m) => m.type === 'leader' && m.id === 'el' && m.state.leader !== null);
    assert.deepEqual([led.state.leader.node, led.state.leader.value], [node, 'node-a']);
    const resigned = await rest.json('DELETE', '/v1/elections/elect/svc', undefined, { query: { leaseId: lease.id, node } });
    assert.equal(resigned.status, 200);
    assert.equal((await c.take((m) => m.type === 'leader' && m.id === 'el')).state.leader, null, 'no leader is reported');
    c.send({ op: 'unsubscribe', id: 'el' });
    await c.take((m) => m.type === 'unsubscribed' && m.id === 'el');
    c.close();
  });
});
