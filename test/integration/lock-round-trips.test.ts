/**
 * What a lock costs in ZooKeeper work (issue 12): the requests per acquire + release cycle, as
 * ZooKeeper itself counts them (`mntr`), and the round trips a caller waits for — how many
 * ZooKeeper requests of an acquire, a release or a hand-over to the next waiter run one after
 * the other. The round trips are read from a trace of the gateway's own (real) client calls:
 * requests sent together count once, a request sent after another's answer counts again. No
 * timing is asserted, only structure, so a busy machine cannot fail it.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { LOCK_WATCH_AFTER_MS } from '../../src/core/recipes/lock.js';
import { eventually, grantSettled, startTestGateway, uniquePath, type TestGateway } from '../support/test-gateway.js';
import { roundTrips, traced, type Call } from '../support/zk-trace.js';
import { fourLetter, parseMntr, startZkServer, type ZkStandalone } from '../support/zk-server.js';

interface Hold {
  node: string;
  fencingToken: string;
}

describe('lock round trips', () => {
  let zk: ZkStandalone;
  let g: TestGateway;
  before(async () => {
    zk = await startZkServer();
    g = await startTestGateway(zk.connectString);
    await eventually(() => g.running.gateway.health().ready, 20_000, 'gateway ready');
  });
  after(async () => {
    await g?.close();
    await zk?.close();
  });

  const acquire = async (path: string, leaseId: string, waitMs = 0): Promise<Hold> => {
    const r = await g.rest.json('POST', `/v1/locks${path}`, { leaseId, waitMs });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body as Hold;
  };
  const release = async (path: string, leaseId: string, node: string): Promise<void> => {
    const r = await g.rest.json('DELETE', `/v1/locks${path}`, undefined, { query: { leaseId, node } });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal((r.body as { released: boolean }).released, true);
  };
  /**
   * Lets the first holder's ownership watch be set (it is put off for LOCK_WATCH_AFTER_MS after
   * its acquire) before a hand-over is traced: set inside the trace, its read was counted as a
   * request of the hand-over (seen once in a concurrent run).
   */
  const settled = (): Promise<void> => new Promise((r) => setTimeout(r, LOCK_WATCH_AFTER_MS + 100));
  const counters = async (): Promise<{ reads: number; writes: number }> => {
    const m = parseMntr(await fourLetter(zk.clientPort, 'mntr'));
    return { reads: Number(m.get('zk_cnt_readlatency')), writes: Number(m.get('zk_cnt_updatelatency')) };
  };

  test('lock round trips › an uncontended acquire + release: ZooKeeper requests per cycle and round trips waited for', async () => {
    const path = uniquePath('rt');
    const lease = await grantSettled(g.rest);
    await release(path, lease, (await acquire(path, lease)).node); // creates the lock's parent
    await release(path, lease, (await acquire(path, lease)).node); // our node seen alone before: the parent is watched
    const before = await counters();
    const cycles = 10;
    let acquireTrips = 0;
    let releaseTrips = 0;
    let ownershipReads = 0;
    let listings = 0;
    for (let i = 0; i < cycles; i++) {
      const a = await traced(() => acquire(path, lease));
      listings += a.trace.filter((c) => c.op === 'children' && c.path === path).length;
      acquireTrips = Math.max(acquireTrips, roundTrips(a.trace, path, a.result.node));
      const r = await traced(() => release(path, lease, a.result.node));
      // The ownership watch is put off for LOCK_WATCH_AFTER_MS after the create's answer: a hold
      // released sooner never sets it. On a busy machine a cycle can take longer than that, so
      // what is asserted is the delay (never sooner, with 5 ms for timer granularity, and never
      // under 50 ms whatever the constant says: watching at once was the old per-cycle read),
      // not that every cycle here is quick; such a late watch's read is left out of the count below.
      const created = a.trace.find((c) => c.op === 'createWithStat' && c.path.startsWith(`${path}/`));
      for (const w of [...a.trace, ...r.trace].filter((c) => c.path === a.result.node && c.watch)) {
        assert.ok(created && w.start - created.end >= Math.max(LOCK_WATCH_AFTER_MS, 50) - 5, `ownership watch set ${created ? (w.start - created.end).toFixed(1) : '?'} ms after the create's answer (want ≥ ${Math.max(LOCK_WATCH_AFTER_MS, 50)})`);
        ownershipReads++;
      }
      releaseTrips = Math.max(releaseTrips, roundTrips(r.trace, path));
    }
    const after = await counters();
    const reads = (after.reads - before.reads - ownershipReads) / cycles;
    const writes = (after.writes - before.writes) / cycles;
    // create + delete, no listing: the two cycles before showed our node alone and the
    // parent watched, so every later create's sequence number proves it alone again (SoleDirs).
    // Curator makes three requests. (The ownership watch's read of the held node, a fourth until
    // 2026-12-01, is put off for LOCK_WATCH_AFTER_MS.)
    assert.ok(writes <= 2, `${writes} ZooKeeper writes per cycle (want ≤ 2)`);
    assert.ok(reads <= 0.2, `${reads} ZooKeeper reads per cycle (want 0: no listing)`);
    assert.equal(listings, 0, 'no listing of the lock in the uncontended cycles');
    // The listing goes out right behind the create (answered after it, in session order) and
    // the create answers the node's stat (create2): an uncontended acquire waits for one.
    assert.equal(acquireTrips, 1, 'an uncontended acquire waits for one round trip (create2)');
    assert.equal(releaseTrips, 1, 'a release waits for its delete only');
  });

  test('lock round trips › a hold kept past LOCK_WATCH_AFTER_MS gets its ownership watch then; a waiter gets it before it waits', async () => {
    const path = uniquePath('watch');
    const a = await grantSettled(g.rest);
    const b = await grantSettled(g.rest);
    const held = await traced(async () => {
      const hold = await acquire(path, a);
      await new Promise((r) => setTimeout(r, LOCK_WATCH_AFTER_MS + 200));
      return hold;
    });
    const watches = (trace: readonly Call[], node: string): number => trace.filter((c) => c.path === node && c.watch).length;
    assert.equal(watches(held.trace, held.result.node), 1, 'the held node is watched once it has been held a while');
    const queued = await traced(async () => {
      const waiting = acquire(path, b, 20_000);
      await eventually(async () => ((await g.rest.json('GET', `/v1/locks${path}`)).body as { queue: unknown[] }).queue.length === 2, 10_000, 'b queued');
      await release(path, a, held.result.node);
      return waiting;
    });
    assert.equal(watches(queued.trace, queued.result.node), 1, 'the waiter\'s node was watched while it waited');
    await release(path, b, queued.result.node);
  });

  test('lock round trips › a hand-over: the next waiter holds on its predecessor\'s delete, with no request of its own', async () => {
    const path = uniquePath('handover');
    const a = await grantSettled(g.rest);
    const b = await grantSettled(g.rest);
    const first = await acquire(path, a);
    const waiting = acquire(path, b, 20_000);
    await eventually(async () => {
      const r = await g.rest.json('GET', `/v1/locks${path}`);
      return (r.body as { queue: unknown[] }).queue.length === 2;
    }, 10_000, 'b queued');
    await settled();
    const handed = await traced(async () => {
      await release(path, a, first.node);
      return waiting;
    });
    assert.ok(BigInt(handed.result.fencingToken) > BigInt(first.fencingToken), 'a higher fencing token');
    // Only the delete: Curator's waiter lists the children again after the event (on the
    // gateway's one session that listing overlaps the delete's answer, so it shows as a request
    // rather than as a round trip); the hub would re-read the deleted node first.
    const made = handed.trace.filter((c) => c.path.startsWith(`${path}/`) || c.path === path).map((c) => `${c.op} ${c.path}`);
    assert.deepEqual(made, [`delete ${first.node}`], 'the hand-over makes no request but the delete');
    await release(path, b, handed.result.node);
  });

  test('lock round trips › along a queue: a waiter further back holds on its predecessor\'s delete with no request once that node has held', async () => {
    const path = uniquePath('chain');
    const ids = await Promise.all([0, 1, 2, 3].map(() => grantSettled(g.rest)));
    let current = await acquire(path, ids[0] as string);
    // B, C, D queue behind A: C and D listed with a node between them and the holder, so only
    // B is the heir; C and D each wait on a predecessor that holds (here) before it goes.
    const waiting: Promise<Hold>[] = [];
    for (let i = 1; i < ids.length; i++) {
      waiting.push(acquire(path, ids[i] as string, 20_000));
      await eventually(async () => ((await g.rest.json('GET', `/v1/locks${path}`)).body as { queue: unknown[] }).queue.length === i + 1, 10_000, `waiter ${i} queued`);
    }
    await settled();
    for (let i = 1; i < ids.length; i++) {
      const prev = current;
      const handed = await traced(async () => {
        await release(path, ids[i - 1] as string, prev.node);
        return waiting[i - 1] as Promise<Hold>;
      });
      current = handed.result;
      assert.ok(BigInt(current.fencingToken) > BigInt(prev.fencingToken), 'a higher fencing token');
      const made = handed.trace.filter((c) => c.path.startsWith(`${path}/`) || c.path === path).map((c) => `${c.op} ${c.path}`);
      assert.deepEqual(made, [`delete ${prev.node}`], `hand-over ${i}: no request but the delete (Curator's waiter lists again)`);
    }
    await release(path, ids[3] as string, current.node);
  });

  test('lock round trips › a waiter whose predecessor gives up without holding lists again and keeps waiting for the holder', async () => {
    const path = uniquePath('gaveup');
    const [a, b, c] = await Promise.all([0, 1, 2].map(() => grantSettled(g.rest)));
    const first = await acquire(path, a as string);
    const queued = async (n: number): Promise<unknown> =>
      eventually(async () => ((await g.rest.json('GET', `/v1/locks${path}`)).body as { queue: unknown[] }).queue.length === n, 10_000, `${n} in the queue`);
    const missed = g.rest.json('POST', `/v1/locks${path}`, { leaseId: b, waitMs: 1500 });
    await queued(2);
    let cHolds = false;
    const third = traced(async () => {
      const hold = await acquire(path, c as string, 20_000);
      cHolds = true;
      return hold;
    });
    await queued(3);
    assert.equal((await missed).status, 409, 'B gives up');
    await queued(2);
    const inspection = (await g.rest.json('GET', `/v1/locks${path}`)).body as { holder: { node: string } };
    assert.equal(inspection.holder.node, first.node, 'A still holds');
    assert.equal(cHolds, false, 'C does not hold while A does');
    await release(path, a as string, first.node);
    const { result, trace } = await third;
    const listings = trace.filter((x) => x.op === 'children' && x.path === path).length;
    assert.ok(listings >= 2, `C listed again after B went (${listings} listings)`);
    await release(path, c as string, result.node);
  });
});
