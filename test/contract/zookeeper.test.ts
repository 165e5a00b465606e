/**
 * Contract: what a client is told when ZooKeeper itself is the problem — a server without TTL
 * support (UNIMPLEMENTED), a session expired by ZooKeeper (the lease ends LEASE_LOST,
 * session_expired), a stopped server (UNAVAILABLE, and LEASE_UNCERTAIN for a lease asked to own
 * something), a connection lost under a read and a write (the read says so and claims no write;
 * the write's outcome is unknown) — is the same over REST, gRPC and WebSocket. Real conditions:
 * the session is expired with the harness's second-handle trick, the gateway's connection is cut
 * by a proxy (test/support/zk-proxy.ts) while the server is frozen (SIGSTOP), or the server is
 * stopped.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { expireSession } from '../support/zk-server.js';
import { cutWithin, type CutRequest, type ZkProxy } from '../support/zk-proxy.js';
import { TRANSPORTS, type ContractClient, type Transport } from './clients.js';
import { contractGateway, forEachTransport, rejectsWith, unique, waitFor } from './harness.js';

// TTL nodes need zookeeper.extendedTypesEnabled: off on this server (zoo.cfg keys become system properties).
// Through a proxy: the connection-lost case cuts the gateway's connection with it.
const { client, env } = contractGateway({}, { zk: { extraConfig: { extendedTypesEnabled: false } }, proxy: true });
const tenant = () => env.gw.gateway.tenants.get('default');
const proxy = (): ZkProxy => {
  assert.ok(env.proxy, 'the gateway reaches ZooKeeper through a proxy');
  return env.proxy;
};

forEachTransport((t) => {
  test('unimplemented › a TTL create on a server without TTL support is UNIMPLEMENTED and creates nothing', async () => {
    const c = await client(t);
    const p = unique(t, 'ttl');
    await rejectsWith(c.create(p, { mode: 'ttl', ttlMs: 60_000 }), 'UNIMPLEMENTED');
    assert.equal(await c.exists(p), null);
  });

  test('session expiry › ZooKeeper expiring the gateway session ends the lease LEASE_LOST (session_expired); its lock is free for others', async () => {
    const c = await client(t);
    const p = unique(t, 'expiry');
    const lease = await c.grant(60_000);
    const held = await c.acquire(p, lease.id);
    const old = tenant().session;
    const oldId = old.sessionId;
    await expireSession(env.zk.connectString, oldId, old.sessionPassword);
    await waitFor(async () => (await c.lease(lease.id).catch(() => null))?.state === 'lost', 20_000);
    assert.equal((await c.lease(lease.id)).reason, 'session_expired');
    await rejectsWith(c.keepAlive(lease.id), 'LEASE_LOST');
    await rejectsWith(c.release(p, lease.id, held.node), 'LEASE_LOST');
    await waitFor(() => tenant().ready && tenant().session.sessionId !== oldId, 20_000);
    const next = await c.grant(30_000);
    const taken = await c.acquire(p, next.id, 0);
    assert.ok(BigInt(taken.fencingToken) > BigInt(held.fencingToken), 'fencing tokens rise across the expiry');
    await c.revoke(next.id);
  });
});

describe('zookeeper connection lost', () => {
  forEachTransport((t) => {
    test('connection lost › a read cut by it is UNAVAILABLE saying a read (no write outcome); a write cut with it: outcome unknown', async () => {
      await waitFor(() => tenant().ready, 30_000);
      const c = await client(t);
      const p = unique(t, 'cut');
      await c.create(p);
      // Both sent while ZooKeeper is frozen, so the first one sent is not answered; the proxy cuts
      // the connection when the second is sent (it never reaches ZooKeeper), at once, not after the
      // client's own timeout (two thirds of the session). The read is of a node never read, which
      // no watch of the read cache can answer from memory.
      const readPath = `${p}/never-read`;
      const sent: CutRequest[] = [];
      const cutting = proxy().cutNextRequest((path, op) => {
        if (path !== readPath && path !== p) return false;
        if (sent.some((s) => s.path !== path)) return true; // the other one is out: cut at this one
        sent.push({ path, op });
        return false;
      });
      env.zk.pause();
      let read: Promise<unknown>;
      let write: Promise<unknown>;
      let settled: Promise<unknown>;
      try {
        read = c.get(readPath);
        write = c.set(p, 'maybe');
        settled = Promise.allSettled([read, write]);
        sent.push(await cutWithin(cutting, 'the read and the write'));
      } finally {
        env.zk.resume();
      }
      await settled;
      // The cut was under the read and the write, each sent once: a getData of the read's node, a
      // setData of the written one.
      assert.deepEqual(
        sent.map((s) => `${s.op} ${s.path}`).sort(),
        [`getData ${readPath}`, `setData ${p}`].sort(),
        JSON.stringify(sent),
      );
      await waitFor(() => tenant().ready, 30_000);
      const r = await rejectsWith(read, 'UNAVAILABLE');
      assert.equal(r.details.op, 'read', JSON.stringify(r.details));
      assert.equal(r.details.outcome, undefined, 'a read has no outcome to be unknown');
      assert.doesNotMatch(r.message, /write|outcome/);
      const w = await rejectsWith(write, 'UNAVAILABLE');
      assert.deepEqual([w.details.op, w.details.outcome], ['write', 'unknown'], JSON.stringify(w.details));
    });
  });
});

describe('zookeeper stopped', () => {
  const clients = new Map<Transport, { c: ContractClient; leaseId: string }>();
  before(async () => {
    for (const t of TRANSPORTS) {
      const c = await client(t);
      clients.set(t, { c, leaseId: (await c.grant(120_000)).id });
    }
    await env.zk.stop();
    await waitFor(() => !tenant().ready, 20_000);
  });
  after(async () => {
    await env.zk.start();
    await waitFor(() => tenant().ready, 30_000);
  });

  forEachTransport((t) => {
    test('zookeeper down › calls that need it are UNAVAILABLE (zkState); a lease is uncertain and LEASE_UNCERTAIN when asked to own something', async () => {
      const { c, leaseId } = clients.get(t) as { c: ContractClient; leaseId: string };
      const down = await rejectsWith(c.get('/'), 'UNAVAILABLE');
      assert.ok(typeof down.details.zkState === 'string' || down.details.outcome === 'unknown', JSON.stringify(down.details));
      await rejectsWith(c.create(unique(t, 'down')), 'UNAVAILABLE');
      await waitFor(async () => (await c.lease(leaseId)).state === 'uncertain', 20_000);
      await rejectsWith(c.acquire(unique(t, 'down-lock'), leaseId), 'LEASE_UNCERTAIN');
      await rejectsWith(c.create(unique(t, 'down-eph'), { mode: 'ephemeral', leaseId }), 'LEASE_UNCERTAIN');
      assert.equal((await c.keepAlive(leaseId)).state, 'uncertain', 'keepalives are still accepted meanwhile');
    });
  });
});
