import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { eventually, uniquePath, zkAndGateway, type Problem } from '../support/test-gateway.js';
import type { LeaderState } from '../../src/core/index.js';

interface Leadership {
  leader: true;
  node: string;
  term: string;
  value: string;
}
interface State {
  leader: { node: string; value: string; term: string } | null;
  index: string;
  unchanged?: boolean;
}

describe('elections against a real ZooKeeper', () => {
  // A 10 s session: with the harness's 4 s one, a gateway start of 5-6 s on a loaded machine
  // let the first session expire right after it connected, ending the first test's leadership.
  const env = zkAndGateway({ tenants: [{ name: 'default', sessionTimeoutMs: 10_000 }] });

  const lease = async (): Promise<string> => ((await env.g.rest.json('POST', '/v1/leases', { ttlMs: 30_000 })).body as { id: string }).id;
  const campaign = (path: string, body: Record<string, unknown>) => env.g.rest.json('POST', `/v1/elections${path}`, body);
  const leader = async (path: string, query?: Record<string, string | number>): Promise<State> =>
    (await env.g.rest.json('GET', `/v1/elections${path}`, undefined, { query })).body as State;
  const resign = (path: string, leaseId: string, node: string) => env.g.rest.json('DELETE', `/v1/elections${path}`, undefined, { query: { leaseId, node } });

  test('election › long-poll answers at once when newer, on change (no leader included), else unchanged', async () => {
    const path = uniquePath('poll');
    const a = await lease();
    const won = (await campaign(path, { leaseId: a, value: 'x' })).body as Leadership;
    const now = await leader(path);
    const stale = await leader(path, { wait: 5000, after: '1' });
    assert.equal(stale.unchanged, false, 'an old index answers at once');
    const t0 = Date.now();
    const idle = await leader(path, { wait: 400, after: now.index });
    assert.equal(idle.unchanged, true);
    assert.ok(Date.now() - t0 >= 350);
    // Concurrent long-polls share one set of ZooKeeper watches; each is told about the change.
    const polled = [leader(path, { wait: 10_000, after: now.index }), leader(path, { wait: 10_000, after: now.index })];
    await new Promise((r) => setTimeout(r, 200));
    await resign(path, a, won.node);
    const [changed, other] = await Promise.all(polled);
    assert.deepEqual(other, changed);
    assert.equal(changed.unchanged, false);
    assert.equal(changed.leader, null, '"no leader" is reported');
    assert.notEqual(changed.index, now.index);
  });

  test('election › a campaign by the leader answers its leadership again (its value replaced when it names another): one candidate node', async () => {
    const path = uniquePath('again');
    const [a, b] = [await lease(), await lease()];
    const won = (await campaign(path, { leaseId: a, value: 'x' })).body as Leadership;
    const again = await campaign(path, { leaseId: a });
    assert.equal(again.status, 200, JSON.stringify(again.body));
    assert.deepEqual(again.body, { ...won, trustMs: (again.body as { trustMs: number }).trustMs, leaseState: 'active' });
    const renamed = await campaign(path, { leaseId: a, value: 'y', waitMs: 1000 });
    assert.equal(renamed.status, 200, JSON.stringify(renamed.body));
    assert.deepEqual([(renamed.body as Leadership).node, (renamed.body as Leadership).term, (renamed.body as Leadership).value], [won.node, won.term, 'y']);
    assert.equal((await leader(path)).leader?.value, 'y');
    const owned = ((await env.g.rest.json('GET', `/v1/leases/${a}`)).body as { owned: { kind: string }[] }).owned;
    assert.deepEqual(owned.map((o) => o.kind), ['candidate'], 'no second candidate of the leader');
    assert.equal((await campaign(path, { leaseId: b })).status, 409, 'another lease is not elected');
    await resign(path, a, won.node);
    const next = await campaign(path, { leaseId: b });
    assert.equal(next.status, 200, JSON.stringify(next.body));
  });

  test('election › a campaign by a lease whose earlier campaign still waits joins it: one candidate node, both answered with the same leadership', async () => {
    const path = uniquePath('again-waiting');
    const [a, b] = [await lease(), await lease()];
    const won = (await campaign(path, { leaseId: a, value: 'A' })).body as Leadership;
    const first = campaign(path, { leaseId: b, value: 'B', waitMs: 20_000 });
    const candidates = async (): Promise<number> => ((await env.g.rest.json('GET', `/v1/children${path}`)).body as { children: unknown[] }).children.length;
    await eventually(async () => (await candidates()) === 2, 10_000, 'b to be a candidate');
    const retry = campaign(path, { leaseId: b, value: 'B', waitMs: 20_000 });
    const tried = await campaign(path, { leaseId: b, value: 'B' });
    assert.equal(tried.status, 409, JSON.stringify(tried.body));
    assert.equal((tried.body as Problem).code, 'NOT_ELECTED');
    assert.equal(await candidates(), 2, 'no second candidate of b');
    const owned = ((await env.g.rest.json('GET', `/v1/leases/${b}`)).body as { owned: { kind: string }[] }).owned;
    assert.deepEqual(owned.map((o) => o.kind), ['candidate']);
    assert.equal((await resign(path, a, won.node)).status, 200);
    const [r1, r2] = await Promise.all([first, retry]);
    assert.equal(r1.status, 200, JSON.stringify(r1.body));
    assert.equal(r2.status, 200, JSON.stringify(r2.body));
    assert.deepEqual([(r2.body as Leadership).node, (r2.body as Leadership).term], [(r1.body as Leadership).node, (r1.body as Leadership).term]);
    assert.equal(await candidates(), 1);
  });

  test('election › observe yields the current state first, then every change including no leader', async () => {
    const path = uniquePath('observe');
    const gw = env.g.running.gateway;
    const tenant = gw.tenants.get('default');
    const ac = new AbortController();
    const seen: (string | null)[] = [];
    const done = (async () => {
      for await (const s of gw.elections.observe(tenant, path, { signal: ac.signal }) as AsyncIterable<LeaderState>) {
        seen.push(s.leader ? s.leader.value.toString() : null);
      }
    })();
    await eventually(() => seen.length === 1, 3000, 'the initial state');
    const l1 = gw.leases.grant(tenant, 30_000);
    const l2 = gw.leases.grant(tenant, 30_000);
    const one = await gw.elections.campaign(l1, path, Buffer.from('one'));
    const twoP = gw.elections.campaign(l2, path, Buffer.from('two'), { waitMs: 10_000 });
    await eventually(() => seen.at(-1) === 'one', 3000, 'one leads');
    await gw.elections.proclaim(l1, path, one.node, Buffer.from('one-b'));
    await eventually(() => seen.at(-1) === 'one-b', 3000, 'the proclaim');
    await gw.leases.revoke(tenant, l1.id);
    await twoP;
    await eventually(() => seen.at(-1) === 'two', 3000, 'two leads');
    await gw.leases.revoke(tenant, l2.id);
    await eventually(() => seen.at(-1) === null && seen.length > 4, 3000, 'no leader');
    ac.abort();
    await done;
    assert.deepEqual(seen, [null, 'one', 'one-b', 'two', null]);
  });
});
