/**
 * Contract: znode CRUD, paged children, the bounded recursive listing and the znode error codes
 * behave the same over REST, gRPC and WebSocket.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { contractGateway, forEachTransport, rejectsWith, unique } from './harness.js';

const { client } = contractGateway({ maxChildrenPerListing: 5, maxDataBytes: 64, maxRecursiveDeleteNodes: 5 });

forEachTransport((t) => {
  test('znodes › create, get, compare-and-set, exists and delete round-trip', async () => {
    const c = await client(t);
    const p = unique(t, 'crud');
    assert.equal(await c.create(p, { data: 'v0' }), p);
    const got = await c.get(p);
    assert.deepEqual([got.data, got.stat.version], ['v0', 0]);
    assert.equal((await c.set(p, 'v1', 0)).version, 1);
    await rejectsWith(c.set(p, 'v2', 0), 'BAD_VERSION');
    assert.equal((await c.get(p)).data, 'v1', 'a failed compare-and-set changes nothing');
    assert.equal((await c.exists(p))?.version, 1);
    await rejectsWith(c.delete(p, { version: 0 }), 'BAD_VERSION');
    await c.delete(p, { version: 1 });
    assert.equal(await c.exists(p), null);
  });

  test('znodes › sequential creates answer the actual path; createParents makes the ancestors', async () => {
    const c = await client(t);
    const p = unique(t, 'seq');
    const a = await c.create(`${p}/q/item-`, { mode: 'persistent_sequential', createParents: true });
    const b = await c.create(`${p}/q/item-`, { mode: 'persistent_sequential' });
    assert.match(a, /\/q\/item-\d{10}$/);
    assert.ok(b > a, 'sequence numbers rise');
    await c.delete(p, { recursive: true });
  });

  test('znodes › every znode error code, and a refused call changes nothing', async () => {
    const c = await client(t);
    const p = unique(t, 'err');
    await rejectsWith(c.get(`${p}/missing`), 'NO_NODE');
    await rejectsWith(c.create(`${p}/a/b`), 'NO_NODE'); // missing parent without createParents
    await c.create(p, { data: 'x' });
    await rejectsWith(c.create(p), 'NODE_EXISTS');
    await c.create(`${p}/child`);
    await rejectsWith(c.delete(p), 'NOT_EMPTY');
    await rejectsWith(c.create(`${p}/bad//path`), 'INVALID_PATH');
    const big = await rejectsWith(c.create(`${p}/big`, { data: 'x'.repeat(65) }), 'DATA_TOO_LARGE');
    assert.deepEqual(big.details, { limit: 64, setting: 'maxDataBytes', size: 65 });
    await rejectsWith(c.create(`${p}/eph`, { mode: 'ephemeral' }), 'LEASE_REQUIRED');
    const bad = await rejectsWith(c.set(p, 'y', -2), 'INVALID_ARGUMENT');
    assert.equal(bad.details.field, 'version');
    const lease = await c.grant(30_000);
    const eph = await c.create(`${p}/eph`, { mode: 'ephemeral', leaseId: lease.id });
    await rejectsWith(c.create(`${eph}/under`), 'NO_CHILDREN_FOR_EPHEMERALS');
    await c.revoke(lease.id);
    for (let i = 0; i < 5; i++) await c.create(`${p}/child/n${i}`);
    const tooBig = await rejectsWith(c.delete(p, { recursive: true }), 'SUBTREE_TOO_LARGE');
    assert.equal(tooBig.details.limit, 5);
    assert.equal((await c.children(`${p}/child`)).total, 5, 'a refused recursive delete deleted nothing');
    assert.deepEqual((await c.get(p)).data, 'x');
  });

  test('children › pages sorted by name: limit + cursor, total counts every child, never refused past maxChildrenPerListing', async () => {
    const c = await client(t);
    const p = unique(t, 'page');
    await c.create(p);
    const names = ['k', 'b', 'x', 'a', 'm', 'c', 'z'];
    for (const n of names) await c.create(`${p}/${n}`);
    const first = await c.children(p); // 7 children, at most 5 per answer
    assert.deepEqual([first.names, first.total], [['a', 'b', 'c', 'k', 'm'], 7]);
    assert.ok(first.nextCursor);
    const second = await c.children(p, { cursor: first.nextCursor });
    assert.deepEqual([second.names, second.total, second.nextCursor], [['x', 'z'], 7, undefined]);

    // Pages continue after the last name: a child created before the cursor shifts nothing.
    const p1 = await c.children(p, { limit: 2 });
    assert.deepEqual(p1.names, ['a', 'b']);
    await c.create(`${p}/aa`);
    await c.delete(`${p}/c`);
    const p2 = await c.children(p, { limit: 2, cursor: p1.nextCursor });
    assert.deepEqual([p2.names, p2.total], [['k', 'm'], 7]);

    assert.equal((await rejectsWith(c.children(p, { limit: 6 }), 'INVALID_ARGUMENT')).details.field, 'limit');
    // proto3 cannot tell 0 from absent: over gRPC limit 0 means the maximum (as proto/ says).
    if (t === 'grpc') assert.equal((await c.children(p, { limit: 0 })).names.length, 5);
    else assert.equal((await rejectsWith(c.children(p, { limit: 0 }), 'INVALID_ARGUMENT')).details.field, 'limit');
    assert.equal((await rejectsWith(c.children(p, { cursor: 'not-a-cursor!' }), 'INVALID_ARGUMENT')).details.field, 'cursor');
    await rejectsWith(c.children(`${p}/nope`), 'NO_NODE');
    await c.delete(p, { recursive: true }).catch(() => undefined);
  });

  test('tree › ls -R is breadth-first, honours depth, and past its bound is cut and marked truncated', async () => {
    const c = await client(t);
    const p = unique(t, 'tree');
    for (const n of ['a/a1', 'a/a2', 'b/b1']) await c.create(`${p}/${n}`, { createParents: true });
    const all = await c.tree(p);
    assert.deepEqual(all.paths, [p, `${p}/a`, `${p}/b`, `${p}/a/a1`, `${p}/a/a2`, `${p}/b/b1`].slice(0, 5));
    assert.deepEqual([all.truncated, all.limit], [true, 5], 'six nodes, five allowed: cut and marked');
    const shallow = await c.tree(p, { depth: 1 });
    assert.deepEqual([shallow.paths, shallow.truncated], [[p, `${p}/a`, `${p}/b`], false]);
    const two = await c.tree(`${p}/a`, { limit: 2 });
    assert.deepEqual([two.paths, two.truncated], [[`${p}/a`, `${p}/a/a1`], true]);
    await rejectsWith(c.tree(`${p}/missing`), 'NO_NODE');
    assert.equal((await rejectsWith(c.tree(p, { limit: 6 }), 'INVALID_ARGUMENT')).details.field, 'limit');
  });
});
