/**
 * Ownership of lease-owned nodes (issue 10 part 2): protected create for plain and sequential
 * ephemerals whose create's answer is lost with the connection; a held node deleted behind the
 * gateway's back is a loss pushed on the lease's channels; waiters share one state listener per
 * tenant. The gateway reaches ZooKeeper through a proxy that cuts its connection as the create's
 * answer comes back (test/support/zk-proxy.ts), not after a freeze's two thirds of the session.
 */
import { beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { NativeZkClient } from '../../src/zk/index.js';
import { withRawClient } from '../support/zk-tree.js';
import { eventually, uniquePath, zkProxyAndGateway } from '../support/test-gateway.js';
import { cutCreateAnswer } from '../support/zk-proxy.js';
import { WsTestClient } from '../support/ws-client.js';

interface LeaseBody {
  id: string;
  state: string;
  reason: string;
  owned: { path: string; kind: string }[];
}
interface Hold {
  node: string;
  leaseId: string;
}

describe('lease-owned nodes against a real ZooKeeper', () => {
  const env = zkProxyAndGateway({ tenants: [{ name: 'default', sessionTimeoutMs: 8000 }] });
  const tenant = () => env.g.running.gateway.tenants.get('default');
  // Each test starts with a connected session (an earlier cut may still be reconnecting).
  beforeEach(async () => void (await eventually(() => tenant().ready, 20_000, 'the session to be connected')));
  const grant = async (ttlMs = 60_000): Promise<string> => {
    const r = await env.g.rest.json('POST', '/v1/leases', { ttlMs });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return (r.body as LeaseBody).id;
  };
  const leaseInfo = async (id: string): Promise<LeaseBody> => (await env.g.rest.json('GET', `/v1/leases/${id}`)).body as LeaseBody;
  const raw = <T>(f: (c: NativeZkClient) => Promise<T>): Promise<T> => withRawClient(env.zk.connectString, f);

  for (const mode of ['ephemeral', 'ephemeral_sequential'] as const) {
    test(`protected create › a ${mode} create whose answer is lost with the connection ends with exactly one node, owned by the lease`, async () => {
      const parent = uniquePath('cut');
      assert.equal((await env.g.rest.json('POST', `/v1/nodes${parent}`, {})).status, 201);
      const id = await grant();
      const name = mode === 'ephemeral' ? `${parent}/worker` : `${parent}/member-`;
      const { pending } = await cutCreateAnswer(env.proxy, `${parent}/`, () => env.g.rest.json('POST', `/v1/nodes${name}`, { mode, leaseId: id, data: 'mine' }));
      const answer = await pending;
      assert.equal(answer.status, 201, JSON.stringify(answer.body));
      const created = (answer.body as { path: string }).path;
      if (mode === 'ephemeral_sequential') assert.match(created, new RegExp(`^${parent}/_c_[0-9a-f-]{36}-member-\\d{10}$`));
      const children = await raw((c) => c.children(parent));
      assert.deepEqual(children.children.map((n) => `${parent}/${n}`), [created], 'no orphan and no duplicate node');
      const stat = await raw((c) => c.exists(created));
      assert.equal(stat?.ephemeralOwner, `0x${tenant().session.sessionId}`);
      await eventually(async () => (await leaseInfo(id)).state === 'active', 10_000, 'the lease to be active again');
      assert.deepEqual((await leaseInfo(id)).owned, [{ path: created, kind: 'node' }]);
      // Owned for real: revoking the lease deletes it.
      assert.equal((await env.g.rest.json('DELETE', `/v1/leases/${id}`)).status, 200);
      assert.equal(await raw((c) => c.exists(created)), null);
    });

    test(`protected create › a ${mode} create whose client gives up during the loss leaves no node once ZooKeeper is back`, async () => {
      const parent = uniquePath('giveup');
      assert.equal((await env.g.rest.json('POST', `/v1/nodes${parent}`, {})).status, 201);
      const id = await grant();
      const name = mode === 'ephemeral' ? `${parent}/worker` : `${parent}/member-`;
      const ac = new AbortController();
      // The create is applied, its answer cut, and the client leaves while the gateway is kept off ZooKeeper.
      const { pending } = await cutCreateAnswer(
        env.proxy,
        `${parent}/`,
        () =>
          fetch(`${env.g.base}/v1/nodes${name}`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ mode, leaseId: id }),
            signal: ac.signal,
          }).then(
            (r) => r.status,
            (e: Error) => e,
          ),
        async () => {
          await eventually(() => tenant().session.state === 'suspended', 15_000, 'the session to be suspended');
          ac.abort();
        },
      );
      assert.ok((await pending) instanceof Error, 'the client gave up before any answer');
      await eventually(async () => (await raw((c) => c.children(parent))).children.length === 0, 15_000, 'the unknown-outcome node to be swept');
      await eventually(async () => (await leaseInfo(id)).state === 'active', 10_000, 'the lease to be active again');
      assert.deepEqual((await leaseInfo(id)).owned, []);
    });
  }

  test('held node › a lock node deleted behind the gateway: the holder is told lost (REST, WebSocket), the next waiter acquires', async () => {
    const path = uniquePath('forced');
    const a = await grant();
    const b = await grant();
    const ws = await WsTestClient.open(`${env.g.base.replace('http', 'ws')}/v1/ws`);
    try {
      ws.send({ op: 'lease_attach', leaseId: a });
      await ws.take((m) => m.type === 'lease');
      const held = await env.g.rest.json('POST', `/v1/locks${path}`, { leaseId: a });
      assert.equal(held.status, 200, JSON.stringify(held.body));
      const node = (held.body as Hold).node;
      const waiting = env.g.rest.json('POST', `/v1/locks${path}`, { leaseId: b, waitMs: 30_000 });
      await eventually(async () => (await leaseInfo(b)).owned.length === 1, 10_000, 'b to queue');
      // An operator (zkCli `delete`, Curator's forceRelease) removes the holder's node.
      await raw((c) => c.delete(node));
      const lost = await ws.take((m) => m.type === 'lease_state' && m.state === 'lost', 15_000);
      assert.equal(lost.reason, 'node_deleted');
      const info = await leaseInfo(a);
      assert.deepEqual([info.state, info.reason, info.owned], ['lost', 'node_deleted', []]);
      const next = await waiting;
      assert.equal(next.status, 200, JSON.stringify(next.body));
      assert.equal((await leaseInfo(b)).state, 'active');
      // The old holder's release is refused (its lease is gone), never answered as if it held.
      const rel = await env.g.rest.json('DELETE', `/v1/locks${path}`, undefined, { query: { leaseId: a, node } });
      assert.equal(rel.status, 410);
    } finally {
      ws.ws.close();
    }
  });

  test('held node › a plain ephemeral deleted by someone else ends its lease as lost; one deleted through the gateway does not', async () => {
    const parent = uniquePath('eph-del');
    assert.equal((await env.g.rest.json('POST', `/v1/nodes${parent}`, {})).status, 201);
    const a = await grant();
    assert.equal((await env.g.rest.json('POST', `/v1/nodes${parent}/mine`, { mode: 'ephemeral', leaseId: a })).status, 201);
    assert.equal((await env.g.rest.json('DELETE', `/v1/nodes${parent}/mine`)).status, 204);
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual([(await leaseInfo(a)).state, (await leaseInfo(a)).owned], ['active', []], 'a delete through the gateway is no loss');
    // Also with ?recursive=true naming the lease's node itself (its root delete used to be left
    // out: the lease was then lost and its other nodes deleted).
    assert.equal((await env.g.rest.json('POST', `/v1/nodes${parent}/mine`, { mode: 'ephemeral', leaseId: a })).status, 201);
    assert.equal((await env.g.rest.json('DELETE', `/v1/nodes${parent}/mine`, undefined, { query: { recursive: 'true' } })).status, 204);
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual([(await leaseInfo(a)).state, (await leaseInfo(a)).owned], ['active', []], 'a recursive delete through the gateway is no loss');
    assert.equal((await env.g.rest.json('POST', `/v1/nodes${parent}/other`, { mode: 'ephemeral', leaseId: a })).status, 201);
    await raw((c) => c.delete(`${parent}/other`));
    await eventually(async () => (await leaseInfo(a)).state === 'lost', 10_000, 'the lease to be lost');
    assert.equal((await leaseInfo(a)).reason, 'node_deleted');
  });

  test('held node › a plain ephemeral deleted and created again by another lease of the tenant: the first lease is told lost, the second keeps the node', async () => {
    // Every lease of a tenant shares the tenant's session: the new node has the same path and
    // ephemeralOwner, only its czxid differs. The delete (behind the gateway's back, as an
    // operator's zkCli would) and the other lease's create go out back to back on the gateway's
    // session, so the watch's re-read after the deletion already sees the new node.
    const path = `${uniquePath('replaced')}-eph`;
    const [a, b] = [await grant(), await grant()];
    const ws = await WsTestClient.open(`${env.g.base.replace('http', 'ws')}/v1/ws`);
    try {
      ws.send({ op: 'lease_attach', leaseId: a });
      await ws.take((m) => m.type === 'lease');
      assert.equal((await env.g.rest.json('POST', `/v1/nodes${path}`, { mode: 'ephemeral', leaseId: a, data: 'a' })).status, 201);
      const before = await raw((c) => c.exists(path));
      const gw = env.g.running.gateway;
      const deleted = tenant().client().delete(path);
      const created = gw.nodes(tenant()).create(path, Buffer.from('b'), { mode: 'ephemeral', leaseId: b });
      await deleted;
      assert.equal(await created, path);
      const lost = await ws.take((m) => m.type === 'lease_state' && m.state === 'lost', 15_000);
      assert.equal(lost.reason, 'node_deleted');
      const infoA = await leaseInfo(a);
      assert.deepEqual([infoA.state, infoA.owned], ['lost', []]);
      // The loss of a deleted nothing of b's: the node at the path is b's, and b is untouched.
      const after = await raw((c) => c.get(path));
      assert.notEqual(after.stat.czxid, before?.czxid);
      assert.equal(after.data.toString(), 'b');
      const infoB = await leaseInfo(b);
      assert.deepEqual([infoB.state, infoB.owned], ['active', [{ path, kind: 'node' }]]);
      await env.g.rest.json('DELETE', `/v1/leases/${b}`);
    } finally {
      ws.ws.close();
    }
  });

  test('state fan-out › 50 waiters on one tenant add no state listeners and no MaxListenersExceededWarning', async () => {
    const path = uniquePath('fanout');
    const warnings: string[] = [];
    const onWarning = (w: Error): void => void (w.name === 'MaxListenersExceededWarning' && warnings.push(w.message));
    process.on('warning', onWarning);
    const holder = await grant();
    const ids: string[] = [];
    try {
      assert.equal((await env.g.rest.json('POST', `/v1/locks${path}`, { leaseId: holder })).status, 200);
      const count = (): number => tenant().listenerCount('state');
      const waits: Promise<unknown>[] = [];
      const first = await grant();
      ids.push(first);
      waits.push(env.g.rest.json('POST', `/v1/locks${path}`, { leaseId: first, waitMs: 60_000 }));
      await eventually(async () => (await leaseInfo(first)).owned.length === 1, 10_000, 'the first waiter to queue');
      const before = count();
      for (let i = 1; i < 50; i++) {
        const id = await grant();
        ids.push(id);
        waits.push(env.g.rest.json('POST', `/v1/locks${path}`, { leaseId: id, waitMs: 60_000 }));
      }
      const queued = async (): Promise<boolean> => ((await env.g.rest.json('GET', `/v1/locks${path}`)).body as { queue: unknown[] }).queue.length === 51;
      await eventually(queued, 20_000, '50 waiters to queue');
      assert.equal(count(), before, 'the tenant keeps the same number of state listeners');
      for (const id of ids) await env.g.rest.json('DELETE', `/v1/leases/${id}`);
      await Promise.all(waits);
      await new Promise((r) => setImmediate(r));
      assert.deepEqual(warnings, []);
    } finally {
      process.off('warning', onWarning);
      await env.g.rest.json('DELETE', `/v1/leases/${holder}`);
    }
  });
});
