/**
 * The plain node:http fast path (src/api/rest/fast-path.ts) answers exactly as express does:
 * two gateways on one ZooKeeper, one with `http.fastPath` off, get the same requests — hits,
 * misses, bad paths, no key, a wrong key, a key scoped elsewhere, HEAD, keepalive — and must
 * give the same status, headers, body and access-log line.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { validateConfig } from '../../src/config/schema.js';
import { generateApiKey, hashApiKey, type Logger } from '../../src/core/index.js';
import { startGateway, type RunningGateway } from '../../src/main.js';
import type { NativeZkClient } from '../../src/zk/native-client.js';
import { connectRaw } from '../support/zk-tree.js';
import { startZkServer, type ZkStandalone } from '../support/zk-server.js';

const ADMIN = generateApiKey();
const SCOPED = generateApiKey();
let zk: ZkStandalone;
let raw: NativeZkClient;
const gws: { fast: RunningGateway; express: RunningGateway; logs: { fast: string[]; express: string[] } } = {
  logs: { fast: [], express: [] },
} as never;

function logger(into: string[]): Logger {
  return pino({ level: 'debug' }, new Writable({ write: (chunk: Buffer, _e, cb) => void (into.push(chunk.toString('utf8')), cb()) }));
}

before(async () => {
  zk = await startZkServer();
  raw = await connectRaw(zk.connectString);
  await raw.create('/fp', Buffer.alloc(0), 'persistent');
  await raw.create('/fp/a', Buffer.from('hello ünïcode'), 'persistent');
  await raw.create('/fp/bin', Buffer.from([0xff, 0x00, 0xfe]), 'persistent');
  const config = (fastPath: boolean) =>
    validateConfig({
      zookeeper: { connect: zk.connectString },
      http: { port: 0, fastPath },
      tenants: [
        {
          name: 'default',
          sessionTimeoutMs: 6000,
          apiKeys: [
            { sha256: hashApiKey(ADMIN), role: 'admin', name: 'ops' },
            { sha256: hashApiKey(SCOPED), role: 'read', prefixes: ['/elsewhere'] },
          ],
        },
      ],
    });
  gws.fast = await startGateway(config(true), logger(gws.logs.fast));
  gws.express = await startGateway(config(false), logger(gws.logs.express));
});

after(async () => {
  raw?.close();
  await gws.fast?.close();
  await gws.express?.close();
  await zk?.close();
});

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

const VOLATILE_HEADERS = new Set(['date', 'keep-alive', 'connection']);

async function ask(gw: RunningGateway, method: string, path: string, headers: Record<string, string>): Promise<Answer> {
  const res = await fetch(`http://127.0.0.1:${gw.httpPort}${path}`, { method, headers });
  const out: Record<string, string> = {};
  res.headers.forEach((v, k) => {
    if (!VOLATILE_HEADERS.has(k)) out[k] = v;
  });
  // Each gateway names itself in a lease's 'not granted by this instance' detail.
  return { status: res.status, headers: out, body: (await res.text()).replace(/gw-[0-9a-f]+/g, 'gw-X') };
}

async function accessLine(which: 'fast' | 'express', reqId: string): Promise<Record<string, unknown>> {
  for (let i = 0; i < 100; i++) {
    const line = gws.logs[which].map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'request' && l.reqId === reqId);
    if (line) {
      const { time: _t, pid: _p, hostname: _h, durationMs, reqId: _r, ...rest } = line;
      assert.equal(typeof durationMs, 'number');
      return rest;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`no access line for ${reqId} (${which})`);
}

const bearer = (k: string): Record<string, string> => ({ authorization: `Bearer ${k}` });

test('fast path › every hot-route answer equals express\'s: status, headers, body and the access-log line', async () => {
  const cases: [string, string, Record<string, string>][] = [
    ['GET', '/v1/nodes/fp/a', bearer(ADMIN)],
    ['GET', '/v1/nodes/fp/bin', bearer(ADMIN)],
    ['GET', '/v1/nodes/fp', { ...bearer(ADMIN), accept: 'application/json' }],
    ['GET', '/v1/nodes/fp/a', { ...bearer(ADMIN), accept: '*/*' }],
    ['GET', '/v1/nodes/', bearer(ADMIN)],
    ['GET', '/v1/nodes/fp/missing', bearer(ADMIN)],
    ['GET', '/v1/nodes/fp/a', {}],
    ['GET', '/v1/nodes/fp/a', bearer(`${ADMIN}x`)],
    ['GET', '/v1/nodes/fp/a', { authorization: 'Basic abc' }],
    ['GET', '/v1/nodes/fp/a', bearer(SCOPED)],
    ['GET', '/v1/nodes/fp/a', { ...bearer(ADMIN), 'zkgate-tenant': 'nope' }],
    ['GET', '/v1/nodes/fp/a%2Fb', bearer(ADMIN)],
    ['GET', '/v1/nodes/fp/%zz', bearer(ADMIN)],
    ['GET', '/v1/nodes/fp/a/', bearer(ADMIN)],
    ['GET', '/v1/nodes/fp//a', bearer(ADMIN)],
    ['GET', '/v1/nodes/fp/zookeeper%00', bearer(ADMIN)],
    ['HEAD', '/v1/nodes/fp/a', bearer(ADMIN)],
    ['HEAD', '/v1/nodes/fp/missing', bearer(ADMIN)],
    ['HEAD', '/v1/nodes/fp/a', {}],
    ['HEAD', '/v1/nodes/fp/%zz', bearer(ADMIN)],
    ['POST', '/v1/leases/no-such-lease/keepalive', bearer(ADMIN)],
    ['POST', '/v1/leases/no-such-lease/keepalive', {}],
  ];
  for (const [i, [method, path, headers]] of cases.entries()) {
    const what = `${method} ${path} ${JSON.stringify(headers).slice(0, 60)}`;
    const fast = await ask(gws.fast, method, path, { ...headers, 'x-request-id': `fp-${i}` });
    const slow = await ask(gws.express, method, path, { ...headers, 'x-request-id': `fp-${i}` });
    assert.deepEqual(fast, slow, what);
    assert.deepEqual(await accessLine('fast', `fp-${i}`), await accessLine('express', `fp-${i}`), what);
  }
});

test('fast path › a request id that is not plain is replaced by a UUID on both paths', async () => {
  for (const gw of [gws.fast, gws.express]) {
    const a = await ask(gw, 'GET', '/v1/nodes/fp/a', { ...bearer(ADMIN), 'x-request-id': 'bad id with spaces' });
    assert.match(a.headers['x-request-id'] ?? '', /^[0-9a-f-]{36}$/);
  }
});

test('fast path › keepalive of a real lease answers the lease like express; fast answers are counted in /metrics under their route template', async () => {
  for (const gw of [gws.fast, gws.express]) {
    const base = `http://127.0.0.1:${gw.httpPort}`;
    const granted = (await (await fetch(`${base}/v1/leases`, { method: 'POST', headers: { ...bearer(ADMIN), 'content-type': 'application/json' }, body: '{"ttlMs":30000}' })).json()) as { id: string };
    const res = await fetch(`${base}/v1/leases/${granted.id}/keepalive`, { method: 'POST', headers: bearer(ADMIN) });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/json; charset=utf-8');
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    const lease = (await res.json()) as { id: string; state: string };
    assert.equal(lease.id, granted.id);
    assert.equal(lease.state, 'active');
  }
  // Both gateways share the process's registry: only the fast one is asked, so the count it adds is its own.
  const count = async (route: string, method: string): Promise<number> => {
    const text = await (await fetch(`http://127.0.0.1:${gws.fast.httpPort}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith(`zkgate_http_request_duration_seconds_count{route="${route}",method="${method}",status="200"}`));
    return line ? Number(line.split(' ').pop()) : 0;
  };
  const before = { get: await count('/v1/nodes/{path}', 'GET'), head: await count('/v1/nodes/{path}', 'HEAD') };
  for (let i = 0; i < 3; i++) {
    assert.equal((await ask(gws.fast, 'GET', '/v1/nodes/fp/a', bearer(ADMIN))).status, 200);
    assert.equal((await ask(gws.fast, 'HEAD', '/v1/nodes/fp/a', bearer(ADMIN))).status, 200);
  }
  assert.equal(await count('/v1/nodes/{path}', 'GET'), before.get + 3);
  assert.equal(await count('/v1/nodes/{path}', 'HEAD'), before.head + 3);
  assert.ok((await count('/v1/leases/{id}/keepalive', 'POST')) >= 1);
});
