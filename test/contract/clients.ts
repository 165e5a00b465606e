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
import { ERROR_TABLE } from '../../src/api/error-table.js';

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

  /**
   * A failure as the transport signalled it: the transport's own status (`http` status, `grpc`
   * status code, `ws` close code) must be the one src/api/error-table.ts gives the code, so
   * every code the suite asserts also proves its mapping on that transport (no per-transport
   * status test needed).
   */
  static mapped(kind: 'http' | 'grpc' | 'ws', status: number, code: string, details: Readonly<Record<string, unknown>>, message: string): CallError {
    const row = (ERROR_TABLE as Readonly<Record<string, { http: number; grpc: number; ws: number }>>)[code];
    if (row && row[kind] !== status) {
      throw new Error(`${code} answered with ${kind} status ${status}, but src/api/error-table.ts maps it to ${row[kind]} (${message})`);
    }
    return new CallError(code, details, message);
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
  /** Why it is in its state (`granted`, `keepalive_missed`, `session_expired`, `node_deleted`…). */
  readonly reason?: string;
  readonly owned: readonly { path: string; kind: string }[];
}
export interface CreateOpts {
  readonly data?: string;
  readonly mode?: string;
  readonly leaseId?: string;
  readonly createParents?: boolean;
  /** For the TTL modes, ms. */
  readonly ttlMs?: number;
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
  /** Stops reading from the connection (the transport's flow control pushes back), until `resume()`. */
  pause?(): void;
  resume?(): void;
}
export interface AclEntry {
  readonly scheme: string;
  readonly id: string;
  readonly perms: string;
}
export type StreamKind = 'data' | 'children';

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
  /**
   * A pushed subscription on a streaming connection (REST: its own SSE stream; gRPC: its own
   * Watch stream; WebSocket: a `subscribe` on this socket); resolves with the first event read
   * or rejects with the refusal (LIMIT_EXCEEDED, PERMISSION_DENIED, TOO_MANY_CHILDREN…).
   */
  subscribe(path: string, kind: StreamKind): Promise<WatchView>;
  /**
   * Holds a subscription open without a streaming connection of its own where the transport
   * allows: REST a long-poll waiting for a change, gRPC and WebSocket a subscription on the
   * client's connection. Resolves once the gateway counts it (or rejects with the refusal); the
   * function returned lets it go.
   */
  hold(path: string): Promise<() => void>;
  /** Replaces a node's ACL; absent where the transport has no ACL call (WebSocket). */
  readonly setAcl?: (path: string, acl: readonly AclEntry[]) => Promise<void>;
  /**
   * A lock acquire that the client gives up when `signal` aborts, the way each transport gives
   * up: REST drops the HTTP request, gRPC cancels the call, WebSocket closes the socket.
   * Rejects (with whatever the client saw) once given up.
   */
  acquireUntil(path: string, leaseId: string, signal: AbortSignal): Promise<unknown>;
  /**
   * Asks for something that is not there and is neither a node nor a lease (NOT_FOUND): REST an
   * unknown URL; gRPC and WebSocket an unsubscribe of an id never subscribed.
   */
  unknown(): Promise<void>;
  close(): void;
}

/** Where the gateway listens, and the key (absent: no keys configured) a client presents. */
export interface Endpoint {
  readonly httpPort: number;
  readonly grpcPort: number;
  readonly apiKey?: string;
  /** The tenant to name (REST `Zkgate-Tenant`, gRPC `zkgate-tenant` metadata, WebSocket upgrade header). */
  readonly tenant?: string;
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
  const headers: Record<string, string> = {
    ...(ep.apiKey ? { authorization: `Bearer ${ep.apiKey}` } : {}),
    ...(ep.tenant ? { 'zkgate-tenant': ep.tenant } : {}),
  };
  const enc = (p: string): string => (p === '/' ? '' : p.split('/').map(encodeURIComponent).join('/'));
  const call = async (method: string, url: string, body?: unknown, query?: Record<string, string | number | boolean | undefined>): Promise<Obj> => {
    const q = query && (Object.fromEntries(Object.entries(query).filter(([, v]) => v !== undefined)) as Record<string, string | number | boolean>);
    const res: RestResponse = await rest.json(method, url, body, { headers, query: q });
    const b = (res.body ?? {}) as Obj;
    if (res.status >= 400) throw CallError.mapped('http', res.status, b.code as string, (b.details ?? {}) as Obj, (b.detail ?? b.title ?? '') as string);
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
          if (res.status >= 400) throw CallError.mapped('http', res.status, b.code as string, (b.details ?? {}) as Obj, '');
          return { type: first ? 'current' : 'data_changed', data: b.data as string };
        },
        close: () => ac.abort(),
      };
    },
    async unknown() {
      await call('GET', '/v1/no-such-thing');
    },
    async hold(path) {
      const index = (await rest.json('GET', `/v1/nodes${enc(path)}`, undefined, { headers })).headers.get('x-zkgate-index') ?? '0';
      const before = await quotaUsed(ep, 'subscriptions');
      const ac = new AbortController();
      const answer = fetch(`${rest.baseUrl}/v1/nodes${enc(path)}?wait=60000&index=${index}`, { headers, signal: ac.signal }).then(async (res) => {
        const b = (await res.json()) as Obj;
        throw CallError.mapped('http', res.status, (b.code as string) ?? `HTTP_${res.status}`, (b.details ?? {}) as Obj, (b.detail as string) ?? '');
      });
      // The long-poll answers only when it ends: it is held once the gateway counts it.
      const counted = (async () => {
        const deadline = Date.now() + 10_000;
        while ((await quotaUsed(ep, 'subscriptions')) <= before) {
          if (Date.now() > deadline) throw new Error('the long-poll was never counted as a subscription');
          await new Promise((r) => setTimeout(r, 50));
        }
      })();
      await Promise.race([answer, counted]);
      answer.catch(() => undefined);
      return () => ac.abort();
    },
    subscribe: (path, kind) => sse(`${rest.baseUrl}/v1/watch${enc(path)}?kind=${kind}`, headers),
    async setAcl(path, acl) {
      await call('PUT', `/v1/acl${enc(path)}`, { acl });
    },
    async acquireUntil(path, leaseId, signal) {
      // fetch, not the checked client: the answer is never read.
      const res = await fetch(`${rest.baseUrl}/v1/locks${enc(path)}`, {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json' },
        body: JSON.stringify({ leaseId, waitMs: 60_000 }),
        signal,
      });
      return res.json();
    },
    close() {},
  };
}

/** An SSE stream (GET /v1/watch/...): refused before it starts with a problem, later with an `error` event. */
async function sse(url: string, headers: Record<string, string>): Promise<WatchView> {
  const ac = new AbortController();
  const res = await fetch(url, { headers: { ...headers, accept: 'text/event-stream' }, signal: ac.signal });
  if (res.status !== 200) {
    const b = (await res.json()) as Obj;
    throw CallError.mapped('http', res.status, b.code as string, (b.details ?? {}) as Obj, b.detail as string);
  }
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let buf = '';
  const frame = async (): Promise<{ event: string; data: Obj }> => {
    for (;;) {
      const i = buf.indexOf('\n\n');
      if (i >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const event = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (event && data) return { event, data: JSON.parse(data) as Obj };
        continue; // a heartbeat comment
      }
      const { value, done } = await reader.read();
      if (done) throw new CallError('STREAM_ENDED', {}, 'the SSE stream ended');
      buf += decoder.decode(value, { stream: true });
    }
  };
  const view: WatchView = {
    async next() {
      const f = await frame();
      if (f.event === 'error') throw new CallError(f.data.code as string, (f.data.details ?? {}) as Obj, f.data.detail as string);
      return { type: f.event, data: f.data.stat ? (f.data.data as string) : undefined };
    },
    close: () => ac.abort(),
  };
  return firstEvent(view);
}

/** Reads the stream's first event now (so a refusal rejects), and hands it out again as the first `next()`. */
async function firstEvent(view: WatchView): Promise<WatchView> {
  let first: { type: string; data?: string } | undefined;
  try {
    first = await view.next();
  } catch (err) {
    view.close();
    throw err;
  }
  return {
    next: () => {
      const f = first;
      first = undefined;
      return f ? Promise.resolve(f) : view.next();
    },
    close: () => view.close(),
    pause: view.pause?.bind(view),
    resume: view.resume?.bind(view),
  };
}

// ---------------------------------------------------------------------------------------------
// gRPC
// ---------------------------------------------------------------------------------------------

function grpcError(err: unknown): CallError {
  const e = err as ServiceError;
  const raw = e.metadata?.get('zkgate-error-details')[0];
  const details = typeof raw === 'string' ? (JSON.parse(raw) as Obj) : {};
  const code = errorCode(err);
  return code ? CallError.mapped('grpc', e.code, code, details, e.details ?? e.message) : new CallError(`GRPC_${e.code}`, details, e.details ?? e.message);
}

function grpcContract(ep: Endpoint): ContractClient {
  const g: GrpcTestClient = grpcClient(ep.grpcPort, { apiKey: ep.apiKey });
  const u = async (service: Parameters<GrpcTestClient['unary']>[0], method: string, req: Obj): Promise<Obj> => {
    try {
      return await g.unary<Obj>(service, method, req, { tenant: ep.tenant });
    } catch (err) {
      throw grpcError(err);
    }
  };
  const text = (b: unknown): string => Buffer.from(b as Buffer).toString('utf8');
  /** The client's one Watch stream (a connection unit), opened on first use; its subscriptions by id. */
  let shared: { stream: ClientDuplexStream<Obj, Obj>; mux: Mux; seq: number } | undefined;
  const sharedStream = () => {
    if (!shared) {
      const stream = (g.services.Watch as unknown as Record<string, (md: unknown) => ClientDuplexStream<Obj, Obj>>).Watch!.call(g.services.Watch, g.metadata(ep.tenant));
      shared = { stream, mux: new Mux(stream), seq: 0 };
    }
    return shared;
  };
  const grpcSubscription = (path: string, kind: StreamKind): WatchView => {
    const s = sharedStream();
    const id = `s${++s.seq}`;
    s.stream.write({ subscribe: { id, path, kind: `WATCH_KIND_${kind.toUpperCase()}` } });
    return {
      async next() {
        const m = await s.mux.take((x) => x.id === id && x.type !== 'WATCH_RESPONSE_TYPE_SUBSCRIBED');
        if (m.type === 'WATCH_RESPONSE_TYPE_ERROR' || m.type === 'WATCH_RESPONSE_TYPE_LOST') throw new CallError(m.errorCode as string, {}, m.errorMessage as string);
        const ev = m.event as Obj;
        return { type: ev.type as string, data: ev.stat ? text(ev.data) : undefined };
      },
      close: () => s.stream.write({ unsubscribe: { id } }),
      pause: () => s.stream.pause(),
      resume: () => s.stream.resume(),
    };
  };
  const lease = (l: Obj): LeaseView => ({ ...(l as LeaseView), state: String(l.state).replace('LEASE_STATE_', '').toLowerCase(), ownerName: l.ownerName || undefined });
  return {
    transport: 'grpc',
    async create(path, o = {}) {
      const mode = o.mode ? `CREATE_MODE_${o.mode.toUpperCase()}` : undefined;
      const ttlMs = o.ttlMs === undefined ? undefined : { value: o.ttlMs };
      return (await u('Znodes', 'Create', { path, data: Buffer.from(o.data ?? ''), mode, ttlMs, leaseId: o.leaseId, createParents: o.createParents })).path as string;
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
      const stream = (g.services.Leases as unknown as Record<string, (md: unknown) => ClientDuplexStream<Obj, Obj>>).KeepAlive!.call(g.services.Leases, g.metadata(ep.tenant));
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
    watch: async (path) => grpcSubscription(path, 'data'),
    subscribe: (path, kind) => firstEvent(grpcSubscription(path, kind)),
    async hold(path) {
      const sub = await firstEvent(grpcSubscription(path, 'data'));
      return () => sub.close();
    },
    async unknown() {
      const stream = (g.services.Watch as unknown as Record<string, (md: unknown) => ClientDuplexStream<Obj, Obj>>).Watch!.call(g.services.Watch, g.metadata(ep.tenant));
      const r = readStream(stream);
      stream.write({ unsubscribe: { id: 'never' } });
      const m = await r.next();
      stream.cancel();
      if (m.type === 'WATCH_RESPONSE_TYPE_ERROR') throw new CallError(m.errorCode as string, {}, m.errorMessage as string);
    },
    async setAcl(path, acl) {
      await u('Znodes', 'SetAcl', { path, acl });
    },
    acquireUntil(path, leaseId, signal) {
      const locks = g.services.Locks as unknown as Record<string, (req: Obj, md: unknown, cb: (err: unknown, res: Obj) => void) => { cancel(): void }>;
      return new Promise((resolve, reject) => {
        const call = locks.Acquire!.call(g.services.Locks, { path, leaseId, waitMs: { value: 60_000 } }, g.metadata(ep.tenant), (err, res) => (err ? reject(grpcError(err)) : resolve(res)));
        signal.addEventListener('abort', () => call.cancel(), { once: true });
      });
    },
    close: () => {
      shared?.stream.cancel();
      g.close();
    },
  };
}

/**
 * The messages of one gRPC stream, taken by predicate without dropping the others (several
 * subscriptions share the stream); a stream that fails rejects every taker with its status.
 */
class Mux {
  private readonly inbox: Obj[] = [];
  private waiters: (() => void)[] = [];
  private failure: CallError | undefined;

  constructor(stream: ClientDuplexStream<Obj, Obj>) {
    const wake = (): void => {
      for (const w of this.waiters.splice(0)) w();
    };
    stream.on('data', (m: Obj) => {
      this.inbox.push(m);
      wake();
    });
    stream.on('error', (e: Error) => {
      this.failure = grpcError(e);
      wake();
    });
    stream.on('end', () => {
      this.failure ??= new CallError('STREAM_ENDED', {}, 'the Watch stream ended');
      wake();
    });
  }

  async take(pred: (m: Obj) => boolean, timeoutMs = 30_000): Promise<Obj> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.inbox.findIndex(pred);
      if (i >= 0) return this.inbox.splice(i, 1)[0] as Obj;
      if (this.failure) throw this.failure;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no matching message in ${timeoutMs} ms; saw ${JSON.stringify(this.inbox).slice(0, 1000)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }
}

/** The tenant's `zkgate_tenant_quota_used` of `kind`, from GET /metrics. */
export async function quotaUsed(ep: Pick<Endpoint, 'httpPort'>, kind: string, tenant = 'default'): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${ep.httpPort}/metrics`)).text();
  const m = new RegExp(`^zkgate_tenant_quota_used\\{tenant="${tenant}",kind="${kind}"\\} (\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

// ---------------------------------------------------------------------------------------------
// WebSocket
// ---------------------------------------------------------------------------------------------

async function wsContract(ep: Endpoint): Promise<ContractClient> {
  const headers: Record<string, string> = {
    ...(ep.apiKey ? { authorization: `Bearer ${ep.apiKey}` } : {}),
    ...(ep.tenant ? { 'zkgate-tenant': ep.tenant } : {}),
  };
  const ws = await WsTestClient.open(`ws://127.0.0.1:${ep.httpPort}/v1/ws`, headers).catch((err: Error & { code?: string; status?: number }) => {
    // A refused upgrade answers the REST problem (its HTTP status); its code is the call's error.
    throw err.code ? CallError.mapped('http', err.status ?? 0, err.code, {}, err.message) : err;
  });
  let seq = 0;
  // A message over wsMaxMessageBytes is cut from its frame header: the socket closes 1009 and the
  // call fails with the code the error table gives that close code; any other close is CLOSED.
  const closed = ws.closed.then((e): never => {
    throw new CallError(e.code === 1009 ? 'PAYLOAD_TOO_LARGE' : 'CLOSED', { closeCode: e.code }, `closed ${e.code} ${e.reason}`);
  });
  closed.catch(() => undefined);
  const c = async (method: string, params: Obj): Promise<Obj> => {
    const id = `c${++seq}`;
    ws.send({ op: 'call', id, method, params: Object.fromEntries(Object.entries(params).filter(([, v]) => v !== undefined)) });
    const m: Json = await Promise.race([ws.take((x) => (x.id === id && x.type === 'result') || (x.type === 'error' && x.id === id), 30_000), closed]);
    if (m.type === 'error') throw new CallError(m.code as string, (m.details ?? {}) as Obj, m.message as string);
    return m.result as Obj;
  };
  const subscribe = (path: string, kind: StreamKind): WatchView => {
    const id = `w${++seq}`;
    ws.send({ op: 'subscribe', id, path, kind });
    const ours = (m: Json): boolean => m.id === id && (m.type === 'event' || m.type === 'error');
    return {
      async next() {
        const m = await Promise.race([ws.take(ours, 30_000), closedWithCode]);
        if (m.type === 'error') throw new CallError(m.code as string, (m.details ?? {}) as Obj, m.message as string);
        return { type: m.event.type as string, data: m.event.stat ? (m.event.data as string) : undefined };
      },
      close: () => ws.send({ op: 'unsubscribe', id }),
      pause: () => ws.ws.pause(),
      resume: () => ws.ws.resume(),
    };
  };
  // A socket the gateway closes with an error's close code ends every subscription with that code.
  const closedWithCode = ws.closed.then(({ code, reason }) => {
    const m = /^([A-Z_]+): /.exec(reason);
    throw m ? CallError.mapped('ws', code, m[1] as string, { closeCode: code }, reason) : new CallError(`WS_CLOSE_${code}`, { closeCode: code }, reason);
  });
  closedWithCode.catch(() => undefined);
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
    watch: async (path) => subscribe(path, 'data'),
    subscribe: (path, kind) => firstEvent(subscribe(path, kind)),
    async hold(path) {
      const sub = await firstEvent(subscribe(path, 'data'));
      return () => sub.close();
    },
    async unknown() {
      ws.send({ op: 'unsubscribe', id: 'never' });
      const m = await ws.take((x) => x.id === 'never' && (x.type === 'error' || x.type === 'unsubscribed'));
      if (m.type === 'error') throw new CallError(m.code as string, (m.details ?? {}) as Obj, m.message as string);
    },
    acquireUntil(path, leaseId, signal) {
      // The WebSocket protocol has no per-call cancel: a client gives up by closing the socket.
      signal.addEventListener('abort', () => ws.close(), { once: true });
      return Promise.race([c('Locks.Acquire', { path, leaseId, waitMs: 60_000 }), ws.closed.then((e) => Promise.reject(new CallError('CLOSED', {}, `closed ${e.code}`)))]);
    },
    close: () => ws.close(),
  };
}
