/**
 * The contract suite's client interface and its three implementations (REST, gRPC, WebSocket):
 * one behaviour suite is written against `ContractClient` and run over every transport, as
 * Curator's TestInterProcessMutexBase runs one lock suite over `makeLock()`. Every failure
 * surfaces as a `CallError` carrying the stable error code and details, whatever the transport.
 * REST responses are checked against openapi.yaml on the way (test/support/openapi.ts).
 */
import type { ClientDuplexStream, ServiceError } from '@grpc/grpc-js';
import { restClient, type RestResponse } from '../support/openapi.js';
import { grpcClient, errorCode, type GrpcTestClient } from '../support/grpc-client.js';
import { readStream, type StreamReader } from '../support/grpc-streams.js';
import { WsTestClient, type Json } from '../support/ws-client.js';

export const TRANSPORTS = ['rest', 'grpc', 'ws'] as const;
export type Transport = (typeof TRANSPORTS)[number];

/** A failed call: the stable code (docs/errors.md) and the details, from any transport. */
export class CallError extends Error {
  constructor(
    readonly code: string,
    readonly details: Readonly<Record<string, unknown>>,
    message: string,
  ) {
    super(`${code}: ${message}`);
  }
}

export interface StatView {
  readonly version: number;
  readonly czxid: string;
  readonly ephemeralOwner: string;
  readonly numChildren: number;
}
export interface LeaseView {
  readonly id: string;
  readonly owner: string;
  readonly ownerName?: string;
  readonly ttlMs: number;
  readonly remainingMs: number;
  readonly state: string;
  readonly owned: readonly { path: string; kind: string }[];
}
export interface CreateOpts {
  readonly data?: string;
  readonly mode?: string;
  readonly leaseId?: string;
  readonly createParents?: boolean;
}
export interface QueueView {
  readonly path: string;
  /** Holder / leader node, null when free. */
  readonly first: string | null;
  readonly nodes: readonly string[];
  readonly tokens: readonly string[];
}
export interface WatchView {
  /** The next event: its type and the node's data (utf8) when it has any. */
  next(): Promise<{ type: string; data?: string }>;
  close(): void;
}

/** Everything the behaviour suite does, on one transport. */
export interface ContractClient {
  readonly transport: Transport;
  create(path: string, opts?: CreateOpts): Promise<string>;
  get(path: string): Promise<{ data: string; stat: StatView }>;
  exists(path: string): Promise<StatView | null>;
  set(path: string, data: string, version?: number): Promise<StatView>;
  delete(path: string, opts?: { version?: number; recursive?: boolean }): Promise<void>;
  children(path: string, opts?: { limit?: number; cursor?: string }): Promise<{ names: string[]; total: number; nextCursor?: string }>;
  tree(path: string, opts?: { limit?: number; depth?: number }): Promise<{ paths: string[]; truncated: boolean; limit: number }>;
  grant(ttlMs: number): Promise<LeaseView>;
  lease(id: string): Promise<LeaseView>;
  keepAlive(id: string): Promise<LeaseView>;
  revoke(id: string): Promise<LeaseView>;
  leases(): Promise<LeaseView[]>;
  acquire(path: string, leaseId: string, waitMs?: number): Promise<{ node: string; fencingToken: string }>;
  release(path: string, leaseId: string, node: string): Promise<{ released: boolean; reason: string }>;
  inspect(path: string): Promise<QueueView>;
  locks(path: string, limit?: number): Promise<{ queues: QueueView[]; truncated: boolean }>;
  campaign(path: string, leaseId: string, value: string, waitMs?: number): Promise<{ node: string; term: string }>;
  leader(path: string): Promise<{ node: string; value: string; term: string } | null>;
  proclaim(path: string, leaseId: string, node: string, value: string): Promise<{ term: string; value: string }>;
  resign(path: string, leaseId: string, node: string): Promise<{ resigned: boolean }>;
  elections(path: string): Promise<{ queues: QueueView[]; truncated: boolean }>;
  /** A data watch: `current` first, then every change. */
  watch(path: string): Promise<WatchView>;
  close(): void;
}

/** Where the gateway listens, and the key (absent: no keys configured) a client presents. */
export interface Endpoint {
  readonly httpPort: number;
  readonly grpcPort: number;
  readonly apiKey?: string;
}

export function makeClient(transport: Transport, ep: Endpoint): Promise<ContractClient> {
  if (transport === 'rest') return Promise.resolve(restContract(ep));
  if (transport === 'grpc') return Promise.resolve(grpcContract(ep));
  return wsContract(ep);
}

type Obj = Record<string, any>;

const queueOf = (path: string, holder: Obj | null, queue: Obj[]): QueueView => ({
  path,
  first: holder ? (holder.node as string) : null,
  nodes: queue.map((c) => c.node as string),
  tokens: queue.map((c) => c.fencingToken as string),
});
const lockQueues = (b: Obj) => ({ queues: (b.locks as Obj[]).map((l) => queueOf(l.lockPath, l.holder, l.queue)), truncated: b.truncated as boolean });
const electionQueues = (b: Obj) => ({
  queues: (b.elections as Obj[]).map((e) => queueOf(e.electionPath, e.leader && { node: e.leader.node }, e.candidates)),
  truncated: b.truncated as boolean,
});

// ---------------------------------------------------------------------------------------------
// REST
// ---------------------------------------------------------------------------------------------

function restContract(ep: Endpoint): ContractClient {
  const rest = restClient(`http://127.0.0.1:${ep.httpPort}`);
  const headers = ep.apiKey ? { authorization: `Bearer ${ep.apiKey}` } : undefined;
  const enc = (p: string): string => (p === '/' ? '' : p.split('/').map(encodeURIComponent).join('/'));
  const call = async (method: string, url: string, body?: unknown, query?: Record<string, string | number | boolean | undefined>): Promise<Obj> => {
    const q = query && (Object.fromEntries(Object.entries(query).filter(([, v]) => v !== undefined)) as Record<string, string | number | boolean>);
    const res: RestResponse = await rest.json(method, url, body, { headers, query: q });
    const b = (res.body ?? {}) as Obj;
    if (res.status >= 400) throw new CallError(b.code as string, (b.details ?? {}) as Obj, (b.detail ?? b.title ?? '') as string);
    return b;
  };
  return {
    transport: 'rest',
    async create(path, o = {}) {
      return (await call('POST', `/v1/nodes${enc(path)}`, { ...o })).path as string;
    },
    async get(path) {
      const b = await call('GET', `/v1/nodes${enc(path)}`);
      return { data: b.data as string, stat: b.stat as StatView };
    },
    async exists(path) {
      const res = await rest.request('HEAD', `/v1/nodes${enc(path)}`, { headers });
      if (res.status === 404) return null;
      if (res.status !== 200) throw new CallError(`HTTP_${res.status}`, {}, 'HEAD failed');
      return { version: Number(res.headers.get('x-zk-version')), czxid: res.headers.get('x-zk-czxid') as string, ephemeralOwner: res.headers.get('x-zk-ephemeral-owner') as string, numChildren: Number(res.headers.get('x-zk-num-children')) };
    },
    async set(path, data, version) {
      return (await call('PUT', `/v1/nodes${enc(path)}`, { data, version })).stat as StatView;
    },
    async delete(path, o = {}) {
      await call('DELETE', `/v1/nodes${enc(path)}`, undefined, o);
    },
    async children(path, o = {}) {
      const b = await call('GET', `/v1/children${enc(path)}`, undefined, o);
      return { names: (b.children as Obj[]).map((c) => c.name as string), total: b.total as number, nextCursor: b.nextCursor as string | undefined };
    },
    async tree(path, o = {}) {
      const b = await call('GET', `/v1/tree${enc(path)}`, undefined, o);
      return { paths: (b.nodes as Obj[]).map((n) => n.path as string), truncated: b.truncated as boolean, limit: b.limit as number };
    },
    grant: async (ttlMs) => (await call('POST', '/v1/leases', { ttlMs })) as LeaseView,
    lease: async (id) => (await call('GET', `/v1/leases/${encodeURIComponent(id)}`)) as LeaseView,
    keepAlive: async (id) => (await call('POST', `/v1/leases/${encodeURIComponent(id)}/keepalive`)) as LeaseView,
    revoke: async (id) => (await call('DELETE', `/v1/leases/${encodeURIComponent(id)}`)) as LeaseView,
    leases: async () => (await call('GET', '/v1/leases')).leases as LeaseView[],
    async acquire(path, leaseId, waitMs) {
      const b = await call('POST', `/v1/locks${enc(path)}`, { leaseId, waitMs });
      return { node: b.node as string, fencingToken: b.fencingToken as string };
    },
    async release(path, leaseId, node) {
      const b = await call('DELETE', `/v1/locks${enc(path)}`, undefined, { leaseId, node });
      return { released: b.released as boolean, reason: b.reason as string };
    },
    async inspect(path) {
      const b = await call('GET', `/v1/locks${enc(path)}`);
      return queueOf(b.lockPath, b.holder, b.queue);
    },
    locks: async (path, limit) => lockQueues(await call('GET', `/v1/recipes/locks${enc(path)}`, undefined, { limit })),
    async campaign(path, leaseId, value, waitMs) {
      const b = await call('POST', `/v1/elections${enc(path)}`, { leaseId, value, waitMs });
      return { node: b.node as string, term: b.term as string };
    },
    async leader(path) {
      const l = (await call('GET', `/v1/elections${enc(path)}`)).leader as Obj | null;
      return l && { node: l.node as string, value: l.value as string, term: l.term as string };
    },
    async proclaim(path, leaseId, node, value) {
      const b = await call('PUT', `/v1/elections${enc(path)}`, { leaseId, node, value });
      return { term: b.term as string, value: b.value as string };
    },
    async resign(path, leaseId, node) {
      return { resigned: (await call('DELETE', `/v1/elections${enc(path)}`, undefined, { leaseId, node })).resigned as boolean };
    },
    elections: async (path) => electionQueues(await call('GET', `/v1/recipes/elections${enc(path)}`)),
    async watch(path) {
      // Long-poll, the curl/PHP watch: the current state, then each answer after the last index.
      let index: string | undefined;
      const url = `/v1/nodes${enc(path)}`;
      const ac = new AbortController();
      return {
        async next() {
          const q = index === undefined ? undefined : { wait: 20_000, index };
          const res = await rest.json('GET', url, undefined, { headers, query: q });
          const b = (res.body ?? {}) as Obj;
          const first = index === undefined;
          index = res.headers.get('x-zkgate-index') ?? '0';
          if (res.status === 404) return { type: first ? 'current' : 'deleted' };
          if (res.status >= 400) throw new CallError(b.code as string, (b.details ?? {}) as Obj, '');
          return { type: first ? 'current' : 'data_changed', data: b.data as string };
        },
        close: () => ac.abort(),
      };
    },
    close() {},
  };
}

// ---------------------------------------------------------------------------------------------
// gRPC
// ---------------------------------------------------------------------------------------------

function grpcError(err: unknown): CallError {
  const e = err as ServiceError;
  const raw = e.metadata?.get('zkgate-error-details')[0];
  const details = typeof raw === 'string' ? (JSON.parse(raw) as Obj) : {};
  return new CallError(errorCode(err) ?? `GRPC_${e.code}`, details, e.details ?? e.message);
}

function grpcContract(ep: Endpoint): ContractClient {
  const g: GrpcTestClient = grpcClient(ep.grpcPort, { apiKey: ep.apiKey });
  const u = async (service: Parameters<GrpcTestClient['unary']>[0], method: string, req: Obj): Promise<Obj> => {
    try {
      return await g.unary<Obj>(service, method, req);
    } catch (err) {
      throw grpcError(err);
    }
  };
  const text = (b: unknown): string => Buffer.from(b as Buffer).toString('utf8');
  const lease = (l: Obj): LeaseView => ({ ...(l as LeaseView), state: String(l.state).replace('LEASE_STATE_', '').toLowerCase(), ownerName: l.ownerName || undefined });
  return {
    transport: 'grpc',
    async create(path, o = {}) {
      const mode = o.mode ? `CREATE_MODE_${o.mode.toUpperCase()}` : undefined;
      return (await u('Znodes', 'Create', { path, data: Buffer.from(o.data ?? ''), mode, leaseId: o.leaseId, createParents: o.createParents })).path as string;
    },
    async get(path) {
      const b = await u('Znodes', 'Get', { path });
      return { data: text(b.data), stat: b.stat as StatView };
    },
    async exists(path) {
      const b = await u('Znodes', 'Exists', { path });
      return b.exists ? (b.stat as StatView) : null;
    },
    async set(path, data, version) {
      return (await u('Znodes', 'Set', { path, data: Buffer.from(data), version: version === undefined ? undefined : { value: version } })).stat as StatView;
    },
    async delete(path, o = {}) {
      await u('Znodes', 'Delete', { path, version: o.version === undefined ? undefined : { value: o.version }, recursive: o.recursive });
    },
    async children(path, o = {}) {
      const b = await u('Znodes', 'Children', { path, ...o });
      return { names: (b.children as Obj[]).map((c) => c.name as string), total: b.total as number, nextCursor: (b.nextCursor as string) || undefined };
    },
    async tree(path, o = {}) {
      const b = await u('Znodes', 'Tree', { path, limit: o.limit, depth: o.depth === undefined ? undefined : { value: o.depth } });
      return { paths: (b.nodes as Obj[]).map((n) => n.path as string), truncated: b.truncated as boolean, limit: b.limit as number };
    },
    grant: async (ttlMs) => lease(await u('Leases', 'Grant', { ttlMs })),
    lease: async (id) => lease(await u('Leases', 'TimeToLive', { id })),
    async keepAlive(id) {
      const stream = (g.services.Leases as unknown as Record<string, (md: unknown) => ClientDuplexStream<Obj, Obj>>).KeepAlive!.call(g.services.Leases, g.metadata());
      const r: StreamReader = readStream(stream);
      stream.write({ id });
      const m = await r.next((x) => x.type === 'KEEPALIVE_TYPE_REFRESHED' || x.type === 'KEEPALIVE_TYPE_ERROR');
      stream.end();
      stream.cancel();
      if (m.type === 'KEEPALIVE_TYPE_ERROR') throw new CallError(m.errorCode as string, {}, m.errorMessage as string);
      return lease(m.lease as Obj);
    },
    revoke: async (id) => lease(await u('Leases', 'Revoke', { id })),
    leases: async () => ((await u('Leases', 'List', {})).leases as Obj[]).map(lease),
    async acquire(path, leaseId, waitMs) {
      const b = await u('Locks', 'Acquire', { path, leaseId, waitMs: { value: waitMs ?? 0 } });
      return { node: b.node as string, fencingToken: b.fencingToken as string };
    },
    async release(path, leaseId, node) {
      const b = await u('Locks', 'Release', { path, leaseId, node });
      return { released: b.released as boolean, reason: b.reason as string };
    },
    async inspect(path) {
      const b = await u('Locks', 'Inspect', { path });
      return queueOf(b.lockPath, b.holder, b.queue);
    },
    locks: async (path, limit) => lockQueues(await u('Locks', 'List', { path, limit })),
    async campaign(path, leaseId, value, waitMs) {
      const b = await u('Elections', 'Campaign', { path, leaseId, value: Buffer.from(value), waitMs: { value: waitMs ?? 0 } });
      return { node: b.node as string, term: b.term as string };
    },
    async leader(path) {
      const l = (await u('Elections', 'Leader', { path })).leader as Obj | null;
      return l ? { node: l.node as string, value: text(l.value), term: l.term as string } : null;
    },
    async proclaim(path, leaseId, node, value) {
      const b = await u('Elections', 'Proclaim', { path, leaseId, node, value: Buffer.from(value) });
      return { term: b.term as string, value: text(b.value) };
    },
    resign: async (path, leaseId, node) => ({ resigned: (await u('Elections', 'Resign', { path, leaseId, node })).resigned as boolean }),
    elections: async (path) => electionQueues(await u('Elections', 'List', { path })),
    async watch(path) {
      const stream = (g.services.Watch as unknown as Record<string, (md: unknown) => ClientDuplexStream<Obj, Obj>>).Watch!.call(g.services.Watch, g.metadata());
      const r = readStream(stream);
      stream.write({ subscribe: { id: 'w', path, kind: 'WATCH_KIND_DATA' } });
      const first = await r.next((m) => m.type !== 'WATCH_RESPONSE_TYPE_SUBSCRIBED');
      if (first.type === 'WATCH_RESPONSE_TYPE_ERROR') throw new CallError(first.errorCode as string, {}, first.errorMessage as string);
      let pending: Obj | undefined = first;
      return {
        async next() {
          const m = pending ?? (await r.next());
          pending = undefined;
          if (m.type === 'WATCH_RESPONSE_TYPE_ERROR') throw new CallError(m.errorCode as string, {}, m.errorMessage as string);
          const ev = m.event as Obj;
          return { type: ev.type as string, data: ev.stat ? text(ev.data) : undefined };
        },
        close: () => stream.cancel(),
      };
    },
    close: () => g.close(),
  };
}

// ---------------------------------------------------------------------------------------------
// WebSocket
// ---------------------------------------------------------------------------------------------

async function wsContract(ep: Endpoint): Promise<ContractClient> {
  const headers: Record<string, string> = ep.apiKey ? { authorization: `Bearer ${ep.apiKey}` } : {};
  const ws = await WsTestClient.open(`ws://127.0.0.1:${ep.httpPort}/v1/ws`, headers).catch((err: Error & { code?: string }) => {
    // A refused upgrade answers the REST problem; its code is the call's error.
    throw err.code ? new CallError(err.code, {}, err.message) : err;
  });
  let seq = 0;
  const c = async (method: string, params: Obj): Promise<Obj> => {
    const id = `c${++seq}`;
    ws.send({ op: 'call', id, method, params: Object.fromEntries(Object.entries(params).filter(([, v]) => v !== undefined)) });
    const m: Json = await ws.take((x) => x.id === id && (x.type === 'result' || x.type === 'error'), 30_000);
    if (m.type === 'error') throw new CallError(m.code as string, (m.details ?? {}) as Obj, m.message as string);
    return m.result as Obj;
  };
  return {
    transport: 'ws',
    create: async (path, o = {}) => (await c('Znodes.Create', { path, ...o })).path as string,
    async get(path) {
      const b = await c('Znodes.Get', { path });
      return { data: b.data as string, stat: b.stat as StatView };
    },
    async exists(path) {
      const b = await c('Znodes.Exists', { path });
      return b.exists ? (b.stat as StatView) : null;
    },
    set: async (path, data, version) => (await c('Znodes.Set', { path, data, version })).stat as StatView,
    async delete(path, o = {}) {
      await c('Znodes.Delete', { path, ...o });
    },
    async children(path, o = {}) {
      const b = await c('Znodes.Children', { path, ...o });
      return { names: (b.children as Obj[]).map((x) => x.name as string), total: b.total as number, nextCursor: b.nextCursor as string | undefined };
    },
    async tree(path, o = {}) {
      const b = await c('Znodes.Tree', { path, ...o });
      return { paths: (b.nodes as Obj[]).map((n) => n.path as string), truncated: b.truncated as boolean, limit: b.limit as number };
    },
    grant: async (ttlMs) => (await c('Leases.Grant', { ttlMs })) as LeaseView,
    lease: async (id) => (await c('Leases.TimeToLive', { id })) as LeaseView,
    keepAlive: async (id) => (await c('Leases.KeepAlive', { id })) as LeaseView,
    revoke: async (id) => (await c('Leases.Revoke', { id })) as LeaseView,
    leases: async () => (await c('Leases.List', {})).leases as LeaseView[],
    async acquire(path, leaseId, waitMs) {
      const b = await c('Locks.Acquire', { path, leaseId, waitMs });
      return { node: b.node as string, fencingToken: b.fencingToken as string };
    },
    async release(path, leaseId, node) {
      const b = await c('Locks.Release', { path, leaseId, node });
      return { released: b.released as boolean, reason: b.reason as string };
    },
    async inspect(path) {
      const b = await c('Locks.Inspect', { path });
      return queueOf(b.lockPath, b.holder, b.queue);
    },
    locks: async (path, limit) => lockQueues(await c('Locks.List', { path, limit })),
    async campaign(path, leaseId, value, waitMs) {
      const b = await c('Elections.Campaign', { path, leaseId, value, waitMs });
      return { node: b.node as string, term: b.term as string };
    },
    async leader(path) {
      const l = (await c('Elections.Leader', { path })).leader as Obj | null;
      return l && { node: l.node as string, value: l.value as string, term: l.term as string };
    },
    async proclaim(path, leaseId, node, value) {
      const b = await c('Elections.Proclaim', { path, leaseId, node, value });
      return { term: b.term as string, value: b.value as string };
    },
    resign: async (path, leaseId, node) => ({ resigned: (await c('Elections.Resign', { path, leaseId, node })).resigned as boolean }),
    elections: async (path) => electionQueues(await c('Elections.List', { path })),
    async watch(path) {
      const id = `w${++seq}`;
      ws.send({ op: 'subscribe', id, path, kind: 'data' });
      const ours = (m: Json): boolean => m.id === id && (m.type === 'event' || m.type === 'error');
      const first = await ws.take(ours);
      let pending: Json | undefined = first;
      return {
        async next() {
          const m = pending ?? (await ws.take(ours));
          pending = undefined;
          if (m.type === 'error') throw new CallError(m.code as string, (m.details ?? {}) as Obj, m.message as string);
          return { type: m.event.type as string, data: m.event.stat ? (m.event.data as string) : undefined };
        },
        close: () => ws.send({ op: 'unsubscribe', id }),
      };
    },
    close: () => ws.close(),
  };
}
