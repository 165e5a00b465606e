import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { eventually, uniquePath, zkProxyAndGateway, type Problem } from '../support/test-gateway.js';
import { cutCreateAnswer } from '../support/zk-proxy.js';

interface Hold {
  node: string;
  fencingToken: string;
  leaseId: string;
  leaseState: string;
}
interface Inspection {
  holder: { node: string; data: string } | null;
  queue: { node: string; data: string }[];
}

describe('locks against a real ZooKeeper', () => {
  // A 10 s session: with the harness's 4 s one, a gateway start of 5-6 s on a loaded machine
  // let the first session expire right after it connected (the first grant answered 503).
  // The gateway reaches ZooKeeper through a proxy that cuts its connection at the request a case
  // is about (test/support/zk-proxy.ts), not after a freeze's two thirds of the session.
  const env = zkProxyAndGateway({ tenants: [{ name: 'default', sessionTimeoutMs: 10_000 }] });

  const lease = async (ttlMs = 30_000): Promise<string> => ((await env.g.rest.json('POST', '/v1/leases', { ttlMs })).body as { id: string }).id;
  const acquire = (path: string, body: Record<string, unknown>) => env.g.rest.json('POST', `/v1/locks${path}`, body);
  const release = (path: string, leaseId: string, node: string) => env.g.rest.json('DELETE', `/v1/locks${path}`, undefined, { query: { leaseId, node } });
  const inspect = async (path: string): Promise<Inspection> => {
    const r = await env.g.rest.json('GET', `/v1/locks${path}`);
    assert.equal(r.status, 200, `inspect ${path}: ${JSON.stringify(r.body)}`); // say what came back, not "undefined.map"
    return r.body as Inspection;
  };

  test('lock › waiters acquire in arrival order, each watching only its predecessor', async () => {
    const path = uniquePath('fair');
    const a = await lease();
    const held = await acquire(path, { leaseId: a, data: 'A' });
    assert.equal(held.status, 200);
    const order: string[] = [];
    const waiters: Promise<Hold>[] = [];
    const ids: Record<string, string> = {};
    for (const name of ['B', 'C', 'D']) {
      ids[name] = await lease();
      waiters.push(
        acquire(path, { leaseId: ids[name], waitMs: 20_000, data: name }).then((r) => {
          assert.equal(r.status, 200, JSON.stringify(r.body));
          order.push(name);
          return r.body as Hold;
        }),
      );
      const want = Object.keys(ids).length + 1;
      await eventually(async () => (await inspect(path)).queue.length === want, 5000, `${name} queued`);
    }
    assert.deepEqual((await inspect(path)).queue.map((q) => q.data), ['A', 'B', 'C', 'D']);
    const tokens = [BigInt((held.body as Hold).fencingToken)];
    let current = held.body as Hold;
    let currentLease = a;
    for (let i = 0; i < 3; i++) {
      assert.equal((await release(path, currentLease, current.node)).status, 200);
      current = await waiters[i]!;
      currentLease = current.leaseId;
      tokens.push(BigInt(current.fencingToken));
    }
    assert.deepEqual(order, ['B', 'C', 'D']);
    for (let i = 1; i < tokens.length; i++) assert.ok(tokens[i]! > tokens[i - 1]!, 'fencing tokens rise with every holder');
  });

  test('lock › an acquire by the holder answers its hold again (a retried or replayed acquire): one node, one release frees it', async () => {
    const path = uniquePath('again');
    const [a, b] = [await lease(), await lease()];
    const first = await acquire(path, { leaseId: a, data: 'A' });
    assert.equal(first.status, 200, JSON.stringify(first.body));
    const hold = first.body as Hold;
    for (const body of [{ leaseId: a }, { leaseId: a, waitMs: 2000, data: 'other' }]) {
      const again = await acquire(path, body);
      assert.equal(again.status, 200, JSON.stringify(again.body));
      assert.deepEqual([(again.body as Hold).node, (again.body as Hold).fencingToken], [hold.node, hold.fencingToken]);
    }
    const seen = await inspect(path);
    assert.deepEqual(seen.queue.map((q) => q.data), ['A'], 'no second node of the holder');
    const owned = ((await env.g.rest.json('GET', `/v1/leases/${a}`)).body as { owned: { kind: string }[] }).owned;
    assert.deepEqual(owned.map((o) => o.kind), ['lock']);
    assert.equal((await acquire(path, { leaseId: b })).status, 409, 'another lease is still refused');
    const freed = await release(path, a, hold.node);
    assert.equal((freed.body as { released: boolean }).released, true);
    const next = await acquire(path, { leaseId: b });
    assert.equal(next.status, 200, JSON.stringify(next.body));
    assert.ok(BigInt((next.body as Hold).fencingToken) > BigInt(hold.fencingToken));
  });

  test('lock › an acquire by a lease whose earlier acquire still waits joins that wait: one node, both answered with the same hold', async () => {
    const path = uniquePath('again-waiting');
    const [a, b] = [await lease(), await lease()];
    const held = (await acquire(path, { leaseId: a, data: 'A' })).body as Hold;
    const first = acquire(path, { leaseId: b, waitMs: 20_000, data: 'B' });
    await eventually(async () => (await inspect(path)).queue.length === 2, 10_000, 'b to wait');
    // The retry (its client's first request timed out, say) and a try-lock meanwhile: no second node.
    const retry = acquire(path, { leaseId: b, waitMs: 20_000, data: 'B again' });
    const tried = await acquire(path, { leaseId: b });
    assert.equal(tried.status, 409, JSON.stringify(tried.body));
    assert.equal((tried.body as Problem).code, 'LOCK_NOT_ACQUIRED');
    // A caller whose own wait ends first answers LOCK_NOT_ACQUIRED and leaves the node to the others.
    const short = await acquire(path, { leaseId: b, waitMs: 300 });
    assert.equal(short.status, 409, JSON.stringify(short.body));
    assert.deepEqual((await inspect(path)).queue.map((q) => q.data), ['A', 'B'], 'one node of b, still waiting');
    const owned = ((await env.g.rest.json('GET', `/v1/leases/${b}`)).body as { owned: { kind: string }[] }).owned;
    assert.deepEqual(owned.map((o) => o.kind), ['lock_wait']);
    assert.equal((await release(path, a, held.node)).status, 200);
    const [r1, r2] = await Promise.all([first, retry]);
    assert.equal(r1.status, 200, JSON.stringify(r1.body));
    assert.equal(r2.status, 200, JSON.stringify(r2.body));
    assert.deepEqual([(r2.body as Hold).node, (r2.body as Hold).fencingToken], [(r1.body as Hold).node, (r1.body as Hold).fencingToken]);
    assert.deepEqual((await inspect(path)).queue.map((q) => q.data), ['B']);
    assert.equal(((await release(path, b, (r1.body as Hold).node)).body as { released: boolean }).released, true);
    assert.equal((await acquire(path, { leaseId: a })).status, 200, 'one release freed it');
  });

  test('lock › a joined wait outlives the caller that started it: its client leaving keeps the node for the retry', async () => {
    const path = uniquePath('again-left');
    const [a, b] = [await lease(), await lease()];
    const held = (await acquire(path, { leaseId: a, data: 'A' })).body as Hold;
    const ac = new AbortController();
    const gone = fetch(`${env.g.base}/v1/locks${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ leaseId: b, waitMs: 20_000, data: 'B' }),
      signal: ac.signal,
    }).catch((e: Error) => e);
    await eventually(async () => (await inspect(path)).queue.length === 2, 10_000, 'b to wait');
    const node = (await inspect(path)).queue[1]!.node;
    const retry = acquire(path, { leaseId: b, waitMs: 20_000 });
    await new Promise((r) => setTimeout(r, 500)); // for the retry to reach the gateway (nothing shows it: it makes no node)
    ac.abort();
    assert.ok((await gone) instanceof Error);
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual((await inspect(path)).queue.map((q) => q.node), [held.node, node], 'the node stays for the retry');
    assert.equal((await release(path, a, held.node)).status, 200);
    const r = await retry;
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal((r.body as Hold).node, node);
    assert.equal((await release(path, b, node)).status, 200);
    // Every caller gone: the node goes.
    const ac2 = new AbortController();
    assert.equal((await acquire(path, { leaseId: a })).status, 200);
    const left = fetch(`${env.g.base}/v1/locks${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ leaseId: b, waitMs: 20_000 }),
      signal: ac2.signal,
    }).catch((e: Error) => e);
    await eventually(async () => (await inspect(path)).queue.length === 2, 10_000, 'b to wait again');
    ac2.abort();
    await left;
    await eventually(async () => (await inspect(path)).queue.length === 1, 5000, 'b\'s node to go');
  });

  test('lock › fencing tokens strictly rise over many acquisitions', async () => {
    const path = uniquePath('fence');
    const leases = [await lease(), await lease()];
    let last = 0n;
    for (let i = 0; i < 30; i++) {
      const id = leases[i % 2] as string;
      const r = await acquire(path, { leaseId: id, waitMs: 5000 });
      assert.equal(r.status, 200);
      const hold = r.body as Hold;
      const token = BigInt(hold.fencingToken);
      assert.ok(token > last, `round ${i}: ${token} > ${last}`);
      last = token;
      assert.equal(((await release(path, id, hold.node)).body as { released: boolean }).released, true);
    }
  });

  test('lock › the kazoo flavour names nodes like Kazoo and ignores foreign nodes', async () => {
    const path = uniquePath('kazoo');
    const a = await lease();
    const r = await acquire(path, { leaseId: a, flavour: 'kazoo', data: 'k1' });
    assert.equal(r.status, 200);
    assert.match((r.body as Hold).node, new RegExp(`^${path}/[0-9a-f]{32}__lock__\\d{10}$`));
    const curator = await acquire(path, { leaseId: await lease(), waitMs: 0 });
    assert.equal(curator.status, 200, 'stock Curator and Kazoo layouts do not exclude each other (documented)');
    const asKazoo = (await env.g.rest.json('GET', `/v1/locks${path}`, undefined, { query: { flavour: 'kazoo' } })).body as Inspection;
    assert.deepEqual(asKazoo.queue.map((q) => q.data), ['k1']);
  });

  test('lock › bad input is refused with 400 and creates nothing', async () => {
    const path = uniquePath('bad');
    const a = await lease();
    // The last four pass zod's schema only in part: locks.ts's hand check must leave them to zod.
    const partly = [{ leaseId: a, waitMs: 1.5 }, { leaseId: '' }, { leaseId: a, data: 7 }, { leaseId: a, flavour: 'curator', encoding: false }];
    for (const body of [{ leaseId: a, waitMs: -1 }, { leaseId: a, flavour: 'zk' }, { waitMs: 0 }, { leaseId: a, extra: 1 }, { leaseId: a, data: '%%', encoding: 'base64' }, ...partly]) {
      const r = await acquire(path, body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.equal((r.body as Problem).code, 'INVALID_ARGUMENT');
    }
    const encodedSlash = await acquire('/a%2Fb', { leaseId: a });
    assert.equal((encodedSlash.body as Problem).code, 'INVALID_PATH');
    assert.equal((await release(path, a, '/elsewhere/x')).status, 400);
    assert.equal((await env.g.rest.json('GET', `/v1/nodes${path}`)).status, 404, 'nothing was created');
  });
  test('lock › an acquire whose create hits connection loss ends with exactly one node of ours (found again by its prefix)', async () => {
    const path = uniquePath('loss');
    const a = await lease();
    assert.equal((await env.g.rest.json('POST', `/v1/nodes${path}`, {})).status, 201);
    // The create is applied and its answer cut: its outcome is unknown to the gateway.
    const { pending: answer } = await cutCreateAnswer(env.proxy, `${path}/`, () => acquire(path, { leaseId: a, waitMs: 20_000, data: 'survivor' }));
    const held = await answer;
    assert.equal(held.status, 200, JSON.stringify(held.body));
    const seen = await inspect(path);
    assert.deepEqual(seen.queue.map((q) => q.node), [(held.body as Hold).node], 'no orphan and no duplicate node');
    assert.equal(seen.holder?.data, 'survivor');
  });
  test('lock › an acquire that gives up before it learns whether its create applied leaves no node once ZooKeeper is back', async () => {
    const path = uniquePath('loss-giveup');
    const a = await lease();
    assert.equal((await env.g.rest.json('POST', `/v1/nodes${path}`, {})).status, 201);
    // The create is applied, its answer cut, and the gateway kept off ZooKeeper past the wait.
    const { pending } = await cutCreateAnswer(env.proxy, `${path}/`, () => acquire(path, { leaseId: a, waitMs: 3500 }), (r) => r);
    const r = await pending;
    assert.equal(r.status, 503, JSON.stringify(r.body));
    await eventually(async () => {
      const res = await env.g.rest.json('GET', `/v1/locks${path}`);
      return res.status === 200 && (res.body as Inspection).queue.length === 0;
    }, 10_000, 'the unknown-outcome node to be swept');
  });
});
