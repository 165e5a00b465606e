/** Prometheus metrics (prom-client): HTTP requests, ZooKeeper session state and watch-hub figures per tenant. */
import type { Request, RequestHandler, Response, NextFunction } from 'express';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ErrorCode, Gateway, ZkgateError } from '../core/index.js';

/** One registry per process; gateways created in tests share it. */
export const registry = new Registry();
// The event-loop delay monitor samples every eventLoopMonitoringPrecision ms with a timer of its
// own: prom-client's 10 ms woke an idle gateway 100 times a second (about 3 ms of CPU a second
// on the shared build machine, a quarter of an idle cluster instance's); 100 ms still sees any
// stall that matters and costs a tenth.
collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 100 });

const httpDuration = new Histogram({
  name: 'zkgate_http_request_duration_seconds',
  help: 'REST request latency by route template (openapi.yaml, or other), method and status',
  labelNames: ['route', 'method', 'status'] as const,
  buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5, 30],
  registers: [registry],
});

const sessionUp = new Gauge({
  name: 'zkgate_zk_session_connected',
  help: '1 when the tenant\'s ZooKeeper session is connected',
  labelNames: ['tenant'] as const,
  registers: [registry],
});

/** Errors answered, by stable code and transport. */
export const errorsTotal = new Counter({
  name: 'zkgate_errors_total',
  help: 'Errors answered, by code and transport',
  labelNames: ['code', 'transport'] as const,
  registers: [registry],
});

/** Requests refused by a limit, by the limit's name (`maxBodyBytes`, `maxLeasesPerTenant`…). */
const limitRejections = new Counter({
  name: 'zkgate_limit_rejections_total',
  help: 'Requests refused by a configured limit, by limit and transport',
  labelNames: ['limit', 'transport'] as const,
  registers: [registry],
});

/** Per-tenant quota use, read from core at scrape time. */
const quotaUsed = new Gauge({
  name: 'zkgate_tenant_quota_used',
  help: 'Leases, locks, subscriptions and streaming connections a tenant holds',
  labelNames: ['tenant', 'kind'] as const,
  registers: [registry],
});
const quotaElsewhere = new Gauge({
  name: 'zkgate_tenant_quota_used_elsewhere',
  help: 'Units of each per-tenant quota the tenant holds through the other instances of the cluster, as last published (0 alone)',
  labelNames: ['tenant', 'kind'] as const,
  registers: [registry],
});
const quotaMax = new Gauge({
  name: 'zkgate_tenant_quota_max',
  help: 'The configured maximum of each per-tenant quota',
  labelNames: ['tenant', 'kind'] as const,
  registers: [registry],
});

/** The limit an error reports when its details do not name it, for the rejection counter. */
const LIMIT_OF_CODE: Partial<Record<ErrorCode, string>> = {
  SUBTREE_TOO_LARGE: 'maxRecursiveDeleteNodes',
};

/**
 * Counts an error answered on `transport` (and, when a limit refused it, which limit: named by
 * `details.limit` when that is a name, else by `details.setting`, beside a `limit` in bytes).
 */
export function countError(error: ZkgateError, transport: 'rest' | 'grpc' | 'ws'): void {
  errorsTotal.inc({ code: error.code, transport });
  const { limit: named, setting } = error.details;
  const limit = typeof named === 'string' ? named : typeof setting === 'string' ? setting : LIMIT_OF_CODE[error.code];
  if (limit) limitRejections.inc({ limit, transport });
}

const watchZk = new Gauge({
  name: 'zkgate_watch_zk_watches',
  help: "ZooKeeper watches the gateway holds (the watch hub's: subscriptions, recipes, election observers, idle and let-go ones until they fire; and queue waiters' one-shot watches on their predecessors), by tenant and kind (data includes existence watches)",
  labelNames: ['tenant', 'kind'] as const,
  registers: [registry],
});
const watchSubscribers = new Gauge({
  name: 'zkgate_watch_subscribers',
  help: 'Open watch subscriptions (WebSocket, SSE, long-poll), by tenant and kind',
  labelNames: ['tenant', 'kind'] as const,
  registers: [registry],
});
const watchIdle = new Gauge({
  name: 'zkgate_watch_idle_watches',
  help: 'ZooKeeper watches kept without subscribers (bounded by watch.maxIdleWatches), by tenant',
  labelNames: ['tenant'] as const,
  registers: [registry],
});
// Cumulative figures kept by the hub (copied at scrape time, hence gauges).
const watchReads = new Gauge({
  name: 'zkgate_watch_zk_reads',
  help: 'ZooKeeper reads made by the watch hub (each re-arms a watch), by tenant',
  labelNames: ['tenant'] as const,
  registers: [registry],
});
const watchSlow = new Gauge({
  name: 'zkgate_watch_slow_consumers',
  help: 'Watch subscribers cut for falling behind, by tenant',
  labelNames: ['tenant'] as const,
  registers: [registry],
});
const watchResyncs = new Gauge({
  name: 'zkgate_watch_resyncs',
  help: 'Shared watches re-read after a reconnect or a new ZooKeeper session, by tenant',
  labelNames: ['tenant'] as const,
  registers: [registry],
});

const readCacheHits = new Gauge({
  name: 'zkgate_read_cache_hits',
  help: 'Node reads answered from the watch-fed read cache instead of ZooKeeper, by tenant',
  labelNames: ['tenant'] as const,
  registers: [registry],
});

const readCacheAdopted = new Gauge({
  name: 'zkgate_read_cache_adopted',
  help: 'Node reads that set a watch and kept the node in the read cache (read-through), by tenant',
  labelNames: ['tenant'] as const,
  registers: [registry],
});
const watchIdleBytes = new Gauge({
  name: 'zkgate_watch_idle_bytes',
  help: 'Bytes of node data held by watches kept without subscribers (bounded by watch.maxIdleBytes), by tenant',
  labelNames: ['tenant'] as const,
  registers: [registry],
});

const registryCacheHits = new Gauge({
  name: 'zkgate_registry_cache_hits',
  help: 'Service registry picks and listings answered from a followed instance set instead of ZooKeeper, by tenant',
  labelNames: ['tenant'] as const,
  registers: [registry],
});
const registryFollowed = new Gauge({
  name: 'zkgate_registry_followed_services',
  help: 'Services whose instance sets the registry follows for picks from memory (bounded by watch.maxCachedServices), by tenant',
  labelNames: ['tenant'] as const,
  registers: [registry],
});

/** Copies the watch hub's figures into the gauges. */
function updateWatchMetrics(gw: Gateway): void {
  for (const s of gw.watchStats()) {
    const tenant = s.tenant;
    for (const [kind, n] of Object.entries(s.zkWatches)) watchZk.set({ tenant, kind }, n);
    for (const [kind, n] of Object.entries(s.subscribers)) watchSubscribers.set({ tenant, kind }, n);
    watchIdle.set({ tenant }, s.idleWatches);
    watchReads.set({ tenant }, s.reads);
    watchSlow.set({ tenant }, s.slowConsumers);
    watchResyncs.set({ tenant }, s.resyncs);
    readCacheHits.set({ tenant }, s.cacheHits);
    readCacheAdopted.set({ tenant }, s.adopted);
    watchIdleBytes.set({ tenant }, s.idleBytes);
  }
  for (const s of gw.registryCacheStats()) {
    registryCacheHits.set({ tenant: s.tenant }, s.hits);
    registryFollowed.set({ tenant: s.tenant }, s.followed);
  }
}

// The cluster as this instance sees it (docs/cluster.md); absent when the instance runs alone.
const clusterInstances = new Gauge({
  name: 'zkgate_cluster_instances',
  help: 'Gateway instances registered in the cluster, as this instance sees them (itself included)',
  registers: [registry],
});
const clusterForwarded = new Gauge({
  name: 'zkgate_cluster_forwarded_calls',
  help: 'Calls naming a lease held by another instance, carried out there, by outcome (ok or error code); cumulative',
  labelNames: ['outcome'] as const,
  registers: [registry],
});
const clusterPlacements = new Gauge({
  name: 'zkgate_cluster_lease_placements',
  help: 'Lease grants received here, by where they were carried out: local, home (the tenant\'s home instance, another one), fallback (the home did not answer: granted here); cumulative',
  labelNames: ['outcome'] as const,
  registers: [registry],
});
const clusterFollowed = new Gauge({
  name: 'zkgate_cluster_followed_remote_leases',
  help: 'Leases held by other instances whose state callers of this instance follow now (KeepAlive streams, bound WebSockets)',
  registers: [registry],
});

/** Copies the cluster's figures into the gauges. */
function updateClusterMetrics(gw: Gateway): void {
  const c = gw.clusterStatus();
  if (!c) return;
  clusterInstances.set(c.members.length);
  for (const [outcome, n] of Object.entries(c.forwarded)) clusterForwarded.set({ outcome }, n);
  for (const [outcome, n] of Object.entries(c.placements)) clusterPlacements.set({ outcome }, n);
  clusterFollowed.set(c.followedRemoteLeases);
}

/** Methods Node's HTTP parser accepts that the API uses; any other is labelled OTHER. */
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

/**
 * Maps a request path to one of the route templates fixed at build time (openapi.yaml's paths),
 * or `other`: a label never holds a raw path, so no client can grow the series count.
 */
export function routeTemplates(templates: readonly string[]): (path: string) => string {
  const patterns = templates.map((t) => {
    const source = t
      .split(/(\{[^}]+\})/)
      .map((part) => (part === '{path}' ? '.+' : part.startsWith('{') ? '[^/]+' : part.replace(/[.*+?^$()|[\]\\]/g, '\\$&')))
      .join('');
    // Express routes case-insensitively and ignores a trailing slash, so the labels do too.
    return { template: t, re: new RegExp(`^${source}/?$`, 'i') };
  });
  return (path) => patterns.find((p) => p.re.test(path))?.template ?? 'other';
}

/**
 * The histogram's children by `route method status`: resolving a child from a label object
 * hashes the labels on every observation, which showed in a GET's profile; a map lookup does not.
 */
const httpChildren = new Map<string, { observe(seconds: number): void }>();

/** Records one REST exchange under its route template (see `routeTemplates`), method and status; `ms` its duration. */
export function observeHttp(route: string, method: string, status: number, ms: number): void {
  const m = METHODS.has(method) ? method : 'OTHER';
  const key = `${route} ${m} ${status}`;
  let child = httpChildren.get(key);
  if (!child) {
    child = httpDuration.labels({ route, method: m, status: String(status) });
    httpChildren.set(key, child);
  }
  child.observe(ms / 1000);
}

/** Times every request under its route template, method and status. */
export function httpMetrics(templates: readonly string[]): RequestHandler {
  const routeOf = routeTemplates(templates);
  return (req: Request, res: Response, next: NextFunction) => {
    const started = performance.now();
    const route = routeOf(req.path);
    res.on('finish', () => observeHttp(route, req.method, res.statusCode, performance.now() - started));
    next();
  };
}

/** The listeners whose connections are bounded: public HTTP, gRPC, the cluster's internal one. */
export type ListenerName = 'http' | 'grpc' | 'cluster';

/** What a listener reports at scrape time. */
export interface ListenerFigures {
  readonly listener: ListenerName;
  readonly open: number;
  readonly busiestAddress: number;
  readonly limits: { readonly maxConnections: number; readonly maxConnectionsPerAddress: number };
}

const listeners = new Set<ListenerFigures>();
const listenerConnections = new Gauge({
  name: 'zkgate_listener_connections',
  help: 'Open TCP connections, by listener',
  labelNames: ['listener'] as const,
  registers: [registry],
});
const listenerConnectionsMax = new Gauge({
  name: 'zkgate_listener_connections_max',
  help: 'The configured maximum of open connections (maxConnections), by listener',
  labelNames: ['listener'] as const,
  registers: [registry],
});
const listenerBusiestAddress = new Gauge({
  name: 'zkgate_listener_busiest_address_connections',
  help: 'Open connections of the client address holding the most, by listener (bounded by maxConnectionsPerAddress)',
  labelNames: ['listener'] as const,
  registers: [registry],
});
const listenerRefused = new Counter({
  name: 'zkgate_listener_refused_connections_total',
  help: 'Connections refused when accepted, by listener and the bound they hit',
  labelNames: ['listener', 'limit'] as const,
  registers: [registry],
});
const listenerTimeouts = new Counter({
  name: 'zkgate_listener_timeouts_total',
  help: 'Connections closed for being too slow, by listener and phase (handshake, preface, request)',
  labelNames: ['listener', 'phase'] as const,
  registers: [registry],
});

/** Reports `figures` at every scrape until the returned function is called. */
export function watchListener(figures: ListenerFigures): () => void {
  listeners.add(figures);
  return () => void listeners.delete(figures);
}

/** Counts a connection refused by a listener bound. */
export function countRefusedConnection(listener: ListenerName, limit: string): void {
  listenerRefused.inc({ listener, limit });
}

/** Counts a connection closed for missing a deadline. */
export function countListenerTimeout(listener: ListenerName, phase: 'handshake' | 'preface' | 'request'): void {
  listenerTimeouts.inc({ listener, phase });
}

function updateListenerMetrics(): void {
  for (const name of ['http', 'grpc', 'cluster'] as const) {
    const all = [...listeners].filter((l) => l.listener === name);
    if (!all.length) continue;
    listenerConnections.set({ listener: name }, all.reduce((n, l) => n + l.open, 0));
    listenerConnectionsMax.set({ listener: name }, all.reduce((n, l) => n + l.limits.maxConnections, 0));
    listenerBusiestAddress.set({ listener: name }, Math.max(...all.map((l) => l.busiestAddress)));
  }
}

export function metricsHandler(gw: Gateway): RequestHandler {
  return async (_req, res) => {
    for (const t of gw.health().tenants) sessionUp.set({ tenant: t.name }, t.ready ? 1 : 0);
    for (const t of gw.quotaUsage()) {
      for (const [kind, u] of Object.entries(t.usage)) {
        quotaUsed.set({ tenant: t.tenant, kind }, u.used);
        quotaElsewhere.set({ tenant: t.tenant, kind }, u.elsewhere);
        quotaMax.set({ tenant: t.tenant, kind }, u.max);
      }
    }
    updateWatchMetrics(gw);
    updateClusterMetrics(gw);
    updateListenerMetrics();
    res.type(registry.contentType).send(await registry.metrics());
  };
}
