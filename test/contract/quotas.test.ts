/**
 * Contract: per-tenant quotas beyond leases — held locks, streaming connections, subscriptions,
 * subscriptions per connection — and the slow-consumer cut behave the same over REST, gRPC and
 * WebSocket: refused with LIMIT_EXCEEDED naming the limit, nothing queued, the unit given back
 * when the thing is let go (read from the gateway's own zkgate_tenant_quota_used). The message
 * rate limit exists on WebSocket only: REST and gRPC calls are request/response, bounded by
 * HTTP/2 streams and the other quotas.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ContractClient, WatchView } from './clients.js';
import { contractGateway, forEachTransport, rejectsWith, unique, waitFor } from './harness.js';

const { client, used, env } = contractGateway(
  { maxLocksPerTenant: 2, maxConnectionsPerTenant: 2, maxSubscriptionsPerTenant: 3, wsMessagesPerSecond: 20 },
  { config: { watch: { maxSubscriptionsPerConnection: 2, queueSize: 4 } } },
);

/** Clients of one test, closed at its end (connections are a quota here). */
async function opened<T>(body: (open: typeof client) => Promise<T>): Promise<T> {
  const mine: ContractClient[] = [];
  try {
    return await body(async (...a) => {
      const c = await client(...a);
      mine.push(c);
      return c;
    });
  } finally {
    for (const c of mine) c.close();
    await waitFor(async () => (await used('connections')) === 0 && (await used('subscriptions')) === 0);
  }
}

forEachTransport((t) => {
  test('quota › locks: past maxLocksPerTenant an acquire is LIMIT_EXCEEDED naming it, and leaves no node; a release gives the unit back', async () => {
    await opened(async (open) => {
    const c = await open(t);
    const p = unique(t, 'locks');
    const lease = await c.grant(30_000);
    const a = await c.acquire(`${p}/a`, lease.id);
    await c.acquire(`${p}/b`, lease.id);
    const e = await rejectsWith(c.acquire(`${p}/c`, lease.id), 'LIMIT_EXCEEDED');
    assert.deepEqual(e.details, { limit: 'maxLocksPerTenant', max: 2 });
    assert.equal((await c.inspect(`${p}/c`)).first, null);
    await c.release(`${p}/a`, lease.id, a.node);
    await c.acquire(`${p}/c`, lease.id);
    await c.revoke(lease.id);
    await waitFor(async () => (await used('locks')) === 0);
    });
  });

  test('quota › connections: past maxConnectionsPerTenant a streaming connection is refused LIMIT_EXCEEDED; closing one gives the unit back', async () => {
    await opened(async (open) => {
      const p = unique(t, 'conns');
      await (await open('rest')).create(p); // a REST client holds no connection unit
      // One streaming connection each: REST an SSE stream, gRPC a Watch stream, WebSocket the socket.
      const connect = async (): Promise<() => void> => {
        const c = await open(t);
        const w = await c.subscribe(p, 'data');
        return () => {
          w.close();
          c.close();
        };
      };
      const conns = [await connect(), await connect()];
      assert.equal(await used('connections'), 2);
      assert.match((await rejectsWith(connect(), 'LIMIT_EXCEEDED')).message, /maxConnectionsPerTenant/);
      conns.shift()?.();
      await waitFor(async () => (await used('connections')) === 1);
      conns.push(await connect());
      for (const close of conns) close();
    });
  });

  test('quota › subscriptions: past maxSubscriptionsPerTenant a subscription is LIMIT_EXCEEDED naming it; letting one go gives the unit back', async () => {
    await opened(async (open) => {
      const p = unique(t, 'subs');
      const [c1, c2] = [await open(t), await open(t)];
      await c1.create(p);
      const held = [await c1.hold(p), await c1.hold(p), await c2.hold(p)];
      assert.equal(await used('subscriptions'), 3);
      // gRPC Watch errors carry the code and message only (no details field in watch.proto).
      assert.match((await rejectsWith(c2.hold(p), 'LIMIT_EXCEEDED')).message, /maxSubscriptionsPerTenant/);
      held.pop()?.();
      await waitFor(async () => (await used('subscriptions')) === 2);
      held.push(await c2.hold(p));
      for (const release of held) release();
    });
  });

  test('slow consumer › a subscriber that stops reading is cut with SLOW_CONSUMER; a new subscription starts from the current state', async () => {
    await opened(async (open) => {
      const c = await open(t);
      const p = unique(t, 'slow');
      await c.create(p);
      const w = await c.subscribe(p, 'data');
      assert.equal((await w.next()).type, 'current');
      w.pause?.(); // flow control pushes back; the gateway's queue for it holds 4 events
      // Until the socket buffers on both sides are full and the queue overflows (loopback buffers
      // take megabytes); the writer is REST for WebSocket, whose message rate is limited here.
      const blob = 'x'.repeat(200_000);
      const writer = await open(t === 'ws' ? 'rest' : t);
      const cuts = (): number => env.gw.gateway.watches.stats().reduce((n, s) => n + s.slowConsumers, 0);
      const before = cuts();
      let last = 0;
      for (; last < 200 && cuts() === before; last++) await writer.set(p, `${String(last).padStart(3, '0')}${blob}`);
      assert.ok(cuts() > before, 'the gateway cut the subscriber');
      w.resume?.();
      await assert.rejects(async () => {
        for (;;) await w.next();
      }, (e: Error & { code?: string }) => e.code === 'SLOW_CONSUMER');
      const again = await (await open(t)).subscribe(p, 'data');
      assert.equal((await again.next()).data?.slice(0, 3), String(last - 1).padStart(3, '0'));
      again.close();
    });
  });
});

describe('subscriptions per connection (gRPC Watch streams and WebSockets carry many)', () => {
  for (const t of ['grpc', 'ws'] as const) {
    test(`${t} › past watch.maxSubscriptionsPerConnection a subscribe is LIMIT_EXCEEDED naming it; the connection stays usable`, async () => {
      await opened(async (open) => {
        const c = await open(t);
        const p = unique(t, 'perconn');
        await c.create(p);
        await c.hold(p);
        await c.hold(p);
        assert.match((await rejectsWith(c.hold(p), 'LIMIT_EXCEEDED')).message, /watch\.maxSubscriptionsPerConnection/);
        assert.equal((await c.get(p)).data, '');
      });
    });
  }
});

describe('rate (WebSocket only)', () => {
  test('ws › a client sending faster than limits.wsMessagesPerSecond is closed with 4429 LIMIT_EXCEEDED', async () => {
    await opened(async (open) => {
      const c = await open('ws');
      const p = unique('ws', 'rate');
      const w = await c.subscribe('/', 'data');
      // 60 calls at once, the bucket holds 20: the socket is cut and every subscription with it.
      for (let i = 0; i < 60; i++) void c.exists(p).catch(() => undefined);
      const e = await rejectsWith((async () => {
        for (;;) await w.next();
      })(), 'LIMIT_EXCEEDED');
      assert.equal(e.details.closeCode, 4429);
    });
  });
});
