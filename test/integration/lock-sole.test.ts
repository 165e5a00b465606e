/**
 * An uncontended acquire without a listing (issue 12, src/core/recipes/sole-dirs.ts): once our
 * node was alone in the lock's parent and released, the next create's sequence number proves
 * the new node alone — unless another session created a child meanwhile, the parent was deleted
 * and made again, or the connection changed. Each of those must bring the listing back; mutual
 * exclusion holds with other sessions (a raw client, Kazoo) and other leases in the same lock.
 */
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { NativeZkClient } from '../../src/zk/index.js';
import { checkOverlaps, contend, gatewayRounds } from '../support/peers.js';
import { eventually, grantSettled, startTestGateway, uniquePath, type TestGateway } from '../support/test-gateway.js';
import { connectRaw } from '../support/zk-tree.js';
import { traced, type Call } from '../support/zk-trace.js';
import { startZkServer, type ZkStandalone } from '../support/zk-server.js';
import { startZkProxy, type ZkProxy } from '../support/zk-proxy.js';

interface Hold {
  node: string;
  fencingToken: string;
}

describe('lock acquire without a listing', () => {
  let zk: ZkStandalone;
  /** Between the gateway and ZooKeeper: cuts the gateway's connection (test/support/zk-proxy.ts). */
  let proxy: ZkProxy;
  let g: TestGateway;
  /** Another session (the harness's raw client), straight to ZooKeeper: a cut does not touch it. */
  let raw: NativeZkClient;
  before(async () => {
    zk = await startZkServer();
    proxy = await startZkProxy(zk.clientPort);
    // 8 s: the gateway's session outlives the cut (it is back within milliseconds of unblock()).
    g = await startTestGateway(proxy.connectString, { tenants: [{ name: 'default', sessionTimeoutMs: 8000 }] });
    raw = await connectRaw(zk.connectString);
  });
  after(async () => {
    raw?.close();
    await g?.close();
    await proxy?.close();
    await zk?.close();
  });
  const tenant = () => g.running.gateway.tenants.get('default');
  beforeEach(async () => void (await eventually(() => tenant().ready, 20_000, 'the session to be connected')));

  const acquire = async (path: string, leaseId: string): Promise<Hold> => {
    const r = await g.rest.json('POST', `/v1/locks${path}`, { leaseId, waitMs: 0 });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body as Hold;
  };
  const release = async (path: string, leaseId: string, node: string): Promise<void> => {
    const r = await g.rest.json('DELETE', `/v1/locks${path}`, undefined, { query: { leaseId, node } });
    assert.equal(r.status, 200, JSON.stringify(r.body));
  };
  /** An acquire + release, traced: the hold and the listings of the lock it made. */
  const cycle = async (path: string, leaseId: string): Promise<{ hold: Hold; listings: Call[]; trace: Call[] }> => {
    const { result: hold, trace } = await traced(() => acquire(path, leaseId));
    await release(path, leaseId, hold.node);
    return { hold, listings: trace.filter((c) => c.op === 'children' && c.path === path), trace };
  };
  /** A Curator-named contender of another session (it sorts by its sequence, as ours do). */
  const foreign = (path: string): Promise<string> => raw.create(`${path}/_c_${randomUUID()}-lock-`, Buffer.alloc(0), 'ephemeral_sequential');
  const refused = async (path: string, leaseId: string): Promise<void> => {
    const r = await g.rest.json('POST', `/v1/locks${path}`, { leaseId, waitMs: 0 });
    assert.equal(r.status, 409, `acquired while another session's node is first: ${JSON.stringify(r.body)}`);
  };

  test('sole › a lock path used once costs no parent watch; from the third uncontended cycle on, no listing', async () => {
    const path = uniquePath('sole');
    const lease = await grantSettled(g.rest);
    const parentWatches = (trace: Call[]) => trace.filter((c) => c.op === 'exists' && c.path === path).length;
    const first = await cycle(path, lease);
    // (Twice: the first create finds no parent, makes it and is sent again with its listing.)
    assert.ok(first.listings.length >= 1, 'the first acquire lists (sent with its create)');
    assert.equal(parentWatches(first.trace), 0, 'a lock path used once: no exists request on the parent');
    const second = await cycle(path, lease);
    assert.equal(second.listings.length, 1, 'the second acquire still lists');
    assert.equal(parentWatches(second.trace), 1, 'and, its parent once seen holding our node alone, watches it');
    for (let i = 0; i < 5; i++) {
      const c = await cycle(path, lease);
      assert.equal(c.listings.length, 0, `cycle ${i + 3}: no listing`);
      assert.equal(parentWatches(c.trace), 0, `cycle ${i + 3}: the parent's watch is set already`);
    }
  });

  test('sole › a child created and deleted by another session between two cycles: the next acquire lists after its create, and holds; one kept: it is refused', async () => {
    const path = uniquePath('sole-foreign');
    const lease = await grantSettled(g.rest);
    await cycle(path, lease);
    await cycle(path, lease); // our node seen alone before: the parent is watched from here
    assert.equal((await cycle(path, lease)).listings.length, 0);
    await raw.delete(await foreign(path));
    const after = await cycle(path, lease);
    const create = after.trace.find((c) => c.op === 'createWithStat');
    assert.equal(after.listings.length, 1, 'a listing, since the sequence number skipped one');
    assert.ok(create && (after.listings[0] as Call).start >= create.end, 'listed after the create answered (the prediction said alone)');
    // The listing showed our node alone again: the shortcut is back.
    assert.equal((await cycle(path, lease)).listings.length, 0);
    const kept = await foreign(path);
    try {
      await refused(path, lease);
    } finally {
      await raw.delete(kept);
    }
    await cycle(path, lease);
  });

  test('sole › the parent deleted and made again with two contenders between cycles: the next acquire does not hold', async () => {
    const path = uniquePath('sole-recreated');
    const lease = await grantSettled(g.rest);
    await cycle(path, lease); // our node 0, alone
    await cycle(path, lease); // our node 1, alone; the parent is watched from here
    const third = await cycle(path, lease); // our node 2, alone without a listing
    assert.equal(third.listings.length, 0);
    assert.match(third.hold.node, /0000000002$/);
    // The parent restarts its sequence: the contenders get 0, 1 and 2, our next create 3 — the
    // number that follows our last node's, in a parent that is not the one it was alone in.
    await raw.delete(path);
    await raw.create(path, Buffer.alloc(0), 'persistent');
    const contenders = [await foreign(path), await foreign(path), await foreign(path)];
    try {
      await refused(path, lease);
    } finally {
      for (const c of contenders) await raw.delete(c);
    }
    await cycle(path, lease);
  });

  test('sole › a lost and re-established connection drops what was known: the next acquire lists and watches the parent again', async () => {
    const path = uniquePath('sole-reconnect');
    const lease = await grantSettled(g.rest);
    await cycle(path, lease);
    await cycle(path, lease);
    assert.equal((await cycle(path, lease)).listings.length, 0);
    // The connection is cut (and kept down) at once, not after a freeze's two thirds of the session.
    proxy.block();
    try {
      await eventually(() => tenant().session.state === 'suspended', 15_000, 'the session to be suspended');
    } finally {
      proxy.unblock();
    }
    await eventually(() => tenant().ready, 20_000, 'the session back');
    await eventually(async () => ((await g.rest.json('GET', `/v1/leases/${lease}`)).body as { state: string }).state === 'active', 10_000, 'the lease active again');
    const again = await cycle(path, lease);
    assert.equal(again.listings.length, 1, 'the first acquire after the reconnect lists');
    assert.ok(again.trace.some((c) => c.op === 'exists' && c.path === path && c.watch), 'and watches the parent again');
    assert.equal((await cycle(path, lease)).listings.length, 0, 'then the shortcut is back');
  });

  test('sole › gateway leases and a Kazoo Lock on one lock never hold at once', async (t) => {
    const path = uniquePath('sole-kazoo');
    const ROUNDS = 25;
    const gateway = ['gateway-1', 'gateway-2', 'gateway-3'];
    const run = await traced(() =>
      contend({
        peers: [{ kind: 'kazoo' as const, id: 'kazoo-1', args: (l: string) => ['lock', zk.connectString, path, String(ROUNDS), '2', l, 'kazoo-1'] }],
        gateway: (l) => gateway.map((id) => gatewayRounds(g.rest, { kind: 'lock', path, rounds: ROUNDS, holdMs: 2, log: l, id, flavour: 'kazoo' })),
      }),
    );
    const report = checkOverlaps(run.result);
    const ours = run.trace.filter((c) => c.op === 'createWithStat' && c.path.startsWith(`${path}/`)).length;
    const listed = run.trace.filter((c) => c.op === 'children' && c.path === path).length;
    t.diagnostic(`rounds ${JSON.stringify(report.rounds)}, overlaps ${report.overlaps}; gateway creates ${ours}, listings ${listed}`);
    assert.deepEqual(report.problems, []);
    assert.deepEqual(report.rounds, { 'kazoo-1': ROUNDS, 'gateway-1': ROUNDS, 'gateway-2': ROUNDS, 'gateway-3': ROUNDS });
  });
});
