/**
 * Contract: the error codes that need a condition forced on the gateway (a lease left to expire,
 * a node deleted under its owner, an ACL, a size limit, a client that gives up) arise the same
 * over REST, gRPC and WebSocket. Where a code cannot arise on a transport, error-coverage.ts
 * says why, and the test here proves what that transport answers instead.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import type { Transport } from './clients.js';
import { KEYS, contractGateway, forEachTransport, pending, rejectsWith, unique, waitFor } from './harness.js';

/** Messages the gateway logged at error level or above (a cancelled wait must add none). */
const errorLogs: string[] = [];
const logger = pino(
  { level: 'debug' },
  new Writable({
    write(chunk: Buffer, _enc, cb) {
      const line = JSON.parse(chunk.toString('utf8')) as { level: number; msg: string };
      if (line.level >= 50) errorLogs.push(line.msg);
      cb();
    },
  }),
);

const { client, errorCount, env } = contractGateway(
  { maxBodyBytes: 1024, wsMaxMessageBytes: 1024, maxDataBytes: 4096, maxChildrenPerListing: 3 },
  // A gRPC message over 1 KiB is refused by grpc-js itself, before the gateway sees it.
  { config: { grpc: { maxMessageBytes: 1024 } }, logger },
);

/** A lock held by one lease and a second lease waiting for it (25 s): the waiter's queue node. */
async function waiterBehindHolder(t: Transport, name: string) {
  const c = await client(t);
  const p = unique(t, name);
  const [l1, l2] = [await c.grant(30_000), await c.grant(30_000)];
  await c.acquire(p, l1.id);
  const waiting = pending(c.acquire(p, l2.id, 25_000));
  await waitFor(async () => (await c.inspect(p)).nodes.length === 2);
  return { c, p, l1, l2, waiting, node: (await c.inspect(p)).nodes[1] as string };
}

forEachTransport((t) => {
  test('lease › not kept alive past its TTL it ends: its ephemeral is deleted, then LEASE_EXPIRED', async () => {
    const c = await client(t);
    const lease = await c.grant(1000);
    const t0 = Date.now();
    const eph = await c.create(unique(t, 'exp'), { mode: 'ephemeral', leaseId: lease.id });
    await waitFor(async () => (await c.exists(eph)) === null);
    // Within the TTL (plus a generous second for a loaded machine): the bound docs promise.
    assert.ok(Date.now() - t0 <= 1000 + 2000, `deleted after ${Date.now() - t0} ms, TTL 1000`);
    const ended = await c.lease(lease.id);
    assert.deepEqual([ended.state, ended.reason], ['expired', 'keepalive_missed']);
    await rejectsWith(c.keepAlive(lease.id), 'LEASE_EXPIRED');
    await rejectsWith(c.create(`${eph}-2`, { mode: 'ephemeral', leaseId: lease.id }), 'LEASE_EXPIRED');
  });

  test('lease › someone else deleting a node it owns ends it as lost: LEASE_LOST, the rest of what it owned deleted', async () => {
    const c = await client(t);
    const p = unique(t, 'lost');
    const lease = await c.grant(30_000);
    const eph = await c.create(p, { mode: 'ephemeral', leaseId: lease.id });
    const hold = await c.acquire(`${p}-lock`, lease.id);
    await c.delete(hold.node); // an operator's delete (zkCli, Curator's forceRelease), not the lease's
    await waitFor(async () => (await c.lease(lease.id)).state === 'lost');
    assert.equal((await c.lease(lease.id)).reason, 'node_deleted');
    await rejectsWith(c.keepAlive(lease.id), 'LEASE_LOST');
    await rejectsWith(c.acquire(`${p}-lock2`, lease.id), 'LEASE_LOST');
    assert.equal(await c.exists(eph), null, 'its ephemeral went with the lease');
  });

  test('lock › a waiter whose queue node someone else deletes is told LEASE_LOST (node_deleted; CONTENDER_LOST is retired, docs/errors.md)', async () => {
    const { c, l1, l2, waiting, node } = await waiterBehindHolder(t, 'contender');
    await c.delete(node);
    assert.equal((await rejectsWith(waiting, 'LEASE_LOST')).details.reason ?? 'node_deleted', 'node_deleted');
    assert.equal((await c.lease(l2.id)).state, 'lost');
    await c.revoke(l1.id);
  });

  test('lock › a waiter whose own lease releases its queue node is answered at once: CANCELLED (released), the lease stays active', async () => {
    const { c, p, l1, l2, waiting, node } = await waiterBehindHolder(t, 'released');
    const t0 = Date.now();
    assert.deepEqual(await c.release(p, l2.id, node), { released: true, reason: 'deleted' });
    const e = await rejectsWith(waiting, 'CANCELLED');
    // The release itself ends the wait, not its 25 s deadline (a generous bound for a loaded machine).
    assert.ok(Date.now() - t0 < 15_000, `answered ${Date.now() - t0} ms after the release`);
    assert.equal(e.details.reason, 'released');
    const after = await c.lease(l2.id);
    assert.deepEqual([after.state, after.owned], ['active', []]);
    assert.equal((await c.inspect(p)).nodes.length, 1);
    await c.revoke(l1.id);
    await c.revoke(l2.id);
  });

  test('not found › something absent that is neither a node nor a lease is NOT_FOUND', async () => {
    await rejectsWith((await client(t)).unknown(), 'NOT_FOUND');
  });

  test('acl › a node whose ACL denies the tenant is NO_AUTH; a malformed ACL is INVALID_ACL (REST and gRPC: WebSocket has no ACL call)', async () => {
    const c = await client(t);
    const admin = await client('rest');
    const p = unique(t, 'acl');
    await admin.create(p, { data: 'secret' });
    await admin.setAcl?.(p, [{ scheme: 'world', id: 'anyone', perms: 'ca' }]); // no read, no write
    await rejectsWith(c.get(p), 'NO_AUTH');
    await rejectsWith(c.set(p, 'changed'), 'NO_AUTH');
    if (c.setAcl) await rejectsWith(c.setAcl(p, [{ scheme: 'ip', id: 'not-an-ip', perms: 'r' }]), 'INVALID_ACL');
    await admin.setAcl?.(p, [{ scheme: 'world', id: 'anyone', perms: 'cdrwa' }]);
    assert.equal((await c.get(p)).data, 'secret', 'refused calls changed nothing');
    await admin.delete(p);
  });

  test('size › a request over the transport limit is PAYLOAD_TOO_LARGE and creates nothing (gRPC: grpc-js refuses it itself; WebSocket: closed 1009)', async () => {
    const c = await client(t);
    const p = unique(t, 'big');
    const call = c.create(p, { data: 'x'.repeat(2000) }); // within maxDataBytes, over the 1 KiB request limits
    if (t === 'grpc') {
      // grpc-js answers RESOURCE_EXHAUSTED without zkgate-error-code: the gateway never saw it.
      await rejectsWith(call, 'GRPC_8');
    } else {
      const e = await rejectsWith(call, 'PAYLOAD_TOO_LARGE');
      // ws' maxPayload cuts the frame from its header and closes the socket (issue 17).
      if (t === 'ws') assert.equal(e.details.closeCode, 1009);
    }
    const next = t === 'ws' ? await client(t) : c; // a WebSocket client reconnects
    assert.equal(await next.exists(p), null);
    assert.equal((await next.get('/')).stat.numChildren >= 0, true, 'the connection is usable');
  });

  test('watch › a children watch on a node with more children than one event reports ends TOO_MANY_CHILDREN', async () => {
    const c = await client(t);
    const p = unique(t, 'kids');
    for (const n of ['a', 'b', 'c', 'd']) await c.create(`${p}/${n}`, { createParents: true });
    const e = await rejectsWith(c.subscribe(p, 'children'), 'TOO_MANY_CHILDREN');
    assert.equal(e.details.max ?? 3, 3);
    assert.equal((await c.children(p)).total, 4, 'the node and its children are untouched');
    await c.delete(p, { recursive: true });
  });

  test('cancel › a client giving up a lock wait is counted CANCELLED, never INTERNAL nor logged as an error, and its waiter node is deleted', async () => {
    const c = await client(t);
    const quitter = await client(t);
    const p = unique(t, 'cancel');
    const [l1, l2] = [await c.grant(30_000), await c.grant(30_000)];
    await c.acquire(p, l1.id);
    const [cancelledBefore, internalBefore, loggedBefore] = [await errorCount('CANCELLED', t), await errorCount('INTERNAL', t), errorLogs.length];
    const ac = new AbortController();
    const waiting = quitter.acquireUntil(p, l2.id, ac.signal);
    await waitFor(async () => (await c.inspect(p)).nodes.length === 2);
    ac.abort();
    await assert.rejects(waiting);
    await waitFor(async () => (await c.inspect(p)).nodes.length === 1);
    const quit = await c.lease(l2.id);
    assert.deepEqual([quit.state, quit.owned], ['active', []], 'giving up a wait ends the wait, not the lease');
    await waitFor(async () => (await errorCount('CANCELLED', t)) === cancelledBefore + 1);
    assert.equal(await errorCount('INTERNAL', t), internalBefore);
    assert.deepEqual(errorLogs.slice(loggedBefore), [], 'an expected outcome is not logged as an error');
    await c.revoke(l1.id);
    await c.revoke(l2.id);
  });
});

describe('rest only', () => {
  test('media type › a body that is neither JSON nor octet-stream is UNSUPPORTED_MEDIA_TYPE (gRPC and WebSocket frame their own messages)', async () => {
    const p = unique('rest', 'media');
    const res = await fetch(`http://127.0.0.1:${env.gw.httpPort}/v1/nodes${p}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEYS.admin}`, 'content-type': 'text/plain' },
      body: 'x',
    });
    assert.equal(res.status, 415);
    assert.equal(((await res.json()) as { code: string }).code, 'UNSUPPORTED_MEDIA_TYPE');
    assert.equal(await (await client('rest')).exists(p), null);
  });

  test('method › a method a URL does not take is METHOD_NOT_ALLOWED with Allow (gRPC and WebSocket have no URLs: an unknown method there is UNIMPLEMENTED / INVALID_ARGUMENT)', async () => {
    const res = await fetch(`http://127.0.0.1:${env.gw.httpPort}/v1/leases`, { method: 'PUT', headers: { authorization: `Bearer ${KEYS.admin}` } });
    assert.equal(res.status, 405);
    assert.equal(res.headers.get('allow'), 'GET, POST');
    assert.equal(((await res.json()) as { code: string }).code, 'METHOD_NOT_ALLOWED');
  });
});
