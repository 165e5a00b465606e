/**
 * A lease's end deletes only the nodes it still owns: none it knows are gone already (a lock
 * released, a node deleted through the gateway, one found missing after a reconnect), each of
 * which would be a failed write on ZooKeeper (an error transaction), and every one it may still
 * hold. The gateway's ZooKeeper requests are read from the client itself (test/support/zk-trace.ts);
 * it reaches ZooKeeper through a proxy that can hold it disconnected (test/support/zk-proxy.ts).
 */
import { beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { NativeZkClient, Stat } from '../../src/zk/index.js';
import type { LeaseStateEvent } from '../../src/core/leases/lease.js';
import { traced, type Call } from '../support/zk-trace.js';
import { withRawClient } from '../support/zk-tree.js';
import { eventually, uniquePath, zkProxyAndGateway } from '../support/test-gateway.js';

interface LeaseBody {
  state: string;
  reason: string;
  owned: { path: string }[];
}

describe("a lease's end deletes only what it still owns", () => {
  const env = zkProxyAndGateway({ tenants: [{ name: 'default', sessionTimeoutMs: 8000 }] });
  const rest = () => env.g.rest;
  const tenant = () => env.g.running.gateway.tenants.get('default');
  beforeEach(async () => void (await eventually(() => tenant().ready, 20_000, 'the session to be connected')));
  const grant = async (): Promise<string> => ((await rest().json('POST', '/v1/leases', { ttlMs: 60_000 })).body as { id: string }).id;
  const lease = async (id: string): Promise<LeaseBody> => (await rest().json('GET', `/v1/leases/${id}`)).body as LeaseBody;
  const raw = <T>(f: (c: NativeZkClient) => Promise<T>): Promise<T> => withRawClient(env.zk.connectString, f);
  const ephemeral = async (path: string, leaseId: string): Promise<void> =>
    assert.equal((await rest().json('POST', `/v1/nodes${path}`, { mode: 'ephemeral', leaseId, createParents: true })).status, 201);
  /**
   * The paths of the deletes in `trace` under `under`, in the order they were sent; asserts none
   * failed (NO_NODE: an error transaction). A delete may still be unanswered: a raw client can
   * see its effect before the gateway gets its answer.
   */
  const deletes = (trace: readonly Call[], under: string): string[] => {
    const mine = trace.filter((c) => c.op === 'delete' && c.path.startsWith(`${under}/`));
    assert.deepEqual(mine.filter((c) => c.error !== undefined).map((c) => [c.path, c.error]), [], 'no delete failed');
    return mine.map((c) => c.path);
  };

  test('revoke › a lease whose ephemeral was deleted through the gateway and whose lock was released deletes only its other node', async () => {
    const p = uniquePath('revoke');
    const a = await grant();
    await ephemeral(`${p}/gone`, a);
    await ephemeral(`${p}/kept`, a);
    const held = await rest().json('POST', `/v1/locks${p}/lock`, { leaseId: a });
    assert.equal(held.status, 200, JSON.stringify(held.body));
    assert.equal((await rest().json('DELETE', `/v1/nodes${p}/gone`)).status, 204);
    const node = (held.body as { node: string }).node;
    assert.equal((await rest().json('DELETE', `/v1/locks${p}/lock`, undefined, { query: { leaseId: a, node } })).status, 200);
    const { trace } = await traced(() => rest().json('DELETE', `/v1/leases/${a}`));
    assert.deepEqual(deletes(trace, p), [`${p}/kept`]);
  });

  test('node_deleted › a lock node deleted through the gateway ends its lease at once; the end deletes its other node, not the lock node again', async () => {
    const p = uniquePath('gw-del');
    const a = await grant();
    await ephemeral(`${p}/kept`, a);
    const held = await rest().json('POST', `/v1/locks${p}/lock`, { leaseId: a });
    assert.equal(held.status, 200, JSON.stringify(held.body));
    const node = (held.body as { node: string }).node;
    const { trace } = await traced(async () => {
      // Within the hold's first 100 ms, before its ownership watch is set (LOCK_WATCH_AFTER_MS).
      assert.equal((await rest().json('DELETE', `/v1/nodes${node}`)).status, 204);
      const info = await lease(a);
      assert.deepEqual([info.state, info.reason], ['lost', 'node_deleted'], 'the holder hears it at once');
      assert.equal((await rest().json('DELETE', `/v1/leases/${a}`)).status, 410);
      await eventually(async () => (await raw((c) => c.exists(`${p}/kept`))) === null, 10_000, 'the other node to be deleted');
    });
    assert.deepEqual(deletes(trace, p), [node, `${p}/kept`]);
  });

  test('node_missing › a node deleted while the gateway was disconnected is not deleted again by the lease it ends; the lease\'s other node is', async () => {
    const p = uniquePath('missing');
    const a = await grant();
    await ephemeral(`${p}/gone`, a);
    await ephemeral(`${p}/kept`, a);
    const { trace } = await traced(async () => {
      env.proxy.block();
      try {
        await eventually(() => tenant().session.state === 'suspended', 15_000, 'the session to be suspended');
        await raw((c) => c.delete(`${p}/gone`));
      } finally {
        env.proxy.unblock();
      }
      await eventually(async () => (await lease(a)).state === 'lost', 15_000, 'the lease to be lost');
      await eventually(async () => (await raw((c) => c.exists(`${p}/kept`))) === null, 10_000, 'the other node to be deleted');
    });
    const info = await lease(a);
    // The re-check after the reconnect finds it missing; the ownership watch may see it first.
    assert.ok(['node_missing', 'node_deleted'].includes(info.reason), info.reason);
    assert.deepEqual(info.owned, []);
    assert.deepEqual(deletes(trace, p), [`${p}/gone`, `${p}/kept`], "the raw client's, then the lease's end's");
  });

  test("node_missing › a node made again at the lease's path by another lease of the tenant (same session) while it was disconnected is not the lease's: lost, never active, and the other lease's node is not deleted", async () => {
    const p = uniquePath('remade');
    const a = await grant();
    const b = await grant();
    await ephemeral(`${p}/x`, a);
    const t = tenant();
    const leaseA = env.g.running.gateway.leases.lookup(t, a);
    const states: string[] = [];
    leaseA.on('state', (e: LeaseStateEvent) => states.push(`${e.state}/${e.reason}`));
    // Once the session is back, the first plain exists of the path (the lease's re-check, sent
    // as the session is back) is held until lease b has made the path again through the
    // gateway, on the same session: what the re-check then sees has a's ephemeralOwner.
    const client = t.client();
    const exists = client.exists.bind(client);
    let remade: Promise<void> | undefined;
    const remake = async (): Promise<void> => {
      await eventually(async () => (await lease(b)).state === 'active', 15_000, 'lease b to be active again');
      await ephemeral(`${p}/x`, b);
    };
    env.proxy.block();
    try {
      await eventually(() => t.session.state === 'suspended', 15_000, 'the session to be suspended');
      await raw((c) => c.delete(`${p}/x`));
      client.exists = (path, watcher) => {
        if (path !== `${p}/x` || watcher) return exists(path, watcher);
        remade ??= remake().finally(() => (client.exists = exists));
        return remade.then(() => exists(path));
      };
    } finally {
      env.proxy.unblock();
    }
    await eventually(async () => (await lease(a)).state === 'lost', 15_000, 'lease a to be lost');
    assert.deepEqual(states, ['uncertain/session_suspended', 'lost/node_missing'], 'a is never told it holds its node again');
    const [infoA, infoB] = [await lease(a), await lease(b)];
    assert.deepEqual(infoA.owned, []);
    assert.equal(infoB.state, 'active');
    assert.deepEqual(infoB.owned.map((o) => o.path), [`${p}/x`]);
    const stat = (await raw((c) => c.exists(`${p}/x`))) as Stat | null;
    assert.ok(stat, "b's node is not deleted by a's end");
    assert.equal(stat.ephemeralOwner, `0x${t.session.sessionId}`);
  });
});
