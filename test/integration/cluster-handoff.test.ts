/**
 * Rolling restarts lose nothing (issue 11 item 4, docs/cluster.md): a draining instance hands
 * its leases and the ZooKeeper session owning their nodes to a live instance. Lock holds,
 * leaderships, ephemerals and lease ids survive; a forwarded lock wait cut by the handoff is
 * carried on by the successor; exactly one connection uses the session afterwards, and it stays
 * that way (the old handle never reconnects to take it back).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { eventually, startTestGateway, uniquePath, type TestGateway } from '../support/test-gateway.js';
import { fourLetter, startZkServer, type ZkStandalone } from '../support/zk-server.js';
import { WsTestClient } from '../support/ws-client.js';
import { NativeZkClient, registerInstance } from '../../src/zk/index.js';

const SECRET = 'handoff-test-secret-0123456789abcdef';

interface Hold {
  node: string;
  fencingToken: string;
  leaseId: string;
}
interface Ready {
  tenants: { sessionId: string }[];
  cluster?: { members: { id: string }[] };
}

/** Client connections ZooKeeper holds for session `sid` (`0x…`). */
async function connectionsOf(zk: ZkStandalone, sid: string): Promise<number> {
  const cons = await fourLetter(zk.clientPort, 'cons');
  const hex = sid.replace(/^0x/, '');
  return cons.split('\n').filter((l) => new RegExp(`sid=0x0*${hex.replace(/^0+/, '')}[,)]`).test(l)).length;
}

describe('cluster › graceful handoff', () => {
  let zk: ZkStandalone;
  let a: TestGateway;
  let b: TestGateway;
  const INSTANCES = `/zkgate-handoff/${process.pid}`;
  const gw = (id: string, drainTimeoutMs = 1000): Promise<TestGateway> =>
    startTestGateway(zk.connectString, {
      instanceId: id,
      // Grants stay where they arrive (lease placement is cluster-placement.test's).
      cluster: { secret: SECRET, forwardTimeoutMs: 5000, leasePlacement: 'local' },
      instances: { path: INSTANCES },
      shutdown: { drainTimeoutMs, exitTimeoutMs: drainTimeoutMs + 10_000 },
      tenants: [{ name: 'default', sessionTimeoutMs: 6000 }],
      // Ended lease ids are forgotten after 3 s, so the handoff record's cleanup is seen quickly.
      leases: { tombstoneMs: 3000 },
    });

  before(async () => {
    zk = await startZkServer({ extraConfig: { '4lw.commands.whitelist': '*' } });
    a = await gw('alpha');
    b = await gw('beta');
  });
  after(async () => {
    await b?.close();
    await a?.close();
    await zk?.close();
  });

  const grant = async (g: TestGateway, ttlMs = 8000): Promise<string> => ((await g.rest.json('POST', '/v1/leases', { ttlMs })).body as { id: string }).id;

  test('a SIGTERMed instance hands its leases, holds, leadership, ephemerals and session to the other; nothing is lost', async () => {
    const lock = uniquePath('lock');
    const election = uniquePath('elect');
    const holder = await grant(a);
    const waiter = await grant(a);
    const hold = (await a.rest.json('POST', `/v1/locks${lock}`, { leaseId: holder })).body as Hold;
    await a.rest.json('POST', `/v1/nodes${lock}-eph`, { data: 'e', mode: 'ephemeral', leaseId: holder });
    const led = (await a.rest.json('POST', `/v1/elections${election}`, { leaseId: holder, value: 'v', waitMs: 0 })).body as { node: string };
    const sid = ((await a.rest.json('GET', '/readyz')).body as Ready).tenants[0]?.sessionId as string;
    // A WebSocket on beta bound to alpha's lease, and a wait on the lock forwarded to alpha.
    const ws = await WsTestClient.open(`${b.base.replace('http', 'ws')}/v1/ws`);
    ws.send({ op: 'lease_attach', leaseId: holder });
    await ws.take((m) => m.type === 'lease');
    const waiting = b.rest.json('POST', `/v1/locks${lock}`, { leaseId: waiter, waitMs: 20_000 });
    await eventually(async () => ((await b.rest.json('GET', `/v1/locks${lock}`)).body as { queue: unknown[] }).queue.length === 2, 5000, 'the waiter queued');

    await a.running.shutdown();

    // Every lease id answers from beta, active, with what it owned.
    const info = (await b.rest.json('POST', `/v1/leases/${holder}/keepalive`)).body as { state: string; owned: { path: string; kind: string }[] };
    assert.equal(info.state, 'active');
    assert.deepEqual(info.owned.map((o) => o.kind).sort(), ['candidate', 'lock', 'node']);
    const inspect = (await b.rest.json('GET', `/v1/locks${lock}`)).body as { holder: { node: string } | null };
    assert.equal(inspect.holder?.node, hold.node, 'the same node still holds the lock');
    const eph = (await b.rest.json('GET', `/v1/nodes${lock}-eph`)).body as { stat: { ephemeralOwner: string } };
    assert.equal(eph.stat.ephemeralOwner, sid, 'the ephemeral still belongs to the handed-over session');
    const leader = (await b.rest.json('GET', `/v1/elections${election}`)).body as { leader: { node: string } | null };
    assert.equal(leader.leader?.node, led.node);
    // One connection uses the session now, and a while later still one (no reconnect by the old handle).
    assert.equal(await connectionsOf(zk, sid), 1);
    await new Promise((r) => setTimeout(r, 2500));
    assert.equal(await connectionsOf(zk, sid), 1);
    assert.equal(((await b.rest.json('GET', `/v1/leases/${holder}`)).body as { state: string }).state, 'active');
    // The bound socket never heard a loss.
    assert.deepEqual(ws.all.filter((m) => m.type === 'lease_state').map((m) => m.state), []);
    ws.ws.close();

    // Releasing through the successor hands the lock to the waiter, whose forwarded wait was carried on.
    const rel = await b.rest.json('DELETE', `/v1/locks${lock}`, undefined, { query: { leaseId: holder, node: hold.node } });
    assert.equal(rel.status, 200);
    const next = await waiting;
    assert.equal(next.status, 200, JSON.stringify(next.body));
    assert.equal((next.body as Hold).leaseId, waiter);
    assert.ok(BigInt((next.body as Hold).fencingToken) > BigInt(hold.fencingToken));
    // Alpha is gone from the membership; revoking through beta deletes what the lease owned.
    await eventually(async () => ((await b.rest.json('GET', '/readyz')).body as Ready).cluster?.members.length === 1, 5000, 'alpha to leave');
    assert.equal((await b.rest.json('DELETE', `/v1/leases/${holder}`)).status, 200);
    assert.equal((await b.rest.json('GET', `/v1/nodes${lock}-eph`)).status, 404);

    // The handoff record (alpha's leases → beta) is deleted once none of its leases is left on
    // beta, not even as a tombstone (leases.tombstoneMs).
    const zkc = new NativeZkClient({ connect: zk.connectString, sessionTimeoutMs: 4000 });
    try {
      await new Promise((r) => zkc.once('connect', r));
      const records = async (): Promise<string[]> => (await zkc.children('/zkgate-handoff/handoffs')).children;
      assert.deepEqual((await records()).map((n) => n.split('.')[0]), ['alpha']);
      // The holder's tombstone is gone after 3 s; the waiter's lease (kept alive) still needs it.
      assert.equal((await b.rest.json('POST', `/v1/leases/${waiter}/keepalive`)).status, 200);
      await new Promise((r) => setTimeout(r, 4000));
      assert.equal((await records()).length, 1, 'kept while the waiter\'s lease lives');
      assert.equal((await b.rest.json('DELETE', `/v1/leases/${waiter}`)).status, 200);
      await eventually(async () => (await records()).length === 0, 20_000, 'the handoff record to be deleted');
      // Its ids still answer 410 (instance_gone: neither alpha nor a record for it is left).
      const late = await b.rest.json('POST', `/v1/leases/${holder}/keepalive`);
      assert.equal(late.status, 410, JSON.stringify(late.body));
    } finally {
      zkc.close();
    }
  });

  test('a handoff record naming an instance that is gone is deleted by another instance', async () => {
    const c = await gw('gamma');
    const d = await gw('delta');
    const zkc = new NativeZkClient({ connect: zk.connectString, sessionTimeoutMs: 4000 });
    try {
      await new Promise((r) => zkc.once('connect', r));
      const records = async (): Promise<string[]> => (await zkc.children('/zkgate-handoff/handoffs')).children;
      const id = await grant(c, 30_000);
      await c.running.shutdown(); // hands its lease to the live member holding the fewest leases
      assert.deepEqual((await records()).map((n) => n.split('.')[0]), ['gamma']);
      const [record] = await records();
      const target = (JSON.parse((await zkc.get(`/zkgate-handoff/handoffs/${record}`)).data.toString('utf8')) as { id: string }).id;
      const [holder, other] = target === 'beta' ? [b, d] : [d, b];
      const kept = await other.rest.json('POST', `/v1/leases/${id}/keepalive`);
      assert.equal(kept.status, 200, JSON.stringify(kept.body));
      // The holder goes without handing anything over: the record names an instance that is gone.
      await holder.running.close();
      await eventually(async () => (await records()).length === 0, 30_000, 'the other instance to delete the orphaned record');
      const gone = await other.rest.json('POST', `/v1/leases/${id}/keepalive`);
      assert.equal(gone.status, 410, JSON.stringify(gone.body));
      assert.equal((gone.body as { details?: { reason?: string } }).details?.reason, 'instance_gone');
    } finally {
      zkc.close();
      await d.close();
      await c.close();
    }
  });

  test('the handoff goes to the live instance holding the fewest leases, past one whose address refuses', async () => {
    // First by id: a member killed a moment ago, registered (its session has not expired yet),
    // holding nothing, with nothing listening at its address; then one holding leases; then an
    // empty one, which should get them.
    const ghost = await registerInstance({
      connect: zk.connectString,
      path: INSTANCES,
      instanceId: 'aaa-ghost',
      sessionTimeoutMs: 10_000,
      connectTimeoutMs: 10_000,
      record: { address: 'http://127.0.0.1:9', incarnation: 'ghost' },
    });
    const loaded = await gw('aab-loaded');
    const empty = await gw('aac-empty');
    const source = await gw('zeta');
    try {
      for (let i = 0; i < 3; i++) await grant(loaded, 30_000);
      const moving = await grant(source, 30_000);
      const lock = uniquePath('spread');
      const hold = (await source.rest.json('POST', `/v1/locks${lock}`, { leaseId: moving })).body as Hold;
      await new Promise((r) => setTimeout(r, 500)); // published usage reaches zeta (50 ms + a watch)
      await source.running.shutdown();
      const list = (await empty.rest.json('GET', '/v1/leases')).body as { leases: { id: string; instance?: string }[] };
      assert.equal(list.leases.find((l) => l.id === moving)?.instance, 'aac-empty', JSON.stringify(list));
      const kept = await loaded.rest.json('POST', `/v1/leases/${moving}/keepalive`);
      assert.equal(kept.status, 200, JSON.stringify(kept.body));
      const info = (await empty.rest.json('GET', `/v1/locks${lock}`)).body as { holder?: { node: string } };
      assert.ok(hold.node, JSON.stringify(hold));
      assert.equal(info.holder?.node, hold.node, 'the lock is still held through the handoff');
    } finally {
      ghost?.close();
      await source.close();
      await empty.close();
      await loaded.close();
    }
  });

  /**
   * Two instances of its own (earlier tests may have closed beta): `other` holding a lock with a
   * lease of its own, `drained` (to be shut down) granting the waiter's lease. Its own client's
   * request stays open while its wait is carried on by the successor, for as long as the drain
   * lasts (drainTimeoutMs 20 s; after it, 503 "shutting down").
   */
  async function lockScene(what: string, other: string, drained: string): Promise<{ lock: string; t: TestGateway; holder: string; e: TestGateway; waiter: string; hold: Hold }> {
    const lock = uniquePath(what);
    const t = await gw(other);
    const holder = await grant(t, 60_000);
    const e = await gw(drained, 20_000);
    const waiter = await grant(e, 30_000);
    const hold = (await t.rest.json('POST', `/v1/locks${lock}`, { leaseId: holder })).body as Hold;
    return { lock, t, holder, e, waiter, hold };
  }

  test('a joined lock wait (one acquire on the lease\'s instance, its repeat forwarded) moves with the handoff: both answered with one hold, one node', async () => {
    const { lock, t, holder, e, waiter, hold } = await lockScene('joined', 'theta', 'eta');
    // The first acquire on eta (the lease's instance), its repeat through theta (forwarded to
    // eta, where it joins the first's wait: still one queued node).
    const first = e.rest.json('POST', `/v1/locks${lock}`, { leaseId: waiter, waitMs: 20_000 });
    await eventually(async () => ((await t.rest.json('GET', `/v1/locks${lock}`)).body as { queue: unknown[] }).queue.length === 2, 5000, 'the waiter queued');
    const second = t.rest.json('POST', `/v1/locks${lock}`, { leaseId: waiter, waitMs: 20_000 });
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(((await t.rest.json('GET', `/v1/locks${lock}`)).body as { queue: unknown[] }).queue.length, 2, 'the repeat joined the wait');

    // Eta drains: the joined wait is stopped there (its node deleted) and both callers are run
    // again on the successor (theta, or another live member), where the second joins
    // the first again.
    const shutdown = e.running.shutdown();
    const moved = async (): Promise<boolean> => {
      const at = ((await t.rest.json('GET', '/v1/leases')).body as { leases: { id: string; instance: string }[] }).leases.find((l) => l.id === waiter)?.instance;
      return at !== undefined && at !== 'eta';
    };
    await eventually(moved, 10_000, 'the lease to move to its successor');
    await eventually(async () => ((await t.rest.json('GET', `/v1/locks${lock}`)).body as { queue: unknown[] }).queue.length === 2, 5000, 'the wait re-queued on the successor');
    await new Promise((r) => setTimeout(r, 300));
    const queue = ((await t.rest.json('GET', `/v1/locks${lock}`)).body as { queue: { node: string; data?: string }[] }).queue;
    assert.equal(queue.length, 2, `the holder and one node of the waiter: ${JSON.stringify(queue)}`);

    assert.equal((await t.rest.json('DELETE', `/v1/locks${lock}`, undefined, { query: { leaseId: holder, node: hold.node } })).status, 200);
    const [r1, r2] = await Promise.all([first, second]);
    await shutdown;
    assert.equal(r1.status, 200, JSON.stringify(r1.body));
    assert.equal(r2.status, 200, JSON.stringify(r2.body));
    assert.equal((r1.body as Hold).node, (r2.body as Hold).node, 'one hold answers both');
    assert.equal((r1.body as Hold).leaseId, waiter);
    const after = (await t.rest.json('GET', `/v1/locks${lock}`)).body as { holder: { node: string } | null; queue: unknown[] };
    assert.equal(after.holder?.node, (r1.body as Hold).node);
    assert.equal(after.queue.length, 1, 'nothing else queued');
    for (const id of [holder, waiter]) assert.equal((await t.rest.json('DELETE', `/v1/leases/${id}`)).status, 200);
    await e.close();
    await t.close();
  });

  test('a lock acquire that starts once the handoff has begun is stopped like the running ones and carried out on the successor', async () => {
    const { lock, t, holder, e, waiter, hold } = await lockScene('late', 'kappa', 'iota');
    const queue = async (): Promise<string[]> => ((await t.rest.json('GET', `/v1/locks${lock}`)).body as { queue: { node: string }[] }).queue.map((q) => q.node);
    // The first step of a graceful shutdown (gateway.beginShutdown) without the rest yet: an
    // acquire that arrives now (a request read just before the listeners closed). Before the
    // change it queued its node in the session about to be handed over and then waited on the
    // detached handle: answered 503 at its deadline, while the successor's session held the node
    // — after the release, the lock held for the lease with nobody told.
    e.running.gateway.cluster?.beginHandoff();
    const late = e.rest.json('POST', `/v1/locks${lock}`, { leaseId: waiter, waitMs: 20_000 });
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(await queue(), [hold.node], 'nothing queued in the session being handed over');
    const shutdown = e.running.shutdown();
    // Released only once the lease (and its session) is the successor's.
    await eventually(
      async () => {
        const at = ((await t.rest.json('GET', '/v1/leases')).body as { leases: { id: string; instance: string }[] }).leases.find((l) => l.id === waiter)?.instance;
        return at !== undefined && at !== 'iota';
      },
      10_000,
      'the lease to move to its successor',
    );
    await eventually(async () => (await queue()).length === 2, 5000, 'the acquire queued on the successor');
    const queued = (await queue())[1];
    assert.equal((await t.rest.json('DELETE', `/v1/locks${lock}`, undefined, { query: { leaseId: holder, node: hold.node } })).status, 200);
    const r = await late;
    await shutdown;
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal((r.body as Hold).node, queued, 'answered with the one node it queued');
    const after = (await t.rest.json('GET', `/v1/locks${lock}`)).body as { holder: { node: string } | null; queue: unknown[] };
    assert.equal(after.holder?.node, queued, 'the answer holds the lock');
    assert.equal(after.queue.length, 1, 'nothing else queued');
    for (const id of [holder, waiter]) assert.equal((await t.rest.json('DELETE', `/v1/leases/${id}`)).status, 200);
    await e.close();
    await t.close();
  });

  test('a wait carried on by the successor ends when its caller asked, not a whole waitMs after the handoff', async () => {
    const { lock, t, holder, e, waiter } = await lockScene('budget', 'lambda', 'mu');
    const waiter2 = await grant(e, 30_000);
    // Two waits of 6 s on a lock nobody releases: one from the drained instance's own client,
    // one forwarded to it from the other instance. The handoff begins 3 s in; each wait is
    // then run again on the successor. Before the change each got its whole waitMs again there
    // (answered 9 s and more after it was asked).
    const started = Date.now();
    const timed = (p: Promise<{ status: number; body: unknown }>): Promise<{ status: number; body: unknown; ms: number }> => p.then((r) => ({ ...r, ms: Date.now() - started }));
    const local = timed(e.rest.json('POST', `/v1/locks${lock}`, { leaseId: waiter, waitMs: 6000 }));
    const forwarded = timed(t.rest.json('POST', `/v1/locks${lock}`, { leaseId: waiter2, waitMs: 6000 }));
    await eventually(async () => ((await t.rest.json('GET', `/v1/locks${lock}`)).body as { queue: unknown[] }).queue.length === 3, 5000, 'both waiters queued');
    await new Promise((r) => setTimeout(r, 3000 - (Date.now() - started)));
    const shutdown = e.running.shutdown();
    try {
      for (const r of await Promise.all([local, forwarded])) {
        assert.equal(r.status, 409, JSON.stringify(r.body));
        assert.equal((r.body as { code: string }).code, 'LOCK_NOT_ACQUIRED');
        assert.ok(r.ms >= 5500 && r.ms < 8500, `answered ${r.ms} ms after it was asked with waitMs 6000`);
      }
      await shutdown;
      assert.equal(((await t.rest.json('GET', `/v1/locks${lock}`)).body as { queue: unknown[] }).queue.length, 1, 'only the holder is queued');
      for (const id of [holder, waiter, waiter2]) assert.equal((await t.rest.json('DELETE', `/v1/leases/${id}`)).status, 200);
    } finally {
      await shutdown.catch(() => undefined);
      await e.close();
      await t.close();
    }
  });
});
