/**
 * Contract: semaphores behave the same over REST, gRPC and WebSocket — acquire k of N, a try that
 * misses, inspect, release, and bad input refused with the same code and field, nothing created.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ServiceError } from '@grpc/grpc-js';
import { restClient } from '../support/openapi.js';
import { errorCode, grpcClient } from '../support/grpc-client.js';
import { WsTestClient, type Json } from '../support/ws-client.js';
import { CallError, type Transport } from './clients.js';
import { KEYS, contractGateway, forEachTransport, rejectsWith, unique } from './harness.js';

type Obj = Record<string, any>;

/** The semaphore calls on one transport, answers in the REST JSON shape. */
interface SemaphoreClient {
  acquire(path: string, p: Obj): Promise<{ maxPermits: number; permits: { node: string; fencingToken: string }[]; leaseState: string }>;
  release(path: string, leaseId: string, node?: string): Promise<{ released: boolean; reason: string; nodes: string[] }>;
  inspect(path: string, maxPermits?: number): Promise<{ maxPermits: number | null; holders: string[]; waiting: string[]; lockQueue: string[] }>;
  close(): void;
}

const names = (cs: Obj[]): string[] => cs.map((c) => c.node as string);

async function semaphoreClient(t: Transport, httpPort: number, grpcPort: number): Promise<SemaphoreClient> {
  const apiKey = KEYS.admin;
  if (t === 'rest') {
    const rest = restClient(`http://127.0.0.1:${httpPort}`);
    const call = async (method: string, path: string, body?: Obj, query?: Obj): Promise<Obj> => {
      const res = await rest.json(method, `/v1/semaphores${path.split('/').map(encodeURIComponent).join('/')}`, body, { headers: { authorization: `Bearer ${apiKey}` }, query });
      const b = (res.body ?? {}) as Obj;
      if (res.status >= 400) throw new CallError(b.code, b.details ?? {}, b.detail ?? '');
      return b;
    };
    return {
      acquire: async (path, p) => (await call('POST', path, p)) as never,
      release: async (path, leaseId, node) => (await call('DELETE', path, undefined, node ? { leaseId, node } : { leaseId })) as never,
      inspect: async (path, maxPermits) => {
        const b = await call('GET', path, undefined, maxPermits ? { maxPermits } : undefined);
        return { maxPermits: b.maxPermits, holders: names(b.holders), waiting: names(b.waiting), lockQueue: names(b.lockQueue) };
      },
      close: () => undefined,
    };
  }
  if (t === 'grpc') {
    const g = grpcClient(grpcPort, { apiKey });
    const u = async (method: string, req: Obj): Promise<Obj> => {
      try {
        return await g.unary<Obj>('Semaphores', method, req);
      } catch (err) {
        const raw = (err as ServiceError).metadata?.get('zkgate-error-details')[0];
        throw new CallError(errorCode(err) ?? 'UNKNOWN', typeof raw === 'string' ? (JSON.parse(raw) as Obj) : {}, (err as ServiceError).details);
      }
    };
    const wrap = (v: unknown): Obj | undefined => (v === undefined ? undefined : { value: v });
    return {
      acquire: async (path, p) => {
        const r = await u('Acquire', { path, leaseId: p.leaseId, permits: wrap(p.permits), maxPermits: wrap(p.maxPermits), countPath: p.countPath ?? '', waitMs: wrap(p.waitMs ?? 0) });
        return { ...r, leaseState: String(r.leaseState).replace('LEASE_STATE_', '').toLowerCase() } as never;
      },
      release: async (path, leaseId, node) => (await u('Release', { path, leaseId, node: node ?? '' })) as never,
      inspect: async (path, maxPermits) => {
        const r = await u('Inspect', { path, maxPermits: wrap(maxPermits) });
        return { maxPermits: r.maxPermits ? r.maxPermits.value : null, holders: names(r.holders), waiting: names(r.waiting), lockQueue: names(r.lockQueue) };
      },
      close: () => g.close(),
    };
  }
  const ws = await WsTestClient.open(`ws://127.0.0.1:${httpPort}/v1/ws`, { authorization: `Bearer ${apiKey}` });
  let seq = 0;
  const c = async (method: string, params: Obj): Promise<Obj> => {
    const id = `s${++seq}`;
    ws.send({ op: 'call', id, method, params: Object.fromEntries(Object.entries(params).filter(([, v]) => v !== undefined)) });
    const m: Json = await ws.take((x) => x.id === id && (x.type === 'result' || x.type === 'error'), 30_000);
    if (m.type === 'error') throw new CallError(m.code as string, (m.details ?? {}) as Obj, m.message as string);
    return m.result as Obj;
  };
  return {
    acquire: async (path, p) => (await c('Semaphores.Acquire', { path, ...p })) as never,
    release: async (path, leaseId, node) => (await c('Semaphores.Release', { path, leaseId, node })) as never,
    inspect: async (path, maxPermits) => {
      const b = await c('Semaphores.Inspect', { path, maxPermits });
      return { maxPermits: b.maxPermits, holders: names(b.holders), waiting: names(b.waiting), lockQueue: names(b.lockQueue) };
    },
    close: () => ws.close(),
  };
}

const { env, client } = contractGateway();

forEachTransport((t) => {
  test('semaphore › k of N held, a try that misses leaves nothing, inspect, release by node and all, idempotent', async () => {
    const c = await client(t);
    const s = await semaphoreClient(t, env.gw.httpPort, env.gw.grpcPort);
    try {
      const p = unique(t, 'sem');
      const [l1, l2] = [await c.grant(30_000), await c.grant(30_000)];
      const g1 = await s.acquire(p, { leaseId: l1.id, maxPermits: 3, permits: 2 });
      assert.deepEqual([g1.maxPermits, g1.permits.length, g1.leaseState], [3, 2, 'active']);
      for (const permit of g1.permits) assert.match(permit.node, new RegExp(`^${p}/leases/_c_[0-9a-f-]{36}-lease-\\d{10}$`));
      const miss = await rejectsWith(s.acquire(p, { leaseId: l2.id, maxPermits: 3, permits: 2 }), 'PERMITS_NOT_ACQUIRED');
      assert.deepEqual([miss.details.permits, miss.details.maxPermits, miss.details.holders], [2, 3, 2]);
      const seen = await s.inspect(p, 3);
      assert.deepEqual(seen, { maxPermits: 3, holders: g1.permits.map((x) => x.node), waiting: [], lockQueue: [] }, 'the miss left nothing');
      assert.deepEqual((await c.lease(l2.id)).owned, []);
      const one = await s.release(p, l1.id, g1.permits[0]!.node);
      assert.deepEqual([one.released, one.reason, one.nodes], [true, 'deleted', [g1.permits[0]!.node]]);
      const g2 = await s.acquire(p, { leaseId: l2.id, maxPermits: 3, permits: 2 });
      assert.ok(BigInt(g2.permits[0]!.fencingToken) > BigInt(g1.permits[1]!.fencingToken));
      assert.deepEqual((await s.release(p, l1.id, g2.permits[0]!.node)).reason, 'not_owned', 'another lease cannot release it');
      assert.deepEqual((await s.release(p, l2.id)).nodes.sort(), g2.permits.map((x) => x.node).sort());
      assert.deepEqual(await s.release(p, l2.id).then((r) => [r.released, r.reason]), [false, 'not_owned'], 'idempotent');
      await c.revoke(l1.id);
      assert.deepEqual((await s.inspect(p)).holders, [], 'revoking the lease returned its permit');
      await rejectsWith(s.release(p, l1.id), 'LEASE_REVOKED');
      await c.revoke(l2.id);
    } finally {
      s.close();
    }
  });

  test('semaphore › bad input: permits below 1 or above N, no N, a max not matching the shared count — INVALID_ARGUMENT naming the field, nothing created', async () => {
    const c = await client(t);
    const s = await semaphoreClient(t, env.gw.httpPort, env.gw.grpcPort);
    try {
      const p = unique(t, 'sem-bad');
      const countPath = `${unique(t, 'count')}/n`;
      const l = await c.grant(30_000);
      const field = async (params: Obj): Promise<unknown> => (await rejectsWith(s.acquire(p, { leaseId: l.id, ...params }), 'INVALID_ARGUMENT')).details.field;
      assert.equal(await field({ maxPermits: 2, permits: 0 }), 'permits');
      assert.equal(await field({ maxPermits: 2, permits: 3 }), 'permits');
      assert.equal(await field({}), 'maxPermits');
      assert.equal(await field({ maxPermits: -1 }), 'maxPermits');
      assert.equal(await field({ countPath }), 'countPath', 'no count to read and nothing to seed it with');
      assert.equal(await c.exists(countPath), null);
      await s.acquire(unique(t, 'seed'), { leaseId: l.id, countPath, maxPermits: 2 });
      const mismatch = await rejectsWith(s.acquire(p, { leaseId: l.id, countPath, maxPermits: 4 }), 'INVALID_ARGUMENT');
      assert.deepEqual([mismatch.details.field, mismatch.details.agreedMaxPermits], ['maxPermits', 2]);
      assert.equal(await c.exists(p), null, 'nothing was created at the semaphore path');
      await rejectsWith(s.acquire(`${p}/bad\u0001`, { leaseId: l.id, maxPermits: 1 }), 'INVALID_PATH');
      await rejectsWith(s.acquire(p, { leaseId: 'gw-nope.00', maxPermits: 1 }), 'LEASE_NOT_FOUND');
      await c.revoke(l.id);
    } finally {
      s.close();
    }
  });
});
