/**
 * A fair mutex over a lease, interoperable per flavour with Curator's InterProcessMutex and
 * Kazoo's Lock. Every hold carries a fencing token: the lock node's czxid, which rises with every
 * new holder (sequence numbers do not: they restart when the container parent is re-created).
 * Release is fenced by the exact node and idempotent.
 */
import { joinPath, parentOf } from '../../zk/index.js';
import { ZkgateError, invalidArgument } from '../errors.js';
import type { Lease, LeaseState } from '../leases/lease.js';
import { checkPath } from '../paths.js';
import type { Tenant } from '../tenants/tenant.js';
import { LOCK_FLAVOURS, lockFlavour, type LockFlavour } from './flavours.js';
import { findQueues, type CatalogBounds, type CatalogOptions } from './catalog.js';
import { JoinedWaits } from './joined-wait.js';
import { SequentialQueue, listContenders, type Contender, type LeaveOutcome, type QueueOutcome } from './sequential-queue.js';
import type { Abort } from './wake.js';

/** Longest wait an acquire or campaign accepts, ms. */
export const MAX_WAIT_MS = 600_000;

export interface AcquireOptions {
  /** Naming and ordering rule. @defaultValue 'curator' */
  readonly flavour?: LockFlavour;
  /** How long to wait for the lock, ms; 0 = try-lock. @defaultValue 0 */
  readonly waitMs?: number;
  /** The lock node's data (the holder's id). @defaultValue the lease id as UTF-8 */
  readonly data?: Buffer;
  /** Aborting it gives up the wait; the queue node is deleted. A lazy one is made only for a wait. */
  readonly signal?: Abort;
}

export const LOCK_DEFAULTS = { flavour: 'curator', waitMs: 0 } as const satisfies AcquireOptions;

/**
 * How long after an uncontended acquire the held node's ownership watch (a read with a watch,
 * the one request per cycle Curator does not make) is set: most holds end within a few ms, and
 * their watch cost a ZooKeeper read, its answer and the deleted event, all on the gateway's
 * one session (docs/benchmarks.md › Locks). A deletion of the node behind the gateway's back is
 * then noticed (the lease told lost) up to this much later; a waiter's node is watched before
 * it waits.
 */
export const LOCK_WATCH_AFTER_MS = 100;

/** A held lock. */
export interface LockHold {
  readonly lockPath: string;
  /** Our lock node (full path): the handle for release. */
  readonly node: string;
  /** The lock node's czxid, decimal; strictly greater for every later holder. */
  readonly fencingToken: string;
  readonly flavour: LockFlavour;
  readonly leaseId: string;
  readonly leaseState: LeaseState;
  /** ms from now the hold can be trusted without a fresh answer (`Lease.trustMs`). */
  readonly trustMs: number;
}

/** The answer to a release: `released` false says why nothing changed. */
export interface ReleaseResult {
  readonly released: boolean;
  readonly reason: LeaveOutcome['reason'];
  readonly node: string;
  readonly leaseId: string;
  readonly leaseState: LeaseState;
  /** ms from now the lease's other holds can be trusted (`Lease.trustMs`). */
  readonly trustMs: number;
}

/** A lock as anyone sees it: the holder and the whole queue in order (holder first). */
export interface LockInspection {
  readonly lockPath: string;
  readonly flavour: LockFlavour;
  readonly holder: Contender | null;
  readonly queue: readonly Contender[];
}

/** The locks under a path (`GET /v1/recipes/locks/{path}`). */
export interface LockListing extends CatalogBounds {
  readonly locks: readonly LockInspection[];
}

/** Validates a wait time in ms. @throws INVALID_ARGUMENT naming `field` */
export function checkWaitMs(waitMs: number, field = 'waitMs'): number {
  if (!Number.isInteger(waitMs) || waitMs < 0 || waitMs > MAX_WAIT_MS) throw invalidArgument(field, `must be an integer from 0 to ${MAX_WAIT_MS}`);
  return waitMs;
}

/** Validates a recipe's path (lock, election, semaphore, read-write lock, queue, barrier); the root is refused. */
export function checkRecipePath(path: string): string {
  checkPath(path);
  if (path === '/') throw new ZkgateError('INVALID_PATH', 'the root cannot be a recipe path: name a node below it', { path });
  return path;
}

/** Resolves a node given as a child name or a full path to a child of `parent`. @throws INVALID_ARGUMENT */
export function childNode(parent: string, node: string, field = 'node'): string {
  const full = node.startsWith('/') ? node : joinPath(parent, node);
  if (!node || parentOf(full) !== parent) throw invalidArgument(field, `must be a child of ${parent}`);
  return checkPath(full);
}

export class LockService {
  /** Acquires waiting now, by lease and lock path: an acquire by the same lease joins its wait. */
  private readonly waits = new JoinedWaits<QueueOutcome>({ held: false, reason: 'timeout' });

  constructor(private readonly queue: SequentialQueue) {}

  /**
   * Takes the lock at `lockPath` for the lease, waiting up to `waitMs`. The holder acquiring
   * again gets its hold again; an acquire by a lease whose earlier acquire still waits joins that
   * wait (one node; each caller ends at its own deadline or abort, the node stays while any is
   * left, and all still there are answered with the same hold).
   * @throws LOCK_NOT_ACQUIRED (holder in details) when the wait ends first; the lease's end
   *   (410) or LEASE_UNCERTAIN; INVALID_ARGUMENT/INVALID_PATH; the signal's reason on abort.
   *   The queue node is gone in every failure case.
   */
  async acquire(lease: Lease, lockPath: string, options: AcquireOptions = {}): Promise<LockHold> {
    const opts = { ...options, flavour: options.flavour ?? LOCK_DEFAULTS.flavour, waitMs: options.waitMs ?? LOCK_DEFAULTS.waitMs };
    checkRecipePath(lockPath);
    checkWaitMs(opts.waitMs);
    if (!LOCK_FLAVOURS.includes(opts.flavour)) throw invalidArgument('flavour', `must be one of ${LOCK_FLAVOURS.join(', ')}`);
    const flavour = lockFlavour(opts.flavour);
    // The holder acquiring again gets its hold again (as etcd's mutex for its session's key, and
    // Consul's acquire for its session) instead of queueing behind itself until its wait ends:
    // an acquire sent twice — a retry after a lost answer, a balancer's replay of a request whose
    // connection closed (deploy/haproxy.cfg) — leaves one hold, which one release ends. Looked
    // up without an await: most acquires come from a lease that holds nothing there.
    const mine = lease.ownedChild(lockPath, 'lock');
    if (mine !== undefined) {
      const stat = await this.queue.heldStat(lease, mine);
      if (stat) return this.hold(lease, lockPath, mine, stat.czxid, opts.flavour);
    }
    // The same for an acquire sent twice while the first still waits: the second joins its wait
    // (its data and flavour are the first's) instead of queueing a second node behind the first.
    const outcome = await this.waits.wait(lease, lockPath, Date.now() + opts.waitMs, opts.signal, (joined) =>
      this.queue.enqueue(lease, lockPath, {
        flavour,
        data: opts.data ?? Buffer.from(lease.id, 'utf8'),
        waitMs: opts.waitMs,
        until: joined.until,
        signal: joined.abort,
        kinds: { waiting: 'lock_wait', holding: 'lock' },
        watchAfterMs: LOCK_WATCH_AFTER_MS,
      }),
    );
    if (!outcome.held) {
      const { holder } = await this.inspect(lease.tenant, lockPath, opts.flavour).catch(() => ({ holder: null }));
      const details: Record<string, string | number> = { lockPath, waitMs: opts.waitMs };
      if (holder) Object.assign(details, { holder: holder.node, holderFencingToken: holder.fencingToken, holderSession: holder.ephemeralOwner });
      throw new ZkgateError('LOCK_NOT_ACQUIRED', `lock ${lockPath}: not acquired within ${opts.waitMs} ms`, details);
    }
    return this.hold(lease, lockPath, outcome.node, outcome.stat.czxid, opts.flavour);
  }

  private hold(lease: Lease, lockPath: string, node: string, czxid: string, flavour: LockFlavour): LockHold {
    return { lockPath, node, fencingToken: czxid, flavour, leaseId: lease.id, leaseState: lease.state, trustMs: lease.trustMs() };
  }

  /**
   * Releases the hold (or wait) on `node` if this lease owns it; anything else changes nothing
   * and says so. Idempotent.
   * @throws the lease's end (410): whatever it held is gone already
   */
  async release(lease: Lease, lockPath: string, node: string): Promise<ReleaseResult> {
    checkRecipePath(lockPath);
    const full = childNode(lockPath, node);
    const { left, reason } = await this.queue.leave(lease, full, ['lock', 'lock_wait']);
    return { released: left, reason, node: full, leaseId: lease.id, leaseState: lease.state, trustMs: lease.trustMs() };
  }

  /** The holder and queue of a lock, ordered by `flavour`'s rule. @throws UNAVAILABLE, INVALID_PATH */
  async inspect(tenant: Tenant, lockPath: string, flavour: LockFlavour = 'curator'): Promise<LockInspection> {
    checkRecipePath(lockPath);
    if (!LOCK_FLAVOURS.includes(flavour)) throw invalidArgument('flavour', `must be one of ${LOCK_FLAVOURS.join(', ')}`);
    const { queue } = await listContenders(tenant.client(), lockPath, lockFlavour(flavour));
    return { lockPath, flavour, holder: queue[0] ?? null, queue };
  }

  /**
   * Every lock at or under `path` (Curator and Kazoo naming), each with its holder and queue in
   * order and their fencing tokens; the walk is bounded like a tree listing (`truncated`).
   * @throws INVALID_PATH, INVALID_ARGUMENT (limit), UNAVAILABLE
   */
  async list(tenant: Tenant, path: string, opts: CatalogOptions = {}): Promise<LockListing> {
    const found = await findQueues(tenant, path, LOCK_FLAVOURS, opts);
    const locks = await Promise.all(found.queues.map((q) => this.inspect(tenant, q.path, q.flavour as LockFlavour)));
    return { path: found.path, truncated: found.truncated, limit: found.limit, locks: locks.filter((l) => l.queue.length > 0) };
  }
}
