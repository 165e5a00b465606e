/**
 * The ZooKeeper queue algorithm behind locks and elections, written once (Curator's
 * `LockInternals` with a driver): create an ephemeral-sequential node under a unique prefix,
 * owned by the lease; list and order the children by the flavour's rule; the first `maxHolders`
 * hold; a waiter watches ONLY its predecessor (a get with a watcher, as Curator does, so no
 * exists-watch lingers on a missing node); when the predecessor is already gone, list again.
 * On any failure or give-up our node is deleted (NONODE counts as done), so nothing is left in
 * the queue. Our node is created (create2: with its stat), found after a connection loss, swept
 * and watched by the ownership module (`OwnedNodes`). Fewer round trips than Curator, same
 * order of events: the first listing goes out right behind the create (one round trip for
 * both), and the waiter right behind the first in line — or behind a node that held in this
 * process — holds on its predecessor's delete without listing again; in a one-holder queue whose
 * parent held only our last node, an acquire lists not at all when its node's sequence number
 * proves it alone (`SoleDirs`). A standard-rule waiter
 * watches its predecessor straight on the session, and so does a custom rule's waiter on a node
 * it waits to be gone (a read-write lock's writer ahead); a custom rule's other watches (a
 * semaphore's count and listing) go through the watch hub.
 */
import { ancestorsOf, joinPath, nameOf, type ChildrenResult, type Stat, type ZkClient } from '../../zk/index.js';
import { ZkgateError, cancelled, toZkgateError } from '../errors.js';
import type { Lease, OwnedKind } from '../leases/lease.js';
import type { OwnedNodes } from '../leases/owned-nodes.js';
import type { WatchEvent } from '../watch/types.js';
import type { QueueFlavour } from './flavours.js';
import { SoleDirs, sequenceOf, type SolePrediction } from './sole-dirs.js';
import { LazySignal, signalOf, wake, type Abort } from './wake.js';

export interface EnqueueOptions {
  readonly flavour: QueueFlavour;
  /** Data of our node. */
  readonly data: Buffer;
  /** How long to wait for a place among the holders, ms; 0 tries once (try-lock). */
  readonly waitMs: number;
  /**
   * The wait's deadline (ms since the epoch) read again at every pass, instead of `waitMs`
   * from now (then ignored): a joined wait's (`JoinedWaits`) moves later when a caller joins;
   * a deadline already past tries once.
   */
  readonly until?: () => number;
  /** Aborting it gives up: our node is deleted and the call rejects with the signal's reason. */
  readonly signal?: Abort;
  /** What the lease owns our node as while it waits, and once it holds. */
  readonly kinds: { readonly waiting: OwnedKind; readonly holding: OwnedKind };
  /** How many contenders hold at once (1 for a mutex or a leader). @defaultValue 1 */
  readonly maxHolders?: number;
  /**
   * Who holds, when it is not simply the first `maxHolders` (Curator's `getsTheLock` of a
   * custom driver: a read lock, a semaphore's permit count). Replaces `maxHolders`.
   */
  readonly rule?: TurnRule;
  /**
   * Puts off our node's ownership watch (`ProtectedCreateOptions.watchAfterMs`) while it holds
   * from the first listing; a waiter's is set before it waits (the heir's shortcut reads it).
   */
  readonly watchAfterMs?: number;
}

/** What a waiter waits on: a node's data watch or its children watch. */
export interface Watched {
  readonly kind: 'data' | 'children';
  readonly path: string;
  /**
   * Without it the wait ends when the node is gone (a predecessor); with it, when the node's
   * zxid (mzxid for data, pzxid for children, "0" when missing) is no longer this one.
   */
  readonly seen?: string;
}

/** One pass's view for a `TurnRule`: the children in queue order, our index, the parent's pzxid. */
export interface TurnView {
  readonly parent: string;
  readonly queue: readonly string[];
  readonly index: number;
  readonly pzxid: string;
}

/** Hold now, or wait until something in `watch` changes and look again. */
export type Turn = { readonly held: true } | { readonly held: false; readonly watch: readonly Watched[] };

/** Decides one pass (may read ZooKeeper, e.g. a shared count). */
export type TurnRule = (view: TurnView) => Turn | Promise<Turn>;

/** The standard rule: the first `maxHolders` hold; a waiter watches the node `maxHolders` ahead. */
export function firstHolders(maxHolders: number): TurnRule {
  return ({ parent, queue, index }) =>
    index < maxHolders ? { held: true } : { held: false, watch: [{ kind: 'data', path: joinPath(parent, queue[index - maxHolders] as string) }] };
}

/** The outcome: held (with our node's stat) or given up after `waitMs` (our node is deleted). */
export type QueueOutcome =
  | { readonly held: true; readonly node: string; readonly stat: Stat }
  | { readonly held: false; readonly reason: 'timeout' };

/** `deleted`; `pending_reconnect` (deleted once the session is back); `not_owned` (not this lease's, or gone already). */
export interface LeaveOutcome {
  readonly left: boolean;
  readonly reason: 'deleted' | 'pending_reconnect' | 'not_owned';
}

/**
 * Our node in the queue: its stat from the create (null when found after a loss), the listing
 * sent with it, and whether it is proven alone in the parent without one (`SoleDirs`).
 */
interface Contending {
  readonly node: string;
  readonly stat: Stat | null;
  readonly listing: Promise<ChildrenResult> | undefined;
  readonly alone: boolean;
  /** Its sequence number (one-holder queues only: what `SoleDirs` records). */
  readonly seq?: number;
}

/** The standard rule with one holder: a hold hands over to the next waiter (`SequentialQueue.hold`). */
function oneHolder(opts: EnqueueOptions): boolean {
  return opts.rule === undefined && (opts.maxHolders ?? 1) === 1;
}

/** What a contender holds as: the recipe and the ordering, which a follower must share. */
function holdsAs(opts: EnqueueOptions): string {
  return `${opts.kinds.holding}:${opts.flavour.name}`;
}

/** A node of this process holding under a one-holder standard rule (a lock, a leader). */
interface Holding {
  readonly tenant: Lease['tenant'];
  /** The recipe and ordering it holds under: only a waiter of the same follows it. */
  readonly as: string;
}

/** A waiter of this process on its predecessor: told when that node holds. */
interface Follower {
  readonly tenant: Lease['tenant'];
  readonly as: string;
  /** The predecessor held (here, under our rule) since we listed. */
  predecessorHeld: boolean;
}

/**
 * Our lease's release of our node while it waits, as a lazy abort: its `AbortController` is
 * made only for a wait (most acquires hold at once, and a controller with its signal was a few
 * µs of every lock cycle: docs/benchmarks.md, locks, 11:00 UTC).
 */
class Released extends LazySignal {
  private controller: AbortController | undefined;
  private reason: Error | undefined;

  abort(reason: Error): void {
    if (this.reason) return;
    this.reason = reason;
    this.controller?.abort(reason);
  }

  throwIfAborted(): void {
    if (this.reason) throw this.reason;
  }

  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.reason) this.controller.abort(this.reason);
    }
    return this.controller.signal;
  }
}

/** Runs the queue algorithm for lease-owned contenders in one tenant. */
export class SequentialQueue {
  /** Nodes holding now, by path: a waiter behind one holds once it is gone (`waitForTurn`). */
  private readonly holding = new Map<string, Holding>();
  /** Waiters by the predecessor they watch. */
  private readonly following = new Map<string, Set<Follower>>();
  /** One-holder queues' parents where our last node was alone: an acquire there skips the listing. */
  private readonly sole: SoleDirs;

  constructor(private readonly owned: OwnedNodes) {
    this.sole = new SoleDirs(owned.hub);
  }

  /** The watch hub the queue (and election observe) follow nodes through. */
  get hub(): OwnedNodes['hub'] {
    return this.owned.hub;
  }

  private get leases(): OwnedNodes['leases'] {
    return this.owned.leases;
  }

  /**
   * The stat of a node the lease holds, for an acquire by the holder that answers the hold again
   * (its czxid is the fencing token): from the hub when it follows the node, else read; null when
   * the node is gone (the ownership watch then ends the lease lost).
   * @throws the lease's end (410), LEASE_UNCERTAIN, UNAVAILABLE
   */
  async heldStat(lease: Lease, node: string): Promise<Stat | null> {
    lease.assertUsable();
    const cached = this.owned.hub.cached(lease.tenant, node)?.stat;
    if (cached) return cached;
    try {
      return await lease.tenant.client().exists(node);
    } catch (err) {
      throw toZkgateError(err, node);
    }
  }

  /**
   * Joins the queue under `parent` and waits until our node is among the holders.
   * @throws LIMIT_EXCEEDED past the tenant's maxLocksPerTenant (before anything is created), the
   *   lease's end (410) when it ends while waiting (LEASE_LOST when our node is deleted by
   *   someone else), LEASE_UNCERTAIN when the session is still suspended at the deadline,
   *   CANCELLED (`released`) when our own lease releases our node while we wait, the signal's
   *   reason on abort; our node is deleted in every case
   */
  async enqueue(lease: Lease, parent: string, opts: EnqueueOptions): Promise<QueueOutcome> {
    lease.assertUsable();
    // A waiter or holder counts against the tenant's maxLocksPerTenant until its node is disowned.
    const release = lease.tenant.quotas.take('locks');
    let kept = false;
    try {
      const fixed = Date.now() + opts.waitMs;
      const until = opts.until ?? ((): number => fixed);
      // The caller's signal; createWithStat adds the lease's end itself.
      const contending = await this.createContender(lease, parent, opts, until(), opts.signal);
      const { node } = contending;
      // Our own lease releasing our node (a release or resign naming it) ends the wait at once;
      // once the wait is over, releasing the node aborts nothing (no error is made for it).
      const released = new Released();
      let waiting = true;
      lease.own(node, opts.kinds.waiting, () => void (waiting ? released.abort(cancelled('released', `${node}: released by its lease while it waited`)) : undefined));
      try {
        const aborts: readonly Abort[] = opts.signal ? [opts.signal, lease.signal, released] : [lease.signal, released];
        const outcome = await this.waitForTurn(lease, parent, contending, opts, until, aborts).finally(() => (waiting = false));
        if (outcome.held) {
          this.owned.own(lease, node, opts.kinds.holding, oneHolder(opts) ? this.hold(lease, node, holdsAs(opts), release) : release);
          kept = true;
        } else await this.leases.deleteOwned(lease, node);
        return outcome;
      } catch (err) {
        await this.leases.deleteOwned(lease, node).catch(() => undefined);
        if (lease.isEnded) lease.assertUsable();
        throw err;
      }
    } finally {
      if (!kept) release();
    }
  }

  /**
   * Records that `node` holds under a one-holder rule and tells its waiter, if it is ours;
   * returns what its disowning must run (`release`, and the record goes: a waiter that starts
   * following it later lists again).
   */
  private hold(lease: Lease, node: string, as: string, release: () => void): () => void {
    const entry: Holding = { tenant: lease.tenant, as };
    this.holding.set(node, entry);
    for (const f of this.following.get(node) ?? []) if (f.tenant === lease.tenant && f.as === as) f.predecessorHeld = true;
    return () => {
      if (this.holding.get(node) === entry) this.holding.delete(node);
      release();
    };
  }

  /** Follows `predecessor` until the returned function is called (see `hold`). */
  private follow(lease: Lease, predecessor: string, as: string): { readonly follower: Follower; readonly unfollow: () => void } {
    const held = this.holding.get(predecessor);
    const follower: Follower = { tenant: lease.tenant, as, predecessorHeld: held !== undefined && held.tenant === lease.tenant && held.as === as };
    let set = this.following.get(predecessor);
    if (!set) this.following.set(predecessor, (set = new Set()));
    const mine = set;
    mine.add(follower);
    return {
      follower,
      unfollow: () => {
        mine.delete(follower);
        if (mine.size === 0 && this.following.get(predecessor) === mine) this.following.delete(predecessor);
      },
    };
  }

  /**
   * Leaves the queue: deletes `node` if the lease owns it as one of `kinds`; anything else
   * changes nothing and says so. Idempotent.
   * @throws the lease's end (410): whatever it owned is gone already
   */
  async leave(lease: Lease, node: string, kinds: readonly OwnedKind[]): Promise<LeaveOutcome> {
    if (lease.isEnded) lease.assertUsable();
    const kind = lease.owns(node);
    if (!kind || !kinds.includes(kind)) return { left: false, reason: 'not_owned' };
    const done = await this.leases.deleteOwned(lease, node);
    if (done === 'deleted') this.sole.released(lease.tenant, node);
    return { left: true, reason: done === 'pending' ? 'pending_reconnect' : 'deleted' };
  }

  /**
   * Creates our ephemeral-sequential node (and container parents, as Curator does), with the
   * first listing of the queue sent right behind the create: ZooKeeper answers both in one round
   * trip, the listing as of after the create (a session's requests are answered in order). In a
   * one-holder queue whose parent held only our previous node, released since (`SoleDirs`), no
   * listing is sent: the create's sequence number says whether our node is alone, and only when
   * it is not is the queue listed after the answer.
   */
  private async createContender(lease: Lease, parent: string, opts: EnqueueOptions, deadline: number, signal: Abort | undefined): Promise<Contending> {
    let listing: Promise<ChildrenResult> | undefined;
    const requested = joinPath(parent, opts.flavour.newPrefix());
    const sole = oneHolder(opts);
    let predicted: SolePrediction;
    const created = await this.owned.createWithStat(lease, requested, {
      data: opts.data,
      mode: 'ephemeral_sequential',
      kind: opts.kinds.waiting,
      deadline,
      signal,
      onNoNode: async () => void (await createContainers(lease.tenant.client(), parent)),
      alongside: (client) => {
        predicted = sole ? this.sole.predict(lease.tenant, parent, client) : undefined;
        if (predicted) return void (listing = undefined);
        listing = client.children(parent);
        listing.catch(() => undefined); // a failed create's listing fails too; the first pass lists again
      },
      watchAfterMs: opts.watchAfterMs,
    });
    if (!sole) return { ...created, listing, alone: false };
    const seq = sequenceOf(requested, created.node);
    return { ...created, listing, seq, alone: this.sole.confirm(lease.tenant, predicted, created.node, seq, created.stat) };
  }

  /** The loop: list, order, hold or watch the predecessor, repeat. */
  private async waitForTurn(
    lease: Lease,
    parent: string,
    contending: Contending,
    opts: EnqueueOptions,
    deadline: () => number,
    aborts: readonly Abort[],
  ): Promise<QueueOutcome> {
    const { node } = contending;
    let listing = contending.listing;
    // The standard rule: the first `maxHolders` hold, each waiter watches the node `maxHolders` ahead.
    const standard = opts.rule === undefined;
    const maxHolders = opts.maxHolders ?? 1;
    // What a one-holder standard rule holds as (`hold`): its waiters may hold on a hand-over.
    const handOver = oneHolder(opts) ? holdsAs(opts) : undefined;
    // Proven alone by its sequence number (`SoleDirs`): first in line, nothing to list.
    if (contending.alone && contending.stat && lease.state === 'active') return { held: true, node, stat: contending.stat };
    for (;;) {
      for (const a of aborts) a.throwIfAborted();
      const step = await this.step(lease, parent, contending, opts.rule ?? firstHolders(maxHolders), opts.flavour, listing, standard ? maxHolders : undefined);
      listing = undefined;
      if (step.kind === 'held') return { held: true, node, stat: step.stat };
      // A try-lock's deadline is its start: it waits only once a caller with a wait joins it.
      if (Date.now() >= deadline()) {
        if (step.kind === 'wait') return { held: false, reason: 'timeout' };
        lease.assertUsable(); // LEASE_UNCERTAIN while ownership cannot be confirmed
        throw new ZkgateError('UNAVAILABLE', `${parent}: zookeeper unreachable until the deadline`, { path: parent });
      }
      // A waiter is watched from now on: a deletion behind our back must end its wait.
      this.owned.watchNow(lease, node);
      const unfollow: (() => void)[] = [];
      let predecessorGone = false;
      // A one-holder waiter whose predecessor held (here) is first once it is gone: no listing.
      let follower: Follower | undefined;
      const arm =
        step.kind !== 'wait'
          ? undefined
          : standard
            ? (w: () => void): void => {
                const predecessor = (step.watch[0] as Watched).path;
                if (handOver) {
                  const f = this.follow(lease, predecessor, handOver);
                  follower = f.follower;
                  unfollow.push(f.unfollow);
                }
                this.watchPredecessor(lease, predecessor, () => {
                  predecessorGone = true;
                  w();
                }, w);
              }
            : (w: () => void): void => {
                // Wake when a watched node changes (or cannot be followed): then list again.
                for (const t of step.watch) {
                  // A node waited on until it is gone (a read-write lock's writer ahead): a one-shot
                  // watch, as for the standard rule; through the hub its deletion would leave an
                  // exists watch on a path no one creates again.
                  if (t.kind === 'data' && t.seen === undefined) {
                    this.watchPredecessor(lease, t.path, w, w);
                    continue;
                  }
                  const changed = (ev: WatchEvent): boolean => (t.seen === undefined ? !ev.stat : ev.zxid !== t.seen);
                  unfollow.push(this.owned.hub.follow(lease.tenant, t.kind, t.path, { deliver: (ev) => void (changed(ev) ? w() : undefined), fail: () => w() }));
                }
              };
      try {
        await wake({ deadline: deadline(), signal: aborts.map(signalOf), states: [lease.tenant, lease], arm });
      } finally {
        for (const off of unfollow) off();
      }
      if (predecessorGone && step.kind === 'wait' && (step.heir || follower?.predecessorHeld === true)) {
        const stat = this.heldWithoutListing(lease, contending);
        if (stat) return { held: true, node, stat };
      }
    }
  }

  /**
   * Curator's wait for a standard-rule waiter: a one-shot data watch set by reading the
   * predecessor, straight on the tenant's session. It fires once (deleted or changed) and is
   * then gone from ZooKeeper, where the hub would re-read a deleted node and leave an exists
   * watch on its path for good. `gone` when it is deleted (or already was), `other` otherwise.
   */
  private watchPredecessor(lease: Lease, path: string, gone: () => void, other: () => void): void {
    // Counted in zkgate_watch_zk_watches while ZooKeeper holds it (not after a failed read).
    const uncount = this.owned.hub.countOneShot(lease.tenant, 'data');
    try {
      lease.tenant
        .client()
        .get(path, (ev) => {
          uncount();
          if (ev.type === 'deleted') gone();
          else other();
        })
        .then(
          () => undefined,
          (err: unknown) => {
            uncount();
            if (toZkgateError(err, path).code === 'NO_NODE') gone();
            else other();
          },
        );
    } catch {
      uncount();
      other(); // no session: the wake on its state change lists again
    }
  }

  /**
   * The heir (the waiter right behind the first in line when it listed) holds once that node is
   * gone, without listing again: a node created since sorts after ours — the rule every holder
   * relies on — so none is ahead of us any more. So does a waiter whose predecessor held in this
   * process (`hold`), wherever it was when it listed: nothing was ahead of that node when it
   * held, nothing between it and us when we listed, and whatever was created since sorts after
   * us. Our own node must still be there: the ownership watch's state vouches for it (had it
   * been deleted first, that event came before the predecessor's). Undefined when nothing
   * vouches for it: then list again.
   */
  private heldWithoutListing(lease: Lease, { node, stat }: Contending): Stat | undefined {
    if (lease.state !== 'active' || !stat) return undefined;
    const mine = this.owned.hub.cached(lease.tenant, node)?.stat;
    return mine && mine.czxid === stat.czxid && mine.ephemeralOwner === `0x${lease.tenant.session.sessionId}` ? stat : undefined;
  }

  /**
   * One pass over the children: `held`; `wait` (for something in `watch` to change); `unreachable`
   * (session down); `uncertain` (first in line, but the lease is not active, so holding cannot
   * be confirmed yet).
   */
  private async step(
    lease: Lease,
    parent: string,
    { node, stat: created, seq }: Contending,
    rule: TurnRule,
    flavour: QueueFlavour,
    pipelined: Promise<ChildrenResult> | undefined,
    heirIndex: number | undefined,
  ): Promise<{ kind: 'held'; stat: Stat } | { kind: 'wait'; watch: readonly Watched[]; heir: boolean } | { kind: 'unreachable' | 'uncertain' }> {
    // Our node is missing: deleted by someone else, which ends the lease as lost (as the
    // ownership watch does, whichever sees it first), or released by our own lease meanwhile.
    const lost = async (): Promise<never> => {
      if (lease.owns(node) !== undefined && !lease.isEnded) {
        lease.disown(node); // gone: nothing to delete, and the path is not ours to delete again
        await this.leases.lose(lease, lease.tenant.session.generation === lease.generation ? 'node_deleted' : 'session_expired');
      }
      lease.assertUsable();
      throw cancelled('released', `${node}: released by its lease while it waited`);
    };
    try {
      const client = lease.tenant.client();
      // The listing sent behind our create counts only if it shows our node: one that does not
      // (it answered a create attempt that failed) proves nothing, so list again.
      const early = await pipelined?.catch(() => undefined);
      const listing =
        early && early.children.includes(nameOf(node))
          ? early
          : await client.children(parent).catch((err: unknown) => (toZkgateError(err, parent).code === 'NO_NODE' ? lost() : Promise.reject(err)));
      // Our node alone in a one-holder queue's parent: the next acquire may skip its listing.
      if (seq !== undefined && listing.children.length === 1 && listing.children[0] === nameOf(node)) this.sole.seenAlone(lease.tenant, node, seq);
      const queue = flavour.order(listing.children);
      const index = queue.indexOf(nameOf(node));
      if (index < 0) return await lost();
      const turn = await rule({ parent, queue, index, pzxid: listing.stat.pzxid });
      if (turn.held) {
        if (lease.state !== 'active') return { kind: 'uncertain' };
        // Our node's stat (its czxid is the fencing token): the create's answer has it (create2);
        // after a create found again following a connection loss, the ownership module's watch
        // on it may have read it already; else read it.
        const stat = created ?? this.owned.hub.cached(lease.tenant, node)?.stat ?? (await client.exists(node));
        if (!stat) return await lost();
        return { kind: 'held', stat };
      }
      return { kind: 'wait', watch: turn.watch, heir: index === heirIndex };
    } catch (err) {
      const e = toZkgateError(err, parent);
      if (e.code === 'UNAVAILABLE') return { kind: 'unreachable' };
      throw e;
    }
  }
}

/**
 * Creates `path` and its missing ancestors as container nodes (Curator's
 * `creatingParentContainersIfNeeded`): the server deletes them once they are empty again.
 * Nodes that exist already are left as they are. Resolves with the nodes it created, top first.
 * @throws UNAVAILABLE, NO_AUTH…
 */
export async function createContainers(client: ZkClient, path: string): Promise<string[]> {
  const created: string[] = [];
  for (const p of [...ancestorsOf(path), path]) {
    try {
      await client.create(p, Buffer.alloc(0), 'container');
      created.push(p);
    } catch (err) {
      const e = toZkgateError(err, p);
      if (e.code !== 'NODE_EXISTS') throw e;
    }
  }
  return created;
}

/** A contender node as seen by anyone (no lease needed). */
export interface Contender {
  /** Full path of the node. */
  readonly node: string;
  readonly data: Buffer;
  /** The node's czxid as a decimal string. */
  readonly fencingToken: string;
  /** Owning session, `0x…`. */
  readonly ephemeralOwner: string;
  /** The node's stat. */
  readonly stat: Stat;
}

/**
 * The contenders under `parent` in the flavour's queue order (holders first), with data and
 * stat; nodes deleted while they are read are left out. A missing parent is an empty queue.
 */
export async function listContenders(client: ZkClient, parent: string, flavour: QueueFlavour): Promise<{ queue: Contender[]; parent: Stat | null }> {
  let listing: { children: string[]; stat: Stat };
  try {
    listing = await client.children(parent);
  } catch (err) {
    if (toZkgateError(err, parent).code === 'NO_NODE') return { queue: [], parent: null };
    throw toZkgateError(err, parent);
  }
  const names = flavour.order(listing.children);
  const read = await Promise.all(
    names.map((n) =>
      client.get(joinPath(parent, n)).catch((err: unknown) => {
        if (toZkgateError(err).code === 'NO_NODE') return null;
        throw toZkgateError(err, parent);
      }),
    ),
  );
  const queue = names.flatMap((n, i) => {
    const r = read[i];
    if (!r) return [];
    const node = joinPath(parent, n);
    return [{ node, data: r.data, fencingToken: r.stat.czxid, ephemeralOwner: r.stat.ephemeralOwner, stat: r.stat }];
  });
  return { queue, parent: listing.stat };
}
