/**
 * The gateway's core, wired once. Transports use only `authenticate`, `as` (a principal-scoped
 * facade that authorizes and applies quotas), `health` and the metrics figures; the raw services
 * below are for core and tests (test/unit/architecture.test.ts keeps src/api off them). It holds
 * no durable state; everything lives in ZooKeeper.
 */
import type { GatewayConfig } from './gateway-config.js';
import type { Limits } from './limits/limits.js';
import { ZkgateError } from './errors.js';
import type { Logger } from './logger.js';
import { randomBytes } from 'node:crypto';
import { LEASE_DEFAULTS, LeaseManager } from './leases/lease-manager.js';
import { NodeService } from './nodes/node-service.js';
import { ElectionService } from './recipes/election.js';
import { LockService } from './recipes/lock.js';
import { QueueService } from './recipes/queue.js';
import { SemaphoreService } from './recipes/semaphore.js';
import { RwLockService } from './recipes/rw-lock.js';
import { BarrierService } from './recipes/barrier.js';
import { SequentialQueue } from './recipes/sequential-queue.js';
import { OwnedNodes } from './leases/owned-nodes.js';
import { Discovery } from './registry/discovery.js';
import { Registrations } from './registry/registrations.js';
import type { ServiceCacheStats } from './registry/service-cache.js';
import { TenantRegistry } from './tenants/registry.js';
import { Authenticator, type Credentials, type Principal } from './auth/authenticator.js';
import { Scope, type ScopeServices } from './facade/scope.js';
import type { QuotaKind, QuotaUsage } from './limits/quotas.js';
import type { WatchStats } from './watch/types.js';
import type { Tenant } from './tenants/tenant.js';
import { WatchHub } from './watch/hub.js';
import { Cluster, type ClusterStatus, type MembershipView, type SessionHandoff } from './cluster/cluster.js';
import { LeaseIds } from './cluster/lease-ids.js';
import { ClusterQuotas } from './cluster/quotas.js';
import { JobLeaseRelease, JobStore, RunService, ShardService } from './jobs/index.js';

/** How this instance takes part in a cluster (docs/cluster.md). */
export interface ClusterMembership {
  /** Random per process start; lease ids carry it. */
  readonly incarnation: string;
  /** The registration's view of the members. */
  readonly membership: MembershipView;
}

export interface TenantHealth {
  readonly name: string;
  readonly chroot: string;
  readonly zkState: string;
  readonly sessionId: string;
  readonly ready: boolean;
  /** Why the tenant is not ready; absent when it is. */
  readonly reason?: string;
}

/** The cluster as this instance sees it (in /readyz). */
export interface ClusterHealth {
  readonly instanceId: string;
  readonly incarnation: string;
  readonly members: readonly { readonly id: string; readonly address: string; readonly version: string; readonly startedAt: string; readonly self: boolean }[];
}

export class Gateway {
  readonly tenants: TenantRegistry;
  readonly config: GatewayConfig;
  readonly logger: Logger;
  readonly leases: LeaseManager;
  /** Authentication and authorization: every transport asks here. */
  readonly auth: Authenticator;
  /** Locks over leases (all tenants; the lease names its tenant). */
  readonly locks: LockService;
  /** Leader elections over leases. */
  readonly elections: ElectionService;
  /** Work queues (Curator SimpleDistributedQueue layout; claims over leases). */
  readonly queues: QueueService;
  /** Counting semaphores (Curator InterProcessSemaphoreV2 layout) over leases. */
  readonly semaphores: SemaphoreService;
  /** The service registry (Curator x-discovery layout): providers' lease-owned instances… */
  readonly registrations: Registrations;
  /** …and finding them (lists, picks, follows). */
  readonly discovery: Discovery;
  /** Read-write locks (Curator InterProcessReadWriteLock layout) over leases. */
  readonly rwLocks: RwLockService;
  /** Simple and double barriers (Curator DistributedBarrier / DistributedDoubleBarrier layouts). */
  readonly barriers: BarrierService;
  /** Watch streams (WebSocket, SSE, long-poll) share this hub's ZooKeeper watches. */
  readonly watches: WatchHub;
  /** Present when several instances run as a cluster (config `cluster.secret`). */
  readonly cluster: Cluster | null = null;
  /** Tenants' quotas counted across the cluster (docs/cluster.md); null alone. */
  private readonly sharedQuotas: ClusterQuotas | null = null;
  /** Lease-owned nodes: protected create, find after loss, sweep, and a watch on each. */
  private readonly owned: OwnedNodes;
  private readonly nodeServices = new WeakMap<Tenant, NodeService>();
  /** Sessions handed over by other instances, each with the leases it holds (docs/cluster.md). */
  private readonly adopted = new Set<Tenant>();
  private readonly services: ScopeServices;
  private lifecycle: 'idle' | 'running' | 'closed' = 'idle';
  private stopping = false;
  /** Set by `announceShutdown`: `/readyz` answers 503 while requests are still served. */
  private unready = false;
  private readonly drain = new AbortController();

  /**
   * @param connect the ZooKeeper connect string tenants use unless they name their own
   * @param member this instance's place in a cluster; forwarding is on with it and `cluster.secret`
   */
  constructor(config: GatewayConfig, connect: string, logger: Logger, member?: ClusterMembership) {
    this.config = config;
    this.logger = logger;
    this.tenants = new TenantRegistry(config, connect, logger);
    this.auth = new Authenticator(config, this.tenants);
    const instanceId = config.instanceId ?? `gw-${randomBytes(4).toString('hex')}`;
    const secret = config.cluster?.secret;
    const ids = secret && member ? new LeaseIds(secret, instanceId, member.incarnation) : null;
    const leaseLimits = { ...LEASE_DEFAULTS, ...config.leases };
    this.leases = new LeaseManager(instanceId, logger, leaseLimits, ids ? () => ids.mint() : undefined);
    this.watches = new WatchHub(config.watch, logger);
    this.owned = new OwnedNodes(this.leases, this.watches);
    const queue = new SequentialQueue(this.owned);
    this.locks = new LockService(queue);
    this.elections = new ElectionService(queue);
    this.queues = new QueueService(this.owned);
    this.semaphores = new SemaphoreService(queue);
    this.registrations = new Registrations(this.owned);
    this.discovery = new Discovery(this.watches);
    this.rwLocks = new RwLockService(queue);
    this.barriers = new BarrierService(this.owned);
    this.services = {
      auth: this.auth,
      leases: this.leases,
      locks: this.locks,
      elections: this.elections,
      queues: this.queues,
      semaphores: this.semaphores,
      registrations: this.registrations,
      discovery: this.discovery,
      rwLocks: this.rwLocks,
      barriers: this.barriers,
      watches: this.watches,
      jobs: this.jobServices(),
      nodes: (tenant, prefixes) => (prefixes.length === 0 ? this.nodes(tenant) : new NodeService(tenant, this.owned, prefixes)),
    };
    if (secret && member) {
      const local = { ...this.services };
      this.cluster = new Cluster(
        { secret, instanceId, incarnation: member.incarnation, forwardTimeoutMs: config.cluster?.forwardTimeoutMs ?? 10_000, leasePlacement: config.cluster?.leasePlacement ?? 'tenant', tombstoneMs: leaseLimits.tombstoneMs },
        member.membership,
        { auth: this.auth, leases: this.leases, logger, local: (p) => new Scope(local, p) },
      );
      this.services = { ...local, cluster: this.cluster };
      this.cluster.hooks = { detachAll: () => this.detachAll(), adopt: (h) => this.adoptSession(h) };
      const shared = new ClusterQuotas(member.membership, () => new Map(this.tenants.all().map((t) => [t.name, t.quotas.held()])));
      for (const t of this.tenants.all()) t.quotas.share(shared);
      this.sharedQuotas = shared;
    }
  }

  /** Run-once triggers and sharded jobs, over the shared lease-owned nodes and watch hub. */
  private jobServices(): ScopeServices['jobs'] {
    const store = new JobStore(new JobLeaseRelease(this.leases, this.watches));
    return { store, runs: new RunService(store, this.owned, this.leases), shards: new ShardService(store, this.owned, this.leases, this.watches) };
  }

  /** Opens every tenant's session; resolves when all are connected or `timeoutMs` passed. */
  async start(timeoutMs?: number): Promise<void> {
    if (this.lifecycle !== 'idle') throw new Error('gateway: already started');
    this.lifecycle = 'running';
    await this.tenants.start(timeoutMs);
  }

  /**
   * The tenant a request addresses: the named one, else the default. Bypasses authentication:
   * transports use `auth.authenticate` instead.
   * @throws ZkgateError NOT_FOUND for an unknown name, INVALID_ARGUMENT when none can be chosen.
   */
  tenant(name?: string): Tenant {
    if (name) return this.tenants.get(name);
    const t = this.tenants.defaultTenant();
    if (!t) throw new ZkgateError('INVALID_ARGUMENT', 'several tenants are configured: name one', {});
    return t;
  }

  /**
   * The caller behind `credentials` (see `Authenticator.authenticate`): the one call a transport
   * makes before `as`. @throws UNAUTHENTICATED, PERMISSION_DENIED, NOT_FOUND, INVALID_ARGUMENT
   */
  authenticate(credentials: Credentials): Principal {
    return this.auth.authenticate(credentials);
  }

  /**
   * Everything `principal` may do, authorized and within its tenant's quotas: the only door
   * transports have into core.
   */
  as(principal: Principal): Scope {
    const scope = new Scope(this.services, principal);
    return this.cluster ? this.cluster.wrap(scope) : scope;
  }

  /**
   * Detaches every session holding live leases (the tenants' own and adopted ones) and returns
   * each with its leases, which this instance forgets: for a handoff (`Cluster.handoff`).
   */
  private detachAll(): SessionHandoff[] {
    const out: SessionHandoff[] = [];
    for (const t of [...this.tenants.all(), ...this.adopted]) {
      if (this.leases.live(t).length === 0) continue;
      const creds = t.detachSession();
      if (!creds) continue; // not connected, or an unpatched binding: its leases end here
      out.push({ tenant: t.name, ...creds, leases: this.leases.handOver(t) });
    }
    // What the leases held (leases, their locks) is counted by the successor from now on.
    this.sharedQuotas?.retire();
    return out;
  }

  /** Resumes a session handed over by another instance and adopts its leases. */
  private async adoptSession(h: SessionHandoff): Promise<{ adopted: number; lost: number }> {
    const tenant = this.tenants.get(h.tenant).withSession({ sessionId: h.sessionId, password: h.password });
    await tenant.start(tenant.sessionTimeoutMs);
    if (!tenant.session.isUsable || tenant.session.sessionId !== h.sessionId) {
      tenant.close();
      this.logger.warn({ tenant: h.tenant, leases: h.leases.length }, 'cluster: a handed-over session could not be resumed (expired?); its leases are lost');
      return { adopted: 0, lost: h.leases.length };
    }
    this.adopted.add(tenant);
    const out = await this.leases.adopt(tenant, h.leases, (lease, path, kind, czxid) => {
      let release: (() => void) | undefined;
      // Counted even past the limit: it was taken within it (on the instance that handed it over).
      if (kind !== 'node') release = tenant.quotas.take('locks', { force: true });
      this.owned.own(lease, path, kind, release, czxid);
    });
    // The adopted session ends once none of its leases is left.
    const closeWhenDone = (): void => {
      if (this.leases.live(tenant).length > 0 || !this.adopted.has(tenant)) return;
      this.adopted.delete(tenant);
      tenant.close();
    };
    for (const l of this.leases.live(tenant)) l.on('state', () => setImmediate(closeWhenDone));
    closeWhenDone();
    this.logger.info({ tenant: h.tenant, ...out }, 'cluster: adopted a handed-over session and its leases');
    return out;
  }

  /** This instance's view of the cluster, or null when it runs alone. */
  clusterStatus(): ClusterStatus | null {
    return this.cluster?.status() ?? null;
  }

  /** Quota usage per tenant, for /metrics. */
  quotaUsage(): { tenant: string; usage: Record<QuotaKind, QuotaUsage> }[] {
    return this.tenants.all().map((t) => ({ tenant: t.name, usage: t.quotas.usage() }));
  }

  /** Every tenant's effective limits (transports size protocol-level bounds by the largest). */
  tenantLimits(): Limits[] {
    return this.tenants.all().map((t) => t.limits);
  }

  /** Watch hub figures per tenant, for /metrics. */
  watchStats(): WatchStats[] {
    return this.watches.stats();
  }

  /** Per-tenant figures of the registry's followed services (picks from memory), for /metrics. */
  registryCacheStats(): ServiceCacheStats[] {
    return this.discovery.cacheStats();
  }

  /** Calls `listener` whenever a tenant's session changes state (health may have changed); returns the detach function. */
  onHealthChange(listener: () => void): () => void {
    const tenants = this.tenants.all();
    for (const t of tenants) t.on('state', listener);
    return () => {
      for (const t of tenants) t.off('state', listener);
    };
  }

  /** Znode operations inside the tenant's chroot (no path prefixes). */
  nodes(tenant: Tenant): NodeService {
    let s = this.nodeServices.get(tenant);
    if (!s) {
      s = new NodeService(tenant, this.owned);
      this.nodeServices.set(tenant, s);
    }
    return s;
  }

  /** Ready when every tenant's session is connected and no shutdown has begun. */
  health(): { ready: boolean; shuttingDown?: true; tenants: TenantHealth[]; cluster?: ClusterHealth } {
    const tenants = this.tenants.all().map((t) => {
      const reason = t.notReadyReason();
      return {
        name: t.name,
        chroot: t.chroot,
        zkState: t.session.state,
        sessionId: t.session.sessionId ? `0x${t.session.sessionId}` : '',
        ready: reason === null,
        ...(reason === null ? {} : { reason }),
      };
    });
    const ready = !this.stopping && !this.unready && tenants.every((t) => t.ready);
    const c = this.cluster?.status();
    const cluster: ClusterHealth | undefined = c && {
      instanceId: c.instanceId,
      incarnation: c.incarnation,
      members: c.members.map((m) => ({ id: m.id, address: m.address, version: m.version, startedAt: m.startedAt, self: m.self })),
    };
    return { ready, ...(this.stopping || this.unready ? { shuttingDown: true as const } : {}), tenants, ...(cluster ? { cluster } : {}) };
  }

  /** True once `beginShutdown` ran: transports refuse new work. */
  get shuttingDown(): boolean {
    return this.stopping;
  }

  /**
   * Aborted by `endWaits` with UNAVAILABLE: transports tie every wait they start to it, so a
   * wait still running when the shutdown's drain time is over is answered 503.
   */
  get drainSignal(): AbortSignal {
    return this.drain.signal;
  }

  /**
   * First step of a graceful shutdown: `/readyz` answers 503 (`shuttingDown`) while every request
   * is still served, so a balancer stops routing here before anything is refused.
   */
  announceShutdown(): void {
    this.unready = true;
    this.drainPlacement();
  }

  /** A draining instance is no tenant's home: said to the others at once (docs/cluster.md "Lease placement"). */
  private drainPlacement(): void {
    this.cluster?.drain();
    this.sharedQuotas?.drain();
  }

  /**
   * Second step of a graceful shutdown (after `announceShutdown` and `shutdown.unreadyDelayMs`):
   * every watch stream ends with UNAVAILABLE ("the gateway is shutting down") and transports
   * refuse new work. Leases, locks and sessions stay as they are until `close`. Idempotent.
   */
  beginShutdown(): void {
    if (this.stopping) return;
    this.stopping = true;
    this.drainPlacement();
    // In a cluster, running waits stop first (and move to the successor with the handoff);
    // long-polls answer the state they have instead of ending with the watch hub.
    this.cluster?.beginHandoff();
    this.discovery.close();
    this.watches.close();
  }

  /** Ends every wait still running (lock acquire, campaign, long-poll) with UNAVAILABLE. */
  endWaits(): void {
    this.drain.abort(new ZkgateError('UNAVAILABLE', 'gateway: shutting down', {}));
  }

  /** Closes every session (their ephemerals go at once); idempotent. */
  close(): void {
    if (this.lifecycle === 'closed') return;
    this.lifecycle = 'closed';
    this.watches.close();
    this.leases.close();
    this.cluster?.close();
    for (const t of this.adopted) t.close();
    this.tenants.close();
  }
}
