import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { contract } from '../support/openapi.js';
import { fourLetter } from '../support/zk-server.js';
import { eventually, grantSettled, uniquePath, zkProxyAndGateway, type Problem } from '../support/test-gateway.js';
import { cutCreateAnswer } from '../support/zk-proxy.js';

interface Hold {
  mode: string;
  node: string;
  fencingToken: string;
  leaseState: string;
  trustMs: number;
}
interface Inspection {
  writer: { node: string } | null;
  readers: { node: string }[];
  queue: { node: string; mode: string }[];
}

describe('read-write locks against a real ZooKeeper (Curator InterProcessReadWriteLock layout)', () => {
  // The gateway reaches ZooKeeper through a proxy that cuts its connection at the request a case
  // is about (test/support/zk-proxy.ts), not after a freeze's two thirds of the session.
  const env = zkProxyAndGateway();

  const lease = (ttlMs = 30_000): Promise<string> => grantSettled(env.g.rest, ttlMs);
  const acquire = (path: string, body: Record<string, unknown>) => env.g.rest.json('POST', `/v1/rwlocks${path}`, body);
  const release = (path: string, leaseId: string, node: string) => env.g.rest.json('DELETE', `/v1/rwlocks${path}`, undefined, { query: { leaseId, node } });
  /**
   * The lock's inspection, once the gateway answers it: right after a cut, until the session is
   * back, a read is an honest 503 (as for `nodes`).
   */
  const inspect = async (path: string): Promise<Inspection> => {
    let last: { status: number; body: unknown } | undefined;
    await eventually(async () => (last = await env.g.rest.json('GET', `/v1/rwlocks${path}`)).status === 200, 10_000, 'the lock to be inspected').catch(() => {
      throw new Error(`inspect ${path}: ${last?.status} ${JSON.stringify(last?.body)}`);
    });
    return (last as { body: unknown }).body as Inspection;
  };
  /** Contenders on the path; -1 while the gateway cannot answer (its connection just cut). */
  const nodes = async (path: string): Promise<number> => {
    const r = await env.g.rest.json('GET', `/v1/rwlocks${path}`);
    return r.status === 200 ? (r.body as Inspection).queue.length : -1;
  };
  const held = async (path: string, body: Record<string, unknown>): Promise<Hold> => {
    const r = await acquire(path, body);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body as Hold;
  };

  /** Watches the gateway's session holds on `path` on the server (`wchc`; the default tenant has no chroot). */
  const serverWatches = async (path: string): Promise<number> => {
    const dump = await fourLetter(env.zk.clientPort, 'wchc');
    const mine = dump.split(/\n(?=0x)/).find((s) => s.startsWith(`0x${env.g.running.gateway.tenant().session.sessionId}`)) ?? '';
    return mine.split('\n').filter((l) => l.trim() === path).length;
  };

  test('rwlock › a reader that waited for a writer leaves no ZooKeeper watch on the deleted writer node', async () => {
    const path = uniquePath('rw-watch');
    const [wl, rl] = [await lease(), await lease()];
    const wh = await held(path, { leaseId: wl, mode: 'write' });
    const reading = acquire(path, { leaseId: rl, mode: 'read', waitMs: 20_000 });
    await eventually(async () => (await serverWatches(wh.node)) === 1, 10_000, 'the reader to watch the writer node');
    assert.equal((await release(path, wl, wh.node)).status, 200);
    const rh = await reading;
    assert.equal(rh.status, 200, JSON.stringify(rh.body));
    // Through the watch hub, the writer's deletion was re-read and left an exists watch on its path for good.
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(await serverWatches(wh.node), 0, 'no watch left on the deleted writer node');
    assert.equal((await release(path, rl, (rh.body as Hold).node)).status, 200);
  });

  test('rwlock › readers share; a writer waits for them; a reader after a waiting writer queues behind it; the writer excludes all', async () => {
    const path = uniquePath('rw');
    const [r1, r2, w, r3] = [await lease(), await lease(), await lease(), await lease()];
    const h1 = await held(path, { leaseId: r1, mode: 'read' });
    const h2 = await held(path, { leaseId: r2, mode: 'read' });
    assert.match(h1.node, new RegExp(`^${path}/_c_[0-9a-f-]{36}-__READ__\\d{10}$`));
    assert.deepEqual((await inspect(path)).readers.map((r) => r.node), [h1.node, h2.node]);
    const miss = await acquire(path, { leaseId: w, mode: 'write' });
    assert.equal(miss.status, 409);
    assert.deepEqual([(miss.body as Problem).code, (miss.body as Problem).details?.holderMode], ['LOCK_NOT_ACQUIRED', 'read']);
    assert.equal(await nodes(path), 2, 'a missed try leaves no node');

    const writing = acquire(path, { leaseId: w, mode: 'write', waitMs: 20_000 });
    await eventually(async () => (await nodes(path)) === 3, 10_000, 'the writer to queue');
    assert.match((await inspect(path)).queue[2]!.node, /-__WRIT__\d{10}$/);
    const late = await acquire(path, { leaseId: r3, mode: 'read' });
    assert.equal(late.status, 409, 'a reader behind a waiting writer does not jump it');
    const reading = acquire(path, { leaseId: r3, mode: 'read', waitMs: 20_000 });
    await eventually(async () => (await nodes(path)) === 4, 10_000, 'the late reader to queue');
    assert.equal((await release(path, r1, h1.node)).status, 200);
    assert.equal((await release(path, r2, h2.node)).status, 200);
    const wh = await writing;
    assert.equal(wh.status, 200, JSON.stringify(wh.body));
    const seen = await inspect(path);
    assert.deepEqual([seen.writer?.node, seen.readers], [(wh.body as Hold).node, []], 'the writer alone holds');
    assert.ok(BigInt((wh.body as Hold).fencingToken) > BigInt(h2.fencingToken), 'the writer\'s token is above the earlier readers\'');
    assert.equal((await release(path, w, (wh.body as Hold).node)).status, 200);
    const rh = await reading;
    assert.equal(rh.status, 200, JSON.stringify(rh.body));
    assert.equal(((await release(path, r3, (rh.body as Hold).node)).body as { released: boolean }).released, true);
    assert.equal(((await release(path, r3, (rh.body as Hold).node)).body as { reason: string }).reason, 'not_owned', 'idempotent');
  });

  test('rwlock › a lease holding the write lock may take the read lock too (downgrade, as in Curator)', async () => {
    const path = uniquePath('rw-down');
    const [a, b] = [await lease(), await lease()];
    const wh = await held(path, { leaseId: a, mode: 'write' });
    assert.equal((await acquire(path, { leaseId: b, mode: 'read' })).status, 409);
    const rh = await held(path, { leaseId: a, mode: 'read' });
    assert.equal((await release(path, a, wh.node)).status, 200);
    assert.deepEqual((await inspect(path)).readers.map((r) => r.node), [rh.node], 'the read hold stays after the write is released');
    await held(path, { leaseId: b, mode: 'read' });
  });

  test('rwlock › an acquire of a mode the lease holds answers that hold again (a retried or replayed acquire): no second node, no wait behind itself', async () => {
    const path = uniquePath('rw-again');
    const [a, b] = [await lease(), await lease()];
    const r1 = await held(path, { leaseId: a, mode: 'read' });
    // A writer queues behind the reader: a second read node would queue behind the writer, which waits for the first.
    const writer = acquire(path, { leaseId: b, mode: 'write', waitMs: 20_000 });
    await eventually(async () => (await nodes(path)) === 2, 10_000, 'the writer queued');
    const r2 = await held(path, { leaseId: a, mode: 'read', waitMs: 300 });
    assert.deepEqual([r2.node, r2.fencingToken], [r1.node, r1.fencingToken]);
    assert.equal(await nodes(path), 2, 'no second read node');
    assert.equal((await release(path, a, r1.node)).status, 200);
    const w = (await writer).body as Hold;
    const again = await held(path, { leaseId: b, mode: 'write', waitMs: 300 });
    assert.deepEqual([again.node, again.fencingToken], [w.node, w.fencingToken]);
    assert.equal(await nodes(path), 1);
    assert.equal((await release(path, b, w.node)).status, 200);
    assert.equal(await nodes(path), 0);
  });

  test('rwlock › an acquire by a lease whose earlier acquire of that mode still waits joins that wait: one node, both answered with the same hold', async () => {
    const path = uniquePath('rw-again-waiting');
    const [a, b] = [await lease(), await lease()];
    for (const mode of ['read', 'write']) {
      const w = await held(path, { leaseId: a, mode: 'write' });
      const first = acquire(path, { leaseId: b, mode, waitMs: 20_000 });
      await eventually(async () => (await nodes(path)) === 2, 10_000, `b to wait (${mode})`);
      const retry = acquire(path, { leaseId: b, mode, waitMs: 20_000 });
      const tried = await acquire(path, { leaseId: b, mode });
      assert.equal(tried.status, 409, JSON.stringify(tried.body));
      assert.equal(await nodes(path), 2, `no second ${mode} node of b`);
      assert.equal((await release(path, a, w.node)).status, 200);
      const [r1, r2] = await Promise.all([first, retry]);
      assert.equal(r1.status, 200, JSON.stringify(r1.body));
      assert.equal(r2.status, 200, JSON.stringify(r2.body));
      assert.deepEqual([(r2.body as Hold).node, (r2.body as Hold).fencingToken], [(r1.body as Hold).node, (r1.body as Hold).fencingToken]);
      assert.equal((await release(path, b, (r1.body as Hold).node)).status, 200);
    }
  });

  test('rwlock › cancel-safety: a wait that times out, a client that disconnects, a revoked lease leave no node', async () => {
    const path = uniquePath('rw-cancel');
    const a = await lease();
    await held(path, { leaseId: a, mode: 'write' });
    const b = await lease();
    const timedOut = await acquire(path, { leaseId: b, mode: 'read', waitMs: 400 });
    assert.equal(timedOut.status, 409);
    assert.equal(await nodes(path), 1);
    const ac = new AbortController();
    const pending = fetch(`${env.g.base}/v1/rwlocks${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ leaseId: b, mode: 'write', waitMs: 30_000 }),
      signal: ac.signal,
    }).catch((e: Error) => e);
    await eventually(async () => (await nodes(path)) === 2, 10_000, 'b to queue');
    ac.abort();
    assert.ok((await pending) instanceof Error);
    await eventually(async () => (await nodes(path)) === 1, 5000, 'b\'s node to go');
    const c = await lease();
    const waiting = acquire(path, { leaseId: c, mode: 'read', waitMs: 30_000 });
    await eventually(async () => (await nodes(path)) === 2, 10_000, 'c to queue');
    assert.equal((await env.g.rest.json('DELETE', `/v1/leases/${c}`)).status, 200);
    assert.equal((await waiting).status, 410);
    await eventually(async () => (await nodes(path)) === 1, 5000, 'c\'s node to go');
    const info = (await env.g.rest.json('GET', `/v1/leases/${b}`)).body as { owned: unknown[] };
    assert.deepEqual(info.owned, []);
  });

  test('rwlock › a create cut by connection loss ends with exactly our node; one given up is swept', async () => {
    const path = uniquePath('rw-loss');
    const a = await lease();
    const first = await held(path, { leaseId: a, mode: 'read' });
    assert.equal((await release(path, a, first.node)).status, 200);
    // The create is applied and its answer cut: its outcome is unknown to the gateway.
    const { pending: answer } = await cutCreateAnswer(env.proxy, `${path}/`, () => acquire(path, { leaseId: a, mode: 'write', waitMs: 20_000, data: 'survivor' }));
    const h = await answer;
    assert.equal(h.status, 200, JSON.stringify(h.body));
    assert.deepEqual((await inspect(path)).queue.map((q) => q.node), [(h.body as Hold).node], 'no orphan, no duplicate');
    assert.equal((await release(path, a, (h.body as Hold).node)).status, 200);
    // Again, with the gateway kept off ZooKeeper past the wait: the acquire gives up not knowing.
    const { pending } = await cutCreateAnswer(env.proxy, `${path}/`, () => acquire(path, { leaseId: a, mode: 'read', waitMs: 3500 }), (r) => r);
    const r = await pending;
    assert.equal(r.status, 503, JSON.stringify(r.body));
    await eventually(async () => (await nodes(path)) === 0, 15_000, 'the unknown-outcome node to be swept');
  });

  test('rwlock › bad input (no mode, an unknown mode, a bad wait, a foreign node) is a 400 and creates nothing', async () => {
    const path = uniquePath('rw-bad');
    const a = await lease();
    for (const body of [{ leaseId: a }, { leaseId: a, mode: 'upgrade' }, { leaseId: a, mode: 'READ' }, { leaseId: a, mode: 'read', waitMs: -1 }]) {
      const r = await acquire(path, body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.equal((r.body as Problem).code, 'INVALID_ARGUMENT');
    }
    assert.equal((((await acquire(path, { leaseId: a, mode: 'upgrade' })).body) as Problem).details?.field, 'mode');
    assert.equal((await env.g.rest.json('GET', `/v1/nodes${path}`)).status, 404, 'nothing was created');
    assert.equal((await release(path, a, '/elsewhere/x')).status, 400);
  });
  test('answers › unknown lease 404, ended lease 410, bad path 400, unlisted method 405, a missing path inspects as empty (200)', async () => {
    const path = uniquePath('rwlocks-answers');
    const extra = { mode: 'read' };
    assert.equal((await env.g.rest.json('POST', `/v1/rwlocks${path}`, { leaseId: 'no-such-lease', waitMs: 0, ...extra })).status, 404);
    assert.equal((await env.g.rest.json('DELETE', `/v1/rwlocks${path}`, undefined, { query: { leaseId: 'no-such-lease', node: 'x' } })).status, 404);
    const gone = await lease();
    assert.equal((await env.g.rest.json('DELETE', `/v1/leases/${gone}`)).status, 200);
    assert.ok([404, 410].includes((await env.g.rest.json('DELETE', `/v1/rwlocks${path}`, undefined, { query: { leaseId: gone, node: 'x' } })).status));
    assert.equal((await env.g.rest.json('GET', `/v1/rwlocks/a//b`, undefined, { exactPath: true })).status, 400);
    assert.equal((await env.g.rest.json('GET', `/v1/rwlocks/x`, undefined, { headers: { 'zkgate-tenant': 'no-such-tenant' } })).status, 404);
    assert.equal((await env.g.rest.json('PATCH', `/v1/rwlocks${path}`)).status, 405);
    const missing = await env.g.rest.json('GET', `/v1/rwlocks${path}/never`);
    assert.equal(missing.status, 200, 'inspecting a path nobody used is an empty answer, not 404');
  });

  test('coverage › every documented /v1/rwlocks response this file can produce was produced and checked', (t) => {
    // The root (`/v1/rwlocks`, always 400) is rest-4xx-documented.test.ts's.
    const documented = contract().documented().filter((k) => /^\S+ \/v1\/rwlocks\//.test(k));
    // Auth and limits are the security suite's to produce; transport and server failures the fuzz and fault suites'.
    const missing = documented.filter((k) => !env.g.rest.covered.has(k) && !/ (401|403|413|415|429|499|500|503)$/.test(k));
    t.diagnostic(`covered ${[...env.g.rest.covered].filter((k) => k.includes('/v1/rwlocks')).length} of ${documented.length} documented rwlocks responses`);
    assert.deepEqual(missing, []);
  });
});
