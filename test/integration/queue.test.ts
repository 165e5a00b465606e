/**
 * The queue recipe against a real ZooKeeper and a real Curator 5.4 (one JVM for the file):
 * items put by Curator and the gateway consumed exactly once at most once, at least once with
 * claim/ack (redelivered after a claimer vanishes); cancel-safety of waiting takes and claims;
 * bad input refused with nothing changed. The gateway reaches ZooKeeper through a proxy that cuts
 * its connection exactly at the request a case is about (test/support/zk-proxy.ts): a freeze of
 * ZooKeeper cut it only once the client's timeout, two thirds of the session, declared the
 * connection lost, a race with the case's bounds that a loaded machine can lose (as in
 * ride-through-reads.test). Curator and raw clients connect to ZooKeeper directly.
 */
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ZkClient } from '../../src/zk/index.js';
import { withRawClient } from '../support/zk-tree.js';
import { appendLine } from '../support/peers.js';
import { startCuratorQueuePeer, type CuratorQueuePeer } from '../support/curator-queue-peer.js';
import { eventually, uniquePath, zkProxyAndGateway, type Problem } from '../support/test-gateway.js';
import type { RestClient } from '../support/openapi.js';
import { cutWithin } from '../support/zk-proxy.js';

interface Delivery {
  mode: string;
  item: string;
  node: string;
  data: string;
  claim?: string;
  fencingToken?: string;
}
interface Inspection {
  length: number;
  claimed: number;
  head: { item: string; data: string } | null;
}

const take = (rest: RestClient, path: string, body: Record<string, unknown>) => rest.json('POST', `/v1/queue-take${path}`, body);

/** Takes (or claims and acks) until the queue stays empty for `idleMs`; logs TAKE/CLAIM/ACK lines. */
async function gatewayConsumer(rest: RestClient, path: string, log: string, id: string, opts: { idleMs: number; leaseId?: string }): Promise<number> {
  let n = 0;
  for (;;) {
    const body = opts.leaseId ? { mode: 'claim', leaseId: opts.leaseId, waitMs: opts.idleMs } : { waitMs: opts.idleMs };
    const r = await take(rest, path, body);
    if (r.status === 409 && (r.body as Problem).code === 'QUEUE_EMPTY') return n;
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const d = r.body as Delivery;
    if (!opts.leaseId) {
      appendLine(log, `TAKE ${id} ${d.data}`);
    } else {
      appendLine(log, `CLAIM ${id} ${d.data}`);
      const acked = await rest.json('POST', `/v1/queue-ack${path}`, { leaseId: opts.leaseId, item: d.item });
      assert.equal(acked.status, 200, JSON.stringify(acked.body));
      assert.equal((acked.body as { acked: boolean }).acked, true);
      appendLine(log, `ACK ${id} ${d.data}`);
      await rest.json('POST', `/v1/leases/${opts.leaseId}/keepalive`);
    }
    n++;
  }
}

async function gatewayProducer(rest: RestClient, path: string, log: string, id: string, count: number): Promise<void> {
  for (let i = 1; i <= count; i++) {
    const data = `${id}-${i}`;
    const r = await rest.json('POST', `/v1/queues${path}`, { data });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    appendLine(log, `PUT ${id} ${data}`);
  }
}

/** `verb data` counts from the log: data → how many lines of `verb` name it. */
function tally(log: string, verb: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of log.split('\n')) {
    const [v, , data] = line.split(' ');
    if (v === verb && data) m.set(data, (m.get(data) ?? 0) + 1);
  }
  return m;
}

describe('queue', () => {
  const env = zkProxyAndGateway({ tenants: [{ name: 'default', sessionTimeoutMs: 8000 }] });
  let curator: CuratorQueuePeer;
  let dir: string;
  const tenant = () => env.g.running.gateway.tenants.get('default');
  before(async () => {
    curator = await startCuratorQueuePeer(env.zk.connectString);
    dir = mkdtempSync(join(tmpdir(), 'zkgate-queue-'));
  });
  after(async () => {
    await curator?.close();
    rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(async () => void (await eventually(() => tenant().ready, 20_000, 'the session to be connected')));
  const rest = (): RestClient => env.g.rest;
  const grant = async (ttlMs = 30_000): Promise<string> => ((await rest().json('POST', '/v1/leases', { ttlMs })).body as { id: string }).id;
  const inspect = async (path: string): Promise<Inspection> => (await rest().json('GET', `/v1/queues${path}`)).body as Inspection;
  const raw = <T>(f: (c: ZkClient) => Promise<T>): Promise<T> => withRawClient(env.zk.connectString, f);
  /** Waits until the gateway's session was cut and is back: two transitions past `epoch`. */
  const backFrom = (epoch: number): Promise<boolean> =>
    eventually(() => tenant().session.epoch >= epoch + 2 && tenant().session.isUsable, 15_000, 'the session to be back');
  const claimNodes = (path: string): Promise<string[]> =>
    raw(async (c) => {
      if (!(await c.exists(path)) || !(await c.exists(`${path}/claims`))) return [];
      return (await c.children(`${path}/claims`)).children;
    });
  const newLog = (name: string): string => {
    const f = join(dir, name);
    writeFileSync(f, '');
    return f;
  };

  test('interop › at most once: items put by Curator and the gateway are each taken exactly once by Curator and gateway takers', async (t) => {
    const path = uniquePath('amo');
    const log = newLog('amo');
    const PER = 25;
    // A backlog first (a taker reacting to a watch event is a race Curator's in-process threads
    // tend to win), then puts and takes at once.
    const produce = (from: number, to: number): Promise<unknown>[] => [
      curator.run('put', path, to - from, `c1r${from}`, log, 'curator-1'),
      curator.run('put', path, to - from, `c2r${from}`, log, 'curator-2'),
      gatewayProducer(rest(), path, log, `gateway-1r${from}`, to - from),
      gatewayProducer(rest(), path, log, `gateway-2r${from}`, to - from),
    ];
    await Promise.all(produce(0, 10));
    // Gateway takers start on the backlog; Curator's once a gateway taker has an item (else, on
    // a loaded machine, Curator's in-process threads can win every race and the run shows nothing).
    const gatewayTakers = [gatewayConsumer(rest(), path, log, 'gateway-taker-1', { idleMs: 3000 }), gatewayConsumer(rest(), path, log, 'gateway-taker-2', { idleMs: 3000 })];
    await eventually(() => readFileSync(log, 'utf8').includes('TAKE gateway-taker-'), 20_000, 'a gateway taker to take an item');
    const takers = [curator.run('take', path, 3000, log, 'curator-taker-1'), curator.run('take', path, 3000, log, 'curator-taker-2'), ...gatewayTakers];
    await Promise.all(produce(10, PER));
    const counts = await Promise.all(takers);
    const text = readFileSync(log, 'utf8');
    const puts = tally(text, 'PUT');
    const takes = tally(text, 'TAKE');
    t.diagnostic(`at most once: put ${puts.size} (curator ${2 * PER}, gateway ${2 * PER}); taken ${[...takes.values()].reduce((a, b) => a + b, 0)} — curator takers ${counts[0]}+${counts[1]}, gateway takers ${counts[2]}+${counts[3]}`);
    assert.equal(puts.size, 4 * PER);
    assert.deepEqual([...takes.entries()].filter(([, n]) => n !== 1), [], 'no item taken twice');
    assert.deepEqual([...puts.keys()].filter((d) => !takes.has(d)), [], 'no item lost');
    assert.ok(Number(counts[0]) + Number(counts[1]) > 0 && (counts[2] as number) + (counts[3] as number) > 0, 'both sides took items');
    assert.equal((await inspect(path)).length, 0);
  });

  test('interop › claim/ack: every item put by Curator and the gateway is acked at least once; a vanished claimer\'s items are redelivered', async (t) => {
    const path = uniquePath('alo');
    const log = newLog('alo');
    const PER = 20;
    await Promise.all([curator.run('put', path, PER, 'c', log, 'curator-1'), gatewayProducer(rest(), path, log, 'gateway-1', PER)]);
    // The vanished claimer: claims 5 items and is never heard from again (no ack, no keepalive).
    const ghost = await grant(1500);
    const ghosted: string[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await take(rest(), path, { mode: 'claim', leaseId: ghost });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      ghosted.push((r.body as Delivery).data);
      appendLine(log, `CLAIM ghost ${(r.body as Delivery).data}`);
    }
    assert.equal((await inspect(path)).claimed, 5);
    // Healthy consumers wait past the ghost's TTL for the redeliveries.
    const [a, b] = [await grant(), await grant()];
    const counts = await Promise.all([
      gatewayConsumer(rest(), path, log, 'worker-1', { idleMs: 5000, leaseId: a }),
      gatewayConsumer(rest(), path, log, 'worker-2', { idleMs: 5000, leaseId: b }),
    ]);
    const text = readFileSync(log, 'utf8');
    const puts = tally(text, 'PUT');
    const acks = tally(text, 'ACK');
    const claims = tally(text, 'CLAIM');
    const redelivered = [...claims.entries()].filter(([, n]) => n > 1).map(([d]) => d);
    t.diagnostic(`claim/ack: put ${puts.size} (curator ${PER}, gateway ${PER}); claims ${[...claims.values()].reduce((x, y) => x + y, 0)}, acked ${acks.size} (worker-1 ${counts[0]}, worker-2 ${counts[1]}); ghost claimed ${ghosted.length}, redelivered ${redelivered.length}`);
    assert.deepEqual([...puts.keys()].filter((d) => !acks.has(d)), [], 'every item acked at least once');
    assert.deepEqual(redelivered.sort(), [...ghosted].sort(), "exactly the vanished claimer's items were delivered again");
    const after = await inspect(path);
    assert.deepEqual([after.length, after.claimed], [0, 0]);
    assert.deepEqual(await claimNodes(path), []);
    const ghostInfo = (await rest().json('GET', `/v1/leases/${ghost}`)).body as { state: string };
    assert.equal(ghostInfo.state, 'expired');
  });

  test('queue › peek and length; release makes a claimed item claimable again; ack is idempotent and fenced by the lease', async () => {
    const path = uniquePath('peek');
    for (const data of ['one', 'two']) assert.equal((await rest().json('POST', `/v1/queues${path}`, { data })).status, 200);
    assert.equal((await rest().request('POST', `/v1/queues${path}`, { body: Buffer.from([0xff, 0x00]), headers: { 'content-type': 'application/octet-stream' } })).status, 200);
    let q = await inspect(path);
    assert.deepEqual([q.length, q.claimed, q.head?.data], [3, 0, 'one']);
    const [a, b] = [await grant(), await grant()];
    const first = (await take(rest(), path, { mode: 'claim', leaseId: a })).body as Delivery;
    assert.equal(first.data, 'one');
    q = await inspect(path);
    assert.deepEqual([q.length, q.claimed, q.head?.data], [3, 1, 'two'], 'the head is the first unclaimed item');
    // Another lease cannot ack or release it.
    const foreign = await rest().json('POST', `/v1/queue-ack${path}`, { leaseId: b, item: first.item });
    assert.deepEqual([foreign.status, (foreign.body as { acked: boolean }).acked, (foreign.body as { reason: string }).reason], [200, false, 'not_owned']);
    const released = await rest().json('POST', `/v1/queue-release${path}`, { leaseId: a, item: first.item });
    assert.deepEqual([(released.body as { released: boolean }).released, (released.body as { reason: string }).reason], [true, 'released']);
    const again = (await take(rest(), path, { mode: 'claim', leaseId: b })).body as Delivery;
    assert.equal(again.item, first.item, 'released: claimable again at once');
    assert.ok(BigInt(again.fencingToken as string) > BigInt(first.fencingToken as string), 'the fencing token rises with every claim');
    const acked = await rest().json('POST', `/v1/queue-ack${path}`, { leaseId: b, item: again.node });
    assert.deepEqual([(acked.body as { acked: boolean }).acked, (acked.body as { reason: string }).reason], [true, 'deleted']);
    const twice = await rest().json('POST', `/v1/queue-ack${path}`, { leaseId: b, item: again.item });
    assert.deepEqual([(twice.body as { acked: boolean }).acked, (twice.body as { reason: string }).reason], [false, 'not_owned']);
    const amo = (await take(rest(), path, {})).body as Delivery;
    assert.deepEqual([amo.mode, amo.data], ['at_most_once', 'two']);
    const bin = (await take(rest(), path, { encoding: 'base64' })).body as Delivery & { encoding: string };
    assert.deepEqual([bin.data, bin.encoding], ['/wA=', 'base64']);
    const empty = await take(rest(), path, { waitMs: 0 });
    assert.deepEqual([empty.status, (empty.body as Problem).code], [409, 'QUEUE_EMPTY']);
  });

  test('queue › a waiting take (long-poll) gets an item Curator puts later', async () => {
    const path = uniquePath('poll');
    const waiting = take(rest(), path, { waitMs: 20_000 });
    await new Promise((r) => setTimeout(r, 300));
    await curator.run('put', path, 1, 'late', newLog('poll'), 'curator');
    const got = await waiting;
    assert.equal(got.status, 200, JSON.stringify(got.body));
    assert.equal((got.body as Delivery).data, 'late-1');
  });

  describe('cancel-safety: no claim of the caller is left', () => {
    test('cancel › a claim whose wait times out leaves nothing; the lease owns nothing', async () => {
      const path = uniquePath('c-timeout');
      const a = await grant();
      const r = await take(rest(), path, { mode: 'claim', leaseId: a, waitMs: 300 });
      assert.deepEqual([r.status, (r.body as Problem).code], [409, 'QUEUE_EMPTY']);
      assert.deepEqual(((await rest().json('GET', `/v1/leases/${a}`)).body as { owned: unknown[] }).owned, []);
      assert.equal(await raw((c) => c.exists(path)), null, 'nothing was created');
    });

    for (const mode of ['at_most_once', 'claim'] as const) {
      test(`cancel › a ${mode} take abandoned by its HTTP client takes nothing put afterwards`, async () => {
        const path = uniquePath(`c-gone-${mode}`);
        const a = await grant();
        const ac = new AbortController();
        const body = mode === 'claim' ? { mode, leaseId: a, waitMs: 20_000 } : { waitMs: 20_000 };
        const pending = fetch(`${env.g.base}/v1/queue-take${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: ac.signal }).catch((e: Error) => e);
        await new Promise((r) => setTimeout(r, 300));
        ac.abort();
        await pending;
        await new Promise((r) => setTimeout(r, 300));
        assert.equal((await rest().json('POST', `/v1/queues${path}`, { data: 'keep' })).status, 200);
        await new Promise((r) => setTimeout(r, 500));
        const q = await inspect(path);
        assert.deepEqual([q.length, q.claimed], [1, 0], 'the item is still there, unclaimed');
        assert.deepEqual(await claimNodes(path), []);
      });
    }

    test('cancel › revoking the lease of a waiting claim answers 410 and leaves nothing; revoking a holder redelivers its item', async () => {
      const path = uniquePath('c-revoke');
      const [a, b] = [await grant(), await grant()];
      const waiting = take(rest(), path, { mode: 'claim', leaseId: a, waitMs: 20_000 });
      await new Promise((r) => setTimeout(r, 300));
      assert.equal((await rest().json('DELETE', `/v1/leases/${a}`)).status, 200);
      const r = await waiting;
      assert.deepEqual([r.status, (r.body as Problem).code], [410, 'LEASE_REVOKED']);
      assert.equal((await rest().json('POST', `/v1/queues${path}`, { data: 'x' })).status, 200);
      const held = (await take(rest(), path, { mode: 'claim', leaseId: b })).body as Delivery;
      assert.deepEqual(await claimNodes(path), [held.item]);
      assert.equal((await rest().json('DELETE', `/v1/leases/${b}`)).status, 200);
      assert.deepEqual(await claimNodes(path), [], 'the claim went with the lease');
      const late = await rest().json('POST', `/v1/queue-ack${path}`, { leaseId: b, item: held.item });
      assert.deepEqual([late.status, (late.body as Problem).code], [410, 'LEASE_REVOKED'], 'an ack after the lease ended is refused');
      assert.equal((await inspect(path)).length, 1, 'the item stays for the next claimer');
    });

    test('cancel › a claim whose create hits a connection loss ends with exactly one claim, owned by the lease', async () => {
      const path = uniquePath('c-loss');
      assert.equal((await rest().json('POST', `/v1/queues${path}`, { data: 'x' })).status, 200);
      const a = await grant(60_000);
      // The claim's create reaches ZooKeeper and is applied, but the connection is cut as its
      // answer comes back: its outcome is unknown to the gateway.
      const cutting = env.proxy.cutNextAnswer(`${path}/claims/`);
      const pending = take(rest(), path, { mode: 'claim', leaseId: a, waitMs: 30_000 });
      const { op } = await cutWithin(cutting, `a claim under ${path}`);
      assert.ok(['create', 'create2'].includes(op), `the answer cut is the claim's create's, not ${op}'s`);
      const r = await pending;
      assert.equal(r.status, 200, JSON.stringify(r.body));
      const claim = (r.body as Delivery).claim as string;
      assert.deepEqual(await claimNodes(path), [(r.body as Delivery).item], 'no orphan and no duplicate claim');
      assert.equal((await raw((c) => c.exists(claim)))?.ephemeralOwner, `0x${tenant().session.sessionId}`);
      await eventually(async () => ((await rest().json('GET', `/v1/leases/${a}`)).body as { state: string }).state === 'active', 10_000, 'the lease to be active');
      assert.deepEqual(((await rest().json('GET', `/v1/leases/${a}`)).body as { owned: unknown[] }).owned, [{ path: claim, kind: 'queue_claim' }]);
    });
  });

  /**
   * Sends `call` with the connection cut at its first look at the queue at `path` (the request
   * never reaches ZooKeeper; it fails with connection loss) and waits until the session is back.
   * Resolves with the call's answer still pending (wrapped: an async function would await it).
   */
  const cutFirstLook = async <T>(path: string, call: () => Promise<T>): Promise<{ pending: Promise<T> }> => {
    const epoch = tenant().session.epoch;
    const cutting = env.proxy.cutNextRequest(path);
    const pending = call();
    const { op } = await cutWithin(cutting, path);
    assert.ok(['getData', 'exists', 'getChildren', 'getChildren2'].includes(op), `the first request cut is a look at the queue, not ${op}`);
    await backFrom(epoch);
    return { pending };
  };

  test('queue › a waiting take whose look at the queue is cut by a connection loss waits for the session and gets the item put later', async () => {
    const path = uniquePath('t-blip');
    const { pending: waiting } = await cutFirstLook(path, () => take(rest(), path, { waitMs: 40_000 }));
    assert.equal((await rest().json('POST', `/v1/queues${path}`, { data: 'after the outage' })).status, 200);
    const r = await waiting;
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal((r.body as Delivery).data, 'after the outage');
    assert.equal((await inspect(path)).length, 0);
  });

  test('queue › a waiting claim whose look at the queue is cut by a connection loss waits for the session and claims the item put later', async () => {
    const path = uniquePath('c-blip');
    const a = await grant(60_000);
    const { pending: waiting } = await cutFirstLook(path, () => take(rest(), path, { mode: 'claim', leaseId: a, waitMs: 40_000 }));
    assert.equal((await rest().json('POST', `/v1/queues${path}`, { data: 'after the outage' })).status, 200);
    const r = await waiting;
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal((r.body as Delivery).data, 'after the outage');
    assert.deepEqual(await claimNodes(path), [(r.body as Delivery).item]);
  });

  test('queue › a claim whose look at the queue is answered right after a reconnect, before its lease is active again, waits for the lease and claims', async () => {
    const path = uniquePath('c-uncertain');
    for (const data of ['one', 'two']) assert.equal((await rest().json('POST', `/v1/queues${path}`, { data })).status, 200);
    const a = await grant(60_000);
    const first = await take(rest(), path, { mode: 'claim', leaseId: a });
    assert.equal(first.status, 200, JSON.stringify(first.body)); // the lease owns a claim: its re-check after the reconnect reads it
    // The connection is cut (and kept down) as the next claim looks at the queue; its listings are
    // sent the moment the same session is back — before the lease's re-check of its claim, which
    // answers after them.
    const t = tenant();
    const client = t.client();
    const children = client.children.bind(client);
    let held = 0;
    client.children = (p, watcher) => {
      if (p !== path && p !== `${path}/claims`) return children(p, watcher);
      if (held++ === 0) env.proxy.block();
      return new Promise((resolve, reject) => {
        const onState = (c: { state: string }): void => {
          if (c.state !== 'reconnected') return;
          t.off('state', onState);
          children(p, watcher).then(resolve, reject);
        };
        t.on('state', onState);
      });
    };
    let pending;
    try {
      pending = take(rest(), path, { mode: 'claim', leaseId: a, waitMs: 30_000 });
      await eventually(() => held === 2 && t.session.state === 'suspended', 15_000, 'the listings to be held and the session suspended');
    } finally {
      client.children = children;
      env.proxy.unblock();
    }
    const r = await pending;
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal((r.body as Delivery).data, 'two');
    assert.deepEqual((await claimNodes(path)).sort(), [(first.body as Delivery).item, (r.body as Delivery).item].sort());
  });

  test('queue › bad input is 400 and changes nothing', async () => {
    const path = uniquePath('bad');
    const a = await grant();
    const bad: [string, string, unknown][] = [
      ['POST', `/v1/queue-take${path}`, { mode: 'exactly_once' }],
      ['POST', `/v1/queue-take${path}`, { mode: 'claim' }],
      ['POST', `/v1/queue-take${path}`, { leaseId: a }],
      ['POST', `/v1/queue-take${path}`, { waitMs: -1 }],
      ['POST', `/v1/queue-take${path}`, { waitMs: 600_001 }],
      ['POST', `/v1/queue-take${path}`, { extra: true }],
      ['POST', `/v1/queues${path}`, {}],
      ['POST', `/v1/queues${path}`, { data: '%%', encoding: 'base64' }],
      ['POST', `/v1/queues${path}`, { data: 1 }],
      ['POST', '/v1/queues/a%2Fb', { data: 'slash' }],
      ['POST', `/v1/queue-ack${path}`, { leaseId: a }],
      ['POST', `/v1/queue-ack${path}`, { leaseId: a, item: '/elsewhere/qn-0000000001' }],
      ['POST', `/v1/queue-ack${path}`, { leaseId: a, item: 'claims' }],
      ['POST', `/v1/queue-release${path}`, { item: 'qn-0000000001' }],
    ];
    for (const [method, url, body] of bad) {
      const r = await rest().json(method, url, body);
      assert.equal(r.status, 400, `${method} ${url} ${JSON.stringify(body)}: ${JSON.stringify(r.body)}`);
      assert.match((r.body as Problem).code, /^INVALID_(ARGUMENT|PATH)$/);
    }
    assert.equal(await raw((c) => c.exists(path)), null, 'nothing was created');
  });
});
