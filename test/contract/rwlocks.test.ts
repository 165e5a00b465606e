/**
 * Contract: read-write locks behave the same over REST, gRPC and WebSocket — readers share, a
 * writer's try misses while they hold, inspect, fenced release, a bad mode refused, nothing created.
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

/** The read-write lock calls on one transport, answers in the REST JSON shape. */
interface RwClient {
  acquire(path: string, leaseId: string, mode: string | undefined, waitMs?: number): Promise<{ mode: string; node: string; fencingToken: string }>;
  release(path: string, leaseId: string, node: string): Promise<{ released: boolean; reason: string }>;
  inspect(path: string): Promise<{ writer: string | null; readers: string[]; modes: string[] }>;
  close(): void;
}

async function rwClient(t: Transport, httpPort: number, grpcPort: number): Promise<RwClient> {
  const apiKey = KEYS.admin;
  const view = (b: Obj, node: (c: Obj) => Obj, mode: (c: Obj) => string) => ({
    writer: b.writer ? (node(b.writer).node as string) : null,
    readers: (b.readers as Obj[]).map((c) => node(c).node as string),
    modes: (b.queue as Obj[]).map(mode),
  });
  if (t === 'rest') {
    const rest = restClient(`http://127.0.0.1:${httpPort}`);
    const call = async (method: string, path: string, body?: Obj, query?: Obj): Promise<Obj> => {
      const res = await rest.json(method, `/v1/rwlocks${path.split('/').map(encodeURIComponent).join('/')}`, body, { headers: { authorization: `Bearer ${apiKey}` }, query });
      const b = (res.body ?? {}) as Obj;
      if (res.status >= 400) throw new CallError(b.code, b.details ?? {}, b.detail ?? '');
      return b;
    };
    return {
      acquire: async (path, leaseId, mode, waitMs) => (await call('POST', path, { leaseId, mode, waitMs })) as never,
      release: async (path, leaseId, node) => (await call('DELETE', path, undefined, { leaseId, node })) as never,
      inspect: async (path) => view(await call('GET', path), (c) => c, (c) => c.mode),
      close: () => undefined,
    };
  }
  if (t === 'grpc') {
    const g = grpcClient(grpcPort, { apiKey });
    const u = async (method: string, req: Obj): Promise<Obj> => {
      try {
        return await g.unary<Obj>('ReadWriteLocks', method, req);
      } catch (err) {
        const raw = (err as ServiceError).metadata?.get('zkgate-error-details')[0];
        throw new CallError(errorCode(err) ?? 'UNKNOWN', typeof raw === 'string' ? (JSON.parse(raw) as Obj) : {}, (err as ServiceError).details);
      }
    };
    const mode = (m: string): string => (m === 'RW_LOCK_MODE_UNSPECIFIED' ? 'other' : m.replace('RW_LOCK_MODE_', '').toLowerCase());
    return {
      acquire: async (path, leaseId, m, waitMs) => {
        const r = await u('Acquire', { path, leaseId, mode: m === undefined ? 'RW_LOCK_MODE_UNSPECIFIED' : `RW_LOCK_MODE_${m.toUpperCase()}`, waitMs: { value: waitMs ?? 0 } });
        return { ...r, mode: mode(r.mode) } as never;
      },
      release: async (path, leaseId, node) => (await u('Release', { path, leaseId, node })) as never,
      inspect: async (path) => view(await u('Inspect', { path }), (c) => c.contender, (c) => mode(c.mode)),
      close: () => g.close(),
    };
  }
  const ws = await WsTestClient.open(`ws://127.0.0.1:${httpPort}/v1/ws`, { authorization: `Bearer ${apiKey}` });
  let seq = 0;
  const c = async (method: string, params: Obj): Promise<Obj> => {
    const id = `r${++seq}`;
    ws.send({ op: 'call', id, method, params: Object.fromEntries(Object.entries(params).filter(([, v]) => v !== undefined)) });
    const m: Json = await ws.take((x) => x.id === id && (x.type === 'result' || x.type === 'error'), 30_000);
    if (m.type === 'error') throw new CallError(m.code as string, (m.details ?? {}) as Obj, m.message as string);
    return m.result as Obj;
  };
  return {
    acquire: async (path, leaseId, mode, waitMs) => (await c('ReadWriteLocks.Acquire', { path, leaseId, mode, waitMs })) as never,
    release: async (path, leaseId, node) => (await c('ReadWriteLocks.Release', { path, leaseId, node })) as never,
    inspect: async (path) => view(await c('ReadWriteLocks.Inspect', { path }), (x) => x, (x) => x.mode),
    close: () => ws.close(),
  };
}

const { env, client } = contractGateway();

forEachTransport((t) => {
  test('rwlock › readers share, a writer is refused while they hold and then holds alone with a higher token; release fenced; bad mode refused', async () => {
    const c = await client(t);
    const rw = await rwClient(t, env.gw.httpPort, env.gw.grpcPort);
    try {
      const p = unique(t, 'rw');
      const [l1, l2, l3] = [await c.grant(30_000), await c.grant(30_000), await c.grant(30_000)];
      const r1 = await rw.acquire(p, l1.id, 'read');
      const r2 = await rw.acquire(p, l2.id, 'read');
      assert.deepEqual([r1.mode, r2.mode], ['read', 'read']);
      assert.match(r1.node, new RegExp(`^${p}/_c_[0-9a-f-]{36}-__READ__\\d{10}$`));
      const miss = await rejectsWith(rw.acquire(p, l3.id, 'write'), 'LOCK_NOT_ACQUIRED');
      assert.equal(miss.details.holderMode, 'read');
      assert.deepEqual(await rw.inspect(p), { writer: null, readers: [r1.node, r2.node], modes: ['read', 'read'] }, 'the miss left nothing');
      assert.deepEqual(await rw.release(p, l3.id, r1.node).then((r) => [r.released, r.reason]), [false, 'not_owned']);
      await rw.release(p, l1.id, r1.node);
      await rw.release(p, l2.id, r2.node);
      const w = await rw.acquire(p, l3.id, 'write');
      assert.match(w.node, /-__WRIT__\d{10}$/);
      assert.ok(BigInt(w.fencingToken) > BigInt(r2.fencingToken));
      assert.deepEqual(await rw.inspect(p), { writer: w.node, readers: [], modes: ['write'] });
      await rejectsWith(rw.acquire(p, l1.id, 'read'), 'LOCK_NOT_ACQUIRED');
      assert.equal((await rejectsWith(rw.acquire(p, l1.id, undefined), 'INVALID_ARGUMENT')).details.field, 'mode');
      assert.deepEqual((await rw.inspect(p)).modes, ['write'], 'refusals created nothing');
      await rejectsWith(rw.acquire(`${p}/bad\u0001`, l1.id, 'read'), 'INVALID_PATH');
      for (const l of [l1, l2, l3]) await c.revoke(l.id);
      assert.deepEqual((await rw.inspect(p)).modes, [], 'revoking the lease released the write lock');
    } finally {
      rw.close();
    }
  });
});
