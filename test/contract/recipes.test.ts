/**
 * Contract: leases (and their listing), locks (and locks under a path), elections (and elections
 * under a path) behave the same over REST, gRPC and WebSocket.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { contractGateway, forEachTransport, pending, rejectsWith, unique } from './harness.js';

const { client } = contractGateway({ maxChildrenPerListing: 30 });

forEachTransport((t) => {
  test('lease › grant, inspect, keepalive; what it owns is listed; revoke deletes it and then answers LEASE_REVOKED', async () => {
    const c = await client(t);
    const p = unique(t, 'lease');
    const lease = await c.grant(20_000);
    assert.deepEqual([lease.state, lease.ttlMs, lease.owned], ['active', 20_000, []]);
    const eph = await c.create(p, { mode: 'ephemeral', leaseId: lease.id });
    const hold = await c.acquire(`${p}-lock`, lease.id);
    const seen = await c.lease(lease.id);
    assert.deepEqual(
      [...seen.owned].sort((a, b) => a.path.localeCompare(b.path)),
      [{ path: eph, kind: 'node' }, { path: hold.node, kind: 'lock' }],
    );
    assert.ok((await c.keepAlive(lease.id)).remainingMs > 15_000);
    assert.equal((await c.revoke(lease.id)).state, 'revoked');
    assert.equal(await c.exists(eph), null, 'revoke deleted the ephemeral');
    assert.equal((await c.inspect(`${p}-lock`)).first, null, 'and the lock node');
    await rejectsWith(c.keepAlive(lease.id), 'LEASE_REVOKED');
    await rejectsWith(c.create(`${p}-2`, { mode: 'ephemeral', leaseId: lease.id }), 'LEASE_REVOKED');
    await rejectsWith(c.lease('gw-nope.00'), 'LEASE_NOT_FOUND');
    await rejectsWith(c.keepAlive('gw-nope.00'), 'LEASE_NOT_FOUND');
    await rejectsWith(c.revoke('gw-nope.00'), 'LEASE_NOT_FOUND');
    await rejectsWith(c.create(`${p}-ghost`, { mode: 'ephemeral', leaseId: 'gw-nope.00' }), 'LEASE_NOT_FOUND');
    assert.equal(await c.exists(`${p}-ghost`), null, 'an unknown lease owns nothing new');
    assert.equal((await rejectsWith(c.grant(10), 'INVALID_ARGUMENT')).details.field, 'ttlMs');
  });

  test('lease › keepalives keep its ephemeral past the TTL; a second revoke answers LEASE_REVOKED', async () => {
    const c = await client(t);
    const p = unique(t, 'keep');
    const lease = await c.grant(1000);
    await c.create(p, { mode: 'ephemeral', leaseId: lease.id });
    for (let i = 0; i < 8; i++) {
      await new Promise((r) => setTimeout(r, 300));
      await c.keepAlive(lease.id);
    }
    assert.notEqual(await c.exists(p), null, 'alive after 2.4 s of keepalives with a 1 s TTL');
    assert.deepEqual((await c.lease(lease.id)).owned, [{ path: p, kind: 'node' }]);
    assert.equal((await c.revoke(lease.id)).state, 'revoked');
    assert.equal(await c.exists(p), null, 'deleted by the revoke itself');
    await rejectsWith(c.revoke(lease.id), 'LEASE_REVOKED');
  });

  test('lease › the listing shows id, owner key name, TTL and TTL left, state and what each owns', async () => {
    const c = await client(t);
    const p = unique(t, 'list');
    const lease = await c.grant(30_000);
    await c.create(p, { mode: 'ephemeral', leaseId: lease.id });
    const cand = await c.campaign(`${p}-el`, lease.id, 'me');
    const mine = (await c.leases()).find((l) => l.id === lease.id);
    assert.ok(mine, 'the new lease is listed');
    assert.equal(mine.ownerName, 'admin-key');
    assert.equal(mine.owner, lease.owner);
    assert.equal(mine.state, 'active');
    assert.equal(mine.ttlMs, 30_000);
    assert.ok(mine.remainingMs > 0 && mine.remainingMs <= 30_000);
    assert.deepEqual(new Set(mine.owned.map((o) => `${o.kind} ${o.path}`)), new Set([`node ${p}`, `candidate ${cand.node}`]));
    await c.revoke(lease.id);
    assert.ok(!(await c.leases()).some((l) => l.id === lease.id), 'ended leases are not listed by default');
  });

  test('lock › holder, queue in order, rising fencing tokens; try-lock misses with the holder named; release is fenced and idempotent', async () => {
    const c = await client(t);
    const p = unique(t, 'lock');
    const [l1, l2] = [await c.grant(30_000), await c.grant(30_000)];
    const h1 = await c.acquire(p, l1.id);
    assert.match(h1.node, new RegExp(`^${p}/_c_[0-9a-f-]{36}-lock-\\d{10}$`), "Curator InterProcessMutex's node name");
    const miss = await rejectsWith(c.acquire(p, l2.id, 0), 'LOCK_NOT_ACQUIRED');
    assert.deepEqual([miss.details.holder, miss.details.holderFencingToken], [h1.node, h1.fencingToken]);
    assert.equal((await c.inspect(p)).nodes.length, 1, 'a try-lock miss leaves no node');
    assert.deepEqual((await c.lease(l2.id)).owned, [], 'and its lease owns nothing');
    assert.deepEqual(await c.release(p, l2.id, h1.node), { released: false, reason: 'not_owned' }, 'another lease cannot release it');
    const waiting = c.acquire(p, l2.id, 20_000);
    await waitFor(async () => (await c.inspect(p)).nodes.length === 2);
    const q = await c.inspect(p);
    assert.equal(q.first, h1.node);
    assert.deepEqual(await c.release(p, l1.id, h1.node), { released: true, reason: 'deleted' });
    assert.deepEqual(await c.release(p, l1.id, h1.node), { released: false, reason: 'not_owned' }, 'idempotent');
    const h2 = await waiting;
    assert.ok(BigInt(h2.fencingToken) > BigInt(h1.fencingToken), 'fencing tokens rise');
    await rejectsWith(c.acquire(`${p}/bad\u0001`, l1.id), 'INVALID_PATH');
    await c.revoke(l1.id);
    await c.revoke(l2.id);
  });

  test('lock › a timed wait misses with LOCK_NOT_ACQUIRED after waitMs, leaving no node; revoking a waiter\'s lease tells it LEASE_REVOKED; revoking the holder\'s hands the lock on', async () => {
    const c = await client(t);
    const p = unique(t, 'handoff');
    const [a, b, d] = [await c.grant(30_000), await c.grant(30_000), await c.grant(30_000)];
    const held = await c.acquire(p, a.id);
    const t0 = Date.now();
    await rejectsWith(c.acquire(p, b.id, 600), 'LOCK_NOT_ACQUIRED');
    assert.ok(Date.now() - t0 >= 550, `answered after ${Date.now() - t0} ms, waitMs 600`);
    assert.deepEqual((await c.inspect(p)).nodes, [held.node], 'the missed wait left no node');
    const bWait = c.acquire(p, b.id, 20_000);
    await waitFor(async () => (await c.inspect(p)).nodes.length === 2);
    const dWait = pending(c.acquire(p, d.id, 20_000));
    await waitFor(async () => (await c.inspect(p)).nodes.length === 3);
    await c.revoke(d.id);
    await rejectsWith(dWait, 'LEASE_REVOKED');
    await c.revoke(a.id);
    const next = await bWait;
    assert.deepEqual((await c.inspect(p)).nodes, [next.node]);
    await c.revoke(b.id);
  });

  test('lock › locks under a path: every lock with its holder, queue in order and fencing tokens; bounded and marked', async () => {
    const c = await client(t);
    const p = unique(t, 'locks');
    const [l1, l2] = [await c.grant(30_000), await c.grant(30_000)];
    const a = await c.acquire(`${p}/jobs/a`, l1.id);
    const b = await c.acquire(`${p}/jobs/deep/b`, l2.id);
    const waiting = c.acquire(`${p}/jobs/a`, l2.id, 20_000);
    await waitFor(async () => (await c.inspect(`${p}/jobs/a`)).nodes.length === 2);
    await c.create(`${p}/plain/x`, { createParents: true });
    const all = await c.locks(p);
    assert.equal(all.truncated, false);
    assert.deepEqual(all.queues.map((q) => [q.path, q.first, q.nodes.length]), [[`${p}/jobs/a`, a.node, 2], [`${p}/jobs/deep/b`, b.node, 1]]);
    assert.equal(all.queues[0]?.tokens[0], a.fencingToken);
    assert.deepEqual((await c.locks(`${p}/plain`)).queues, [], 'plain nodes are not locks');
    assert.deepEqual((await c.locks(`${p}/missing`)).queues, [], 'a missing path has no locks');
    assert.equal((await c.locks(p, 3)).truncated, true);
    await c.revoke(l1.id);
    await waiting;
    await c.revoke(l2.id);
  });

  test('election › leader, proclaim (leader only), NOT_ELECTED naming the leader, resign hands over with a higher term', async () => {
    const c = await client(t);
    const p = unique(t, 'el');
    const [l1, l2] = [await c.grant(30_000), await c.grant(30_000)];
    assert.equal(await c.leader(p), null, 'no election yet: no leader');
    const lead = await c.campaign(p, l1.id, 'one');
    assert.match(lead.node, new RegExp(`^${p}/_c_[0-9a-f-]{36}-latch-\\d{10}$`), "Curator LeaderLatch's node name");
    assert.deepEqual(await c.leader(p), { node: lead.node, value: 'one', term: lead.term });
    const lost = await rejectsWith(c.campaign(p, l2.id, 'two', 0), 'NOT_ELECTED');
    assert.equal(lost.details.leader, lead.node);
    assert.deepEqual(await c.proclaim(p, l1.id, lead.node, 'one-b'), { term: lead.term, value: 'one-b' }, 'same leader, same term');
    await rejectsWith(c.proclaim(p, l2.id, lead.node, 'x'), 'NOT_LEADER');
    const next = c.campaign(p, l2.id, 'two', 20_000);
    await waitFor(async () => (await c.elections(p)).queues[0]?.nodes.length === 2);
    const listed = (await c.elections(p)).queues;
    assert.deepEqual(listed.map((q) => [q.path, q.first, q.nodes[0]]), [[p, lead.node, lead.node]]);
    assert.deepEqual(await c.resign(p, l1.id, lead.node), { resigned: true });
    assert.deepEqual(await c.resign(p, l1.id, lead.node), { resigned: false }, 'idempotent');
    const second = await next;
    assert.ok(BigInt(second.term) > BigInt(lead.term), 'the term rises');
    assert.equal((await c.leader(p))?.value, 'two');
    await c.revoke(l2.id);
    assert.equal(await c.leader(p), null, "a revoked lease's leadership is gone");
    assert.deepEqual((await c.elections(p)).queues, []);
    await c.revoke(l1.id);
  });
});

async function waitFor(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}
