/**
 * The zkCli walk-through of seed 002 (an ephemeral /lock, /master failover, workers, tasks and
 * assignments with a status), done with curl against the gateway; leases stand in for sessions.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { curl } from '../support/curl.js';
import { eventually, zkAndGateway } from '../support/test-gateway.js';

describe('seed 002 scenarios with curl', () => {
  const env = zkAndGateway();
  const c = (method: string, path: string, json?: unknown) => curl(env.g.base, method, path, json);
  const lease = async (ttlMs: number): Promise<string> => ((await c('POST', '/v1/leases', { ttlMs })).body as { id: string }).id;

  test('seed › an ephemeral /lock is taken by one holder and freed when its holder goes away (revoke, then expiry)', async () => {
    const p1 = await lease(30_000);
    assert.equal((await c('POST', '/v1/nodes/lock', { mode: 'ephemeral', data: 'lock', leaseId: p1 })).status, 201);
    const p2 = await lease(30_000);
    const taken = await c('POST', '/v1/nodes/lock', { mode: 'ephemeral', data: 'lock', leaseId: p2 });
    assert.equal(taken.status, 409);
    assert.equal((taken.body as { code: string }).code, 'NODE_EXISTS');
    assert.equal((await c('DELETE', `/v1/leases/${p1}`)).status, 200, 'the first holder goes away');
    assert.equal((await c('GET', '/v1/nodes/lock')).status, 404);
    const short = await lease(1500);
    assert.equal((await c('POST', '/v1/nodes/lock', { mode: 'ephemeral', data: 'lock', leaseId: short })).status, 201);
    const t0 = Date.now();
    await eventually(async () => (await c('GET', '/v1/nodes/lock')).status === 404, 5000, 'the holder without keepalives to lose /lock');
    assert.ok(Date.now() - t0 <= 2500, `freed ${Date.now() - t0} ms after, TTL 1500`);
    assert.equal((await c('POST', '/v1/nodes/lock', { mode: 'ephemeral', data: 'lock', leaseId: p2 })).status, 201, 'now the waiter takes it');
  });

  test('seed › /master fails over to the backup when the master stops keeping its lease alive', async () => {
    // Long enough for the next four calls on a loaded machine (1.5 s ran out before the 409 at load 13).
    const m1 = await lease(5000);
    assert.equal((await c('POST', '/v1/nodes/master', { mode: 'ephemeral', data: 'master1.example.com:2223', leaseId: m1 })).status, 201);
    const got = (await c('GET', '/v1/nodes/master')).body as { data: string; stat: { ephemeralOwner: string } };
    assert.equal(got.data, 'master1.example.com:2223');
    assert.match(got.stat.ephemeralOwner, /^0x[0-9a-f]+$/);
    const m2 = await lease(30_000);
    assert.equal((await c('POST', '/v1/nodes/master', { mode: 'ephemeral', data: 'master2.example.com:2223', leaseId: m2 })).status, 409);
    // The backup waits for /master to go (the master crashed: no more keepalives), then takes over.
    await eventually(async () => (await c('POST', '/v1/nodes/master', { mode: 'ephemeral', data: 'master2.example.com:2223', leaseId: m2 })).status === 201, 15_000, 'failover');
    assert.equal(((await c('GET', '/v1/nodes/master')).body as { data: string }).data, 'master2.example.com:2223');
    const ka = await c('POST', `/v1/leases/${m1}/keepalive`);
    assert.equal((ka.body as { code: string }).code, 'LEASE_EXPIRED', 'the old master is told it lost');
  });

  test('seed › workers, tasks and assignments with a status', async () => {
    for (const p of ['/workers', '/tasks', '/assign']) assert.equal((await c('POST', `/v1/nodes${p}`, { data: '' })).status, 201);
    const w = await lease(30_000);
    assert.equal((await c('POST', '/v1/nodes/workers/worker1.example.com', { mode: 'ephemeral', data: 'worker1.example.com:2224', leaseId: w })).status, 201);
    assert.equal((await c('POST', '/v1/nodes/assign/worker1.example.com', { data: '' })).status, 201);
    const task = await c('POST', '/v1/nodes/tasks/task-', { mode: 'persistent_sequential', data: 'cmd' });
    assert.equal(task.status, 201);
    const taskPath = (task.body as { path: string }).path;
    assert.equal(taskPath, '/tasks/task-0000000000');
    const names = async (p: string): Promise<string[]> => ((await c('GET', `/v1/children${p}`)).body as { children: { name: string }[] }).children.map((x) => x.name);
    assert.deepEqual(await names('/tasks'), ['task-0000000000']);
    assert.deepEqual(await names('/workers'), ['worker1.example.com']);
    assert.equal((await c('POST', '/v1/nodes/assign/worker1.example.com/task-0000000000', { data: '' })).status, 201);
    assert.deepEqual(await names('/assign/worker1.example.com'), ['task-0000000000']);
    assert.equal((await c('POST', `/v1/nodes${taskPath}/status`, { data: 'done' })).status, 201);
    assert.equal(((await c('GET', `/v1/nodes${taskPath}/status`)).body as { data: string }).data, 'done');
    assert.equal((await c('DELETE', `/v1/leases/${w}`)).status, 200, 'the worker leaves');
    assert.deepEqual(await names('/workers'), []);
  });
});
