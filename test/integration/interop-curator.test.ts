import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const execAsync = promisify(execFile);
import { leasePool, uniquePath, zkAndGateway } from '../support/test-gateway.js';
import { checkOverlaps, contend, gatewayRounds } from '../support/peers.js';
import { projectFile } from '../../src/project-files.js';

const ROUNDS = 30;

describe('interop with Curator 5.4 (InterProcessMutex, LeaderLatch)', () => {
  const env = zkAndGateway();

  /** Two Curator peers and two gateway clients, started together through PEER_START_FILE. */
  const run = (kind: 'lock' | 'latch', path: string): Promise<string> =>
    contend({
      peers: ['curator-1', 'curator-2'].map((id) => ({
        kind: 'curator' as const,
        id,
        args: (log: string) =>
          kind === 'lock' ? ['lock', env.zk.connectString, path, String(ROUNDS), '3', log, id] : ['latch', env.zk.connectString, path, '3', String(ROUNDS), log, id],
      })),
      gateway: (log) => ['gateway-1', 'gateway-2'].map((id) => gatewayRounds(env.g.rest, { kind, path, rounds: ROUNDS, holdMs: 3, log, id, flavour: 'curator' })),
    });

  test('interop › Curator InterProcessMutex peers and gateway clients never hold one lock at once', async (t) => {
    const report = checkOverlaps(await run('lock', uniquePath('curator-lock')));
    t.diagnostic(`curator lock: rounds ${JSON.stringify(report.rounds)}, overlaps ${report.overlaps}`);
    assert.deepEqual(report.problems, []);
    assert.deepEqual(report.rounds, { 'curator-1': ROUNDS, 'curator-2': ROUNDS, 'gateway-1': ROUNDS, 'gateway-2': ROUNDS });
  });

  test('interop › Curator LeaderLatch peers and gateway campaigners: exactly one leader at a time', async (t) => {
    const report = checkOverlaps(await run('latch', uniquePath('curator-latch')), 'LEAD', 'UNLEAD');
    t.diagnostic(`curator latch: rounds ${JSON.stringify(report.rounds)}, overlaps ${report.overlaps}`);
    assert.deepEqual(report.problems, []);
    assert.deepEqual(report.rounds, { 'curator-1': ROUNDS, 'curator-2': ROUNDS, 'gateway-1': ROUNDS, 'gateway-2': ROUNDS });
  });

  test("interop › Curator's own sort lists gateway-created nodes in the gateway's order", async () => {
    const path = uniquePath('curator-order');
    const rest = env.g.rest;
    const pool = leasePool(rest);
    const lease = (): Promise<string> => pool.grant();
    assert.equal((await rest.json('POST', `/v1/locks${path}`, { leaseId: await lease(), data: 'first' })).status, 200);
    const waits = [];
    for (const data of ['second', 'third']) {
      waits.push(rest.json('POST', `/v1/locks${path}`, { leaseId: await lease(), data, waitMs: 20_000 }));
      await new Promise((r) => setTimeout(r, 150));
    }
    // A kazoo-named node on the same path: Curator sorts it by its whole name, after the rest.
    assert.equal((await rest.json('POST', `/v1/locks${path}`, { leaseId: await lease(), flavour: 'kazoo', data: 'kz' })).status, 200);
    const gateway = ((await rest.json('GET', `/v1/locks${path}`)).body as { queue: { node: string }[] }).queue.map((q) => q.node.slice(path.length + 1));
    assert.equal(gateway.length, 4);
    // Asynchronously: a blocked event loop would starve the in-process gateway's ZooKeeper session.
    const cp = (await execAsync('sh', [projectFile('test/peers/classpath.sh')], { encoding: 'utf8' })).stdout.trim();
    const curator = (await execAsync('java', ['-cp', cp, projectFile('test/peers/CuratorPeer.java'), 'inspect', env.zk.connectString, path], { encoding: 'utf8' })).stdout
      .split('\n')
      .filter(Boolean);
    assert.deepEqual(curator, gateway);
    assert.match(gateway.at(-1) as string, /__lock__/);
    await pool.revokeAll(); // newest first: the waiters are revoked while they wait
    assert.deepEqual((await Promise.all(waits)).map((r) => r.status), [410, 410], 'the waiters are told their lease was revoked');
  });
});
