/**
 * A work queue in Curator `SimpleDistributedQueue`'s layout, with two delivery modes.
 *
 * Layout under the queue path (created as containers, as Curator's `EnsureContainers` does):
 * - `qn-<seq>`: an item, PERSISTENT_SEQUENTIAL, its data the payload (Curator's `offer`); the
 *   head is the first `qn-` child in name order (Java `String` order, which the 10-digit
 *   sequence makes FIFO); other children are foreign and skipped, as Curator does.
 * - `claims/qn-<seq>`: a claim on that item, EPHEMERAL, owned by the claimer's lease.
 *
 * At-most-once (`take`): read the head, delete it; a delete that finds it gone moves on to the
 * next, so every item goes to exactly one taker (Curator's `take`/`poll` do the same, so both
 * take from one path). A connection loss during the delete leaves its outcome unknown: that
 * item may be consumed without anybody getting it.
 *
 * At-least-once (`claim`/`ack`): a claim creates `claims/<item>`, which only one claimer can
 * create; the item stays until the claimer acks (the item is deleted first, then the claim, so
 * an ack cut in the middle never makes a consumed item claimable). When the claimer's lease ends
 * (revoked, TTL passed, session expired, gateway gone) the claim goes with it and the item is
 * claimable again. A claim deleted by someone else ends the lease as lost (owned-nodes.ts), so
 * an ack can never delete an item somebody else has claimed since.
 */
import { joinPath, nameOf, type Stat, type ZkClient } from '../../zk/index.js';
import { ZkgateError, dataTooLarge, invalidArgument, toZkgateError } from '../errors.js';
import type { Lease, LeaseState } from '../leases/lease.js';
import type { OwnedNodes } from '../leases/owned-nodes.js';
import type { Tenant } from '../tenants/tenant.js';
import { checkRecipePath, checkWaitMs, childNode } from './lock.js';
import { reachable } from './reachable.js';
import { createContainers } from './sequential-queue.js';
import { wake } from './wake.js';

/** Curator SimpleDistributedQueue's item prefix. */
export const ITEM_PREFIX = 'qn-';
/** The child of the queue path holding the claims (one per claimed item, named like it). */
export const CLAIMS_NODE = 'claims';

/** `at_most_once`: a take deletes the item. `claim`: the item stays, claimed by a lease, until acked. */
export type DeliveryMode = 'at_most_once' | 'claim';
export const DELIVERY_MODES: readonly DeliveryMode[] = ['at_most_once', 'claim'];

/** An item put in the queue. */
export interface QueuedItem {
  readonly queuePath: string;
  /** The item's name (`qn-<seq>`): the handle for ack and release. */
  readonly item: string;
  /** Full path of the item. */
  readonly node: string;
}

/** An item as read from the queue. */
export interface QueueItem extends QueuedItem {
  readonly data: Buffer;
  /** The item's stat when read. */
  readonly stat: Stat;
}

/** A claimed item: it stays in the queue until acked; the claim ends with the lease. */
export interface QueueClaim extends QueueItem {
  /** Full path of the claim node. */
  readonly claim: string;
  /** The claim node's czxid, decimal: rises with every claim on this queue. */
  readonly fencingToken: string;
  readonly leaseId: string;
  readonly leaseState: LeaseState;
  /** ms from now the claim can be trusted without a fresh answer (`Lease.trustMs`). */
  readonly trustMs: number;
}

/** The answer to an ack or a release: false says why nothing changed. */
export interface ClaimOutcome {
  readonly done: boolean;
  /**
   * `deleted` (ack: the item is gone), `released` (the item is claimable again),
   * `item_gone` (ack: the item was deleted by someone else already), `pending_reconnect`
   * (the claim is deleted once ZooKeeper is back), `not_owned` (no claim of this lease on it).
   */
  readonly reason: 'deleted' | 'released' | 'item_gone' | 'pending_reconnect' | 'not_owned';
  readonly queuePath: string;
  readonly item: string;
  readonly leaseId: string;
  readonly leaseState: LeaseState;
}

/** A queue as anyone sees it. */
export interface QueueInspection {
  readonly queuePath: string;
  /** Items in the queue (`qn-` children), claimed or not. */
  readonly length: number;
  /** Items with a claim on them. */
  readonly claimed: number;
  /** The first unclaimed item (what the next take or claim would get), or null. */
  readonly head: QueueItem | null;
}

export interface QueueWaitOptions {
  /** How long to wait for an item, ms (0 to 600000); 0 = only if one is there now. @defaultValue 0 */
  readonly waitMs?: number;
  /** Aborting gives up the wait; nothing is left behind (a claim made meanwhile is released). */
  readonly signal?: AbortSignal;
}

const byName = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0); // Java String.compareTo

/** The items among `children`, head first (Curator sorts all children and skips foreign ones). */
export function queueOrder(children: readonly string[]): string[] {
  return children.filter((c) => c.startsWith(ITEM_PREFIX)).sort(byName);
}

/** Runs a read through `reachable`: sent again after a connection loss until the wait's deadline. */
type Look = <R>(op: (client: ZkClient) => Promise<R>) => Promise<R>;

/** One look at the queue: its items head first and the names claimed. */
interface Snapshot {
  readonly items: readonly string[];
  readonly claimed: ReadonlySet<string>;
}

export class QueueService {
  constructor(private readonly owned: OwnedNodes) {}

  /**
   * Appends `data` as a new item (`qn-<seq>`, persistent-sequential; missing parents as containers).
   * @throws DATA_TOO_LARGE, INVALID_PATH, UNAVAILABLE (outcome unknown: the item may exist)
   */
  async put(tenant: Tenant, queuePath: string, data: Buffer): Promise<QueuedItem> {
    checkRecipePath(queuePath);
    checkData(tenant, data);
    const client = tenant.client();
    const prefix = joinPath(queuePath, ITEM_PREFIX);
    for (let attempt = 0; ; attempt++) {
      try {
        const node = await client.create(prefix, data, 'persistent_sequential');
        return { queuePath, item: nameOf(node), node };
      } catch (err) {
        const e = toZkgateError(err, queuePath);
        if (e.code !== 'NO_NODE' || attempt > 2) throw e;
        await createContainers(client, queuePath); // the container parent lapsed or never existed
      }
    }
  }

  /**
   * At-most-once: removes the head and returns it, waiting up to `waitMs` for one. Claimed
   * items are skipped.
   * @throws QUEUE_EMPTY when the wait ends first; UNAVAILABLE (a delete cut by a connection loss:
   *   that item may be consumed); the signal's reason on abort
   */
  async take(tenant: Tenant, queuePath: string, opts: QueueWaitOptions = {}): Promise<QueueItem> {
    checkRecipePath(queuePath);
    const waitMs = checkWaitMs(opts.waitMs ?? 0);
    const signal = opts.signal ?? new AbortController().signal;
    return this.poll(tenant, queuePath, waitMs, signal, (snap, look) => this.tryTake(queuePath, snap, look));
  }

  /**
   * At-least-once: claims the head for `lease` and returns it, waiting up to `waitMs` for an
   * unclaimed item. The item stays until `ack`; when the lease ends it becomes claimable again.
   * @throws QUEUE_EMPTY when the wait ends first; LIMIT_EXCEEDED (maxLocksPerTenant); the
   *   lease's end (410) or LEASE_UNCERTAIN; the signal's reason on abort. No claim is left in
   *   any failure case.
   */
  async claim(lease: Lease, queuePath: string, opts: QueueWaitOptions = {}): Promise<QueueClaim> {
    checkRecipePath(queuePath);
    const waitMs = checkWaitMs(opts.waitMs ?? 0);
    lease.assertUsable();
    const signal = opts.signal ? AbortSignal.any([opts.signal, lease.signal]) : lease.signal;
    const deadline = Date.now() + waitMs;
    try {
      return await this.poll(lease, queuePath, waitMs, signal, (snap, look) => this.tryClaim(lease, queuePath, snap, deadline, signal, look));
    } catch (err) {
      if (lease.isEnded) lease.assertUsable();
      throw err;
    }
  }

  /**
   * Acknowledges a claimed item: deletes it, then the claim. Idempotent: an item this lease
   * has no claim on changes nothing (`not_owned`).
   * @throws the lease's end (410): the claim is gone and the item is claimable again;
   *   UNAVAILABLE (the item's delete is unknown: ack again)
   */
  async ack(lease: Lease, queuePath: string, item: string): Promise<ClaimOutcome> {
    const { node, claim } = this.handles(queuePath, item);
    if (lease.isEnded) lease.assertUsable();
    if (lease.owns(claim) !== 'queue_claim') return this.outcome(lease, queuePath, node, false, 'not_owned');
    let gone = false;
    try {
      await lease.tenant.client().delete(node);
    } catch (err) {
      const e = toZkgateError(err, node);
      if (e.code !== 'NO_NODE') throw e;
      gone = true;
    }
    await this.owned.leases.deleteOwned(lease, claim);
    return this.outcome(lease, queuePath, node, true, gone ? 'item_gone' : 'deleted');
  }

  /**
   * Gives a claimed item back: deletes the claim, so the item is claimable again at once.
   * Idempotent. @throws the lease's end (410): the claim is gone already
   */
  async release(lease: Lease, queuePath: string, item: string): Promise<ClaimOutcome> {
    const { node, claim } = this.handles(queuePath, item);
    if (lease.isEnded) lease.assertUsable();
    if (lease.owns(claim) !== 'queue_claim') return this.outcome(lease, queuePath, node, false, 'not_owned');
    const done = await this.owned.leases.deleteOwned(lease, claim);
    return this.outcome(lease, queuePath, node, true, done === 'pending' ? 'pending_reconnect' : 'released');
  }

  /** Length, claimed count and the first unclaimed item. A missing path is an empty queue. @throws UNAVAILABLE */
  async inspect(tenant: Tenant, queuePath: string): Promise<QueueInspection> {
    checkRecipePath(queuePath);
    const client = tenant.client();
    const snap = await this.snapshot(client, queuePath);
    let head: QueueItem | null = null;
    for (const name of snap.items) {
      if (snap.claimed.has(name)) continue;
      head = await this.read(client, queuePath, name);
      if (head) break;
    }
    const claimed = snap.items.filter((n) => snap.claimed.has(n)).length;
    return { queuePath, length: snap.items.length, claimed, head };
  }

  /**
   * The wait loop shared by take and claim: look, try each candidate in order, else wait until
   * a new item appears or a claim goes (both through the watch hub), the deadline, a session
   * state change or an abort. A connection loss does not end the wait: the reads (`look`) are
   * sent again once the session is back; only a delete cut by it (outcome unknown) ends a take.
   * @param by the claim's lease, or the tenant of a take
   * @throws QUEUE_EMPTY at the deadline; UNAVAILABLE (LEASE_UNCERTAIN) when ZooKeeper stays
   *   unreachable until then
   */
  private async poll<T>(
    by: Lease | Tenant,
    queuePath: string,
    waitMs: number,
    signal: AbortSignal,
    attempt: (snap: Snapshot, look: Look) => Promise<T | null>,
  ): Promise<T> {
    const lease = 'assertUsable' in by ? by : undefined;
    const tenant = 'assertUsable' in by ? by.tenant : by;
    const deadline = Date.now() + waitMs;
    const look: Look = (op) => reachable(by, queuePath, deadline, signal, () => op(tenant.client()));
    for (;;) {
      signal.throwIfAborted();
      const seen = await look((client) => this.snapshot(client, queuePath));
      const got = await attempt(seen, look);
      if (got) return got;
      if (Date.now() >= deadline) throw new ZkgateError('QUEUE_EMPTY', `queue ${queuePath}: no item within ${waitMs} ms`, { queuePath, waitMs });
      const offs: (() => void)[] = [];
      const arm = (w: () => void): void => {
        // Wake for an item we have not seen, or for a claim that went away.
        offs.push(
          this.owned.hub.follow(tenant, 'children', queuePath, {
            deliver: (ev) => void (ev.children?.some((c) => c.startsWith(ITEM_PREFIX) && !seen.items.includes(c)) ? w() : undefined),
            fail: () => w(),
          }),
        );
        if (seen.claimed.size > 0) {
          offs.push(
            this.owned.hub.follow(tenant, 'children', joinPath(queuePath, CLAIMS_NODE), {
              deliver: (ev) => void ([...seen.claimed].some((c) => !ev.children?.includes(c)) ? w() : undefined),
              fail: () => w(),
            }),
          );
        }
      };
      try {
        await wake({ deadline, signal, states: lease ? [tenant, lease] : [tenant], arm });
      } finally {
        for (const off of offs) off();
      }
    }
  }

  private async snapshot(client: ZkClient, queuePath: string): Promise<Snapshot> {
    const list = async (p: string): Promise<string[]> =>
      client.children(p).then(
        (r) => r.children,
        (err: unknown) => {
          if (toZkgateError(err).code === 'NO_NODE') return [];
          throw toZkgateError(err, p);
        },
      );
    const [children, claims] = await Promise.all([list(queuePath), list(joinPath(queuePath, CLAIMS_NODE))]);
    return { items: queueOrder(children), claimed: new Set(claims) };
  }

  /** The item's data and stat, or null when it is gone. */
  private async read(client: ZkClient, queuePath: string, name: string): Promise<QueueItem | null> {
    const node = joinPath(queuePath, name);
    try {
      const { data, stat } = await client.get(node);
      return { queuePath, item: name, node, data, stat };
    } catch (err) {
      if (toZkgateError(err).code === 'NO_NODE') return null;
      throw toZkgateError(err, node);
    }
  }

  private async tryTake(queuePath: string, snap: Snapshot, look: Look): Promise<QueueItem | null> {
    for (const name of snap.items) {
      if (snap.claimed.has(name)) continue;
      const got = await look((client) => this.read(client, queuePath, name));
      if (!got) continue;
      const client = await look(async (c) => c); // no session now: nothing is sent yet
      try {
        // Not sent again after a connection loss: the item may be consumed (UNAVAILABLE, outcome unknown).
        await client.delete(got.node);
        return got;
      } catch (err) {
        const e = toZkgateError(err, got.node);
        if (e.code !== 'NO_NODE' && e.code !== 'NOT_EMPTY') throw e; // taken by someone else: next
      }
    }
    return null;
  }

  private async tryClaim(lease: Lease, queuePath: string, snap: Snapshot, deadline: number, signal: AbortSignal, look: Look): Promise<QueueClaim | null> {
    const claims = joinPath(queuePath, CLAIMS_NODE);
    for (const name of snap.items) {
      if (snap.claimed.has(name)) continue;
      const claim = joinPath(claims, name);
      // A claimer counts against the tenant's maxLocksPerTenant until its claim is disowned.
      const release = lease.tenant.quotas.take('locks');
      try {
        // The session just came back: wait (as for a read) until the lease is active again.
        await look(async () => lease.assertUsable());
        await this.owned.create(lease, claim, {
          data: Buffer.from(lease.id, 'utf8'),
          mode: 'ephemeral',
          kind: 'queue_claim',
          deadline,
          signal,
          onNoNode: async () => void (await createContainers(lease.tenant.client(), claims)),
        });
      } catch (err) {
        release();
        if (toZkgateError(err, claim).code === 'NODE_EXISTS') continue; // claimed by someone else
        throw err;
      }
      this.owned.own(lease, claim, 'queue_claim', release);
      try {
        const got = await look((client) => this.read(client, queuePath, name));
        const stat = got && (await look((client) => client.exists(claim)));
        signal.throwIfAborted(); // the caller went away meanwhile: give the item back
        if (got && stat) return { ...got, claim, fencingToken: stat.czxid, leaseId: lease.id, leaseState: lease.state, trustMs: lease.trustMs() };
        await this.owned.leases.deleteOwned(lease, claim); // acked by its last claimer meanwhile
      } catch (err) {
        await this.owned.leases.deleteOwned(lease, claim).catch(() => undefined);
        throw err;
      }
    }
    return null;
  }

  private handles(queuePath: string, item: string): { node: string; claim: string } {
    checkRecipePath(queuePath);
    const node = childNode(queuePath, item, 'item');
    if (!nameOf(node).startsWith(ITEM_PREFIX)) throw invalidArgument('item', `must be a queue item (${ITEM_PREFIX}<seq>)`);
    return { node, claim: joinPath(joinPath(queuePath, CLAIMS_NODE), nameOf(node)) };
  }

  private outcome(lease: Lease, queuePath: string, node: string, done: boolean, reason: ClaimOutcome['reason']): ClaimOutcome {
    return { done, reason, queuePath, item: nameOf(node), leaseId: lease.id, leaseState: lease.state };
  }
}

/** @throws DATA_TOO_LARGE past the tenant's `limits.maxDataBytes` */
export function checkData(tenant: Tenant, data: Buffer): void {
  const max = tenant.limits.maxDataBytes;
  if (data.length > max) throw dataTooLarge(data.length, max);
}
