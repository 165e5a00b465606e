/**
 * The cluster's internal listener logs like the public ones (issue 9 rule): a peer that resets
 * in the middle of a request body is an expected outcome, logged at debug without a stack, never
 * at warn or error.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { startGateway, type RunningGateway } from '../../src/main.js';
import { validateConfig } from '../../src/config/schema.js';
import { startZkServer, type ZkStandalone } from '../support/zk-server.js';
import { eventually } from '../support/test-gateway.js';

let zk: ZkStandalone;
let gw: RunningGateway;
const out: string[] = [];
interface LogLine {
  level: number;
  msg: string;
  err?: { stack?: string };
}
const lines = (): LogLine[] => out.join('').split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as LogLine);

before(async () => {
  zk = await startZkServer();
  const config = validateConfig({
    zookeeper: { connect: zk.connectString },
    http: { port: 0, bind: '127.0.0.1' },
    instanceId: 'solo',
    cluster: { secret: 'cluster-logging-secret-0123456789abcdef' },
    instances: { path: `/zkgate-test/logging-${process.pid}` },
    tenants: [{ name: 'default', sessionTimeoutMs: 4000 }],
  });
  gw = await startGateway(config, pino({ level: 'debug' }, new Writable({ write: (c: Buffer, _e, cb) => void (out.push(c.toString('utf8')), cb()) })));
});
after(async () => {
  await gw?.close();
  await zk?.close();
});

test('cluster › a peer that resets mid-body is logged at debug, without a stack', async () => {
  const self = await eventually(async () => {
    const r = (await (await fetch(`http://127.0.0.1:${gw.httpPort}/readyz`)).json()) as { cluster?: { members: { address: string; self: boolean }[] } };
    return r.cluster?.members.find((m) => m.self)?.address;
  }, 20_000, 'the internal address');
  const { hostname, port } = new URL(self);
  // Well-formed, fresh signature headers: the listener reads the body (then would check them).
  const head = [
    'POST /cluster/v1/call HTTP/1.1', `host: ${hostname}`, 'content-type: application/json', 'content-length: 10000',
    'x-zkgate-cluster-from: peer', `x-zkgate-cluster-time: ${Date.now()}`, `x-zkgate-cluster-nonce: ${'ab'.repeat(12)}`, `x-zkgate-cluster-signature: ${'cd'.repeat(32)}`,
  ].join('\r\n');
  const before = lines().length;
  const s = connect(Number(port), hostname);
  await new Promise<void>((r) => s.once('connect', () => r()));
  await new Promise<void>((r) => s.write(`${head}\r\n\r\n{"tenant":"default",`, () => r()));
  await new Promise((r) => setTimeout(r, 200)); // the body has started arriving
  s.resetAndDestroy();
  const line = await eventually(() => lines().slice(before).find((l) => /cluster: internal request/.test(l.msg)), 10_000, 'a log line for the reset request');
  assert.ok(line.level <= 20, `logged at level ${line.level}: ${JSON.stringify(line)}`);
  assert.equal(line.err?.stack, undefined, 'no stack');
  assert.deepEqual(lines().filter((l) => l.level >= 40 && /cluster/.test(l.msg)), [], 'nothing about it at warn or above');
});
