/**
 * Contract: authentication, roles, path scopes, lease ownership, per-tenant quotas and watches
 * behave the same over REST, gRPC and WebSocket.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ContractClient } from './clients.js';
import { contractGateway, forEachTransport, rejectsWith, unique } from './harness.js';

const { client } = contractGateway({ maxLeasesPerTenant: 4 });

forEachTransport((t) => {
  test('auth › no key or an unknown key is UNAUTHENTICATED', async () => {
    const call = async (key: null | { raw: string }): Promise<unknown> => (await client(t, key)).get('/');
    await rejectsWith(call(null), 'UNAUTHENTICATED');
    await rejectsWith(call({ raw: 'zkg_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' }), 'UNAUTHENTICATED');
  });

  test('auth › a key naming a tenant other than its own is PERMISSION_DENIED (tenant_mismatch): with keys, the key alone selects the tenant', async () => {
    const e = await rejectsWith((async () => (await client(t, 'admin', 'elsewhere')).get('/'))(), 'PERMISSION_DENIED');
    // A refused WebSocket upgrade carries the code and the message, not the details.
    if (t === 'ws') assert.match(e.message, /another tenant/);
    else assert.equal(e.details.reason, 'tenant_mismatch');
  });

  test('auth › the read role reads and lists, and is PERMISSION_DENIED for writes, leases and locks', async () => {
    const admin = await client(t);
    const reader = await client(t, 'read');
    const p = unique(t, 'ro');
    await admin.create(p, { data: 'x' });
    assert.equal((await reader.get(p)).data, 'x');
    assert.deepEqual((await reader.children(p)).names, []);
    assert.deepEqual((await reader.tree(p)).paths, [p]);
    assert.deepEqual((await reader.locks(p)).queues, []);
    const denied = await rejectsWith(reader.set(p, 'y'), 'PERMISSION_DENIED');
    assert.equal(denied.details.required, 'write');
    await rejectsWith(reader.grant(10_000), 'PERMISSION_DENIED');
    await rejectsWith(reader.delete(p), 'PERMISSION_DENIED');
    assert.equal((await admin.get(p)).data, 'x', 'nothing changed');
    await admin.delete(p);
  });

  test('scope › a key limited to /scoped works below it and is PERMISSION_DENIED elsewhere, listings included', async () => {
    const admin = await client(t);
    const scoped = await client(t, 'scoped');
    const p = `/scoped${unique(t, 's')}`;
    await scoped.create(p, { createParents: true, data: 'in' });
    assert.equal((await scoped.get(p)).data, 'in');
    const out = unique(t, 'out');
    await admin.create(out);
    const calls = [() => scoped.get(out), () => scoped.create(`${out}/x`), () => scoped.children(out), () => scoped.tree('/'), () => scoped.locks(out), () => scoped.elections('/')];
    for (const call of calls) assert.equal((await rejectsWith(call(), 'PERMISSION_DENIED')).details.reason, 'scope');
    const lease = await scoped.grant(10_000);
    await rejectsWith(scoped.acquire(`${out}/lock`, lease.id), 'PERMISSION_DENIED');
    await scoped.revoke(lease.id);
    await admin.delete(out);
  });

  test('lease › a lease belongs to its key: others of write role and readers get PERMISSION_DENIED and do not see it; admin sees, inspects and revokes all', async () => {
    const admin = await client(t);
    const w1 = await client(t, 'write');
    const w2 = await client(t, 'write2');
    const lease = await w1.grant(20_000);
    assert.equal((await w1.leases()).find((l) => l.id === lease.id)?.ownerName, 'writer');
    assert.ok(!(await w2.leases()).some((l) => l.id === lease.id), "another key's lease is not listed");
    assert.ok((await admin.leases()).some((l) => l.id === lease.id), 'admin lists every lease');
    assert.ok((await w1.leases()).every((l) => l.owner === lease.owner), 'a non-admin key sees its own leases only');
    await rejectsWith(w2.keepAlive(lease.id), 'PERMISSION_DENIED');
    await rejectsWith(w2.create(unique(t, 'eph'), { mode: 'ephemeral', leaseId: lease.id }), 'PERMISSION_DENIED');
    await rejectsWith(w2.acquire(unique(t, 'l'), lease.id), 'PERMISSION_DENIED');
    await rejectsWith(w2.revoke(lease.id), 'PERMISSION_DENIED');
    await rejectsWith((await client(t, 'read')).lease(lease.id), 'PERMISSION_DENIED');
    const eph = await w1.create(unique(t, 'own'), { mode: 'ephemeral', leaseId: lease.id });
    assert.ok((await w1.keepAlive(lease.id)).remainingMs > 0, 'its own key keeps it alive');
    assert.equal((await admin.lease(lease.id)).id, lease.id, 'admin may inspect any lease');
    assert.equal((await admin.revoke(lease.id)).state, 'revoked', 'admin may revoke any lease');
    assert.equal(await admin.exists(eph), null, "the admin's revoke took the owner's ephemeral");
  });

  test('quota › past maxLeasesPerTenant a grant is LIMIT_EXCEEDED naming the limit; revoking gives the unit back', async () => {
    const c = await client(t);
    const held: string[] = [];
    let refused;
    for (let i = 0; i < 5 && !refused; i++) {
      try {
        held.push((await c.grant(20_000)).id);
      } catch (err) {
        refused = err;
      }
    }
    assert.equal(held.length, 4);
    const e = await rejectsWith(Promise.reject(refused), 'LIMIT_EXCEEDED');
    assert.deepEqual(e.details, { limit: 'maxLeasesPerTenant', max: 4 });
    await c.revoke(held.pop() as string);
    held.push((await c.grant(20_000)).id);
    for (const id of held) await c.revoke(id);
  });

  test('watch › the current state first, then each change with its data, then the deletion', async () => {
    const c: ContractClient = await client(t);
    const p = unique(t, 'w');
    await c.create(p, { data: 'v0' });
    const w = await c.watch(p);
    assert.deepEqual(await w.next(), { type: 'current', data: 'v0' });
    await c.set(p, 'v1');
    assert.deepEqual(await w.next(), { type: 'data_changed', data: 'v1' });
    await c.set(p, 'v2');
    assert.deepEqual(await w.next(), { type: 'data_changed', data: 'v2' });
    await c.delete(p);
    assert.equal((await w.next()).type, 'deleted');
    w.close();
  });

  test('watch › outside a key\'s scope is PERMISSION_DENIED', async () => {
    const scoped = await client(t, 'scoped');
    const first = async (): Promise<unknown> => (await scoped.watch(unique(t, 'nope'))).next();
    await rejectsWith(first(), 'PERMISSION_DENIED');
  });
});
