/**
 * What the real `zkgate serve` tells an operator: one access line per REST request (method,
 * route template, status, duration, tenant, key name, request id echoed in `X-Request-Id`),
 * "connecting to …" at start, and expected client outcomes (4xx, a client killed mid-wait)
 * never logged at error level or with a stack.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startZkServer, type ZkStandalone } from '../support/zk-server.js';
import { serveListening, type Listening } from '../support/cli-process.js';
import { keygen } from '../../src/cli/keygen.js';
import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { grpcClient } from '../support/grpc-client.js';
import { WsTestClient } from '../support/ws-client.js';
import { WebSocket } from 'ws';

let zk: ZkStandalone;
let gw: Listening;
const admin = keygen({ tenant: 'default', role: 'admin', name: 'ops-admin' });
const auth = { authorization: `Bearer ${admin.key}` };

before(async () => {
  zk = await startZkServer();
  gw = await serveListening(['--zookeeper', zk.connectString, '--log-level', 'info'], {
    tenants: [{ name: 'default', apiKeys: [{ name: 'ops-admin', sha256: admin.sha256, role: 'admin' }] }],
  });
});
after(async () => {
  await gw?.kill();
  await zk?.close();
});

interface LogLine {
  level: number;
  msg: string;
  [k: string]: unknown;
}
function lines(): LogLine[] {
  return gw
    .out()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as LogLine);
}
async function accessLine(reqId: string, msg = 'request', more: (l: LogLine) => boolean = () => true): Promise<LogLine> {
  for (let i = 0; i < 100; i++) {
    const l = lines().find((x) => x.msg === msg && x.reqId === reqId && more(x));
    if (l) return l;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`no ${msg} line for ${reqId}:\n${gw.out()}`);
}

describe('logging', () => {
  test('start › logs "connecting to" with the connect string', () => {
    assert.ok(lines().some((l) => l.msg === `connecting to ${zk.connectString}`), gw.out());
  });

  test('access log › one line per request with route template, status, duration, tenant, key name and the echoed request id', async () => {
    const res = await fetch(`${gw.base}/v1/nodes/logging/a?createParents=true`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/octet-stream', 'x-request-id': 'trace-42.a' },
      body: 'x',
    });
    assert.equal(res.status, 201);
    assert.equal(res.headers.get('x-request-id'), 'trace-42.a');
    const l = await accessLine('trace-42.a');
    assert.equal(l.level, 30);
    assert.equal(l.method, 'POST');
    assert.equal(l.route, '/v1/nodes/{path}');
    assert.equal(l.status, res.status);
    assert.equal(typeof l.durationMs, 'number');
    assert.equal(l.tenant, 'default');
    assert.equal(l.key, 'ops-admin');
  });

  test('access log › an unusable incoming request id is replaced by a generated one', async () => {
    const res = await fetch(`${gw.base}/v1/leases/nope`, { headers: { ...auth, 'x-request-id': 'has spaces and "quotes"' } });
    assert.equal(res.status, 404);
    const id = res.headers.get('x-request-id') ?? '';
    assert.match(id, /^[0-9a-f-]{36}$/);
    const l = await accessLine(id);
    assert.equal(l.route, '/v1/leases/{id}');
    assert.equal(l.code, 'LEASE_NOT_FOUND');
  });

  test('access log › one line per gRPC call: method, status name, duration, tenant, key name, the x-request-id echoed in the response metadata', async () => {
    const g = grpcClient(gw.grpcPort, { apiKey: admin.key });
    try {
      const get = (reqId?: string): Promise<{ err: ServiceError; md: Metadata; trailers: Metadata }> =>
        new Promise((resolve) => {
          const md = g.metadata();
          if (reqId) md.set('x-request-id', reqId);
          let initial = new Metadata();
          const call = (g.services.Znodes as unknown as Record<string, Function>).Get!.call(g.services.Znodes, { path: '/logging/none' }, md, (err: ServiceError) =>
            resolve({ err, md: initial, trailers: err.metadata }),
          ) as { on(e: 'metadata', l: (m: Metadata) => void): void };
          call.on('metadata', (m) => (initial = m));
        });
      const { err, trailers } = await get('grpc-trace-7');
      assert.equal(err.code, status.NOT_FOUND);
      assert.equal(trailers.get('x-request-id')[0], 'grpc-trace-7', 'echoed in the trailers of a failed call');
      const l = await accessLine('grpc-trace-7', 'grpc call');
      assert.deepEqual([l.level, l.method, l.status, l.code, l.tenant, l.key], [30, '/zkgate.v1.Znodes/Get', 'NOT_FOUND', 'NO_NODE', 'default', 'ops-admin']);
      assert.equal(typeof l.durationMs, 'number');
      // Without one, a request id is generated and echoed.
      const generated = String((await get()).trailers.get('x-request-id')[0]);
      assert.match(generated, /^[0-9a-f-]{36}$/);
      await accessLine(generated, 'grpc call');
      // A call the client cancels mid-wait is an expected outcome too (checked below: no error line).
      const ok = await g.unary<{ id: string }>('Leases', 'Grant', { ttlMs: 60_000 });
      await g.unary('Locks', 'Acquire', { path: '/logging/grpc-lock', leaseId: ok.id });
      const other = await g.unary<{ id: string }>('Leases', 'Grant', { ttlMs: 60_000 });
      const md = g.metadata();
      md.set('x-request-id', 'grpc-cancel-1');
      const waiting = (g.services.Locks as unknown as Record<string, Function>).Acquire!.call(g.services.Locks, { path: '/logging/grpc-lock', leaseId: other.id, waitMs: { value: 60_000 } }, md, () => undefined) as { cancel(): void };
      await new Promise((r) => setTimeout(r, 300));
      waiting.cancel();
      const cancelled = await accessLine('grpc-cancel-1', 'grpc call');
      assert.equal(cancelled.status, 'CANCELLED');
    } finally {
      g.close();
    }
  });

  test('access log › one line per WebSocket call op and one per connection when it closes (tenant, key, duration, close code, messages in and out)', async () => {
    const ws = await WsTestClient.open(`ws://127.0.0.1:${gw.httpPort}/v1/ws`, auth);
    ws.send({ op: 'call', id: 'q1', method: 'Znodes.Get', params: { path: '/logging/none' } });
    assert.equal((await ws.take((m) => m.id === 'q1')).code, 'NO_NODE');
    ws.send({ op: 'call', id: 'q2', method: 'Znodes.Exists', params: { path: '/' } });
    await ws.take((m) => m.id === 'q2');
    ws.close();
    await ws.closed;
    for (let i = 0; i < 100 && !lines().some((l) => l.msg === 'websocket call' && l.id === 'q1'); i++) await new Promise((r) => setTimeout(r, 50));
    const call = lines().find((l) => l.msg === 'websocket call' && l.id === 'q1') ?? assert.fail(gw.out());
    assert.deepEqual([call.level, call.method, call.status, call.tenant, call.key], [30, 'Znodes.Get', 'NO_NODE', 'default', 'ops-admin']);
    assert.equal((await accessLine(call.reqId as string, 'websocket call', (l) => l.id === 'q2')).status, 'OK');
    const closed = await accessLine(call.reqId as string, 'websocket closed');
    assert.deepEqual([closed.level, closed.tenant, closed.key, closed.closeCode, closed.messagesIn, closed.messagesOut], [30, 'default', 'ops-admin', 1005, 2, 3]);
    assert.equal(typeof closed.durationMs, 'number');
  });

  test('access log › a WebSocket upgrade takes the incoming X-Request-Id: echoed in the 101 (and in a refusal), named in the connection\'s access lines', async () => {
    const upgrade = (headers: Record<string, string>): Promise<{ status: number; reqId: string | undefined; ws: WebSocket; welcome?: Promise<unknown> }> =>
      new Promise((resolve, reject) => {
        const ws = new WebSocket(`ws://127.0.0.1:${gw.httpPort}/v1/ws`, 'zkgate.v1', { headers });
        // The welcome can arrive with the 101 and be emitted (on nextTick) before a listener added
        // after this promise resolves: listen from the upgrade on.
        ws.once('upgrade', (res) => resolve({ status: 101, reqId: res.headers['x-request-id'] as string | undefined, ws, welcome: new Promise((r) => ws.once('message', r)) }));
        ws.once('unexpected-response', (_req, res) => {
          resolve({ status: res.statusCode ?? 0, reqId: res.headers['x-request-id'] as string | undefined, ws });
          res.resume();
          res.socket.destroy();
        });
        ws.once('error', reject);
      });
    const ok = await upgrade({ ...auth, 'x-request-id': 'ws-trace-9' });
    assert.deepEqual([ok.status, ok.reqId], [101, 'ws-trace-9']);
    await ok.welcome;
    ok.ws.send(JSON.stringify({ op: 'call', id: 'r1', method: 'Znodes.Exists', params: { path: '/' } }));
    assert.equal((await accessLine('ws-trace-9', 'websocket call', (l) => l.id === 'r1')).status, 'OK');
    ok.ws.close();
    assert.equal((await accessLine('ws-trace-9', 'websocket closed')).tenant, 'default');
    // A refused upgrade echoes it too, and logs it as an expected outcome (info, no stack).
    const refused = await upgrade({ authorization: 'Bearer zkg_wrong', 'x-request-id': 'ws-trace-10' });
    assert.deepEqual([refused.status, refused.reqId], [401, 'ws-trace-10']);
    const line = await accessLine('ws-trace-10', 'websocket upgrade refused');
    assert.deepEqual([line.level, line.status, line.code, line.err], [30, 401, 'UNAUTHENTICATED', undefined]);
    // An unusable one is replaced by a generated id, which is what the 101 carries and the lines name.
    const odd = await upgrade({ ...auth, 'x-request-id': 'spaces are "not" kept' });
    assert.match(odd.reqId ?? '', /^[0-9a-f-]{36}$/);
    odd.ws.close();
    await accessLine(odd.reqId as string, 'websocket closed');
  });

  test('expected outcomes › a 4xx and a client killed mid-wait are not logged as errors and carry no stack', async () => {
    const post = (path: string, body: unknown, signal?: AbortSignal): Promise<Response> =>
      fetch(`${gw.base}${path}`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify(body), signal });
    const holder = (await (await post('/v1/leases', { ttlMs: 60_000 })).json()) as { id: string };
    const waiter = (await (await post('/v1/leases', { ttlMs: 60_000 })).json()) as { id: string };
    assert.equal((await post('/v1/locks/logging-lock', { leaseId: holder.id })).status, 200);
    const ac = new AbortController();
    const waiting = post('/v1/locks/logging-lock', { leaseId: waiter.id, waitMs: 60_000 }, ac.signal).catch(() => 'aborted');
    for (let i = 0; i < 100; i++) {
      const q = (await (await fetch(`${gw.base}/v1/locks/logging-lock`, { headers: auth })).json()) as { queue: unknown[] };
      if (q.queue.length === 2) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    ac.abort(); // the client goes away mid-wait
    assert.equal(await waiting, 'aborted');
    assert.equal((await fetch(`${gw.base}/v1/nodes/logging/missing`, { headers: auth })).status, 404);
    // The aborted wait's access line shows it; give it a moment to be written.
    for (let i = 0; i < 100 && !lines().some((l) => l.msg === 'request' && l.route === '/v1/locks/{path}' && l.aborted === true); i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(lines().some((l) => l.msg === 'request' && l.route === '/v1/locks/{path}' && l.aborted === true), gw.out());
    const errors = lines().filter((l) => l.level >= 50);
    assert.deepEqual(errors, []);
    assert.doesNotMatch(gw.out(), /"stack"|\n\s+at /);
  });
});
