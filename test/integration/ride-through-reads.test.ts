/**
 * The reads at the start of a call that rides through a short ZooKeeper disconnection (its
 * create, or its wait, is sent again once the session is back) ride through it too, for as long:
 * a semaphore acquire's shared-count read (until the acquire's wait ends), a run claim's and a
 * shard join's read of the job, a registration again by its owner (until the create's own
 * bound). The gateway reaches ZooKeeper through a proxy that resets its connection exactly when
 * the call's first read is sent (test/support/zk-proxy.ts): the read fails with connection loss
 * and the client reconnects at once. (A freeze of ZooKeeper cut the read only once the client's
 * timeout, two thirds of the session, declared the connection lost, which left the registration
 * a third of its bound for the reconnect after the thaw: a loaded machine could miss it.)
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { eventually, uniquePath, zkProxyAndGateway } from '../support/test-gateway.js';
import { cutWithin } from '../support/zk-proxy.js';

describe('reads at the start of a call ride through a short disconnection', () => {
  // 8 s as queue.test's: a reconnect on a loaded machine stays far from the session's expiry.
  const env = zkProxyAndGateway({ tenants: [{ name: 'default', sessionTimeoutMs: 8000 }] });
  const rest = () => env.g.rest;
  const tenant = () => env.g.running.gateway.tenants.get('default');
  const lease = async (): Promise<string> => ((await rest().json('POST', '/v1/leases', { ttlMs: 60_000 })).body as { id: string }).id;
  const active = (id: string) =>
    eventually(async () => ((await rest().json('GET', `/v1/leases/${id}`)).body as { state: string }).state === 'active', 15_000, 'the lease to be active');

  /**
   * Sends `call` with the gateway's connection reset when it sends its first request for a path
   * containing `pathPart`, which must be a read (the one under test); resolves with the call's
   * answer once the session is back.
   */
  const cut = async <T>(pathPart: string, call: () => Promise<T>): Promise<T> => {
    const reset = env.proxy.cutNextRequest(pathPart);
    const pending = call();
    const { op, path } = await cutWithin(reset, `a path with ${pathPart}`);
    assert.ok(['getData', 'exists', 'getChildren2'].includes(op), `the first request cut is a read, not ${op} ${path}`);
    const answer = await pending;
    await eventually(() => tenant().session.isUsable, 15_000, 'the session to be back');
    return answer;
  };

  test('ride-through › a semaphore acquire whose shared-count read is cut waits for the session and takes its permit', async () => {
    const path = uniquePath('sem');
    const countPath = `${uniquePath('count')}/max`;
    const a = await lease();
    assert.equal((await rest().json('POST', `/v1/semaphores${path}`, { leaseId: a, countPath, maxPermits: 2 })).status, 200); // seeds the count
    assert.equal((await rest().json('DELETE', `/v1/semaphores${path}`, undefined, { query: { leaseId: a } })).status, 200);
    const r = await cut(countPath, () => rest().json('POST', `/v1/semaphores${path}`, { leaseId: a, countPath, waitMs: 30_000 }));
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal((r.body as { maxPermits: number }).maxPermits, 2);
    await active(a);
  });

  test('ride-through › a run claim whose read of the job is cut waits for the session and claims the run', async () => {
    const job = `rt-claim-${process.pid}`;
    assert.equal((await rest().json('PUT', `/v1/jobs/${job}`, {})).status, 201);
    const a = await lease();
    const r = await cut(job, () => rest().json('POST', `/v1/jobs/${job}/runs`, { trigger: 't1', leaseId: a }));
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal((r.body as { state: string }).state, 'running');
  });

  test('ride-through › a shard join whose read of the job is cut waits for the session and joins', async () => {
    const job = `rt-join-${process.pid}`;
    assert.equal((await rest().json('PUT', `/v1/jobs/${job}`, { shardCount: 2 })).status, 201);
    const a = await lease();
    await active(a);
    const r = await cut(job, () => rest().json('POST', `/v1/jobs/${job}/members`, { memberId: 'm1', leaseId: a }));
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual((r.body as { items: number[] }).items, [0, 1]);
  });

  test('ride-through › a registration sent again by its owner whose read is cut waits for the session and answers the instance', async () => {
    const base = uniquePath('svc');
    const a = await lease();
    const body = { leaseId: a, id: 'i-1', address: '10.0.0.7', port: 8080 };
    const first = await rest().json('POST', '/v1/services/orders/instances', body, { query: { base } });
    assert.equal(first.status, 201, JSON.stringify(first.body));
    await active(a);
    const r = await cut(base, () => rest().json('POST', '/v1/services/orders/instances', body, { query: { base } }));
    assert.ok(r.status === 200 || r.status === 201, JSON.stringify(r.body));
    assert.equal((r.body as { instance: { id: string } }).instance.id, 'i-1');
  });
});
