/**
 * Queues for one caller: each call authorizes the action on the queue path and, for a claim,
 * ack or release, that the lease is the caller's. A waiting take holds a unit of the tenant's
 * subscriptions while it waits; claims count against `limits.maxLocksPerTenant`.
 */
import type { ClaimOutcome, DeliveryMode, QueueClaim, QueueInspection, QueueItem, QueuedItem, QueueWaitOptions } from '../recipes/queue.js';
import { DELIVERY_MODES } from '../recipes/queue.js';
import { invalidArgument } from '../errors.js';
import { waitBefore, type DeadlineOption } from './recipes.js';
import type { ScopeContext } from './scope.js';

/** What a take answers: an item removed (`at_most_once`) or claimed (`claim`). */
export type Delivery = ({ readonly mode: 'at_most_once' } & QueueItem) | ({ readonly mode: 'claim' } & QueueClaim);

export interface TakeOptions extends QueueWaitOptions, DeadlineOption {
  /** @defaultValue 'at_most_once' */
  readonly mode?: DeliveryMode;
  /** The lease that owns the claim (`claim` mode only; required there). */
  readonly leaseId?: string;
}

export class ScopedQueues {
  constructor(private readonly ctx: ScopeContext) {}

  /** Appends an item. @throws DATA_TOO_LARGE, INVALID_PATH, PERMISSION_DENIED, UNAVAILABLE */
  put(path: string, data: Buffer): Promise<QueuedItem> {
    this.ctx.authorize('queue', path);
    return this.ctx.services.queues.put(this.ctx.tenant, path, data);
  }

  /**
   * Takes the head in `mode` (see `QueueService.take` and `claim`), waiting up to `waitMs`.
   * @throws INVALID_ARGUMENT (unknown mode, a lease with at_most_once, none with claim),
   *   QUEUE_EMPTY, CANCELLED, LIMIT_EXCEEDED, LEASE_NOT_FOUND, PERMISSION_DENIED, the lease's end
   */
  async take(path: string, opts: TakeOptions = {}): Promise<Delivery> {
    const mode = opts.mode ?? 'at_most_once';
    if (!DELIVERY_MODES.includes(mode)) throw invalidArgument('mode', `must be one of ${DELIVERY_MODES.join(', ')}`);
    this.ctx.authorize('queue', path);
    const wait = { waitMs: waitBefore(opts.waitMs, opts.deadline), signal: opts.signal };
    const { queues } = this.ctx.services;
    if (mode === 'claim') {
      const lease = this.ctx.lease(opts.leaseId, 'lease.write', 'leaseId');
      return { mode, ...(await queues.claim(lease, path, wait)) };
    }
    if (opts.leaseId !== undefined) throw invalidArgument('leaseId', 'only with mode claim (an at_most_once take owns nothing)');
    const release = wait.waitMs ? this.ctx.tenant.quotas.take('subscriptions') : (): void => undefined;
    try {
      return { mode, ...(await queues.take(this.ctx.tenant, path, wait)) };
    } finally {
      release();
    }
  }

  /** Acknowledges a claimed item (deletes it); idempotent. */
  ack(path: string, leaseId: string, item: string): Promise<ClaimOutcome> {
    this.ctx.authorize('queue', path);
    return this.ctx.services.queues.ack(this.ctx.lease(leaseId, 'lease.write', 'leaseId'), path, item);
  }

  /** Gives a claimed item back (claimable again at once); idempotent. */
  release(path: string, leaseId: string, item: string): Promise<ClaimOutcome> {
    this.ctx.authorize('queue', path);
    return this.ctx.services.queues.release(this.ctx.lease(leaseId, 'lease.write', 'leaseId'), path, item);
  }

  /** Length, claimed count and head (peek). */
  inspect(path: string): Promise<QueueInspection> {
    this.ctx.authorize('queue.read', path);
    return this.ctx.services.queues.inspect(this.ctx.tenant, path);
  }
}
