/**
 * Barriers for one caller: each call authorizes the action on the barrier path and, for a
 * double-barrier enter or leave, that the lease is the caller's. A simple-barrier wait holds a
 * unit of the tenant's subscriptions while it waits; members count against `limits.maxLocksPerTenant`.
 */
import type { BarrierEntry, BarrierState, BarrierWaitOptions, DoubleBarrierState } from '../recipes/barrier.js';
import { waitBefore, type DeadlineOption } from './recipes.js';
import type { ScopeContext } from './scope.js';

export class ScopedBarriers {
  constructor(private readonly ctx: ScopeContext) {}

  /** Sets the simple barrier; idempotent. @throws INVALID_PATH, PERMISSION_DENIED, UNAVAILABLE */
  set(path: string): Promise<BarrierState & { created: boolean }> {
    this.ctx.authorize('barrier', path);
    return this.ctx.services.barriers.set(this.ctx.tenant, path);
  }

  /** Removes the simple barrier; idempotent. */
  remove(path: string): Promise<BarrierState & { removed: boolean }> {
    this.ctx.authorize('barrier', path);
    return this.ctx.services.barriers.remove(this.ctx.tenant, path);
  }

  /** Whether the simple barrier is up. */
  state(path: string): Promise<BarrierState> {
    this.ctx.authorize('barrier.read', path);
    return this.ctx.services.barriers.state(this.ctx.tenant, path);
  }

  /** Waits until the simple barrier is removed. @throws BARRIER_TIMEOUT, CANCELLED, LIMIT_EXCEEDED */
  async wait(path: string, opts: BarrierWaitOptions & DeadlineOption = {}): Promise<BarrierState> {
    this.ctx.authorize('barrier.read', path);
    const release = this.ctx.tenant.quotas.take('subscriptions');
    try {
      return await this.ctx.services.barriers.waitRemoved(this.ctx.tenant, path, { signal: opts.signal, waitMs: waitBefore(opts.waitMs, opts.deadline) });
    } finally {
      release();
    }
  }

  /** Enters the double barrier with the caller's lease (see `BarrierService.enter`). */
  async enter(path: string, leaseId: string, members: number, opts: BarrierWaitOptions & DeadlineOption & { data?: Buffer } = {}): Promise<BarrierEntry> {
    this.ctx.authorize('barrier', path);
    const lease = this.ctx.lease(leaseId, 'lease.write', 'leaseId');
    return this.ctx.services.barriers.enter(lease, path, members, { data: opts.data, signal: opts.signal, waitMs: waitBefore(opts.waitMs, opts.deadline) });
  }

  /** Leaves the double barrier and waits until every member has left (see `BarrierService.leave`). */
  async leave(path: string, leaseId: string, node: string, opts: BarrierWaitOptions & DeadlineOption = {}): Promise<{ barrierPath: string; node: string; left: true }> {
    this.ctx.authorize('barrier', path);
    const lease = this.ctx.lease(leaseId, 'lease.write', 'leaseId');
    return this.ctx.services.barriers.leave(lease, path, node, { signal: opts.signal, waitMs: waitBefore(opts.waitMs, opts.deadline) });
  }

  /** The double barrier's `ready` flag and members. */
  inspectDouble(path: string): Promise<DoubleBarrierState> {
    this.ctx.authorize('barrier.read', path);
    return this.ctx.services.barriers.inspectDouble(this.ctx.tenant, path);
  }
}
