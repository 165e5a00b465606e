/**
 * Locks and elections for one caller: each call authorizes the action on the recipe's path and,
 * for a call made with a lease, that the lease is the caller's. Waiters and holders count against
 * `limits.maxLocksPerTenant` (in the queue); an election long-poll holds a unit of the tenant's
 * subscriptions while it waits.
 */
import type { LockFlavour } from '../recipes/flavours.js';
import type { CampaignOptions, ElectionListing, LeaderPoll, LeaderState, Leadership } from '../recipes/election.js';
import type { CatalogOptions } from '../recipes/catalog.js';
import { MAX_WAIT_MS, type AcquireOptions, type LockHold, type LockInspection, type LockListing, type ReleaseResult } from '../recipes/lock.js';
import type { LeaveOutcome } from '../recipes/sequential-queue.js';
import type { LeaseState } from '../leases/lease.js';
import type { ScopeContext } from './scope.js';

/** Wait options of a transport with a deadline of its own (a gRPC call's). */
export interface DeadlineOption {
  /**
   * The caller's deadline, ms since the epoch: the wait ends a margin before it (a fifth of
   * the time left, 250 ms to 2 s), so LOCK_NOT_ACQUIRED / NOT_ELECTED with the holder's details
   * are answered before the caller gives up. Without `waitMs`, the wait lasts until then.
   */
  readonly deadline?: number;
}

/** `waitMs` bounded by a margin before `deadline`; a `waitMs` out of range is left for the recipe to refuse. */
export function waitBefore(waitMs: number | undefined, deadline: number | undefined): number | undefined {
  if (deadline === undefined) return waitMs;
  if (waitMs !== undefined && !(Number.isInteger(waitMs) && waitMs >= 0 && waitMs <= MAX_WAIT_MS)) return waitMs;
  const remaining = deadline - Date.now();
  const margin = Math.min(2000, Math.max(250, Math.floor(remaining / 5)));
  const room = Math.max(0, Math.min(MAX_WAIT_MS, remaining - margin));
  return waitMs === undefined ? room : Math.min(waitMs, room);
}

export class ScopedLocks {
  constructor(private readonly ctx: ScopeContext) {}

  /**
   * Takes the lock at `path` for the caller's lease `leaseId` (see `LockService.acquire`).
   * @throws LOCK_NOT_ACQUIRED, CANCELLED, LIMIT_EXCEEDED, LEASE_NOT_FOUND, PERMISSION_DENIED, the lease's end
   */
  acquire(path: string, leaseId: string, opts: AcquireOptions & DeadlineOption = {}): Promise<LockHold> {
    this.ctx.authorize('lock', path);
    const lease = this.ctx.lease(leaseId, 'lease.write', 'leaseId');
    const { deadline, ...rest } = opts;
    return this.ctx.services.locks.acquire(lease, path, { ...rest, waitMs: waitBefore(opts.waitMs, deadline) });
  }

  /** Releases the lease's hold (or wait) on `node`; idempotent. */
  release(path: string, leaseId: string, node: string): Promise<ReleaseResult> {
    this.ctx.authorize('lock', path);
    const lease = this.ctx.lease(leaseId, 'lease.write', 'leaseId');
    return this.ctx.services.locks.release(lease, path, node);
  }

  /** The holder and queue of the lock. */
  inspect(path: string, flavour?: LockFlavour): Promise<LockInspection> {
    this.ctx.authorize('lock.read', path);
    return this.ctx.services.locks.inspect(this.ctx.tenant, path, flavour);
  }

  /** Every lock at or under `path` with holder and queue (see `LockService.list`). */
  list(path: string, opts: CatalogOptions = {}): Promise<LockListing> {
    this.ctx.authorize('lock.read', path);
    return this.ctx.services.locks.list(this.ctx.tenant, path, opts);
  }
}

export type ResignResult = LeaveOutcome & { node: string; leaseId: string; leaseState: LeaseState; trustMs: number };

export class ScopedElections {
  constructor(private readonly ctx: ScopeContext) {}

  /** Becomes a candidate with the caller's lease and waits up to `waitMs` to lead. @throws NOT_ELECTED, CANCELLED, … */
  campaign(path: string, leaseId: string, value: Buffer | undefined, opts: CampaignOptions & DeadlineOption = {}): Promise<Leadership> {
    this.ctx.authorize('election', path);
    const lease = this.ctx.lease(leaseId, 'lease.write', 'leaseId');
    return this.ctx.services.elections.campaign(lease, path, value, { signal: opts.signal, waitMs: waitBefore(opts.waitMs, opts.deadline) });
  }

  /** Replaces the leader's value. @throws NOT_LEADER */
  proclaim(path: string, leaseId: string, node: string, value: Buffer): Promise<Leadership> {
    this.ctx.authorize('election', path);
    const lease = this.ctx.lease(leaseId, 'lease.write', 'leaseId');
    return this.ctx.services.elections.proclaim(lease, path, node, value);
  }

  /** Withdraws the lease's candidacy `node`; idempotent. */
  resign(path: string, leaseId: string, node: string): Promise<ResignResult> {
    this.ctx.authorize('election', path);
    const lease = this.ctx.lease(leaseId, 'lease.write', 'leaseId');
    return this.ctx.services.elections.resign(lease, path, node);
  }

  /** Every election at or under `path` with leader and candidates (see `ElectionService.list`). */
  list(path: string, opts: CatalogOptions = {}): Promise<ElectionListing> {
    this.ctx.authorize('lock.read', path);
    return this.ctx.services.elections.list(this.ctx.tenant, path, opts);
  }

  /** The current leader (or null). */
  leader(path: string): Promise<LeaderState> {
    this.ctx.authorize('lock.read', path);
    return this.ctx.services.elections.leader(this.ctx.tenant, path);
  }

  /**
   * Long-poll on the leader (see `ElectionService.waitForChange`), holding one unit of the
   * tenant's subscriptions while it waits. @throws LIMIT_EXCEEDED (`limits.maxSubscriptionsPerTenant`)
   */
  async waitForChange(path: string, after: string | undefined, waitMs: number, signal?: AbortSignal): Promise<LeaderPoll> {
    this.ctx.authorize('lock.read', path);
    const release = this.ctx.tenant.quotas.take('subscriptions');
    try {
      return await this.ctx.services.elections.waitForChange(this.ctx.tenant, path, after, waitMs, signal);
    } finally {
      release();
    }
  }
}
