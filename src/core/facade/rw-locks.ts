/**
 * Read-write locks for one caller: acquire and release authorize `lock` on the lock path,
 * inspect `lock.read`; a call made with a lease checks that the lease is the caller's. Holds and
 * waits count against `limits.maxLocksPerTenant` (in the queue).
 */
import type { ReleaseResult } from '../recipes/lock.js';
import type { RwAcquireOptions, RwHold, RwInspection } from '../recipes/rw-lock.js';
import { waitBefore, type DeadlineOption } from './recipes.js';
import type { ScopeContext } from './scope.js';

export class ScopedRwLocks {
  constructor(private readonly ctx: ScopeContext) {}

  /**
   * Takes the read or write lock at `path` for the caller's lease (see `RwLockService.acquire`).
   * @throws LOCK_NOT_ACQUIRED, INVALID_ARGUMENT, CANCELLED, LIMIT_EXCEEDED, LEASE_NOT_FOUND, PERMISSION_DENIED, the lease's end
   */
  acquire(path: string, leaseId: string, opts: RwAcquireOptions & DeadlineOption): Promise<RwHold> {
    this.ctx.authorize('lock', path);
    const lease = this.ctx.lease(leaseId, 'lease.write', 'leaseId');
    const { deadline, ...rest } = opts;
    return this.ctx.services.rwLocks.acquire(lease, path, { ...rest, waitMs: waitBefore(opts.waitMs, deadline) });
  }

  /** Releases the lease's hold (or wait) `node`; idempotent. */
  release(path: string, leaseId: string, node: string): Promise<ReleaseResult> {
    this.ctx.authorize('lock', path);
    const lease = this.ctx.lease(leaseId, 'lease.write', 'leaseId');
    return this.ctx.services.rwLocks.release(lease, path, node);
  }

  /** The holding writer or readers and the queue in order. */
  inspect(path: string): Promise<RwInspection> {
    this.ctx.authorize('lock.read', path);
    return this.ctx.services.rwLocks.inspect(this.ctx.tenant, path);
  }
}
