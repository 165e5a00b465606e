/**
 * A read-write lock over leases, laid out like Curator 5.4's InterProcessReadWriteLock so gateway
 * clients and Curator processes exclude each other on one path: contenders are
 * `_c_<uuid>-__READ__<seq>` and `_c_<uuid>-__WRIT__<seq>` children of the lock path, ALL children
 * ordered by the text after the last `__READ__`, then after the last `__WRIT__` (Curator's
 * SortingLockInternalsDriver). A writer holds when it is first (and watches its predecessor); a
 * reader holds when no `__WRIT__` node is before it (and watches the first one that is), so a
 * reader arriving after a waiting writer queues behind it: writers are not starved. As in
 * Curator, a lease that holds the write lock may also take the read lock (downgrade). Fencing
 * tokens are czxids: a later writer's is greater than every earlier reader's and writer's.
 */
import { ZkgateError, invalidArgument } from '../errors.js';
import type { Lease, LeaseState } from '../leases/lease.js';
import type { Tenant } from '../tenants/tenant.js';
import { curatorFlavour, curatorSortKey } from './flavours.js';
import { checkRecipePath, checkWaitMs, childNode, type ReleaseResult } from './lock.js';
import { JoinedWaits } from './joined-wait.js';
import { SequentialQueue, firstHolders, listContenders, type Contender, type QueueOutcome, type TurnRule } from './sequential-queue.js';

export type RwMode = 'read' | 'write';
export const RW_MODES: readonly RwMode[] = ['read', 'write'];

const READ = '__READ__';
const WRITE = '__WRIT__';
const sortKey = (name: string): string => curatorSortKey(curatorSortKey(name, READ), WRITE);
const FLAVOURS = { read: curatorFlavour(READ, sortKey), write: curatorFlavour(WRITE, sortKey) } as const;
const KIND = { read: 'read_lock', write: 'write_lock' } as const;

export interface RwAcquireOptions {
  /** `read` (shared) or `write` (exclusive); required. */
  readonly mode?: RwMode;
  /** How long to wait, ms; 0 = try once. @defaultValue 0 */
  readonly waitMs?: number;
  /** The node's data. @defaultValue the lease id as UTF-8 */
  readonly data?: Buffer;
  /** Aborting gives up the wait; the node is deleted. */
  readonly signal?: AbortSignal;
}

/** A held read or write lock. */
export interface RwHold {
  readonly lockPath: string;
  readonly mode: RwMode;
  /** Our node (full path): the handle for release. */
  readonly node: string;
  /** The node's czxid, decimal. */
  readonly fencingToken: string;
  readonly leaseId: string;
  readonly leaseState: LeaseState;
  /** ms from now the hold can be trusted without a fresh answer (`Lease.trustMs`). */
  readonly trustMs: number;
}

/** A contender with its mode (`other`: a child of neither kind, which Curator still orders). */
export type RwContender = Contender & { readonly mode: RwMode | 'other' };

export interface RwInspection {
  readonly lockPath: string;
  /** The writer holding the lock, or null. */
  readonly writer: RwContender | null;
  /** The readers holding it. */
  readonly readers: readonly RwContender[];
  /** Every contender in Curator's order. */
  readonly queue: readonly RwContender[];
}

const modeOf = (name: string): RwContender['mode'] => (name.includes(WRITE) ? 'write' : name.includes(READ) ? 'read' : 'other');

/** Curator's read predicate: hold unless a `__WRIT__` node is ahead (or the lease holds the write lock here). */
function readRule(lease: Lease, lockPath: string): TurnRule {
  return ({ parent, queue, index }) => {
    if (lease.ownedChild(lockPath, 'write_lock') !== undefined) return { held: true };
    const writer = queue.findIndex((n, i) => i < index && n.includes(WRITE));
    return writer < 0 ? { held: true } : { held: false, watch: [{ kind: 'data', path: `${parent}/${queue[writer] as string}` }] };
  };
}

export class RwLockService {
  /** Acquires waiting now, by lease, mode and lock path: an acquire of that mode by the same lease joins its wait. */
  private readonly waits = new JoinedWaits<QueueOutcome>({ held: false, reason: 'timeout' });

  constructor(private readonly queue: SequentialQueue) {}

  /**
   * Takes the read or write lock at `lockPath` for the lease, waiting up to `waitMs`.
   * @throws LOCK_NOT_ACQUIRED (the blocking writer or holder in details) when the wait ends first;
   *   INVALID_ARGUMENT (mode missing or unknown, waitMs), INVALID_PATH; LIMIT_EXCEEDED; the
   *   lease's end; the signal's reason on abort. The node is gone in every failure case.
   */
  async acquire(lease: Lease, lockPath: string, opts: RwAcquireOptions): Promise<RwHold> {
    checkRecipePath(lockPath);
    const mode = opts.mode;
    if (mode === undefined || !RW_MODES.includes(mode)) throw invalidArgument('mode', `must be one of ${RW_MODES.join(', ')}`);
    const waitMs = checkWaitMs(opts.waitMs ?? 0);
    // A lease that holds this mode already gets that hold again (as the mutex: LockService), so
    // an acquire sent twice leaves one hold — a second read node could queue behind a writer
    // that waits for the first, and a second write node waits for the first until its wait ends.
    const mine = lease.ownedChild(lockPath, KIND[mode]);
    if (mine !== undefined) {
      const stat = await this.queue.heldStat(lease, mine);
      if (stat) return this.hold(lease, lockPath, mode, mine, stat.czxid);
    }
    // And one sent while the first still waits joins its wait (as LockService.acquire).
    const outcome = await this.waits.wait(lease, `${mode}:${lockPath}`, Date.now() + waitMs, opts.signal, (joined) =>
      this.queue.enqueue(lease, lockPath, {
        flavour: FLAVOURS[mode],
        data: opts.data ?? Buffer.from(lease.id, 'utf8'),
        waitMs,
        until: joined.until,
        signal: joined.abort,
        kinds: { waiting: 'rwlock_wait', holding: KIND[mode] },
        rule: mode === 'read' ? readRule(lease, lockPath) : firstHolders(1),
      }),
    );
    if (!outcome.held) {
      const seen = await this.inspect(lease.tenant, lockPath).catch(() => null);
      const details: Record<string, string | number> = { lockPath, mode, waitMs };
      const blocker = seen?.writer ?? seen?.readers[0] ?? seen?.queue.find((c) => c.mode === 'write');
      if (blocker) Object.assign(details, { holder: blocker.node, holderMode: blocker.mode, holderFencingToken: blocker.fencingToken });
      throw new ZkgateError('LOCK_NOT_ACQUIRED', `rwlock ${lockPath}: ${mode} lock not acquired within ${waitMs} ms`, details);
    }
    return this.hold(lease, lockPath, mode, outcome.node, outcome.stat.czxid);
  }

  private hold(lease: Lease, lockPath: string, mode: RwMode, node: string, czxid: string): RwHold {
    return { lockPath, mode, node, fencingToken: czxid, leaseId: lease.id, leaseState: lease.state, trustMs: lease.trustMs() };
  }

  /**
   * Releases the lease's hold (or wait) `node`; anything else changes nothing and says so. Idempotent.
   * @throws the lease's end (410): what it held is gone already; INVALID_ARGUMENT
   */
  async release(lease: Lease, lockPath: string, node: string): Promise<ReleaseResult> {
    checkRecipePath(lockPath);
    const full = childNode(lockPath, node);
    const { left, reason } = await this.queue.leave(lease, full, ['read_lock', 'write_lock', 'rwlock_wait']);
    return { released: left, reason, node: full, leaseId: lease.id, leaseState: lease.state, trustMs: lease.trustMs() };
  }

  /** The holding writer or readers and the whole queue in Curator's order. @throws INVALID_PATH, UNAVAILABLE */
  async inspect(tenant: Tenant, lockPath: string): Promise<RwInspection> {
    checkRecipePath(lockPath);
    const { queue } = await listContenders(tenant.client(), lockPath, FLAVOURS.read);
    const all = queue.map((c) => ({ ...c, mode: modeOf(c.node.slice(lockPath.length + 1)) }));
    const firstWriter = all.findIndex((c) => c.mode === 'write');
    const writer = firstWriter === 0 ? (all[0] as RwContender) : null;
    const readers = all.filter((c, i) => c.mode === 'read' && (firstWriter < 0 || i < firstWriter));
    return { lockPath, writer, readers, queue: all };
  }
}
