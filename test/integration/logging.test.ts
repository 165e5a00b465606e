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
async function accessLine(reqId: string): Promise<LogLine> {
  for (let i = 0; i < 100; i++) {
    const l = lines().find((x) => x.msg === 'request' && x.reqId === reqId);
    if (l) return l;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`no access line for ${reqId}:\n${gw.out()}`);
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
