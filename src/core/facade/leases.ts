/**
 * Leases for one caller: a lease belongs to the API key that granted it; other keys of the
 * tenant reach it only with the admin role. Granting takes a unit of `limits.maxLeasesPerTenant`
 * (given back when the lease ends, by the lease manager).
 */
import type { Lease } from '../leases/lease.js';
import { keepAliveWhileOpen } from '../leases/lease-binding.js';
import type { ScopeContext } from './scope.js';

export class ScopedLeases {
  constructor(private readonly ctx: ScopeContext) {}

  /** Grants a lease of `ttlMs` owned by the caller's key. @throws INVALID_ARGUMENT, LIMIT_EXCEEDED, UNAVAILABLE, PERMISSION_DENIED */
  grant(ttlMs: number): Lease {
    this.ctx.authorize('lease.write');
    return this.ctx.services.leases.grant(this.ctx.tenant, ttlMs, this.ctx.principal.keyId);
  }

  /** The lease, to inspect. @throws LEASE_NOT_FOUND, PERMISSION_DENIED */
  get(id: string): Lease {
    return this.ctx.lease(id, 'lease.read');
  }

  /** Refreshes the lease's TTL. @throws LEASE_NOT_FOUND, the lease's end (410), PERMISSION_DENIED */
  keepAlive(id: string): Lease {
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
  attach(id: string): Lease {
    const lease = this.ctx.lease(id, 'lease.write');
    lease.assertUsable();
    return lease;
  }

  /**
   * Refreshes `lease` now and every third of its TTL until `signal` aborts (the connection went);
   * the lease then lapses unless kept alive otherwise. @throws the lease's end (410)
   */
  keepAliveWhileOpen(lease: Lease, signal: AbortSignal): void {
    this.ctx.lease(lease.id, 'lease.write');
    keepAliveWhileOpen(this.ctx.services.leases, lease, signal);
  }
}
