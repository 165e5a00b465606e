import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { expireSession } from '../support/zk-server.js';
import { eventually, uniquePath, zkAndGateway } from '../support/test-gateway.js';

interface LeaseBody {
  id: string;
  state: string;
  reason: string;
  owned: { path: string; kind: string }[];
}

describe('leases against a real ZooKeeper', () => {
  // A 10 s session: with the harness's 4 s one, a gateway start of 5-6 s on a loaded machine
  // let the first session expire right after it connected (503 until the next one).
  const env = zkAndGateway({ tenants: [{ name: 'default', sessionTimeoutMs: 10_000 }] });

  const grant = async (ttlMs: number): Promise<LeaseBody> => {
    const r = await env.g.rest.json('POST', '/v1/leases', { ttlMs });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return r.body as LeaseBody;
  };
  const ephemeral = async (path: string, leaseId: string): Promise<void> => {
    const r = await env.g.rest.json('POST', `/v1/nodes${path}`, { mode: 'ephemeral', leaseId, data: 'mine' });
    assert.equal(r.status, 201, JSON.stringify(r.body));
  };
  const nodeStatus = async (path: string): Promise<number> => (await env.g.rest.json('GET', `/v1/nodes${path}`)).status;

  test('lease › changes() streams the current state first, then every transition, and ends with the lease', async () => {
    const gw = env.g.running.gateway;
    const tenant = gw.tenants.get('default');
    const lease = gw.leases.grant(tenant, 30_000);
    const seen: string[] = [];
    const done = (async () => {
      for await (const e of lease.changes()) seen.push(`${e.state}:${e.reason}`);
    })();
    await eventually(() => seen.length === 1, 2000, 'the first state');
    await gw.leases.revoke(tenant, lease.id);
    await done;
    assert.deepEqual(seen, ['active:granted', 'revoked:revoked']);
  });

  test('lease › suspended → uncertain (no "you hold it"), back to active after the reconnect', async () => {
    const path = uniquePath('suspend');
    const lease = await grant(60_000);
    await ephemeral(path, lease.id);
    await env.zk.stop();
    try {
      await eventually(async () => ((await env.g.rest.json('GET', `/v1/leases/${lease.id}`)).body as LeaseBody).state === 'uncertain', 10_000, 'uncertain');
      const lock = await env.g.rest.json('POST', `/v1/locks${uniquePath('suspend-lock')}`, { leaseId: lease.id });
      assert.equal(lock.status, 503);
      assert.equal((lock.body as { code: string }).code, 'LEASE_UNCERTAIN');
    } finally {
      await env.zk.start();
    }
    const back = await eventually(async () => {
      const r = (await env.g.rest.json('GET', `/v1/leases/${lease.id}`)).body as LeaseBody;
      return r.state === 'active' ? r : null;
    }, 15_000, 'active again');
    assert.equal(back.reason, 'session_reconnected');
    assert.equal(await nodeStatus(path), 200, 'its ephemeral survived the disconnect');
  });
});
