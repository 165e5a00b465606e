import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const execAsync = promisify(execFile);
import { leasePool, uniquePath, zkAndGateway } from '../support/test-gateway.js';
import { checkOverlaps, contend, gatewayRounds } from '../support/peers.js';
import { projectFile } from '../../src/project-files.js';

const ROUNDS = 30;

describe('interop with Kazoo 2.8 (Lock)', () => {
  const env = zkAndGateway();

  test('interop › stock Kazoo Lock peers and kazoo-flavour gateway clients never hold one lock at once', async (t) => {
    const path = uniquePath('kazoo-lock');
    const log = await contend({
      peers: ['kazoo-1', 'kazoo-2'].map((id) => ({ kind: 'kazoo' as const, id, args: (l: string) => ['lock', env.zk.connectString, path, String(ROUNDS), '3', l, id] })),
      gateway: (l) => ['gateway-1', 'gateway-2'].map((id) => gatewayRounds(env.g.rest, { kind: 'lock', path, rounds: ROUNDS, holdMs: 3, log: l, id, flavour: 'kazoo' })),
    });
    const report = checkOverlaps(log);
    t.diagnostic(`kazoo lock: rounds ${JSON.stringify(report.rounds)}, overlaps ${report.overlaps}`);
    assert.deepEqual(report.problems, []);
    assert.deepEqual(report.rounds, { 'kazoo-1': ROUNDS, 'kazoo-2': ROUNDS, 'gateway-1': ROUNDS, 'gateway-2': ROUNDS });
  });

  test("interop › Kazoo's contenders() lists gateway kazoo-flavour nodes in the gateway's order and ignores Curator nodes", async () => {
    const path = uniquePath('kazoo-order');
    const rest = env.g.rest;
    const pool = leasePool(rest);
    const lease = (): Promise<string> => pool.grant();
    assert.equal((await rest.json('POST', `/v1/locks${path}`, { leaseId: await lease(), flavour: 'kazoo', data: 'k-first' })).status, 200);
    const waits = [];
    for (const data of ['k-second', 'k-third']) {
      waits.push(rest.json('POST', `/v1/locks${path}`, { leaseId: await lease(), flavour: 'kazoo', data, waitMs: 20_000 }));
      await new Promise((r) => setTimeout(r, 150));
    }
    assert.equal((await rest.json('POST', `/v1/locks${path}`, { leaseId: await lease(), data: 'curator' })).status, 200);
    const gateway = ((await rest.json('GET', `/v1/locks${path}`, undefined, { query: { flavour: 'kazoo' } })).body as { queue: { node: string }[] }).queue;
    const out = (await execAsync('/usr/bin/python3', [projectFile('test/peers/kazoo_peer.py'), 'inspect', env.zk.connectString, path], { encoding: 'utf8' })).stdout.split('\n');
    const nodes = out.filter((l) => l.startsWith('NODE ')).map((l) => l.slice(5));
    const contenders = out.filter((l) => l.startsWith('CONTENDER ')).map((l) => l.slice(10));
    assert.deepEqual(nodes, gateway.map((q) => q.node.slice(path.length + 1)));
    assert.deepEqual(contenders, ['k-first', 'k-second', 'k-third']);
    await pool.revokeAll(); // newest first: the waiters are revoked while they wait
    assert.deepEqual((await Promise.all(waits)).map((r) => r.status), [410, 410]);
  });
});
