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
  const env = zkAndGateway();

  const grant = async (ttlMs: number): Promise<LeaseBody> => {
    const r = await env.g.rest.json('POST', '/v1/leases', { ttlMs });
    assert.equal(r.status, 201);
    return r.body as LeaseBody;
  };
  const ephemeral = async (path: string, leaseId: string): Promise<void> => {
    const r = await env.g.rest.json('POST', `/v1/nodes${path}`, { mode: 'ephemeral', leaseId, data: 'mine' });
    assert.equal(r.status, 201, JSON.stringify(r.body));
  };
  const nodeStatus = async (path: string): Promise<number> => (await env.g.rest.json('GET', `/v1/nodes${path}`)).status;

  test('lease › expiry deletes its ephemerals within the TTL, then it answers 410 expired', async () => {
    const path = uniquePath('expiry');
    const lease = await grant(1500);
    const t0 = Date.now();
    await ephemeral(path, lease.id);
    assert.equal(await nodeStatus(path), 200);
    await eventually(async () => (await nodeStatus(path)) === 404, 5000, 'the ephemeral to go');
    const took = Date.now() - t0;
    assert.ok(took <= 1500 + 1000, `deleted after ${took} ms, TTL 1500`);
    const info = await env.g.rest.json('GET', `/v1/leases/${lease.id}`);
    assert.equal(info.status, 200);
    assert.deepEqual([(info.body as LeaseBody).state, (info.body as LeaseBody).reason], ['expired', 'keepalive_missed']);
    const ka = await env.g.rest.json('POST', `/v1/leases/${lease.id}/keepalive`);
    assert.equal(ka.status, 410);
    assert.equal((ka.body as { code: string }).code, 'LEASE_EXPIRED');
    const late = await env.g.rest.json('POST', `/v1/nodes${path}-late`, { mode: 'ephemeral', leaseId: lease.id });
    assert.equal(late.status, 410);
    assert.equal(await nodeStatus(`${path}-late`), 404);
  });

  test('lease › keepalive keeps its ephemerals past the TTL; revoke deletes them at once', async () => {
    const path = uniquePath('keep');
    const lease = await grant(1000);
    await ephemeral(path, lease.id);
    for (let i = 0; i < 8; i++) {
      await new Promise((r) => setTimeout(r, 300));
      assert.equal((await env.g.rest.json('POST', `/v1/leases/${lease.id}/keepalive`)).status, 200);
    }
    assert.equal(await nodeStatus(path), 200, 'alive after 2.4 s of keepalives with a 1 s TTL');
    const owned = (await env.g.rest.json('GET', `/v1/leases/${lease.id}`)).body as LeaseBody;
    assert.deepEqual(owned.owned, [{ path, kind: 'node' }]);
    const revoked = await env.g.rest.json('DELETE', `/v1/leases/${lease.id}`);
    assert.equal(revoked.status, 200);
    assert.equal((revoked.body as LeaseBody).state, 'revoked');
    assert.equal(await nodeStatus(path), 404, 'deleted by the revoke itself');
    const again = await env.g.rest.json('DELETE', `/v1/leases/${lease.id}`);
    assert.equal(again.status, 410);
    assert.equal((again.body as { code: string }).code, 'LEASE_REVOKED');
  });

  test('lease › an unknown id is 404 LEASE_NOT_FOUND and never grants a lease', async () => {
    for (const [method, url] of [
      ['GET', '/v1/leases/nope.123'],
      ['POST', '/v1/leases/nope.123/keepalive'],
      ['DELETE', '/v1/leases/nope.123'],
    ] as const) {
      const r = await env.g.rest.json(method, url);
      assert.equal(r.status, 404, `${method} ${url}`);
      assert.equal((r.body as { code: string }).code, 'LEASE_NOT_FOUND');
    }
    const create = await env.g.rest.json('POST', `/v1/nodes${uniquePath('ghost')}`, { mode: 'ephemeral', leaseId: 'nope.123' });
    assert.equal(create.status, 404);
    assert.equal((await env.g.rest.json('POST', '/v1/leases', { ttlMs: 10 })).status, 400, 'TTL below the minimum');
  });

  test('lease › a forced session expiry makes it lost (holder told), and frees its lock for others', async () => {
    const lockPath = uniquePath('expire-lock');
    const a = await grant(30_000);
    const held = await env.g.rest.json('POST', `/v1/locks${lockPath}`, { leaseId: a.id });
    assert.equal(held.status, 200, JSON.stringify(held.body));
    const tenant = env.g.running.gateway.tenants.get('default');
    const oldSession = tenant.session.sessionId;
    await expireSession(env.zk.connectString, oldSession, tenant.session.sessionPassword);
    const lost = await eventually(async () => {
      const r = (await env.g.rest.json('GET', `/v1/leases/${a.id}`)).body as LeaseBody;
      return r.state === 'lost' ? r : null;
    }, 15_000, 'the lease to be lost');
    assert.equal(lost.reason, 'session_expired');
    const ka = await env.g.rest.json('POST', `/v1/leases/${a.id}/keepalive`);
    assert.equal(ka.status, 410);
    assert.equal((ka.body as { code: string }).code, 'LEASE_LOST');
    const rel = await env.g.rest.json('DELETE', `/v1/locks${lockPath}`, undefined, { query: { leaseId: a.id, node: (held.body as { node: string }).node } });
    assert.equal(rel.status, 410);
    assert.equal((rel.body as { code: string }).code, 'LEASE_LOST');
    await eventually(() => tenant.ready && tenant.session.sessionId !== oldSession, 15_000, 'a new session');
    const b = await grant(30_000);
    const taken = await env.g.rest.json('POST', `/v1/locks${lockPath}`, { leaseId: b.id, waitMs: 0 });
    assert.equal(taken.status, 200, `the lock is free for others: ${JSON.stringify(taken.body)}`);
    assert.ok(BigInt((taken.body as { fencingToken: string }).fencingToken) > BigInt((held.body as { fencingToken: string }).fencingToken));
  });

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
