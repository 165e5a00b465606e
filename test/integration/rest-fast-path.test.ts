/**
 * The plain node:http fast path (src/api/rest/fast-path.ts) answers exactly as express does:
 * two gateways on one ZooKeeper, one with `http.fastPath` off, get the same requests — reads,
 * long-polls, children listings, sets, creates, deletes, keepalives; hits, misses, bad paths and
 * parameters, no key, a wrong key, a key scoped elsewhere, another tenant, version conflicts,
 * bodies too large or malformed — and must give the same status, headers, body and access-log
 * line, valid against openapi.yaml. Writes start from the same ZooKeeper state on both sides
 * (zxids and times aside). Then hostile clients: resets mid-body and mid-wait, garbage bodies.
 * Last, the probes (/healthz, /readyz) ready and while shutting down.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { connect as tcpConnect } from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { validateConfig } from '../../src/config/schema.js';
import { generateApiKey, hashApiKey, type Logger } from '../../src/core/index.js';
import { startGateway, type RunningGateway } from '../../src/main.js';
import { fastRoute } from '../../src/api/rest/fast-path.js';
import { NativeZkClient } from '../../src/zk/native-client.js';
import { checkResponse } from '../support/openapi.js';
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
  // The longest session the harness's server grants (20 ticks): a loaded machine must not expire it.
  raw = new NativeZkClient({ connect: zk.connectString, sessionTimeoutMs: 10_000 });
  await new Promise((resolve) => raw.once('connect', resolve));
  await raw.create('/fp', Buffer.alloc(0), 'persistent');
  await raw.create('/fp/a', Buffer.from('hello ünïcode'), 'persistent');
  await raw.create('/fp/bin', Buffer.from([0xff, 0x00, 0xfe]), 'persistent');
  const config = (fastPath: boolean) =>
    validateConfig({
      zookeeper: { connect: zk.connectString },
      http: { port: 0, fastPath },
      // Small enough for the tests to cross: bodies, data and the long-polls' subscription units.
      limits: { maxBodyBytes: 2048, maxDataBytes: 1024, maxSubscriptionsPerTenant: 3 },
      tenants: [
        {
          name: 'default',
          sessionTimeoutMs: 10_000,
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

const VOLATILE_HEADERS = new Set(['date', 'keep-alive']);
/** Headers that carry zxids or times: a write's differ between the two sides. */
const STATE_HEADERS = new Set(['x-zkgate-index', 'x-zk-czxid', 'x-zk-mzxid', 'x-zk-pzxid', 'x-zk-ctime-ms', 'x-zk-mtime-ms']);

async function ask(gw: RunningGateway, method: string, path: string, headers: Record<string, string>, body?: string | Buffer): Promise<Answer> {
  const res = await fetch(`http://127.0.0.1:${gw.httpPort}${path}`, { method, headers, body: Buffer.isBuffer(body) ? new Uint8Array(body) : body });
  const out: Record<string, string> = {};
  res.headers.forEach((v, k) => {
    if (!VOLATILE_HEADERS.has(k)) out[k] = STATE_HEADERS.has(k) ? 'X' : v;
  });
  const text = await res.text();
  // zxids differ in length between the two sides' writes: the length is checked here instead.
  if (method !== 'HEAD' && out['content-length'] !== undefined) {
    assert.equal(Number(out['content-length']), Buffer.byteLength(text), `${method} ${path}: Content-Length`);
    out['content-length'] = 'X';
  }
  const type = res.headers.get('content-type') ?? '';
  checkResponse(method, path, { status: res.status, headers: res.headers, body: type.includes('json') && text ? JSON.parse(text) : text });
  const normal = text
    .replace(/gw-[0-9a-f]+/g, 'gw-X') // each gateway names itself in a lease's 'not granted by this instance' detail
    .replace(/"(czxid|mzxid|pzxid|zxid)":"\d+"/g, '"$1":"X"')
    .replace(/"(ctimeMs|mtimeMs)":\d+/g, '"$1":0')
    .replace(/"sessionId":"0x[0-9a-f]+"/g, '"sessionId":"0xX"'); // /readyz: each gateway has its own session
  return { status: res.status, headers: out, body: normal };
}

/** Deletes `path` and everything below it, if it exists. */
async function removeTree(path: string): Promise<void> {
  const stat = await raw.exists(path);
  if (!stat) return;
  for (const c of (await raw.children(path)).children) await removeTree(`${path}/${c}`);
  await raw.delete(path);
}

/** The write cases' starting state, rebuilt before each side. */
async function resetWrites(): Promise<void> {
  await removeTree('/fp/w');
  await raw.create('/fp/w', Buffer.alloc(0), 'persistent');
  await raw.create('/fp/w/s', Buffer.from('v0'), 'persistent');
  await raw.create('/fp/w/d', Buffer.alloc(0), 'persistent');
  await raw.create('/fp/w/ne', Buffer.alloc(0), 'persistent');
  await raw.create('/fp/w/ne/c', Buffer.alloc(0), 'persistent');
  await raw.create('/fp/w/seq', Buffer.alloc(0), 'persistent');
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
const json = (k: string): Record<string, string> => ({ ...bearer(k), 'content-type': 'application/json' });
const octets = (k: string): Record<string, string> => ({ ...bearer(k), 'content-type': 'application/octet-stream' });

/** A request; `express` marks one the fast path must leave to express. */
type Case = [method: string, path: string, headers: Record<string, string>, body?: string | Buffer, to?: 'express'];

/** Asks both gateways `cases` (after `setup` each time) and requires the same answers and access lines. */
async function sameAnswers(tag: string, cases: Case[], setup?: () => Promise<void>): Promise<void> {
  for (const [i, [method, path, headers, body, to]] of cases.entries()) {
    const what = `${method} ${path} ${JSON.stringify(headers).slice(0, 60)} ${String(body ?? '').slice(0, 40)}`;
    // The fast path really takes the case (else both sides would be express and equal anyway).
    const sent = body === undefined ? headers : { ...headers, 'content-length': String(Buffer.byteLength(body)) };
    assert.equal(fastRoute({ method, url: path, headers: sent } as IncomingMessage) === undefined, to === 'express', `${what}: taken by ${to ?? 'the fast path'}`);
    const id = `${tag}-${i}`;
    await setup?.();
    const fast = await ask(gws.fast, method, path, { ...headers, 'x-request-id': id }, body);
    await setup?.();
    const slow = await ask(gws.express, method, path, { ...headers, 'x-request-id': id }, body);
    if (fast.body.includes('"code":"PAYLOAD_TOO_LARGE"')) {
      // Refused on its declared length: the fast path closes the connection at once; express's
      // parser runs a few ticks later, when a small body may have arrived whole (then it keeps it).
      assert.equal(fast.headers.connection, 'close', what);
      delete fast.headers.connection;
      delete slow.headers.connection;
    }
    assert.deepEqual(fast, slow, what);
    assert.deepEqual(await accessLine('fast', id), await accessLine('express', id), what);
  }
}

test('fast path › every hot-route answer equals express\'s: status, headers, body and the access-log line', async () => {
  await sameAnswers('fp', [
    ['GET', '/v1/nodes/fp/a', bearer(ADMIN)],
    ['GET', '/v1/nodes/fp/bin', bearer(ADMIN)],
    ['GET', '/v1/nodes/fp', { ...bearer(ADMIN), accept: 'application/json' }],
    ['GET', '/v1/nodes/fp/a', { ...bearer(ADMIN), accept: '*/*' }],
    ['GET', '/v1/nodes/fp/a', { ...bearer(ADMIN), accept: 'application/octet-stream' }, undefined, 'express'],
    ['GET', '/v1/children/fp', { ...bearer(ADMIN), accept: 'text/html' }, undefined, 'express'],
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
    ['GET', '/v1/nodes/fp/a?encoding=base64', bearer(ADMIN)],
    ['GET', '/v1/nodes/fp/bin?encoding=utf8', bearer(ADMIN)],
    ['GET', '/v1/nodes/fp/a?encoding=latin1', bearer(ADMIN)],
    ['GET', '/v1/nodes/fp/a?sync=true', bearer(ADMIN)],
    ['GET', '/v1/nodes/fp/a?sync=maybe', bearer(ADMIN)],
    ['GET', '/v1/nodes/fp/a?sync=1&sync=0', bearer(ADMIN)],
    ['HEAD', '/v1/nodes/fp/a', bearer(ADMIN)],
    ['HEAD', '/v1/nodes/fp/missing', bearer(ADMIN)],
    ['HEAD', '/v1/nodes/fp/a', {}],
    ['HEAD', '/v1/nodes/fp/%zz', bearer(ADMIN)],
    ['POST', '/v1/leases/no-such-lease/keepalive', bearer(ADMIN)],
    ['POST', '/v1/leases/no-such-lease/keepalive', {}],
  ]);
});

test('fast path › children listings and long-polls answer as express does', async () => {
  const index = (await raw.exists('/fp/a'))?.mzxid as string;
  const pzxid = (await raw.exists('/fp'))?.pzxid as string;
  await sameAnswers('ch', [
    ['GET', '/v1/children/fp', bearer(ADMIN)],
    ['GET', '/v1/children/fp?stat=true&limit=1', bearer(ADMIN)],
    ['GET', '/v1/children/fp?limit=1&cursor=a', bearer(ADMIN)],
    ['GET', '/v1/children/fp?limit=abc', bearer(ADMIN)],
    ['GET', '/v1/children/fp?limit=1&limit=2', bearer(ADMIN)],
    ['GET', '/v1/children/fp/missing', bearer(ADMIN)],
    ['GET', '/v1/children/fp/%zz', bearer(ADMIN)],
    ['GET', '/v1/children/fp', {}],
    ['GET', '/v1/children/fp', bearer(SCOPED)],
    ['GET', '/v1/nodes/fp/a?wait=0', bearer(ADMIN)],
    ['GET', `/v1/nodes/fp/a?wait=50&index=${index}`, bearer(ADMIN)],
    ['GET', '/v1/nodes/fp/missing?wait=20', bearer(ADMIN)],
    ['GET', '/v1/nodes/fp/a?wait=-1', bearer(ADMIN)],
    ['GET', '/v1/nodes/fp/a?wait=10&index=abc', bearer(ADMIN)],
    ['GET', '/v1/nodes/fp/a?wait=10', bearer(SCOPED)],
    ['GET', `/v1/children/fp?wait=50&index=${pzxid}`, bearer(ADMIN)],
    ['GET', '/v1/children/fp?wait=0&stat=true', bearer(ADMIN)],
  ]);
});

test('fast path › sets, creates and deletes answer as express does, from the same starting state', async () => {
  const big = JSON.stringify({ data: 'x'.repeat(3000) });
  await sameAnswers(
    'wr',
    [
      ['PUT', '/v1/nodes/fp/w/s', json(ADMIN), '{"data":"v1"}'],
      ['PUT', '/v1/nodes/fp/w/s', json(ADMIN), '{"data":"AAEC","encoding":"base64","version":0}'],
      ['PUT', '/v1/nodes/fp/w/s', json(ADMIN), '{"data":"v1","version":5}'],
      ['PUT', '/v1/nodes/fp/w/s?version=5', json(ADMIN), '{"data":"v1"}'],
      ['PUT', '/v1/nodes/fp/w/s?version=0', octets(ADMIN), Buffer.from([0, 1, 2, 255])],
      ['PUT', '/v1/nodes/fp/w/s?version=x', octets(ADMIN), Buffer.from('v')],
      ['PUT', '/v1/nodes/fp/w/s', { ...bearer(ADMIN), 'content-type': 'application/json; charset=utf-8' }, '\ufeff{"data":"bom"}'],
      ['PUT', '/v1/nodes/fp/w/s', json(ADMIN), ''],
      ['PUT', '/v1/nodes/fp/w/s', json(ADMIN), '{"data":'],
      ['PUT', '/v1/nodes/fp/w/s', json(ADMIN), '[1,2]'],
      ['PUT', '/v1/nodes/fp/w/s', json(ADMIN), '"text"'],
      ['PUT', '/v1/nodes/fp/w/s', json(ADMIN), '{"data":"v1","extra":1}'],
      ['PUT', '/v1/nodes/fp/w/s', json(ADMIN), '{"data":"!!","encoding":"base64"}'],
      ['PUT', '/v1/nodes/fp/w/s', json(ADMIN), big],
      ['PUT', '/v1/nodes/fp/w/s', json(ADMIN), JSON.stringify({ data: 'y'.repeat(1500) })],
      ['PUT', '/v1/nodes/fp/w/s', { 'content-type': 'application/json' }, '{"data":"v1"}'],
      ['PUT', '/v1/nodes/fp/w/s', { ...json(ADMIN), 'zkgate-tenant': 'other' }, '{"data":"v1"}'],
      ['PUT', '/v1/nodes/fp/w/s', json(SCOPED), '{"data":"v1"}'],
      ['PUT', '/v1/nodes/fp/w/missing', json(ADMIN), '{"data":"v1"}'],
      ['PUT', '/v1/nodes/fp/w/%zz', json(ADMIN), '{"data":"v1"}'],
      ['PUT', '/v1/nodes/fp/w/s', { ...bearer(ADMIN), 'content-type': 'text/plain' }, 'v1', 'express'],
      ['PUT', '/v1/nodes/fp/w/s', { ...bearer(ADMIN), 'content-type': 'application/json; charset=latin1' }, '{"data":"v1"}', 'express'],
      ['PUT', '/v1/nodes/fp/w/s', { ...bearer(ADMIN), 'content-type': 'application/merge-patch+json' }, '{"data":"v1"}', 'express'],
      ['POST', '/v1/nodes/fp/w/new', json(ADMIN), '{"data":"n"}'],
      ['POST', '/v1/nodes/fp/w/seq/item-', json(ADMIN), '{"mode":"persistent_sequential"}'],
      ['POST', '/v1/nodes/fp/w/x/y/z', json(ADMIN), '{"createParents":true}'],
      ['POST', '/v1/nodes/fp/w/x/y', json(ADMIN), '{}'],
      ['POST', '/v1/nodes/fp/w/raw?mode=persistent', octets(ADMIN), Buffer.from([1, 2, 3])],
      ['POST', '/v1/nodes/fp/w/raw?mode=bogus', octets(ADMIN), Buffer.from([1])],
      ['POST', '/v1/nodes/fp/w/s', json(ADMIN), '{}'],
      ['POST', '/v1/nodes/fp/w/e', json(ADMIN), '{"mode":"ephemeral"}'],
      ['POST', '/v1/nodes/fp/w/e', json(ADMIN), '{"mode":"ephemeral","leaseId":"nope"}'],
      ['POST', '/v1/nodes/fp/w/t', json(ADMIN), '{"mode":"wrong"}'],
      ['POST', '/v1/nodes/fp/w/t', json(ADMIN), '{"ttlMs":5}'],
      ['POST', '/v1/nodes/fp/w/t', json(SCOPED), '{}'],
      ['POST', '/v1/nodes/fp/w/t', {}, ''],
      ['POST', '/v1/nodes/', json(ADMIN), '{}'],
      ['POST', '/v1/nodes/fp/w/t', json(ADMIN), big],
      ['DELETE', '/v1/nodes/fp/w/d', bearer(ADMIN)],
      ['DELETE', '/v1/nodes/fp/w/d?version=7', bearer(ADMIN)],
      ['DELETE', '/v1/nodes/fp/w/d?version=x', bearer(ADMIN)],
      ['DELETE', '/v1/nodes/fp/w/missing', bearer(ADMIN)],
      ['DELETE', '/v1/nodes/fp/w/ne', bearer(ADMIN)],
      ['DELETE', '/v1/nodes/fp/w/ne?recursive=true', bearer(ADMIN)],
      ['DELETE', '/v1/nodes/fp/w/ne?recursive=true', bearer(SCOPED)],
      ['DELETE', '/v1/nodes/fp/w/d', {}],
      ['DELETE', '/v1/nodes/fp/w/d', json(ADMIN), '{}', 'express'],
      ['PATCH', '/v1/nodes/fp/w/d', json(ADMIN), '{}', 'express'],
    ],
    resetWrites,
  );
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

/** Writes `text` on a fresh TCP connection to the fast gateway; resolves with the socket. */
function rawSocket(text: string | Buffer): Promise<import('node:net').Socket> {
  return new Promise((resolve, reject) => {
    const s = tcpConnect(gws.fast.httpPort, '127.0.0.1', () => {
      s.write(text);
      resolve(s);
    });
    s.on('error', () => undefined); // the gateway may close it first
    s.once('error', reject);
  });
}

/** Everything the gateway answers on `s` until it closes the connection (or `ms` passes). */
function readAll(s: import('node:net').Socket, ms = 5000): Promise<string> {
  return new Promise((resolve) => {
    let got = '';
    const t = setTimeout(() => (s.destroy(), resolve(got)), ms);
    s.on('data', (b: Buffer) => (got += b.toString('latin1')));
    s.once('close', () => (clearTimeout(t), resolve(got)));
  });
}

async function subscriptionsUsed(): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${gws.fast.httpPort}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('zkgate_tenant_quota_used{tenant="default",kind="subscriptions"}'));
  return Number(line?.split(' ').pop());
}

async function until(what: string, cond: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

test('fast path › hostile clients: a reset mid-body changes nothing, garbage gets a 400, cut long-polls give their units back', async () => {
  await resetWrites();
  const before = await raw.get('/fp/w/s');
  // Half a body, then a reset: nothing is written, the access line says the exchange was cut.
  const head = `PUT /v1/nodes/fp/w/s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${ADMIN}\r\nContent-Type: application/json\r\nX-Request-Id: cut-body\r\nContent-Length: 100\r\n\r\n`;
  const cut = await rawSocket(`${head}{"data":"half`);
  await new Promise((r) => setTimeout(r, 100));
  cut.resetAndDestroy();
  const line = await accessLine('fast', 'cut-body');
  assert.equal(line.aborted, true);
  assert.equal(line.route, '/v1/nodes/{path}');
  // A body in several TCP segments is read whole.
  const body = '{"data":"split"}';
  const split = await rawSocket(`${head.replace('cut-body', 'split-body').replace('100', String(body.length))}${body.slice(0, 5)}`);
  await new Promise((r) => setTimeout(r, 50));
  split.write(body.slice(5));
  assert.match(await readAll(split, 1000), /^HTTP\/1.1 200 OK/);
  assert.equal((await raw.get('/fp/w/s')).data.toString(), 'split');
  await resetWrites();
  // Binary garbage as JSON, and a declared length over the limit: problem answers, nothing written.
  const garbage = Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 97 + 13) % 256));
  const g = await ask(gws.fast, 'PUT', '/v1/nodes/fp/w/s', json(ADMIN), garbage);
  assert.equal(g.status, 400);
  assert.match(g.body, /malformed JSON body/);
  const huge = await rawSocket(`${head.replace('100', '100000000')}{"data":"`);
  const answer = await readAll(huge);
  assert.match(answer, /^HTTP\/1.1 413 /);
  assert.match(answer, /\r\nConnection: close\r\n/i);
  // Not HTTP at all: Node's parser answers 400 and closes.
  assert.match(await readAll(await rawSocket('\x16\x03\x01garbage\r\n\r\n')), /^HTTP\/1.1 400 /);
  assert.deepEqual((await raw.get('/fp/w/s')).data, Buffer.from('v0'));
  assert.notEqual(before.stat.mzxid, undefined);
  // Long-polls cut by their clients: each held a subscription unit (3 allowed), each gives it back.
  const index = (await raw.exists('/fp/a'))?.mzxid as string;
  const polls = await Promise.all(
    [0, 1, 2].map(() => rawSocket(`GET /v1/nodes/fp/a?wait=30000&index=${index} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${ADMIN}\r\n\r\n`)),
  );
  await until('3 long-polls holding units', async () => (await subscriptionsUsed()) === 3);
  assert.equal((await ask(gws.fast, 'GET', `/v1/nodes/fp/a?wait=10&index=${index}`, bearer(ADMIN))).status, 429);
  for (const p of polls) p.resetAndDestroy();
  await until('the units given back', async () => (await subscriptionsUsed()) === 0);
  const after = await ask(gws.fast, 'GET', `/v1/nodes/fp/a?wait=10&index=${index}`, bearer(ADMIN));
  assert.equal(after.status, 200);
  assert.equal(after.headers['x-zkgate-unchanged'], 'true');
});

test('fast path › /healthz and /readyz answer as express does and as documented, ready and while shutting down', async () => {
  const probes = (tag: string): Promise<void> =>
    sameAnswers(tag, [
      ['GET', '/healthz', {}],
      ['HEAD', '/healthz', {}],
      ['GET', '/readyz', {}],
      ['HEAD', '/readyz', {}],
      ['GET', '/readyz?verbose=1', { ...bearer('not-a-key'), accept: 'text/html' }],
      ['POST', '/readyz', {}, undefined, 'express'],
    ]);
  // The documented answers (ask checks each against openapi.yaml): the health and readiness bodies.
  const documented = async (ready: boolean): Promise<void> => {
    assert.deepEqual(JSON.parse((await ask(gws.fast, 'GET', '/healthz', {})).body), { status: 'ok' });
    const r = await ask(gws.fast, 'GET', '/readyz', {});
    assert.equal(r.status, ready ? 200 : 503);
    assert.equal(r.headers['content-type'], 'application/json; charset=utf-8');
    const health = gws.fast.gateway.health();
    assert.equal(health.ready, ready);
    assert.deepEqual(JSON.parse(r.body), JSON.parse(JSON.stringify(health).replace(/"sessionId":"0x[0-9a-f]+"/g, '"sessionId":"0xX"')));
  };
  // Only the exact URLs: express also takes `/readyz/` and `/Readyz` (undocumented spellings).
  for (const url of ['/readyz/', '/Readyz', '/healthz/x', '/metrics']) assert.equal(fastRoute({ method: 'GET', url, headers: {} } as IncomingMessage), undefined, url);
  await probes('probe');
  await documented(true);
  // Shutting down, express refuses every other route; the probes still answer (503: not ready).
  gws.fast.gateway.beginShutdown();
  gws.express.gateway.beginShutdown();
  await probes('probe-down');
  await documented(false);
  assert.equal(JSON.parse((await ask(gws.fast, 'GET', '/readyz', {})).body).shuttingDown, true);
});
