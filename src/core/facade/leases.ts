/**
 * Leases for one caller: a lease belongs to the API key that granted it; other keys of the
 * tenant reach it only with the admin role. Granting takes a unit of `limits.maxLeasesPerTenant`
 * (given back when the lease ends, by the lease manager).
 */
import type { Lease, LeaseInfo } from '../leases/lease.js';
import { keepAliveWhileOpen } from '../leases/lease-binding.js';
import type { ScopeContext } from './scope.js';

/** A lease in a listing: its info, the configured name of the key that granted it, and the instance holding it. */
export type LeaseListEntry = LeaseInfo & { readonly ownerName?: string; readonly instance: string };

/**
 * A registered instance whose leases a cluster-wide listing lacks: `not_listening` (its address
 * refuses connections: crashed or stopped, registration not yet expired), `no_answer` (no answer
 * within cluster.forwardTimeoutMs or the connection broke: hung, partitioned, overloaded),
 * `untrusted` (its internal address's TLS certificate is not trusted here: nothing was sent),
 * `error` (it answered with an error).
 */
export interface UnansweredInstance {
  readonly instance: string;
  readonly reason: 'not_listening' | 'no_answer' | 'untrusted' | 'error';
}

/** A cluster-wide listing; `unanswered` names the instances whose leases it lacks (empty: complete). */
export interface LeaseListing {
  readonly leases: LeaseListEntry[];
  readonly unanswered: readonly UnansweredInstance[];
}

export class ScopedLeases {
  constructor(private readonly ctx: ScopeContext) {}

  /**
   * Grants a lease of `ttlMs` owned by the caller's key. A Promise: in a cluster with tenant
   * placement the forwarding scope carries the grant out on the tenant's home instance
   * (docs/cluster.md "Lease placement"). @throws INVALID_ARGUMENT, LIMIT_EXCEEDED, UNAVAILABLE, PERMISSION_DENIED
   */
  async grant(ttlMs: number): Promise<Lease> {
    this.ctx.authorize('lease.write');
    return this.ctx.services.leases.grant(this.ctx.tenant, ttlMs, this.ctx.principal.keyId);
  }

  /**
   * This instance's leases of the tenant, oldest first, each with its owner key's name and the
   * instance holding it: every lease for a key with the admin role, else only the caller's own
   * key's. With `includeEnded`, also ended leases whose id still answers. (What another instance
   * asks for to build `listing`: the internal channel calls it by name.) @throws PERMISSION_DENIED
   */
  async list(opts: { includeEnded?: boolean } = {}): Promise<LeaseListEntry[]> {
    this.ctx.authorize('lease.read');
    const { auth, leases } = this.ctx.services;
    const all = auth.isLeaseAdmin(this.ctx.principal);
    return leases
      .list(this.ctx.tenant, opts)
      .filter((l) => all || l.owner === this.ctx.principal.keyId)
      .map((l) => {
        const name = auth.keyName(l.owner);
        return { ...l.info(), ...(name ? { ownerName: name } : {}), instance: leases.instanceId };
      });
  }

  /**
   * The tenant's leases as `list` gives them, in a cluster those of every registered instance
   * (docs/cluster.md), oldest first; an instance that did not answer is named in `unanswered`
   * rather than left out silently. @throws PERMISSION_DENIED
   */
  async listing(opts: { includeEnded?: boolean } = {}): Promise<LeaseListing> {
    const here = await this.list(opts);
    const { cluster } = this.ctx.services;
    if (!cluster) return { leases: here, unanswered: [] };
    const there = await cluster.listElsewhere(this.ctx.principal, opts);
    return { leases: [...here, ...there.leases].sort((a, b) => a.grantedAtMs - b.grantedAtMs), unanswered: there.unanswered };
  }

  /** The lease, to inspect. @throws LEASE_NOT_FOUND, PERMISSION_DENIED */
  async get(id: string): Promise<Lease> {
    return this.ctx.lease(id, 'lease.read');
  }

  /** Refreshes the lease's TTL. @throws LEASE_NOT_FOUND, the lease's end (410), PERMISSION_DENIED */
  async keepAlive(id: string): Promise<Lease> {
    this.ctx.lease(id, 'lease.write');
    return this.ctx.services.leases.keepAlive(this.ctx.tenant, id);
  }

  /** Ends the lease and deletes what it owns. @throws LEASE_NOT_FOUND, PERMISSION_DENIED */
  async revoke(id: string): Promise<Lease> {
    this.ctx.lease(id, 'lease.write');
    return this.ctx.services.leases.revoke(this.ctx.tenant, id);
  }

  /**
   * The caller's usable lease, to bind to a connection that keeps it alive while open (see
   * `keepAliveWhileOpen`). @throws LEASE_NOT_FOUND, the lease's end (410), PERMISSION_DENIED
   */
  async attach(id: string): Promise<Lease> {
    const lease = this.ctx.lease(id, 'lease.write');
    lease.assertUsable();
    return lease;
  }

  /**
   * Refreshes `lease` now and every third of its TTL until `signal` aborts (the connection went);
   * the lease then lapses unless kept alive otherwise. @throws the lease's end (410)
   */
  async keepAliveWhileOpen(lease: Lease, signal: AbortSignal): Promise<void> {
    const { cluster } = this.ctx.services;
    if (cluster?.isRemote(lease)) return cluster.keepAliveWhileOpen(this.ctx.principal, lease, signal);
    this.ctx.lease(lease.id, 'lease.write');
    keepAliveWhileOpen(this.ctx.services.leases, lease, signal);
  }
}
