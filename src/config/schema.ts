/**
 * The configuration type, its defaults and its validation (zod). Every error names the field.
 */
import { z } from 'zod';
import { pathProblem } from '../zk/index.js';
import { SERVE_DEFAULTS } from './defaults.js';
import { ROLES, type Role } from '../core/auth/roles.js';
import { LIMIT_DEFAULTS, type Limits as CoreLimits } from '../core/limits/limits.js';
import type { GatewayConfig } from '../core/gateway-config.js';
import type { HttpListenerConfig } from '../api/http-listener.js';
import type { GrpcListenerConfig } from '../api/grpc/listener.js';

export { LIMIT_DEFAULTS };

const chroot = z
  .string()
  .refine((p) => pathProblem(p) === null, { message: 'must be a valid ZooKeeper path such as /tenants/acme' });

const limitsSchema = z
  .object({
    /** Largest znode payload accepted, bytes; ZooKeeper's jute.maxbuffer is 1 MiB per packet. */
    maxDataBytes: z.number().int().min(0).max(1_048_576).default(LIMIT_DEFAULTS.maxDataBytes),
    /** Largest HTTP request body, bytes (base64 inflates data by 4/3). */
    maxBodyBytes: z.number().int().min(1024).default(LIMIT_DEFAULTS.maxBodyBytes),
    /** Largest subtree a recursive delete removes; larger ones are refused before any delete. */
    maxRecursiveDeleteNodes: z.number().int().min(1).default(LIMIT_DEFAULTS.maxRecursiveDeleteNodes),
    /** Longest znode path inside the tenant's chroot, UTF-8 bytes. */
    maxPathBytes: z.number().int().min(16).max(65_536).default(LIMIT_DEFAULTS.maxPathBytes),
    /** Most segments in a znode path. */
    maxPathDepth: z.number().int().min(1).max(1000).default(LIMIT_DEFAULTS.maxPathDepth),
    /** Most entries one listing answers: children come in pages, trees are cut (marked truncated); a children watch past it ends (TOO_MANY_CHILDREN). */
    maxChildrenPerListing: z.number().int().min(1).default(LIMIT_DEFAULTS.maxChildrenPerListing),
    /** Live leases per tenant. */
    maxLeasesPerTenant: z.number().int().min(1).default(LIMIT_DEFAULTS.maxLeasesPerTenant),
    /** Held or waiting locks (and election candidacies) per tenant. */
    maxLocksPerTenant: z.number().int().min(1).default(LIMIT_DEFAULTS.maxLocksPerTenant),
    /** Watch subscriptions, election observes and long-polls per tenant, over every transport. */
    maxSubscriptionsPerTenant: z.number().int().min(1).default(LIMIT_DEFAULTS.maxSubscriptionsPerTenant),
    /** Open streaming connections (WebSockets, SSE streams, gRPC Watch/KeepAlive/Observe streams) per tenant. */
    maxConnectionsPerTenant: z.number().int().min(1).default(LIMIT_DEFAULTS.maxConnectionsPerTenant),
    /** Largest WebSocket message a client may send, bytes. */
    wsMaxMessageBytes: z.number().int().min(1024).default(LIMIT_DEFAULTS.wsMaxMessageBytes),
    /** WebSocket messages a client may send per second (token bucket, burst of the same size). */
    wsMessagesPerSecond: z.number().int().min(1).default(LIMIT_DEFAULTS.wsMessagesPerSecond),
  })
  .strict();

type LimitShape = typeof limitsSchema.shape;
/**
 * Per-tenant overrides of the global limits: the same fields without their defaults, so a limit
 * a tenant does not name keeps the global value (`.partial()` would fill in the defaults).
 */
const tenantLimitsSchema = z
  .object(
    Object.fromEntries(Object.entries(limitsSchema.shape).map(([k, v]) => [k, v.unwrap().optional()])) as {
      [K in keyof LimitShape]: z.ZodOptional<ReturnType<LimitShape[K]['unwrap']>>;
    },
  )
  .strict();

const role = z.enum(ROLES as [Role, ...Role[]]);

/** An API key as stored in the config: only the SHA-256 of the key, never the key itself. */
const apiKeySchema = z
  .object({
    /** A label for logs and metrics (never the key). */
    name: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'letters, digits, _ . - (max 64)').optional(),
    /** Lowercase hex SHA-256 of the key, as `zkgate keygen` prints it. */
    sha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits (zkgate keygen prints it)'),
    role,
    /** Path prefixes (inside the chroot) the key is limited to; absent = the whole chroot. */
    prefixes: z.array(chroot).min(1).optional(),
  })
  .strict();

const aclEntrySchema = z
  .object({
    scheme: z.string().min(1),
    id: z.string(),
    perms: z.string().regex(/^[cdrwa]+$/, 'letters of cdrwa'),
  })
  .strict();

/**
 * Watch streams (hub, SSE, long-poll, WebSocket). Per-tenant subscription and connection quotas
 * and WebSocket message limits are under `limits`.
 */
const watchSchema = z
  .object({
    /** Events a subscriber may have waiting; past it the subscriber is cut with SLOW_CONSUMER. */
    queueSize: z.number().int().min(1).max(100_000).default(256),
    /** Subscriptions and election observes one WebSocket or gRPC Watch stream may have open (the tenant's are limited by `limits.maxSubscriptionsPerTenant`). */
    maxSubscriptionsPerConnection: z.number().int().min(1).default(1000),
    /** Nodes a subtree subscription may cover; past it the subscription ends with SUBTREE_TOO_LARGE. */
    maxSubtreeNodes: z.number().int().min(1).default(1000),
    /**
     * ZooKeeper watches per tenant the hub keeps without subscribers (a quiet node's watch stays
     * set on the server until it fires): they answer the next subscriber without a read. Past it
     * the oldest is let go; `zkgate_watch_idle_watches` shows how many are kept.
     */
    maxIdleWatches: z.number().int().min(0).default(1000),
    /**
     * A read of a node the hub does not watch sets a data watch (the same one round trip) and keeps
     * the state as an idle watch, so the next read of that node is answered from memory until it
     * changes (docs/watch.md, "Read cache"). Bounded by `maxIdleWatches` and `maxIdleBytes`.
     */
    readThrough: z.boolean().default(true),
    /** Bytes of node data the idle watches may hold per tenant; past it the least recently read is let go. */
    maxIdleBytes: z.number().int().min(0).default(67_108_864),
    /**
     * Services per tenant whose instance sets the registry keeps following after a pick or
     * listing, so the next ones are answered from memory (docs/registry.md, "Picks from
     * memory"); past it the least recently used is let go. 0: every pick and listing reads ZooKeeper.
     */
    maxCachedServices: z.number().int().min(0).max(100_000).default(100),
    /** A followed service nobody picked or listed for this long is let go, ms. */
    cachedServiceIdleMs: z.number().int().min(1000).default(300_000),
    /** Longest `wait` a long-poll may ask for, ms; longer asks are clamped. */
    maxWaitMs: z.number().int().min(1000).default(300_000),
    /** Interval of WebSocket pings and SSE keep-alive comments, ms; a socket missing a pong is closed. */
    heartbeatMs: z.number().int().min(100).default(30_000),
    /**
     * Bytes a WebSocket may have written but not yet taken by its client (replies and events the
     * kernel could not send: a client that stops reading); past it the socket is dropped as a
     * SLOW_CONSUMER. At least 2 MiB, so that the largest message (a 1 MiB znode in base64) fits.
     */
    maxSendBufferBytes: z.number().int().min(2_097_152).default(8_388_608),
  })
  .strict();

export const WATCH_DEFAULTS = watchSchema.parse({});

const tenantSchema = z
  .object({
    name: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'lowercase letters, digits, - and _ (max 63)'),
    /** ZooKeeper connect string; defaults to the top-level `zookeeper.connect`. */
    connect: z.string().min(1).optional(),
    chroot: chroot.default('/'),
    sessionTimeoutMs: z.number().int().min(1000).max(120_000).default(10_000),
    /** ZooKeeper digest credentials added to every session of this tenant. */
    digest: z.object({ user: z.string().min(1), password: z.string().min(1) }).strict().optional(),
    /** API keys that select this tenant; once any tenant has keys, every request needs one. */
    apiKeys: z.array(apiKeySchema).default([]),
    /**
     * ACL set on every node the gateway creates for this tenant (right after the create; see the
     * README). `auth` scheme entries mean "the tenant's digest identity".
     */
    nodeAcl: z.array(aclEntrySchema).min(1).optional(),
    /** Overrides of the global `limits` for this tenant. */
    limits: tenantLimitsSchema.optional(),
  })
  .strict()
  .refine((t) => !t.nodeAcl?.some((a) => a.scheme === 'auth') || t.digest, {
    message: 'nodeAcl with scheme auth needs digest credentials',
    path: ['nodeAcl'],
  });

/** Connection bounds shared by both listeners; 0 turns the per-address one off (behind a proxy every client has its address). */
const connectionLimitsWith = (perAddress: number) => ({
  /** Open TCP connections the listener holds; more are refused at once (LIMIT_EXCEEDED). */
  maxConnections: z.number().int().min(1).max(1_000_000).default(4096),
  /** Open TCP connections from one client address; 0 = no per-address bound. */
  maxConnectionsPerAddress: z.number().int().min(0).max(1_000_000).default(perAddress),
});
const connectionLimits = connectionLimitsWith(256);

/** The deadlines of an HTTP listener (src/api/http-listener.ts), with that listener's defaults. */
const httpTimeoutsWith = (d: { headersTimeoutMs: number; requestTimeoutMs: number; idleTimeoutMs: number }) => ({
  /** A request's head (and, with TLS, the handshake before it) must arrive within this, ms; else 408 and close. */
  headersTimeoutMs: z.number().int().min(500).max(600_000).default(d.headersTimeoutMs),
  /** A whole request (head and body) must arrive within this, ms; else 408 and close. Answers may take longer (long-poll). */
  requestTimeoutMs: z.number().int().min(500).max(3_600_000).default(d.requestTimeoutMs),
  /** A kept-alive connection with no request in progress is closed after this, ms. */
  idleTimeoutMs: z.number().int().min(100).max(600_000).default(d.idleTimeoutMs),
});
const headersWithinRequest: [(h: { headersTimeoutMs: number; requestTimeoutMs: number }) => boolean, { message: string; path: string[] }] = [
  (h) => h.headersTimeoutMs <= h.requestTimeoutMs,
  { message: 'headersTimeoutMs must not exceed requestTimeoutMs', path: ['headersTimeoutMs'] },
];

/** The REST/WebSocket listener: address, connection bounds and timeouts (see docs/security.md › Limits). */
const httpSchema = z
  .object({
    port: z.number().int().min(0).max(65535).default(SERVE_DEFAULTS.httpPort),
    bind: z.string().min(1).default(SERVE_DEFAULTS.bind),
    /** Answer the hot REST routes in plain node:http in front of express (src/api/rest/fast-path.ts); off only to compare. */
    fastPath: z.boolean().default(true),
    ...connectionLimits,
    ...httpTimeoutsWith({ headersTimeoutMs: 10_000, requestTimeoutMs: 60_000, idleTimeoutMs: 5_000 }),
  })
  .strict()
  .refine(...headersWithinRequest);

/** The gRPC listener: message and stream bounds, connection bounds, deadlines and keepalive (grpc-js channel options). */
const grpcSchema = z
  .object({
    /** Default 9090; 0 (a free port) when http.port is 0, so test gateways never collide. */
    port: z.number().int().min(0).max(65535).optional(),
    /** Largest gRPC message received or sent, bytes (data is limited by limits.maxDataBytes too). */
    maxMessageBytes: z.number().int().min(1024).max(64 * 1_048_576).default(4 * 1_048_576),
    /** Concurrent calls (HTTP/2 streams) a client connection may have open. */
    maxConcurrentStreams: z.number().int().min(1).max(100_000).default(1000),
    /** Answer the hot reads (Znodes Get/Exists/Children) without grpc-js' per-call machinery (src/api/grpc/fast-path.ts); off only to compare. */
    fastPath: z.boolean().default(true),
    ...connectionLimits,
    /** The TLS handshake, and then the HTTP/2 connection preface, must each be done within this, ms; else the connection is closed. */
    handshakeTimeoutMs: z.number().int().min(500).max(600_000).default(10_000),
    /** A connection with no call open for this long gets GOAWAY and is closed, ms (grpc.max_connection_idle_ms). */
    maxConnectionIdleMs: z.number().int().min(1000).default(300_000),
    /** A connection older than this gets GOAWAY, ms (grpc.max_connection_age_ms, ±10 % jitter); 0 = no bound. */
    maxConnectionAgeMs: z.number().int().min(0).default(0),
    /** Calls still open on a connection past its age are cancelled after this, ms (grpc.max_connection_age_grace_ms). */
    maxConnectionAgeGraceMs: z.number().int().min(0).default(30_000),
    /** The server pings a connection after this long without activity, ms (grpc.keepalive_time_ms). */
    keepaliveTimeMs: z.number().int().min(1000).default(60_000),
    /** A connection that does not answer a ping within this is closed, ms (grpc.keepalive_timeout_ms). */
    keepaliveTimeoutMs: z.number().int().min(500).default(20_000),
  })
  .strict();

/** Listener defaults (documented in docs/security.md › Limits). */
/**
 * Several instances behind a load balancer (docs/cluster.md): on when `secret` is set. Each
 * instance registers under `instances.path` and carries out calls naming a lease held by
 * another instance on that instance, over an internal HTTP listener authenticated with
 * HMAC-SHA256 of the shared secret. Also `ZKGATE_CLUSTER_SECRET`. The internal listener has the
 * connection bounds and deadlines of the public one (docs/security.md › Limits).
 */
const clusterSchema = z
  .object({
    /** Shared by every instance of the cluster, at least 32 characters; never logged. */
    secret: z.string().min(32, 'must be at least 32 characters').optional(),
    /** Address the internal listener binds; default `http.bind`. */
    bind: z.string().min(1).optional(),
    /** Port of the internal listener; 0 = a free one. */
    port: z.number().int().min(0).max(65535).default(0),
    /** URL other instances reach this one's internal listener on, e.g. `http://gw1:7070`; default `http://<bind>:<port>`. */
    advertise: z.string().url().optional(),
    /** How long a forwarded call that does not wait (keepalive, release…) may take, ms. */
    forwardTimeoutMs: z.number().int().min(100).max(120_000).default(10_000),
    /**
     * Where a lease grant is carried out (docs/cluster.md "Lease placement"): `tenant` on the
     * tenant's home instance (a rendezvous hash of tenant and instance id over the live members),
     * so one lock's contenders share a ZooKeeper session and a process; `local` on the instance
     * the grant reached (for a tenant too busy for one instance). Also `ZKGATE_CLUSTER_LEASE_PLACEMENT`.
     */
    leasePlacement: z.enum(['tenant', 'local']).default('tenant'),
    // A peer holds one persistent connection for forwarded calls and pools up to 256 sockets for
    // POSTs (src/core/cluster/channel.ts; all its calls when this instance is of an older version,
    // during a rolling upgrade): the per-address default leaves room for 4 instances behind one
    // address (NAT, one host).
    ...connectionLimitsWith(1024),
    // Idle: peers keep pooled connections for reuse; a shorter idle timeout than theirs races
    // a reused socket against its close (a forwarded call then fails as owner_unreachable).
    ...httpTimeoutsWith({ headersTimeoutMs: 10_000, requestTimeoutMs: 60_000, idleTimeoutMs: 65_000 }),
  })
  .strict()
  .refine(...headersWithinRequest);

export const HTTP_DEFAULTS = httpSchema.parse({});
export const GRPC_DEFAULTS = grpcSchema.parse({});

export const configSchema = z
  .object({
    http: httpSchema.default(HTTP_DEFAULTS),
    grpc: grpcSchema.default(GRPC_DEFAULTS),
    zookeeper: z
      .object({
        /** `host:port,…`; absent means: start the embedded local ZooKeeper. */
        connect: z.string().min(1).optional(),
        /**
         * The ZooKeeper C client's own log on stderr (it is process-wide). `error` (default) keeps
         * connection losses and what the client says before it aborts; `off` silences it.
         */
        clientLogLevel: z.enum(['off', 'error', 'warn', 'info', 'debug']).default('error'),
      })
      .strict()
      .default({ clientLogLevel: 'error' }),
    embedded: z
      .object({
        dataDir: z.string().min(1).default(SERVE_DEFAULTS.embeddedDataDir),
        port: z.number().int().min(0).max(65535).default(0),
      })
      .strict()
      .default({ dataDir: SERVE_DEFAULTS.embeddedDataDir, port: 0 }),
    tenants: z
      .array(tenantSchema)
      .min(1)
      .default([{ name: 'default', chroot: '/', sessionTimeoutMs: 10_000, apiKeys: [] }])
      .refine((ts) => new Set(ts.map((t) => t.name)).size === ts.length, { message: 'tenant names must be unique' })
      .refine((ts) => uniqueKeys(ts), { message: 'an API key (sha256) may belong to one tenant only, once' })
      .superRefine((ts, ctx) => {
        // Without keys any caller may pick any tenant, so nesting isolates nothing anyway.
        const clash = ts.some((t) => t.apiKeys.length > 0) ? nestedChroots(ts) : null;
        if (clash) {
          ctx.addIssue({ code: 'custom', message: `tenants ${clash} share an ensemble and one chroot contains the other: with API keys they must be disjoint` });
        }
      }),
    limits: limitsSchema.default({ ...LIMIT_DEFAULTS }),
    security: z
      .object({
        /**
         * Allow a non-loopback bind with no API key configured (anyone who reaches the port gets
         * admin on every tenant). Also `ZKGATE_ALLOW_UNAUTHENTICATED_PUBLIC_BIND=1` or the CLI flag.
         */
        allowUnauthenticatedPublicBind: z.boolean().default(false),
      })
      .strict()
      .default({ allowUnauthenticatedPublicBind: false }),
    /** TLS for the HTTP/WebSocket and gRPC listeners: both files, or neither. */
    tls: z
      .object({ certFile: z.string().min(1), keyFile: z.string().min(1) })
      .strict()
      .optional(),
    /** Prefix of every lease id, so a balancer can route a lease back to its instance. */
    instanceId: z
      .string()
      .regex(/^[A-Za-z0-9-]{1,40}$/, 'letters, digits and - (max 40)')
      .optional(),
    leases: z
      .object({
        minTtlMs: z.number().int().min(100).default(1000),
        maxTtlMs: z.number().int().min(1000).default(3_600_000),
        /** How long an ended lease's id still answers 410 (not 404), ms; in a cluster also how long a handoff record outlives its leases. */
        tombstoneMs: z.number().int().min(1000).max(86_400_000).default(600_000),
      })
      .strict()
      .default({ minTtlMs: 1000, maxTtlMs: 3_600_000, tombstoneMs: 600_000 }),
    watch: watchSchema.default(WATCH_DEFAULTS),
    shutdown: z
      .object({
        /**
         * On SIGTERM/SIGINT, how long requests already running may take to finish, ms; waits
         * still running then are answered 503 UNAVAILABLE.
         */
        drainTimeoutMs: z.number().int().min(0).max(600_000).default(10_000),
        /** From the first signal, when the process exits whatever is still closing, ms. */
        exitTimeoutMs: z.number().int().min(1000).max(900_000).default(20_000),
        /**
         * On SIGTERM/SIGINT, how long `/readyz` answers 503 while the gateway still serves, before
         * its listeners close, ms: a balancer's health check takes it out first, so no request
         * routed meanwhile is refused. Unset: 1000 in a cluster, 0 alone.
         */
        unreadyDelayMs: z.number().int().min(0).max(60_000).optional(),
      })
      .strict()
      .default({ drainTimeoutMs: 10_000, exitTimeoutMs: 20_000 })
      .refine((s) => s.exitTimeoutMs > s.drainTimeoutMs, { message: 'exitTimeoutMs must be longer than drainTimeoutMs', path: ['exitTimeoutMs'] }),
    instances: z
      .object({
        /**
         * Parent znode (on `zookeeper.connect`, outside every tenant) of one ephemeral node per
         * running gateway, named by its instanceId; a second process with the same id refuses to start.
         */
        path: chroot.refine((p) => p !== '/', { message: 'must not be /' }).default('/zkgate/instances'),
      })
      .strict()
      .default({ path: '/zkgate/instances' }),
    /** Several instances behind a load balancer (docs/cluster.md); see clusterSchema. */
    cluster: clusterSchema.default(() => clusterSchema.parse({})),
    log: z
      .object({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default(SERVE_DEFAULTS.logLevel) })
      .strict()
      .default({ level: SERVE_DEFAULTS.logLevel }),
  })
  .strict()
  .transform((c) => ({ ...c, grpc: { ...c.grpc, port: c.grpc.port ?? (c.http.port === 0 ? 0 : SERVE_DEFAULTS.grpcPort) } }));

function uniqueKeys(ts: readonly { apiKeys: readonly { sha256: string }[] }[]): boolean {
  const all = ts.flatMap((t) => t.apiKeys.map((k) => k.sha256));
  return new Set(all).size === all.length;
}

/** `a and b` when two tenants on the same connect string have nested or equal chroots. */
function nestedChroots(ts: readonly { name: string; connect?: string; chroot: string }[]): string | null {
  const inside = (a: string, b: string): boolean => a === b || b === '/' || a.startsWith(`${b}/`);
  for (const [i, a] of ts.entries()) {
    for (const b of ts.slice(i + 1)) {
      if ((a.connect ?? '') === (b.connect ?? '') && (inside(a.chroot, b.chroot) || inside(b.chroot, a.chroot))) return `${a.name} and ${b.name}`;
    }
  }
  return null;
}

export type Config = z.infer<typeof configSchema>;
export type TenantConfig = z.infer<typeof tenantSchema>;
export type Limits = z.infer<typeof limitsSchema>;
export type ApiKeyConfig = z.infer<typeof apiKeySchema>;
export type AclEntryConfig = z.infer<typeof aclEntrySchema>;
export type WatchConfig = z.infer<typeof watchSchema>;

// Core owns the shapes it is configured with; a validated file must fit them (compile-time checks).
type Fits<T extends U, U> = T;
export type ConfigFitsCore = [Fits<Config, GatewayConfig>, Fits<Limits, CoreLimits>, Fits<CoreLimits, Limits>];
// The listeners own theirs likewise.
export type ConfigFitsListeners = [Fits<Config['http'], HttpListenerConfig>, Fits<Config['grpc'], GrpcListenerConfig>, Fits<Config['cluster'], HttpListenerConfig>];

/** Invalid configuration; the message lists every bad field as `path.to.field: problem`. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** Validates raw input (parsed file + env overrides) and fills defaults. @throws ConfigError */
export function validateConfig(raw: unknown): Config {
  const result = configSchema.safeParse(raw ?? {});
  if (result.success) return result.data;
  const lines = result.error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`);
  throw new ConfigError(`invalid configuration:\n  ${lines.join('\n  ')}`);
}
