import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { contract } from '../support/openapi.js';
import { eventually, grantSettled, uniquePath, zkProxyAndGateway, type Problem } from '../support/test-gateway.js';
import { cutCreateAnswer } from '../support/zk-proxy.js';

interface Grant {
  semaphorePath: string;
  maxPermits: number;
  permits: { node: string; fencingToken: string }[];
  leaseState: string;
  trustMs: number;
}
interface Inspection {
  maxPermits: number | null;
  holders: { node: string; data: string }[];
  waiting: { node: string }[];
  lockQueue: { node: string }[];
}

describe('semaphores against a real ZooKeeper (Curator InterProcessSemaphoreV2 layout)', () => {
  // The gateway reaches ZooKeeper through a proxy that cuts its connection at the request a case
  // is about (test/support/zk-proxy.ts), not after a freeze's two thirds of the session.
  const env = zkProxyAndGateway();

  const lease = (ttlMs = 30_000): Promise<string> => grantSettled(env.g.rest, ttlMs);
  const acquire = (path: string, body: Record<string, unknown>) => env.g.rest.json('POST', `/v1/semaphores${path}`, body);
  const release = (path: string, leaseId: string, node?: string) => env.g.rest.json('DELETE', `/v1/semaphores${path}`, undefined, { query: node ? { leaseId, node } : { leaseId } });
  const inspect = async (path: string, maxPermits?: number): Promise<Inspection> =>
    (await env.g.rest.json('GET', `/v1/semaphores${path}`, undefined, maxPermits ? { query: { maxPermits } } : {})).body as Inspection;
  const children = async (path: string): Promise<string[]> => {
    const r = await env.g.rest.json('GET', `/v1/children${path}`);
    if (r.status === 404) return [];
    // Until the session is back from a cut the gateway may answer 503: a marker no expected listing matches.
    return r.status === 200 ? (r.body as { children: { name: string }[] }).children.map((c) => c.name) : [`(${r.status})`];
  };
  /**
   * `children` once the gateway answers it: right after a cut the session may still be
   * reconnecting, and what these tests check is which nodes exist, not that every read in that
   * moment is served.
   */
  const listed = async (path: string): Promise<string[]> => {
    let got: string[] = [];
    await eventually(async () => !(got = await children(path)).some((c) => /^\(\d+\)$/.test(c)), 15_000, `${path} to be listed`);
    return got;
  };
  /** Every node under the semaphore's `leases` and `locks`. */
  const nodesOf = async (path: string): Promise<string[]> => [...(await children(`${path}/leases`)), ...(await children(`${path}/locks`))];
  const owned = async (id: string): Promise<{ state: string; owned: { path: string; kind: string }[] }> =>
    (await env.g.rest.json('GET', `/v1/leases/${id}`)).body as { state: string; owned: { path: string; kind: string }[] };

  test('semaphore › N holders at once in Curator\'s layout; the next acquirer waits, a try misses and leaves nothing', async () => {
    const path = uniquePath('sem');
    const [a, b, c] = [await lease(), await lease(), await lease()];
    const ga = await acquire(path, { leaseId: a, maxPermits: 2, data: 'a' });
    assert.equal(ga.status, 200, JSON.stringify(ga.body));
    const gb = (await acquire(path, { leaseId: b, maxPermits: 2 })).body as Grant;
    assert.deepEqual((await children(path)).sort(), ['leases', 'locks'], 'Curator\'s two children');
    for (const p of [...(ga.body as Grant).permits, ...gb.permits]) assert.match(p.node, new RegExp(`^${path}/leases/_c_[0-9a-f-]{36}-lease-\\d{10}$`));
    assert.ok(BigInt(gb.permits[0]!.fencingToken) > BigInt((ga.body as Grant).permits[0]!.fencingToken));
    assert.deepEqual(await children(`${path}/locks`), [], 'the internal lock is let go once a permit is held');

    const miss = await acquire(path, { leaseId: c, maxPermits: 2 });
    assert.equal(miss.status, 409);
    assert.equal((miss.body as Problem).code, 'PERMITS_NOT_ACQUIRED');
    assert.equal((miss.body as Problem).details?.holders, 2);
    assert.equal((await nodesOf(path)).length, 2, 'a missed try leaves no node');

    const waiting = acquire(path, { leaseId: c, maxPermits: 2, waitMs: 20_000 });
    await eventually(async () => (await inspect(path, 2)).waiting.length === 1, 10_000, 'c to wait');
    const seen = await inspect(path, 2);
    assert.deepEqual([seen.holders.length, seen.lockQueue.length, seen.holders[0]?.data], [2, 1, 'a']);
    assert.equal((await release(path, a)).status, 200);
    const gc = await waiting;
    assert.equal(gc.status, 200, JSON.stringify(gc.body));
    assert.equal((await inspect(path, 2)).holders.length, 2);
    assert.deepEqual((await owned(c)).owned.map((o) => o.kind), ['permit']);
    for (const id of [b, c]) assert.equal(((await release(path, id)).body as { released: boolean }).released, true);
    assert.equal(((await release(path, c)).body as { reason: string }).reason, 'not_owned', 'idempotent');
    assert.deepEqual(await nodesOf(path), []);
  });

  test('semaphore › k permits at once; a wait that ends with only some taken gives them all back', async () => {
    const path = uniquePath('sem-k');
    const [a, b] = [await lease(), await lease()];
    const ga = (await acquire(path, { leaseId: a, maxPermits: 3, permits: 2 })).body as Grant;
    assert.equal(ga.permits.length, 2);
    const r = await acquire(path, { leaseId: b, maxPermits: 3, permits: 2, waitMs: 600 });
    assert.equal(r.status, 409, JSON.stringify(r.body));
    assert.equal((r.body as Problem).code, 'PERMITS_NOT_ACQUIRED');
    assert.equal((await nodesOf(path)).length, 2, 'b\'s first permit was given back, its waiting node and lock node deleted');
    assert.deepEqual((await owned(b)).owned, []);
    // One permit released by node: b's two fit now.
    assert.equal(((await release(path, a, ga.permits[0]!.node)).body as { nodes: string[] }).nodes.length, 1);
    const gb = await acquire(path, { leaseId: b, maxPermits: 3, permits: 2, waitMs: 5000 });
    assert.equal(gb.status, 200, JSON.stringify(gb.body));
    assert.equal((await inspect(path, 3)).holders.length, 3);
  });

  test('semaphore › cancel-safety: a waiter whose client disconnects, or whose lease is revoked, leaves no node', async () => {
    const path = uniquePath('sem-cancel');
    const a = await lease();
    assert.equal((await acquire(path, { leaseId: a, maxPermits: 1 })).status, 200);
    const b = await lease();
    const ac = new AbortController();
    const pending = fetch(`${env.g.base}/v1/semaphores${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ leaseId: b, maxPermits: 1, waitMs: 30_000 }),
      signal: ac.signal,
    }).catch((e: Error) => e);
    await eventually(async () => (await nodesOf(path)).length === 3, 10_000, 'b to wait (lease node + lock node)');
    ac.abort();
    assert.ok((await pending) instanceof Error);
    await eventually(async () => (await nodesOf(path)).length === 1, 5000, 'b\'s nodes to go');
    assert.deepEqual((await owned(b)).owned, []);

    const c = await lease();
    const waiting = acquire(path, { leaseId: c, maxPermits: 1, waitMs: 30_000 });
    await eventually(async () => (await nodesOf(path)).length === 3, 10_000, 'c to wait');
    assert.equal((await env.g.rest.json('DELETE', `/v1/leases/${c}`)).status, 200);
    assert.equal((await waiting).status, 410);
    await eventually(async () => (await nodesOf(path)).length === 1, 5000, 'c\'s nodes to go');
  });

  test('semaphore › an acquire by a lease that holds permits answers them again; a wrong count is refused; nothing more is taken', async () => {
    const path = uniquePath('sem-again');
    const [a, b] = [await lease(), await lease()];
    const first = await acquire(path, { leaseId: a, maxPermits: 3, permits: 2 });
    assert.equal(first.status, 200, JSON.stringify(first.body));
    const held = (first.body as Grant).permits;
    for (const body of [{ leaseId: a, maxPermits: 3, permits: 2 }, { leaseId: a, maxPermits: 3, permits: 2, waitMs: 2000, data: 'other' }]) {
      const again = await acquire(path, body);
      assert.equal(again.status, 200, JSON.stringify(again.body));
      assert.deepEqual((again.body as Grant).permits, held);
    }
    const other = await acquire(path, { leaseId: a, maxPermits: 3 });
    assert.equal(other.status, 400, JSON.stringify(other.body));
    assert.deepEqual([(other.body as Problem).code, (other.body as Problem).details?.heldPermits], ['INVALID_ARGUMENT', 2]);
    assert.equal((await children(`${path}/leases`)).length, 2, 'no permit taken by the retries');
    assert.equal((await acquire(path, { leaseId: b, maxPermits: 3 })).status, 200, 'the third permit is still free');
    assert.deepEqual(((await release(path, a)).body as { nodes: string[] }).nodes.sort(), held.map((p) => p.node).sort());
  });

  test('semaphore › an acquire by a lease whose earlier acquire still waits joins that wait: one slot, both answered with the same permits', async () => {
    const path = uniquePath('sem-again-waiting');
    const [a, b] = [await lease(), await lease()];
    assert.equal((await acquire(path, { leaseId: a, maxPermits: 2, permits: 2 })).status, 200);
    const first = acquire(path, { leaseId: b, maxPermits: 2, waitMs: 20_000 });
    await eventually(async () => (await nodesOf(path)).length === 4, 10_000, 'b to wait (lease node + lock node)');
    const retry = acquire(path, { leaseId: b, maxPermits: 2, waitMs: 20_000 });
    const tried = await acquire(path, { leaseId: b, maxPermits: 2 });
    assert.equal(tried.status, 409, JSON.stringify(tried.body));
    assert.equal((tried.body as Problem).code, 'PERMITS_NOT_ACQUIRED');
    const wrong = await acquire(path, { leaseId: b, maxPermits: 2, permits: 2, waitMs: 20_000 });
    assert.equal(wrong.status, 400, JSON.stringify(wrong.body));
    assert.deepEqual([(wrong.body as Problem).code, (wrong.body as Problem).details?.waitingPermits], ['INVALID_ARGUMENT', 1]);
    assert.equal((await nodesOf(path)).length, 4, 'no second slot of b');
    assert.equal((await release(path, a)).status, 200);
    const [r1, r2] = await Promise.all([first, retry]);
    assert.equal(r1.status, 200, JSON.stringify(r1.body));
    assert.equal(r2.status, 200, JSON.stringify(r2.body));
    assert.deepEqual((r2.body as Grant).permits, (r1.body as Grant).permits);
    assert.deepEqual(await children(`${path}/leases`), [(r1.body as Grant).permits[0]!.node.split('/').at(-1)]);
    assert.equal((await release(path, b)).status, 200);
  });

  test('semaphore › a permit deleted behind the gateway ends its lease as lost', async () => {
    const path = uniquePath('sem-lost');
    const a = await lease();
    const g = (await acquire(path, { leaseId: a, maxPermits: 2 })).body as Grant;
    assert.equal((await env.g.rest.json('DELETE', `/v1/nodes${g.permits[0]!.node}`)).status, 204);
    await eventually(async () => (await owned(a)).state === 'lost', 10_000, 'the lease to be lost');
    assert.equal((await release(path, a)).status, 410);
  });

  test('semaphore › a create cut by connection loss ends with exactly our nodes; one given up is swept', async () => {
    const path = uniquePath('sem-loss');
    const a = await lease();
    const first = await acquire(path, { leaseId: a, maxPermits: 2 }); // parents exist
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.equal((await release(path, a)).status, 200);
    // The permit's create is applied and its answer cut: its outcome is unknown to the gateway.
    const { pending: answer } = await cutCreateAnswer(env.proxy, `${path}/leases/`, () => acquire(path, { leaseId: a, maxPermits: 2, waitMs: 20_000 }));
    const held = await answer;
    assert.equal(held.status, 200, JSON.stringify(held.body));
    assert.deepEqual(await listed(`${path}/leases`), [(held.body as Grant).permits[0]!.node.split('/').at(-1)], 'no orphan, no duplicate');
    assert.deepEqual(await listed(`${path}/locks`), []);
    assert.equal((await release(path, a)).status, 200);

    // Again, with the gateway kept off ZooKeeper past the wait: the acquire gives up not knowing.
    const { pending } = await cutCreateAnswer(env.proxy, `${path}/leases/`, () => acquire(path, { leaseId: a, maxPermits: 2, waitMs: 3500 }), (r) => r);
    const r = await pending;
    assert.equal(r.status, 503, JSON.stringify(r.body));
    await eventually(async () => (await nodesOf(path)).length === 0, 15_000, 'the unknown-outcome nodes to be swept');
  });

  test('semaphore › an acquire of 2 permits outlives a connection loss between its two rounds (the lease uncertain until the session is back)', async () => {
    const path = uniquePath('sem-rounds');
    const a = await lease(60_000);
    const suspended = (): boolean => env.g.running.gateway.tenants.get('default').session.state === 'suspended';
    // The first round lets the internal lock go: the connection is cut (and kept down) as that
    // delete is sent, and the delete goes out once the session is suspended and the proxy lets
    // the client back, so the second round starts while the lease is uncertain.
    const client = env.g.running.gateway.tenants.get('default').client();
    const del = client.delete.bind(client);
    let cut = false;
    client.delete = (p, version) => {
      if (cut || !p.startsWith(`${path}/locks/`)) return del(p, version);
      cut = true;
      client.delete = del;
      env.proxy.block();
      return eventually(suspended, 15_000, 'the session to be suspended').then(() => {
        env.proxy.unblock();
        return del(p, version);
      });
    };
    let answer;
    try {
      answer = acquire(path, { leaseId: a, maxPermits: 2, permits: 2, waitMs: 30_000 });
      await eventually(() => cut && suspended(), 15_000, 'the lock release to be cut');
    } finally {
      client.delete = del;
      env.proxy.unblock();
    }
    const r = await answer;
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal((r.body as Grant).permits.length, 2);
    await eventually(async () => (await children(`${path}/locks`)).length === 0, 10_000, 'the internal lock to be let go');
    assert.equal((await listed(`${path}/leases`)).length, 2);
    assert.equal((await release(path, a)).status, 200);
  });

  test('semaphore › N from a Curator SharedCount: seeded, a mismatched max refused, a raised count wakes the waiter', async () => {
    const path = uniquePath('sem-count');
    const countPath = `${uniquePath('count')}/max`;
    const [a, b] = [await lease(), await lease()];
    assert.equal((await acquire(path, { leaseId: a, countPath })).status, 400, 'no count and nothing to seed it with');
    const ga = await acquire(path, { leaseId: a, countPath, maxPermits: 1 });
    assert.equal(ga.status, 200, JSON.stringify(ga.body));
    const raw = await env.g.rest.request('GET', `/v1/nodes${countPath}`, { headers: { accept: 'application/octet-stream' } });
    assert.deepEqual([...raw.bytes], [0, 0, 0, 1], 'a SharedCount: 4-byte big-endian int');
    const mismatch = await acquire(path, { leaseId: b, countPath, maxPermits: 5 });
    assert.equal(mismatch.status, 400);
    assert.deepEqual([(mismatch.body as Problem).code, (mismatch.body as Problem).details?.agreedMaxPermits], ['INVALID_ARGUMENT', 1]);
    const waiting = acquire(path, { leaseId: b, countPath, waitMs: 20_000 });
    await eventually(async () => (await inspect(path, 1)).waiting.length === 1, 10_000, 'b to wait');
    const set = await env.g.rest.request('PUT', `/v1/nodes${countPath}`, { body: Buffer.from([0, 0, 0, 2]), headers: { 'content-type': 'application/octet-stream' } });
    assert.equal(set.status, 200);
    const gb = await waiting;
    assert.equal(gb.status, 200, JSON.stringify(gb.body));
    assert.equal((gb.body as Grant).maxPermits, 2);
    const seen = (await env.g.rest.json('GET', `/v1/semaphores${path}`, undefined, { query: { countPath } })).body as Inspection;
    assert.deepEqual([seen.maxPermits, seen.holders.length], [2, 2]);
  });

  test('semaphore › bad input is a 400 naming the field and creates nothing', async () => {
    const path = uniquePath('sem-bad');
    const a = await lease();
    const cases: [Record<string, unknown>, string][] = [
      [{ leaseId: a, maxPermits: 2, permits: 0 }, 'permits'],
      [{ leaseId: a, maxPermits: 2, permits: 3 }, 'permits'],
      [{ leaseId: a }, 'maxPermits'],
      [{ leaseId: a, maxPermits: 0 }, 'maxPermits'],
      [{ leaseId: a, maxPermits: 2, waitMs: -1 }, 'waitMs'],
      [{ leaseId: a, maxPermits: 2, mode: 'write' }, ''],
      [{ leaseId: a, maxPermits: 2, countPath: `${path}/count` }, 'countPath'],
      [{ leaseId: a, maxPermits: 2, countPath: 'relative' }, ''],
    ];
    for (const [body, field] of cases) {
      const r = await acquire(path, body);
      assert.equal(r.status, 400, JSON.stringify(body));
      if (field) assert.equal((r.body as Problem).details?.field, field, JSON.stringify(r.body));
    }
    assert.equal((await env.g.rest.json('GET', `/v1/nodes${path}`)).status, 404, 'nothing was created');
    assert.equal((await release(path, a, '/elsewhere/x')).status, 400);
    assert.equal((await env.g.rest.json('GET', `/v1/semaphores${path}`, undefined, { query: { maxPermits: 0 } })).status, 400);
    assert.deepEqual((await owned(a)).owned, []);
  });
  test('answers › unknown lease 404, ended lease 410, bad path 400, unlisted method 405, a missing path inspects as empty (200)', async () => {
    const path = uniquePath('semaphores-answers');
    const extra = { maxPermits: 2 };
    assert.equal((await env.g.rest.json('POST', `/v1/semaphores${path}`, { leaseId: 'no-such-lease', waitMs: 0, ...extra })).status, 404);
    assert.equal((await env.g.rest.json('DELETE', `/v1/semaphores${path}`, undefined, { query: { leaseId: 'no-such-lease', node: 'x' } })).status, 404);
    const gone = await lease();
    assert.equal((await env.g.rest.json('DELETE', `/v1/leases/${gone}`)).status, 200);
    assert.ok([404, 410].includes((await env.g.rest.json('DELETE', `/v1/semaphores${path}`, undefined, { query: { leaseId: gone, node: 'x' } })).status));
    assert.equal((await env.g.rest.json('GET', `/v1/semaphores/a//b`, undefined, { exactPath: true })).status, 400);
    assert.equal((await env.g.rest.json('GET', `/v1/semaphores/x`, undefined, { headers: { 'zkgate-tenant': 'no-such-tenant' } })).status, 404);
    assert.equal((await env.g.rest.json('PATCH', `/v1/semaphores${path}`)).status, 405);
    const missing = await env.g.rest.json('GET', `/v1/semaphores${path}/never`, undefined, { query: { maxPermits: 2 } });
    assert.equal(missing.status, 200, 'inspecting a path nobody used is an empty answer, not 404');
  });

  test('coverage › every documented /v1/semaphores response this file can produce was produced and checked', (t) => {
    // The root (`/v1/semaphores`, always 400) is rest-4xx-documented.test.ts's.
    const documented = contract().documented().filter((k) => /^\S+ \/v1\/semaphores\//.test(k));
    // Auth and limits are the security suite's to produce; transport and server failures the fuzz and fault suites'.
    const missing = documented.filter((k) => !env.g.rest.covered.has(k) && !/ (401|403|413|415|429|499|500|503)$/.test(k));
    t.diagnostic(`covered ${[...env.g.rest.covered].filter((k) => k.includes('/v1/semaphores')).length} of ${documented.length} documented semaphores responses`);
    assert.deepEqual(missing, []);
  });
});
