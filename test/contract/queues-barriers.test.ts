/**
 * Contract: the queue (put, peek/length, take at most once, claim/ack/release) and the barriers
 * (simple: set, remove, wait; double: enter, leave, inspect) behave the same over REST, gRPC and
 * WebSocket — answers, error codes and the waits (a WebSocket take or enter is answered, pushed,
 * when it completes).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ServiceError } from '@grpc/grpc-js';
import { restClient } from '../support/openapi.js';
import { errorCode, grpcClient } from '../support/grpc-client.js';
import { WsTestClient } from '../support/ws-client.js';
import { CallError, type Transport } from './clients.js';
import { KEYS, contractGateway, forEachTransport, rejectsWith, unique, type KeyName } from './harness.js';

type Obj = Record<string, unknown>;
interface Item {
  item: string;
  data: string;
  mode?: string;
  fencingToken?: string;
}
interface BarrierClient {
  set(path: string): Promise<Obj>;
  remove(path: string): Promise<Obj>;
  wait(path: string, waitMs: number): Promise<Obj>;
  enter(path: string, leaseId: string, members: number, waitMs?: number): Promise<{ node: string; members: number }>;
  leave(path: string, leaseId: string, node: string, waitMs?: number): Promise<Obj>;
  inspect(path: string): Promise<{ ready: boolean; members: string[] }>;
}
interface QueueClient {
  put(path: string, data: string): Promise<{ item: string }>;
  take(path: string, o?: { mode?: string; leaseId?: string; waitMs?: number }): Promise<Item>;
  ack(path: string, leaseId: string, item: string): Promise<{ done: boolean; reason: string }>;
  release(path: string, leaseId: string, item: string): Promise<{ done: boolean; reason: string }>;
  inspect(path: string): Promise<{ length: number; claimed: number; head: string | null }>;
}

const { env, client } = contractGateway();

/** The queue calls on one transport, mapped to one shape (and errors to CallError). */
async function queueClient(t: Transport, key: KeyName = 'admin'): Promise<QueueClient & { barriers: BarrierClient; close(): void }> {
  const apiKey = KEYS[key];
  if (t === 'rest') {
    const rest = restClient(`http://127.0.0.1:${env.gw.httpPort}`);
    const call = async (url: string, body?: unknown, method = 'POST'): Promise<Obj> => {
      const [route, path, query] = /^(\/v1\/[a-z-]+)(\/[^?]*)(\?.*)?$/.exec(url)?.slice(1) ?? [url, '', ''];
      const r = await rest.json(method, `${route}${(path ?? '').split('/').map(encodeURIComponent).join('/')}${query ?? ''}`, body, { headers: { authorization: `Bearer ${apiKey}` } });
      const b = (r.body ?? {}) as Obj;
      if (r.status >= 400) throw new CallError(b.code as string, (b.details ?? {}) as Obj, String(b.detail));
      return b;
    };
    return {
      put: async (p, data) => (await call(`/v1/queues${p}`, { data })) as { item: string },
      take: async (p, o = {}) => (await call(`/v1/queue-take${p}`, o)) as unknown as Item,
      ack: async (p, leaseId, item) => ((b) => ({ done: b.acked as boolean, reason: b.reason as string }))(await call(`/v1/queue-ack${p}`, { leaseId, item })),
      release: async (p, leaseId, item) => ((b) => ({ done: b.released as boolean, reason: b.reason as string }))(await call(`/v1/queue-release${p}`, { leaseId, item })),
      inspect: async (p) => ((b) => ({ length: b.length as number, claimed: b.claimed as number, head: ((b.head as Obj | null)?.data as string) ?? null }))(await call(`/v1/queues${p}`, undefined, 'GET')),
      barriers: {
        set: (p) => call(`/v1/barriers${p}`, undefined, 'PUT'),
        remove: (p) => call(`/v1/barriers${p}`, undefined, 'DELETE'),
        wait: (p, waitMs) => call(`/v1/barriers${p}?wait=${waitMs}`, undefined, 'GET'),
        enter: async (p, leaseId, members, waitMs) => (await call(`/v1/double-barriers${p}`, { leaseId, members, waitMs })) as { node: string; members: number },
        leave: (p, leaseId, node, waitMs) => call(`/v1/double-barriers${p}?${new URLSearchParams({ leaseId, node, waitMs: String(waitMs ?? 0) }).toString()}`, undefined, 'DELETE'),
        inspect: async (p) => ((b) => ({ ready: b.ready as boolean, members: (b.members as Obj[]).map((m) => m.node as string) }))(await call(`/v1/double-barriers${p}`, undefined, 'GET')),
      },
      close: () => undefined,
    };
  }
  if (t === 'grpc') {
    const g = grpcClient(env.gw.grpcPort, { apiKey });
    const u = async (method: string, req: Obj, service: 'Queues' | 'Barriers' = 'Queues'): Promise<Obj> => {
      try {
        return await g.unary<Obj>(service, method, req);
      } catch (err) {
        const raw = (err as ServiceError).metadata?.get('zkgate-error-details')[0];
        throw new CallError(errorCode(err) ?? 'GRPC', typeof raw === 'string' ? (JSON.parse(raw) as Obj) : {}, (err as ServiceError).details);
      }
    };
    const text = (b: unknown): string => Buffer.from(b as Buffer).toString('utf8');
    return {
      put: async (path, data) => (await u('Put', { path, data: Buffer.from(data) })) as { item: string },
      take: async (path, o = {}) => {
        const mode = o.mode && `DELIVERY_MODE_${o.mode.toUpperCase()}`;
        const b = await u('Take', { path, mode, leaseId: o.leaseId, waitMs: o.waitMs === undefined ? undefined : { value: o.waitMs } });
        return { item: b.item as string, data: text(b.data), mode: String(b.mode).replace('DELIVERY_MODE_', '').toLowerCase(), fencingToken: (b.fencingToken as string) || undefined };
      },
      ack: async (path, leaseId, item) => ((b) => ({ done: b.done as boolean, reason: b.reason as string }))(await u('Ack', { path, leaseId, item })),
      release: async (path, leaseId, item) => ((b) => ({ done: b.done as boolean, reason: b.reason as string }))(await u('Release', { path, leaseId, item })),
      inspect: async (path) => ((b) => ({ length: b.length as number, claimed: b.claimed as number, head: b.head ? text((b.head as Obj).data) : null }))(await u('Inspect', { path })),
      barriers: {
        set: async (path) => ((b) => ({ barrierPath: b.barrierPath, set: b.set, created: b.created }))(await u('Set', { path }, 'Barriers')),
        remove: async (path) => ((b) => ({ barrierPath: b.barrierPath, set: b.set, removed: b.removed }))(await u('Remove', { path }, 'Barriers')),
        wait: async (path, waitMs) => ((b) => ({ barrierPath: b.barrierPath, set: b.set }))(await u('Wait', { path, waitMs: { value: waitMs } }, 'Barriers')),
        enter: async (path, leaseId, members, waitMs) => (await u('Enter', { path, leaseId, members, waitMs: { value: waitMs ?? 0 } }, 'Barriers')) as { node: string; members: number },
        leave: (path, leaseId, node, waitMs) => u('Leave', { path, leaseId, node, waitMs: { value: waitMs ?? 0 } }, 'Barriers'),
        inspect: async (path) => ((b) => ({ ready: b.ready as boolean, members: (b.members as Obj[]).map((m) => m.node as string) }))(await u('InspectDouble', { path }, 'Barriers')),
      },
      close: () => g.close(),
    };
  }
  const ws = await WsTestClient.open(`ws://127.0.0.1:${env.gw.httpPort}/v1/ws`, { authorization: `Bearer ${apiKey}` });
  let seq = 0;
  const c = async (method: string, params: Obj): Promise<Obj> => {
    const id = `q${++seq}`;
    ws.send({ op: 'call', id, method, params: Object.fromEntries(Object.entries(params).filter(([, v]) => v !== undefined)) });
    const m = await ws.take((x) => x.id === id && (x.type === 'result' || x.type === 'error'), 30_000);
    if (m.type === 'error') throw new CallError(m.code as string, (m.details ?? {}) as Obj, m.message as string);
    return m.result as Obj;
  };
  return {
    put: async (path, data) => (await c('Queues.Put', { path, data })) as { item: string },
    take: async (path, o = {}) => (await c('Queues.Take', { path, ...o })) as unknown as Item,
    ack: async (path, leaseId, item) => ((b) => ({ done: b.acked as boolean, reason: b.reason as string }))(await c('Queues.Ack', { path, leaseId, item })),
    release: async (path, leaseId, item) => ((b) => ({ done: b.released as boolean, reason: b.reason as string }))(await c('Queues.Release', { path, leaseId, item })),
    inspect: async (path) => ((b) => ({ length: b.length as number, claimed: b.claimed as number, head: ((b.head as Obj | null)?.data as string) ?? null }))(await c('Queues.Inspect', { path })),
    barriers: {
      set: (path) => c('Barriers.Set', { path }),
      remove: (path) => c('Barriers.Remove', { path }),
      wait: (path, waitMs) => c('Barriers.Wait', { path, waitMs }),
      enter: async (path, leaseId, members, waitMs) => (await c('Barriers.Enter', { path, leaseId, members, waitMs })) as { node: string; members: number },
      leave: (path, leaseId, node, waitMs) => c('Barriers.Leave', { path, leaseId, node, waitMs }),
      inspect: async (path) => ((b) => ({ ready: b.ready as boolean, members: (b.members as Obj[]).map((m) => m.node as string) }))(await c('Barriers.InspectDouble', { path })),
    },
    close: () => ws.close(),
  };
}

forEachTransport((t) => {
  test('queue › FIFO put and take; peek and length; claim, release, ack; an empty queue is QUEUE_EMPTY', async () => {
    const [c, q] = [await client(t), await queueClient(t)];
    try {
      const p = unique(t, 'queue');
      for (const d of ['a', 'b', 'c']) assert.match((await q.put(p, d)).item, /^qn-\d{10}$/);
      assert.deepEqual(await q.inspect(p), { length: 3, claimed: 0, head: 'a' });
      const first = await q.take(p);
      assert.deepEqual([first.mode, first.data], ['at_most_once', 'a']);
      const lease = await c.grant(30_000);
      const claimed = await q.take(p, { mode: 'claim', leaseId: lease.id });
      assert.deepEqual([claimed.mode, claimed.data], ['claim', 'b']);
      assert.deepEqual(await q.inspect(p), { length: 2, claimed: 1, head: 'c' });
      assert.deepEqual(await q.release(p, lease.id, claimed.item), { done: true, reason: 'released' });
      const again = await q.take(p, { mode: 'claim', leaseId: lease.id });
      assert.equal(again.item, claimed.item);
      assert.ok(BigInt(again.fencingToken as string) > BigInt(claimed.fencingToken as string));
      assert.deepEqual(await q.ack(p, lease.id, again.item), { done: true, reason: 'deleted' });
      assert.deepEqual(await q.ack(p, lease.id, again.item), { done: false, reason: 'not_owned' });
      assert.equal((await q.take(p, { waitMs: 0 })).data, 'c');
      const empty = await rejectsWith(q.take(p, { waitMs: 100 }), 'QUEUE_EMPTY');
      assert.equal(empty.details.waitMs, 100);
      await c.revoke(lease.id);
    } finally {
      q.close();
    }
  });

  test('queue › a waiting take is answered when an item arrives; a claimer whose lease is revoked gives its item back', async () => {
    const [c, q] = [await client(t), await queueClient(t)];
    try {
      const p = unique(t, 'wait');
      const waiting = q.take(p, { waitMs: 20_000 });
      await new Promise((r) => setTimeout(r, 200));
      await q.put(p, 'pushed');
      assert.equal((await waiting).data, 'pushed');
      await q.put(p, 'again');
      const lease = await c.grant(30_000);
      const held = await q.take(p, { mode: 'claim', leaseId: lease.id });
      await c.revoke(lease.id);
      await rejectsWith(q.ack(p, lease.id, held.item), 'LEASE_REVOKED');
      assert.deepEqual(await q.inspect(p), { length: 1, claimed: 0, head: 'again' });
    } finally {
      q.close();
    }
  });

  test('queue › bad input is INVALID_ARGUMENT / INVALID_PATH and changes nothing; a read key may peek but not put', async () => {
    const [c, q, reader] = [await client(t), await queueClient(t), await queueClient(t, 'read')];
    try {
      const p = unique(t, 'bad');
      const lease = await c.grant(30_000);
      assert.equal((await rejectsWith(q.take(p, { mode: 'claim' }), 'INVALID_ARGUMENT')).details.field, 'leaseId');
      assert.equal((await rejectsWith(q.take(p, { leaseId: lease.id }), 'INVALID_ARGUMENT')).details.field, 'leaseId');
      assert.equal((await rejectsWith(q.take(p, { waitMs: -5 }), 'INVALID_ARGUMENT')).details.field, 'waitMs');
      await rejectsWith(q.ack(p, lease.id, 'not-an-item'), 'INVALID_ARGUMENT');
      await rejectsWith(q.put(`${p}/bad\u0001`, 'x'), 'INVALID_PATH');
      await rejectsWith(reader.put(p, 'x'), 'PERMISSION_DENIED');
      assert.deepEqual(await reader.inspect(p), { length: 0, claimed: 0, head: null });
      assert.equal(await c.exists(p), null, 'nothing was created');
      await c.revoke(lease.id);
    } finally {
      q.close();
      reader.close();
    }
  });

  test('barrier › a simple barrier holds waiters until removed; set and remove are idempotent; a short wait is BARRIER_TIMEOUT', async () => {
    const q = await queueClient(t);
    try {
      const p = unique(t, 'gate');
      assert.deepEqual(await q.barriers.set(p), { barrierPath: p, set: true, created: true });
      assert.deepEqual(await q.barriers.set(p), { barrierPath: p, set: true, created: false });
      assert.equal((await rejectsWith(q.barriers.wait(p, 100), 'BARRIER_TIMEOUT')).details.waitMs, 100);
      const waiting = q.barriers.wait(p, 20_000);
      await new Promise((r) => setTimeout(r, 200));
      assert.deepEqual(await q.barriers.remove(p), { barrierPath: p, set: false, removed: true });
      assert.deepEqual(await waiting, { barrierPath: p, set: false });
      assert.deepEqual(await q.barriers.remove(p), { barrierPath: p, set: false, removed: false });
    } finally {
      q.close();
    }
  });

  test('barrier › a double barrier of two members: both enter together, both leave together; NOT_MEMBER and bad members refused', async () => {
    const [c, q] = [await client(t), await queueClient(t)];
    try {
      const p = unique(t, 'double');
      const [a, b] = [await c.grant(30_000), await c.grant(30_000)];
      await rejectsWith(q.barriers.enter(p, a.id, 0), 'INVALID_ARGUMENT');
      const first = q.barriers.enter(p, a.id, 2, 20_000);
      await waitFor(async () => (await q.barriers.inspect(p)).members.length === 1);
      assert.equal((await q.barriers.inspect(p)).ready, false);
      const second = await q.barriers.enter(p, b.id, 2, 20_000);
      const one = await first;
      assert.deepEqual([one.members, second.members], [2, 2]);
      const seen = await q.barriers.inspect(p);
      assert.deepEqual([seen.ready, [...seen.members].sort()], [true, [one.node, second.node].sort()]);
      await rejectsWith(q.barriers.leave(p, b.id, one.node), 'NOT_MEMBER');
      const leaving = q.barriers.leave(p, a.id, one.node, 20_000);
      await waitFor(async () => (await q.barriers.inspect(p)).members.length === 1);
      assert.equal((await q.barriers.leave(p, b.id, second.node, 20_000)).left, true);
      assert.equal((await leaving).left, true);
      assert.deepEqual(await q.barriers.inspect(p), { ready: false, members: [] });
      await c.revoke(a.id);
      await c.revoke(b.id);
    } finally {
      q.close();
    }
  });
});

async function waitFor(check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail('condition not reached');
}
