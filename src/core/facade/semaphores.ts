/**
 * Semaphores for one caller: acquire and release authorize `lock` on the semaphore path (and on
 * the shared count's path, which an acquire may seed), inspect `lock.read`; a call made with a
 * lease checks that the lease is the caller's. Permits and waits count against
 * `limits.maxLocksPerTenant` (in the queue).
 */
import type { SemaphoreAcquireOptions, SemaphoreGrant, SemaphoreInspection, SemaphoreRelease } from '../recipes/semaphore.js';
import { waitBefore, type DeadlineOption } from './recipes.js';
import type { ScopeContext } from './scope.js';

export class ScopedSemaphores {
  constructor(private readonly ctx: ScopeContext) {}

  /**
   * Takes permits of the semaphore at `path` for the caller's lease (see `SemaphoreService.acquire`).
   * @throws PERMITS_NOT_ACQUIRED, INVALID_ARGUMENT, CANCELLED, LIMIT_EXCEEDED, LEASE_NOT_FOUND, PERMISSION_DENIED, the lease's end
   */
  acquire(path: string, leaseId: string, opts: SemaphoreAcquireOptions & DeadlineOption): Promise<SemaphoreGrant> {
    this.ctx.authorize('lock', path);
    if (opts.countPath !== undefined) this.ctx.authorize('lock', opts.countPath);
    const lease = this.ctx.lease(leaseId, 'lease.write', 'leaseId');
    const { deadline, ...rest } = opts;
    return this.ctx.services.semaphores.acquire(lease, path, { ...rest, waitMs: waitBefore(opts.waitMs, deadline) });
  }

  /** Releases the lease's permit `node`, or all its permits and waits on `path`; idempotent. */
  release(path: string, leaseId: string, node?: string): Promise<SemaphoreRelease> {
    this.ctx.authorize('lock', path);
    const lease = this.ctx.lease(leaseId, 'lease.write', 'leaseId');
    return this.ctx.services.semaphores.release(lease, path, node);
  }

  /** Holders, the waiting node and the internal lock queue (N from `maxPermits` or `countPath`). */
  inspect(path: string, opts: { maxPermits?: number; countPath?: string } = {}): Promise<SemaphoreInspection> {
    this.ctx.authorize('lock.read', path);
    if (opts.countPath !== undefined) this.ctx.authorize('lock.read', opts.countPath);
    return this.ctx.services.semaphores.inspect(this.ctx.tenant, path, opts);
  }
}
