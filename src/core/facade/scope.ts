/**
 * What one authenticated caller may do: the only door transports have into core. `Gateway.as`
 * returns a `Scope` for a principal; each call on it authorizes (role, path prefixes, lease
 * ownership), takes and gives back the tenant's quota units, then calls the service. Adapters
 * never see the raw services, so every transport applies the same rules by construction.
 */
import type { Authenticator, Principal } from '../auth/authenticator.js';
import type { Action } from '../auth/roles.js';
import { invalidArgument } from '../errors.js';
import { LeaseElsewhere, type ClusterHooks } from '../cluster/hooks.js';
import type { Lease } from '../leases/lease.js';
import type { LeaseManager } from '../leases/lease-manager.js';
import type { Limits } from '../limits/limits.js';
import type { NodeService } from '../nodes/node-service.js';
import type { ElectionService } from '../recipes/election.js';
import type { LockService } from '../recipes/lock.js';
import type { QueueService } from '../recipes/queue.js';
import type { SemaphoreService } from '../recipes/semaphore.js';
import type { Discovery } from '../registry/discovery.js';
import type { Registrations } from '../registry/registrations.js';
import type { RwLockService } from '../recipes/rw-lock.js';
import type { BarrierService } from '../recipes/barrier.js';
import type { Tenant } from '../tenants/tenant.js';
import type { WatchHub } from '../watch/hub.js';
import { ScopedConnection } from './connection.js';
import { ScopedNodes } from './nodes.js';
import { ScopedLeases } from './leases.js';
import { ScopedElections, ScopedLocks } from './recipes.js';
import { ScopedQueues } from './queues.js';
import { ScopedSemaphores } from './semaphores.js';
import type { JobServices } from '../jobs/index.js';
import { ScopedJobs } from './jobs.js';
import { ScopedRegistry } from './registry.js';
import { ScopedRwLocks } from './rw-locks.js';
import { ScopedBarriers } from './barriers.js';

/** The raw services a scope wraps (core-internal). */
export interface ScopeServices {
  readonly auth: Authenticator;
  readonly leases: LeaseManager;
  readonly locks: LockService;
  readonly elections: ElectionService;
  readonly queues: QueueService;
  readonly semaphores: SemaphoreService;
  readonly registrations: Registrations;
  readonly discovery: Discovery;
  readonly rwLocks: RwLockService;
  readonly barriers: BarrierService;
  readonly watches: WatchHub;
  /** Run-once triggers and sharded jobs. */
  readonly jobs: JobServices;
  /** The node service for a tenant, bounded by path prefixes (empty: the whole chroot). */
  nodes(tenant: Tenant, prefixes: readonly string[]): NodeService;
  /** Present when several instances run as a cluster (docs/cluster.md). */
  readonly cluster?: ClusterHooks;
}

/** Core-internal helpers every scoped part shares. */
export class ScopeContext {
  constructor(
    readonly services: ScopeServices,
    readonly principal: Principal,
  ) {}

  get tenant(): Tenant {
    return this.principal.tenant;
  }

  /** @throws INVALID_PATH, PERMISSION_DENIED */
  authorize(action: Action, path?: string, opts: { sequential?: boolean } = {}): void {
    this.services.auth.authorize(this.principal, action, path, opts);
  }

  /**
   * The lease `id` of the caller's tenant, once the caller may use it for `action`: a lease
   * belongs to the key that granted it; other keys need the admin role.
   * With `required` naming a field, an empty id is INVALID_ARGUMENT naming it.
   *
   * In a cluster, a lease another instance holds throws `LeaseElsewhere`, and the forwarding
   * scope carries out the whole facade call on that instance. So a facade method that takes a
   * lease id resolves it here before any side effect (quota, node) and returns a Promise.
   * @throws INVALID_ARGUMENT, LEASE_NOT_FOUND, PERMISSION_DENIED, LeaseElsewhere
   */
  lease(id: string | undefined, action: 'lease.read' | 'lease.write', required?: string): Lease {
    if (required !== undefined && !id) throw invalidArgument(required, 'is required');
    // Asked before the lookup, which would build (and throw away) a LEASE_NOT_FOUND error on
    // every forwarded call. A lease this instance knows (its own, or adopted in a handoff) is here.
    if (id && this.services.cluster && !this.services.leases.knows(id) && this.services.cluster.elsewhere(id)) throw new LeaseElsewhere(id);
    const lease = this.services.leases.lookup(this.tenant, id ?? '');
    this.services.auth.authorizeLease(this.principal, lease, action);
    return lease;
  }
}

/** One caller's view of the gateway. */
export class Scope {
  readonly nodes: ScopedNodes;
  readonly leases: ScopedLeases;
  readonly locks: ScopedLocks;
  readonly elections: ScopedElections;
  readonly queues: ScopedQueues;
  readonly semaphores: ScopedSemaphores;
  readonly jobs: ScopedJobs;
  readonly registry: ScopedRegistry;
  readonly rwLocks: ScopedRwLocks;
  readonly barriers: ScopedBarriers;
  private readonly ctx: ScopeContext;

  constructor(services: ScopeServices, readonly principal: Principal) {
    this.ctx = new ScopeContext(services, principal);
    this.nodes = new ScopedNodes(this.ctx);
    this.leases = new ScopedLeases(this.ctx);
    this.locks = new ScopedLocks(this.ctx);
    this.elections = new ScopedElections(this.ctx);
    this.queues = new ScopedQueues(this.ctx);
    this.semaphores = new ScopedSemaphores(this.ctx);
    this.jobs = new ScopedJobs(this.ctx);
    this.registry = new ScopedRegistry(this.ctx);
    this.rwLocks = new ScopedRwLocks(this.ctx);
    this.barriers = new ScopedBarriers(this.ctx);
  }

  /** The caller's tenant name. */
  get tenant(): string {
    return this.principal.tenant.name;
  }

  /** The caller's tenant's limits (message sizes and rates transports enforce). */
  get limits(): Limits {
    return this.principal.tenant.limits;
  }

  /**
   * Opens a streaming connection (a WebSocket, an SSE stream, a gRPC stream): one unit of the
   * tenant's `limits.maxConnectionsPerTenant` until `close()`. Its watches and election observes
   * count against `watch.maxSubscriptionsPerConnection` and the tenant's subscriptions.
   * @throws LIMIT_EXCEEDED
   */
  connect(): ScopedConnection {
    return new ScopedConnection(this.ctx);
  }
}
