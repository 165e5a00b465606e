/**
 * A counting semaphore over leases, laid out exactly like Curator 5.4's InterProcessSemaphoreV2,
 * so gateway clients and Curator processes share one path:
 * - `<path>/locks`: an InterProcessMutex (`_c_<uuid>-lock-<seq>`) that lets one acquirer at a time in;
 * - `<path>/leases`: one ephemeral-sequential `_c_<uuid>-lease-<seq>` per permit held (plus the
 *   node of the one acquirer waiting).
 * One permit: take the mutex, create a lease node, wait (holding the mutex, watching the children
 * of `leases`) until `leases` has at most `maxPermits` children, release the mutex. k permits are
 * k such rounds; when the wait ends first, every permit taken so far is given back. The max is
 * a convention of the participants or, with `countPath`, Curator's SharedCount there (a 4-byte
 * big-endian int), read and watched while waiting. Both queues run on `SequentialQueue`.
 */
import { ancestorsOf, joinPath, parentOf } from '../../zk/index.js';
import { ZkgateError, invalidArgument, toZkgateError } from '../errors.js';
import type { Lease, LeaseState } from '../leases/lease.js';
import { checkPath } from '../paths.js';
import type { Tenant } from '../tenants/tenant.js';
import { curatorFlavour } from './flavours.js';
import { checkRecipePath, checkWaitMs, childNode } from './lock.js';
import { JoinedWaits, type Joined } from './joined-wait.js';
import { reachable } from './reachable.js';
import { signalOf, type Abort } from './wake.js';
import { SequentialQueue, createContainers, listContenders, type Contender, type LeaveOutcome, type TurnRule } from './sequential-queue.js';

/** Largest max the gateway accepts (SharedCount is a Java int). */
export const MAX_PERMITS = 2_147_483_647;
/** Most permits one acquire takes (each is a node and a unit of the tenant's lock quota). */
export const MAX_PERMITS_PER_ACQUIRE = 1000;

const LOCKS = 'locks';
const LEASES = 'leases';
const LEASE_FLAVOUR = curatorFlavour('lease-');
const LOCK_FLAVOUR = curatorFlavour('lock-');

export interface SemaphoreAcquireOptions {
  /** How many permits to take (k). @defaultValue 1 */
  readonly permits?: number;
  /** The semaphore's N, as every participant agrees; with `countPath`, must equal the count (and seeds it when missing). */
  readonly maxPermits?: number;
  /** Path of a Curator SharedCount holding N; read and watched while waiting. */
  readonly countPath?: string;
  /** How long to wait for all k, ms; 0 tries once. @defaultValue 0 */
  readonly waitMs?: number;
  /** Data of each lease node. @defaultValue the lease id as UTF-8 */
  readonly data?: Buffer;
  /** Aborting gives up: every node of this acquire is deleted. */
  readonly signal?: AbortSignal;
}

/** One permit held: its lease node (the handle for release) and that node's czxid. */
export interface Permit {
  readonly node: string;
  /** The lease node's czxid, decimal: unique per grant, rising with later grants (N holders share the semaphore). */
  readonly fencingToken: string;
}

export interface SemaphoreGrant {
  readonly semaphorePath: string;
  /** The N the grant was made under. */
  readonly maxPermits: number;
  readonly permits: readonly Permit[];
  readonly leaseId: string;
  readonly leaseState: LeaseState;
  /** ms from now the permits can be trusted without a fresh answer (`Lease.trustMs`). */
  readonly trustMs: number;
}

export interface SemaphoreRelease {
  /** True when at least one node was deleted. */
  readonly released: boolean;
  /** `deleted`, `pending_reconnect` or `not_owned` (nothing of this lease there). */
  readonly reason: LeaveOutcome['reason'];
  /** The nodes released. */
  readonly nodes: readonly string[];
  readonly leaseId: string;
  readonly leaseState: LeaseState;
  readonly trustMs: number;
}

export interface SemaphoreInspection {
  readonly semaphorePath: string;
  /** N when known (given, or read from `countPath`); null otherwise. */
  readonly maxPermits: number | null;
  /** Lease nodes holding a permit, oldest first. */
  readonly holders: readonly Contender[];
  /** The lease node of the acquirer waiting for a permit (at most one: it holds the internal lock). */
  readonly waiting: readonly Contender[];
  /** The internal lock's queue (`locks`), its holder first: every acquirer in progress. */
  readonly lockQueue: readonly Contender[];
}

/** A SharedCount's value and its mzxid ("0" when missing). */
interface Count {
  readonly value: number | null;
  readonly zxid: string;
}

function checkCount(value: number, field: string, min: number): number {
  if (!Number.isInteger(value) || value < min || value > MAX_PERMITS) throw invalidArgument(field, `must be an integer from ${min} to ${MAX_PERMITS}`);
  return value;
}

/** What an acquire's rounds took: every permit, and the N last seen; null when the wait ended first. */
type Taken = { readonly permits: readonly Permit[]; readonly maxPermits: number } | null;

export class SemaphoreService {
  /** Acquires waiting now, by lease and semaphore path (labelled with their permit count). */
  private readonly waits = new JoinedWaits<Taken>(null);

  constructor(private readonly queue: SequentialQueue) {}

  /**
   * Takes `permits` permits of the semaphore at `path` for the lease, waiting up to `waitMs`.
   * Validates everything (and reads the shared count) before anything is created. A lease that
   * holds permits of the semaphore gets them again, and an acquire by a lease whose earlier
   * acquire still waits joins that wait (as `LockService.acquire`): a retry takes nothing more.
   * @throws PERMITS_NOT_ACQUIRED when the wait ends first (nothing of this call is left);
   *   INVALID_ARGUMENT (permits below 1 or above N, N missing or not matching the shared count,
   *   a count node that is not a SharedCount; permits other than the count the lease holds,
   *   `details.heldPermits`, or waits for, `details.waitingPermits`); INVALID_PATH; LIMIT_EXCEEDED; the lease's end;
   *   LEASE_UNCERTAIN when a ZooKeeper outage lasts until the end of the wait (a shorter one is
   *   ridden through, between rounds too); the signal's reason on abort
   */
  async acquire(lease: Lease, path: string, opts: SemaphoreAcquireOptions): Promise<SemaphoreGrant> {
    checkRecipePath(path);
    const k = opts.permits ?? 1;
    if (!Number.isInteger(k) || k < 1 || k > MAX_PERMITS_PER_ACQUIRE) throw invalidArgument('permits', `must be an integer from 1 to ${MAX_PERMITS_PER_ACQUIRE}`);
    const waitMs = checkWaitMs(opts.waitMs ?? 0);
    if (opts.maxPermits !== undefined && k > checkCount(opts.maxPermits, 'maxPermits', 1)) throw invalidArgument('permits', `must be at most maxPermits (${opts.maxPermits})`);
    lease.assertUsable(); // before a shared count may be seeded: a refused call changes nothing
    const deadline = Date.now() + waitMs;
    const max = await this.agreedMax(lease, path, opts, deadline);
    if (k > max) throw invalidArgument('permits', `must be at most maxPermits (${max})`);
    // Sent twice (a retry after a lost answer, a balancer's replay), taken once: no await from
    // here to the join, so two first acquires cannot both start.
    const waiting = this.waits.running(lease, path);
    const held = waiting === undefined ? this.heldPermits(lease, path) : [];
    if (held.length > 0) {
      const again = await this.heldAgain(lease, path, held, k);
      if (again) return this.grant(lease, path, { permits: again, maxPermits: max });
    } else if (waiting !== undefined && waiting !== String(k)) {
      throw new ZkgateError('INVALID_ARGUMENT', `permits: lease ${lease.id} waits for ${waiting} permits of ${path} already`, { field: 'permits', waitingPermits: Number(waiting) });
    }
    const taken = await this.waits.wait(lease, path, deadline, opts.signal, (joined) => this.take(lease, path, k, max, opts, joined), String(k));
    if (!taken) {
      const seen = await this.inspect(lease.tenant, path, { maxPermits: max }).catch(() => null);
      const details: Record<string, string | number> = { semaphorePath: path, waitMs, permits: k, maxPermits: max };
      if (seen) details.holders = seen.holders.length;
      throw new ZkgateError('PERMITS_NOT_ACQUIRED', `semaphore ${path}: ${k} of ${max} permits not acquired within ${waitMs} ms`, details);
    }
    return this.grant(lease, path, taken);
  }

  private grant(lease: Lease, path: string, taken: NonNullable<Taken>): SemaphoreGrant {
    return { semaphorePath: path, maxPermits: taken.maxPermits, permits: taken.permits, leaseId: lease.id, leaseState: lease.state, trustMs: lease.trustMs() };
  }

  /** The lease nodes the lease holds permits with on the semaphore, in the order taken. */
  private heldPermits(lease: Lease, path: string): string[] {
    const leases = joinPath(path, LEASES);
    return lease.ownedPaths().filter((p) => lease.owns(p) === 'permit' && parentOf(p) === leases);
  }

  /**
   * The permits `held` answered again to their holder's acquire; undefined when one of them is
   * gone (the ownership watch then ends the lease lost). @throws INVALID_ARGUMENT when it holds
   * another count than `k`
   */
  private async heldAgain(lease: Lease, path: string, held: readonly string[], k: number): Promise<Permit[] | undefined> {
    if (held.length !== k) throw new ZkgateError('INVALID_ARGUMENT', `permits: lease ${lease.id} holds ${held.length} permits of ${path} already`, { field: 'permits', heldPermits: held.length });
    const stats = await Promise.all(held.map((n) => this.queue.heldStat(lease, n)));
    const permits = held.map((node, i) => ({ node, fencingToken: stats[i]?.czxid }));
    return permits.every((p): p is Permit => p.fencingToken !== undefined) ? permits : undefined;
  }

  /** The rounds of an acquire (the work every joined caller shares): k permits, or null once the wait ended first (nothing left). */
  private async take(lease: Lease, path: string, k: number, max: number, opts: SemaphoreAcquireOptions, joined: Joined): Promise<Taken> {
    const data = opts.data ?? Buffer.from(lease.id, 'utf8');
    const { rule, current } = this.countRule(lease.tenant, max, opts.countPath);
    const taken: Permit[] = [];
    let done = false;
    try {
      while (taken.length < k) {
        // A connection loss between two rounds does not end the wait: the next round starts once
        // the session is back and the lease active again (until the deadline), as a round's own wait does.
        if (taken.length > 0 && lease.state === 'uncertain') {
          const signal = AbortSignal.any([signalOf(joined.abort), lease.signal]);
          await reachable(lease, path, joined.until(), signal, async () => lease.assertUsable());
        }
        const permit = await this.takeOne(lease, path, { data, rule, until: joined.until, signal: joined.abort });
        if (!permit) break;
        taken.push(permit);
      }
      done = taken.length === k;
    } finally {
      if (!done) await this.giveBack(lease, taken);
    }
    return done ? { permits: taken, maxPermits: current() } : null;
  }

  /**
   * Releases the lease's permit `node` (a lease node, full path or name under `leases`), or
   * with no node every permit and wait of the lease on this semaphore. Idempotent.
   * @throws the lease's end (410): what it held is gone already; INVALID_ARGUMENT
   */
  async release(lease: Lease, path: string, node?: string): Promise<SemaphoreRelease> {
    checkRecipePath(path);
    const leases = joinPath(path, LEASES);
    if (lease.isEnded) lease.assertUsable();
    const targets = node
      ? [childNode(leases, node)]
      : lease.ownedPaths().filter((p) => [leases, joinPath(path, LOCKS)].includes(parentOf(p)) && ['permit', 'permit_wait'].includes(lease.owns(p) ?? ''));
    const outs = await Promise.all(targets.map(async (n) => ({ node: n, out: await this.queue.leave(lease, n, ['permit', 'permit_wait']) })));
    const left = outs.filter((o) => o.out.left);
    const reason = left.length === 0 ? 'not_owned' : left.every((o) => o.out.reason === 'deleted') ? 'deleted' : 'pending_reconnect';
    return { released: left.length > 0, reason, nodes: left.map((o) => o.node), leaseId: lease.id, leaseState: lease.state, trustMs: lease.trustMs() };
  }

  /**
   * Holders, the waiting lease node and the internal lock queue. With N known (given, or read
   * from `countPath`), the newest lease node counts as waiting when there are more than N and
   * an acquirer holds the internal lock; without it, every lease node is listed as a holder.
   * @throws INVALID_PATH, INVALID_ARGUMENT, UNAVAILABLE
   */
  async inspect(tenant: Tenant, path: string, opts: { maxPermits?: number; countPath?: string } = {}): Promise<SemaphoreInspection> {
    checkRecipePath(path);
    if (opts.maxPermits !== undefined) checkCount(opts.maxPermits, 'maxPermits', 1);
    if (opts.countPath !== undefined) checkPath(opts.countPath);
    const client = tenant.client();
    const [leases, locks, count] = await Promise.all([
      listContenders(client, joinPath(path, LEASES), LEASE_FLAVOUR),
      listContenders(client, joinPath(path, LOCKS), LOCK_FLAVOUR),
      opts.countPath ? this.readCount(tenant, opts.countPath) : null,
    ]);
    const max = opts.maxPermits ?? count?.value ?? null;
    const over = max !== null && leases.queue.length > max && locks.queue.length > 0;
    const holders = over ? leases.queue.slice(0, -1) : leases.queue;
    return { semaphorePath: path, maxPermits: max, holders, waiting: over ? leases.queue.slice(-1) : [], lockQueue: locks.queue };
  }

  /** One round: the internal lock, a lease node, the wait for room; the lock is let go in every case. */
  private async takeOne(
    lease: Lease,
    path: string,
    o: { data: Buffer; rule: TurnRule; until: () => number; signal: Abort },
  ): Promise<Permit | null> {
    const kinds = { waiting: 'permit_wait', holding: 'permit_wait' } as const;
    // Each round waits until the acquire's deadline (`until`; a try's is its start: it tries once).
    const lock = await this.queue.enqueue(lease, joinPath(path, LOCKS), { flavour: LOCK_FLAVOUR, data: o.data, waitMs: 0, until: o.until, signal: o.signal, kinds });
    if (!lock.held) return null;
    try {
      const got = await this.queue.enqueue(lease, joinPath(path, LEASES), {
        flavour: LEASE_FLAVOUR,
        data: o.data,
        waitMs: 0,
        until: o.until,
        signal: o.signal,
        kinds: { waiting: 'permit_wait', holding: 'permit' },
        rule: o.rule,
      });
      return got.held ? { node: got.node, fencingToken: got.stat.czxid } : null;
    } finally {
      await this.queue.leave(lease, lock.node, ['permit_wait']).catch(() => undefined);
    }
  }

  /** Curator's test: hold while `leases` has at most N children (N re-read from the count each pass); `current` is the N last seen. */
  private countRule(tenant: Tenant, fixed: number, countPath: string | undefined): { rule: TurnRule; current: () => number } {
    let max = fixed;
    const rule: TurnRule = async ({ parent, queue, pzxid }) => {
      let seen: string | undefined;
      if (countPath) {
        const c = await this.readCount(tenant, countPath);
        max = c.value ?? max; // a deleted count keeps its last value, as Curator's SharedCount does
        seen = c.zxid;
      }
      if (queue.length <= max) return { held: true };
      const watch = [{ kind: 'children' as const, path: parent, seen: pzxid }];
      return { held: false, watch: seen === undefined || !countPath ? watch : [...watch, { kind: 'data' as const, path: countPath, seen }] };
    };
    return { rule, current: () => max };
  }

  /**
   * N for this acquire: `maxPermits`, or the SharedCount at `countPath` (seeded with
   * `maxPermits` when missing, as Curator's SharedCount does); both given must agree. A
   * connection loss is ridden through until the acquire's `deadline`, as its wait is (reading and
   * seeding may simply be sent again).
   * @throws INVALID_ARGUMENT; UNAVAILABLE or LEASE_UNCERTAIN when the outage lasts until `deadline`
   */
  private async agreedMax(lease: Lease, path: string, opts: SemaphoreAcquireOptions, deadline: number): Promise<number> {
    if (opts.maxPermits !== undefined) checkCount(opts.maxPermits, 'maxPermits', 1);
    if (opts.countPath === undefined) {
      if (opts.maxPermits === undefined) throw invalidArgument('maxPermits', 'is required (or countPath naming a shared count)');
      return opts.maxPermits;
    }
    const countPath = checkPath(opts.countPath);
    if (countPath === path || countPath.startsWith(`${path}/`) || countPath === '/') throw invalidArgument('countPath', 'must lie outside the semaphore path');
    const signal = opts.signal ? AbortSignal.any([opts.signal, lease.signal]) : lease.signal;
    const seed = opts.maxPermits;
    let count = await reachable(lease, countPath, deadline, signal, () => this.readCount(lease.tenant, countPath));
    if (count.value === null) {
      if (seed === undefined) throw invalidArgument('countPath', `${countPath} does not exist: give maxPermits to seed it`);
      count = await reachable(lease, countPath, deadline, signal, () => this.seedCount(lease.tenant, countPath, seed));
    }
    const agreed = count.value as number;
    if (opts.maxPermits !== undefined && opts.maxPermits !== agreed) {
      throw new ZkgateError('INVALID_ARGUMENT', `maxPermits: ${opts.maxPermits} does not match the shared count at ${countPath} (${agreed})`, {
        field: 'maxPermits',
        countPath,
        agreedMaxPermits: agreed,
      });
    }
    return agreed;
  }

  /** Reads a SharedCount. @throws INVALID_ARGUMENT when the node is not one (4 bytes) */
  private async readCount(tenant: Tenant, countPath: string): Promise<Count> {
    try {
      const { data, stat } = await tenant.client().get(countPath);
      if (data.length !== 4) throw invalidArgument('countPath', `${countPath} does not hold a shared count (a 4-byte integer)`);
      return { value: data.readInt32BE(0), zxid: stat.mzxid };
    } catch (err) {
      const e = toZkgateError(err, countPath);
      if (e.code === 'NO_NODE') return { value: null, zxid: '0' };
      throw e;
    }
  }

  /** Creates the SharedCount with `seed` (container parents); someone else's create first wins. */
  private async seedCount(tenant: Tenant, countPath: string, seed: number): Promise<Count> {
    const client = tenant.client();
    const parent = ancestorsOf(countPath).at(-1);
    if (parent) await createContainers(client, parent);
    const bytes = Buffer.alloc(4);
    bytes.writeInt32BE(seed, 0);
    try {
      await client.create(countPath, bytes, 'persistent');
    } catch (err) {
      if (toZkgateError(err, countPath).code !== 'NODE_EXISTS') throw toZkgateError(err, countPath);
    }
    return this.readCount(tenant, countPath);
  }

  private async giveBack(lease: Lease, permits: readonly Permit[]): Promise<void> {
    await Promise.all(permits.map((p) => this.queue.leave(lease, p.node, ['permit']).catch(() => undefined)));
  }
}
