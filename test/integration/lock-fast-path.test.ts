/**
 * Lock acquire and release on the plain `node:http` fast path (src/api/rest/fast-path.ts, the
 * translation in locks.ts) answer as express does: two gateways on one ZooKeeper, one with
 * `http.fastPath` off, each with its own lease, get the same requests — a hold, a try-lock that
 * fails on the holder, a release, a second release, bad bodies and parameters, no key, a key
 * scoped elsewhere — and must give the same status, headers and body (lease ids, node names and
 * fencing tokens aside) and the same access-log line. The other lock tests (locks, security,
 * contract) run on the fast path since it exists.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { validateConfig } from '../../src/config/schema.js';
import { generateApiKey, hashApiKey } from '../../src/core/index.js';
import { startGateway, type RunningGateway } from '../../src/main.js';
import { fastRoute } from '../../src/api/rest/fast-path.js';
import { checkResponse } from '../support/openapi.js';
import { eventually } from '../support/test-gateway.js';
import { startZkServer, type ZkStandalone } from '../support/zk-server.js';

const ADMIN = generateApiKey();
const SCOPED = generateApiKey();
type Side = 'fast' | 'express';
let zk: ZkStandalone;
const gws = {} as Record<Side, RunningGateway>;
const logs: Record<Side, string[]> = { fast: [], express: [] };
const leases = {} as Record<Side, string>;

before(async () => {
  zk = await startZkServer();
  const config = (fastPath: boolean) =>
    validateConfig({
      zookeeper: { connect: zk.connectString },
      http: { port: 0, fastPath },
      limits: { maxBodyBytes: 2048 },
      tenants: [
        {
          name: 'default',
          sessionTimeoutMs: 10_000,
          apiKeys: [
            { sha256: hashApiKey(ADMIN), role: 'admin', name: 'ops' },
            { sha256: hashApiKey(SCOPED), role: 'write', prefixes: ['/elsewhere'] },
          ],
        },
      ],
    });
  for (const side of ['fast', 'express'] as const) {
    const into = logs[side];
    gws[side] = await startGateway(config(side === 'fast'), pino({ level: 'debug' }, new Writable({ write: (c: Buffer, _e, cb) => void (into.push(c.toString('utf8')), cb()) })));
    leases[side] = await eventually(async () => {
      const r = await fetch(`http://127.0.0.1:${gws[side].httpPort}/v1/leases`, { method: 'POST', headers: json(ADMIN), body: JSON.stringify({ ttlMs: 60_000 }) });
      return r.status === 201 ? ((await r.json()) as { id: string }).id : null;
    }, 20_000, 'a lease');
  }
});

after(async () => {
  await gws.fast?.close();
  await gws.express?.close();
  await zk?.close();
});

const bearer = (k: string): Record<string, string> => ({ authorization: `Bearer ${k}` });
const json = (k: string): Record<string, string> => ({ ...bearer(k), 'content-type': 'application/json' });

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** The answer, checked against openapi.yaml, with what differs between the sides replaced. */
async function ask(side: Side, method: string, url: string, headers: Record<string, string>, body?: string): Promise<{ answer: Answer; node?: string }> {
  const res = await fetch(`http://127.0.0.1:${gws[side].httpPort}${url}`, { method, headers, body });
  const text = await res.text();
  const parsed: unknown = text ? JSON.parse(text) : undefined;
  checkResponse(method, url, { status: res.status, headers: res.headers, body: parsed });
  const out: Record<string, string> = {};
  res.headers.forEach((v, k) => {
    if (k !== 'date' && k !== 'keep-alive' && k !== 'content-length') out[k] = v;
  });
  const normal = text
    .replaceAll(`lfp-${side}`, 'lfp')
    .replaceAll(leases[side], 'LEASE')
    .replace(/gw-[0-9a-f]+/g, 'gw-X') // each gateway names itself in a lease's 'not granted by this instance' detail
    .replace(/_c_[0-9a-f-]{36}-lock-\d{10}/g, 'NODE')
    .replace(/"(fencingToken|holderFencingToken)":"?\d+"?/g, '"$1":"T"')
    .replace(/"(trustMs|holderSession)":("[^"]*"|\d+)/g, '"$1":"X"');
  const node = (parsed as { node?: unknown } | undefined)?.node;
  return { answer: { status: res.status, headers: out, body: normal }, node: typeof node === 'string' ? node : undefined };
}

async function accessLine(side: Side, reqId: string): Promise<Record<string, unknown>> {
  for (let i = 0; i < 100; i++) {
    const line = logs[side].map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'request' && l.reqId === reqId);
    if (line) {
      const { time: _t, pid: _p, hostname: _h, durationMs: _d, reqId: _r, ...rest } = line;
      return JSON.parse(JSON.stringify(rest).replaceAll(`lfp-${side}`, 'lfp')) as Record<string, unknown>;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`no access line for ${reqId} (${side})`);
}

/** `L` in a case stands for the side's lease id, `N` for the node of the side's last hold, `lfp` for the side's lock. */
type Case = [method: string, url: string, headers: Record<string, string>, body?: string];

test('lock fast path › acquire and release answer as express does: status, headers, body and access line', async () => {
  const held: Record<Side, string> = { fast: 'none', express: 'none' };
  const cases: Case[] = [
    ['POST', '/v1/locks/lfp/a', json(ADMIN), '{"leaseId":"L","data":"me"}'],
    ['POST', '/v1/locks/lfp/a', json(ADMIN), '{"leaseId":"L"}'], // the holder acquires again: its hold, answered again
    ['POST', '/v1/locks/lfp/a', json(ADMIN), '{"leaseId":"no-such-lease"}'],
    ['POST', '/v1/locks/lfp/a', json(ADMIN), '{"waitMs":5}'],
    ['POST', '/v1/locks/lfp/a', json(ADMIN), '{"leaseId":"L","flavour":"other"}'],
    ['POST', '/v1/locks/lfp/a', json(ADMIN), '{"leaseId":"L","waitMs":-1}'],
    ['POST', '/v1/locks/lfp/a', json(ADMIN), '{"leaseId":"L",'],
    ['POST', '/v1/locks/lfp/a', json(ADMIN), '[1]'],
    ['POST', '/v1/locks/lfp/%zz', json(ADMIN), '{"leaseId":"L"}'],
    ['POST', '/v1/locks/lfp/a', { 'content-type': 'application/json' }, '{"leaseId":"L"}'],
    ['POST', '/v1/locks/lfp/a', json(SCOPED), '{"leaseId":"L"}'],
    ['DELETE', '/v1/locks/lfp/a?leaseId=L&node=N', bearer(ADMIN)],
    ['DELETE', '/v1/locks/lfp/a?leaseId=L&node=N', bearer(ADMIN)], // again: not_owned
    ['DELETE', '/v1/locks/lfp/a?leaseId=L', bearer(ADMIN)],
    ['DELETE', '/v1/locks/lfp/a?leaseId=L&node=%2Felsewhere%2Fx', bearer(ADMIN)],
    ['DELETE', '/v1/locks/lfp/a?leaseId=L&leaseId=L&node=N', bearer(ADMIN)],
    ['DELETE', '/v1/locks/lfp/a?leaseId=L&node=N', {}],
  ];
  for (const [i, [method, url, headers, body]] of cases.entries()) {
    const answers = {} as Record<Side, Answer>;
    const id = `lfp-${i}`;
    for (const side of ['fast', 'express'] as const) {
      // Each side its own lock (one ZooKeeper): the path is named after the side, and the name
      // taken out of the answers again.
      const u = url
        .replace('/lfp/', `/lfp-${side}/`)
        .replace(/leaseId=L/g, `leaseId=${leases[side]}`).replace('node=N', `node=${encodeURIComponent(held[side])}`);
      const b = body?.replace('"L"', JSON.stringify(leases[side]));
      const sent = b === undefined ? headers : { ...headers, 'content-length': String(Buffer.byteLength(b)) };
      assert.notEqual(fastRoute({ method, url: u, headers: sent } as IncomingMessage), undefined, `${method} ${url}: taken by the fast path`);
      const { answer, node } = await ask(side, method, u, { ...headers, 'x-request-id': id }, b);
      if (method === 'POST' && answer.status === 200 && node) held[side] = node;
      answers[side] = answer;
    }
    assert.deepEqual(answers.fast, answers.express, `${method} ${url} ${body ?? ''}`);
    assert.deepEqual(await accessLine('fast', id), await accessLine('express', id), `${method} ${url}: access line`);
  }
});
