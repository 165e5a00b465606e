/**
 * Ownership of lease-owned nodes, written once for every kind (plain and sequential ephemerals
 * of the znode API, lock and election queue nodes):
 * - protected create: a create cut by a connection loss is found again once the session is
 *   back — a sequential node by the unique prefix in its name, a plain one by its path and
 *   owning session — and a caller that gives up before knowing leaves nothing: the node is swept
 *   once ZooKeeper answers again (Curator's `withProtection()`);
 * - a watch on every owned node (through the watch hub, so it is shared and counted): its
 *   deletion by anyone but its lease (an operator with zkCli, Curator's `forceRelease`) ends the
 *   lease as `lost` (`node_deleted`), which every channel of the lease reports; nobody is told
 *   "you hold it" afterwards.
 */
import { randomUUID } from 'node:crypto';
import { joinPath, type Stat, type ZkClient } from '../../zk/index.js';
import { ZkgateError, toZkgateError } from '../errors.js';
import { reachable } from '../recipes/reachable.js';
import { onState, signalOf, wake, type Abort } from '../recipes/wake.js';
import type { Tenant } from '../tenants/tenant.js';
import type { WatchHub } from '../watch/hub.js';
import type { WatchEvent } from '../watch/types.js';
import type { Lease, OwnedKind } from './lease.js';
import type { LeaseManager } from './lease-manager.js';

export interface ProtectedCreateOptions {
  readonly data: Buffer;
  readonly mode: 'ephemeral' | 'ephemeral_sequential';
  /** What the lease owns the node as. */
  readonly kind: OwnedKind;
  /** Until when (ms since the epoch) a create cut by a connection loss looks for its node. */
  readonly deadline: number;
  /** Aborting gives up (the node, if it was created, is swept); the lease's end aborts too. */
  readonly signal?: Abort;
  /** Called on NO_NODE (e.g. to create container parents); the create is then tried again. Absent: NO_NODE is thrown. */
  readonly onNoNode?: () => Promise<void>;
  /**
   * Called right after each create request is sent, before its answer: a request sent from it
   * on the same session goes after the create, and ZooKeeper answers a session's requests in
   * order, so it sees the create's effect — one round trip for both (a lock's listing).
   */
  readonly alongside?: (client: ZkClient) => void;
  /**
   * Sets the ownership watch this many ms after the create instead of at once (0, the default:
   * at once), unless `watchNow` asks for it first; a node disowned before then is never
   * watched. For lock holds, most of which end within a few ms: see `LOCK_WATCH_AFTER_MS`.
   */
  readonly watchAfterMs?: number;
}

/** A node `OwnedNodes.createWithStat` made; `stat` is null when it was found after a connection loss. */
export interface OwnedCreated {
  readonly node: string;
  readonly stat: Stat | null;
}

/**
 * Curator's protected name: `_c_<uuid>-` before the last segment's name (`/tasks/task-` →
 * `/tasks/_c_<uuid>-task-`), so ZooKeeper's sequence still ends the name.
 */
export function protectedPath(path: string): string {
  const i = path.lastIndexOf('/');
  return `${path.slice(0, i + 1)}_c_${randomUUID()}-${path.slice(i + 1)}`;
}

export class OwnedNodes {
  /** Ownership watches not set yet (`watchAfterMs`), by lease and node: each sets its watch. */
  private readonly deferred = new WeakMap<Lease, Map<string, () => void>>();
  /** When each of those is due. */
  private readonly later = new Later();

  constructor(
    readonly leases: LeaseManager,
    readonly hub: WatchHub,
  ) {}

  /**
   * Creates an ephemeral node of the lease's session at `path` (for `ephemeral_sequential`, the
   * last segment must be a unique prefix, e.g. from `protectedPath`), owned and watched. After a
   * connection loss it waits for the session (until `deadline`), finds the node if the create was
   * applied, else creates again.
   * @throws the lease's end (410) or LEASE_UNCERTAIN; NODE_EXISTS, NO_NODE and other create
   *   errors; UNAVAILABLE (outcome unknown, any node swept later) at the deadline; the signal's reason
   */
  async create(lease: Lease, path: string, opts: ProtectedCreateOptions): Promise<string> {
    return (await this.createWithStat(lease, path, opts)).node;
  }

  /** `create`, also answering the node's stat from the create itself when it has it. */
  async createWithStat(lease: Lease, path: string, opts: ProtectedCreateOptions): Promise<OwnedCreated> {
    lease.assertUsable();
    for (;;) {
      let node: string | null;
      // The create's stat (create2) names our node by its czxid: another lease of the tenant may
      // later reuse a plain node's path (watchOwned).
      let stat: Stat | null = null;
      try {
        const client = lease.tenant.client();
        const creating = client.createWithStat(path, opts.data, opts.mode);
        opts.alongside?.(client);
        ({ path: node, stat } = await creating);
      } catch (err) {
        const e = toZkgateError(err, path);
        const signal = opts.signal ? AbortSignal.any([signalOf(opts.signal), lease.signal]) : lease.signal;
        if (e.code === 'NO_NODE' && opts.onNoNode) {
          // Making the parents is idempotent: cut by a connection loss, it is done again (and
          // the create sent again) once the session is back, as a cut create is looked for.
          await reachable(lease, path, opts.deadline, signal, opts.onNoNode);
          continue;
        }
        if (e.code !== 'UNAVAILABLE') throw e;
        // The create may have been applied: once connected, look for it.
        node = await this.findAfterLoss(lease, path, opts.mode, opts.deadline, signal).catch((err2: unknown) => {
          this.sweepLater(lease, path, opts.mode); // we give up not knowing whether the node exists
          throw err2;
        });
      }
      if (node) return { node: await this.adopt(lease, node, opts.kind, stat?.czxid, opts.watchAfterMs), stat };
    }
  }

  /**
   * Records that the lease owns `node` as `kind` and watches it (once per node): its deletion
   * by someone else ends the lease as lost. `onDisown` runs when the node is disowned. `czxid`
   * identifies the node when known, for the watch and the lease (else the first state read for
   * the watch does, for the watch only).
   */
  own(lease: Lease, node: string, kind: OwnedKind, onDisown?: () => void, czxid?: string, watchAfterMs = 0): void {
    const watched = lease.owns(node) !== undefined;
    lease.own(node, kind, onDisown);
    if (czxid !== undefined) lease.identify(node, czxid); // the reconnect's re-check compares it too
    if (watched) return;
    if (watchAfterMs <= 0) return void lease.own(node, kind, this.watchOwned(lease, node, czxid));
    let pending = this.deferred.get(lease);
    if (!pending) this.deferred.set(lease, (pending = new Map()));
    const waiting = pending;
    let unfollow: (() => void) | undefined;
    const arm = (): void => {
      putOff();
      waiting.delete(node);
      if (unfollow === undefined && lease.owns(node) !== undefined) unfollow = this.watchOwned(lease, node, czxid);
    };
    const putOff = this.later.add(watchAfterMs, arm);
    waiting.set(node, arm);
    lease.own(node, kind, () => {
      putOff();
      waiting.delete(node);
      unfollow?.();
    });
  }

  /** Sets now the ownership watch of `node` that `watchAfterMs` put off, if it is not set yet. */
  watchNow(lease: Lease, node: string): void {
    this.deferred.get(lease)?.get(node)?.();
  }

  /** Owns a freshly created node; deletes it again if the lease ended meanwhile. */
  private async adopt(lease: Lease, node: string, kind: OwnedKind, czxid: string | undefined, watchAfterMs: number | undefined): Promise<string> {
    this.own(lease, node, kind, undefined, czxid, watchAfterMs);
    if (lease.isEnded) {
      await this.leases.deleteOwned(lease, node);
      lease.assertUsable();
    }
    return node;
  }

  /**
   * Follows `node` through the hub. A state that says it is gone (or not ours) is checked with
   * a read first: the hub may hold an older state of the path, and our own deletes disown the
   * node (ending this watch) before ZooKeeper answers them.
   *
   * "Ours" is this node, not the path: every lease of a tenant shares the tenant's session, so a
   * node deleted and created again at the same path by another lease has the same ephemeralOwner.
   * Its czxid tells them apart: known from the create for a plain node (the hub may still hold
   * the state of an earlier node at the path), else taken from the first state seen (a
   * sequential node's protected name is never reused).
   */
  private watchOwned(lease: Lease, node: string, known?: string): () => void {
    const session = lease.tenant.session;
    let czxid = known;
    const replaced = (stat: Stat): boolean => stat.ephemeralOwner !== `0x${session.sessionId}` || (czxid !== undefined && stat.czxid !== czxid);
    const suspicious = (ev: WatchEvent): boolean => !ev.stat || replaced(ev.stat);
    let checking = false;
    const check = async (): Promise<void> => {
      if (checking) return;
      checking = true;
      try {
        const stat = await lease.tenant.client().exists(node);
        const gone = !stat || replaced(stat);
        // An expired session is the lease manager's to report (session_expired).
        if (gone && lease.owns(node) !== undefined && !lease.isEnded && session.generation === lease.generation) {
          // Disowned first: ending the lease deletes what it owns, and a node at this path now
          // is someone else's.
          lease.disown(node);
          await this.leases.lose(lease, 'node_deleted');
        }
      } catch {
        // Unreachable: the re-check after the reconnect (and the hub's resync) decide.
      } finally {
        checking = false;
      }
    };
    return this.hub.follow(lease.tenant, 'data', node, {
      deliver: (ev) => {
        if (czxid === undefined && ev.stat && !replaced(ev.stat)) czxid = ev.stat.czxid;
        if (suspicious(ev)) void check();
      },
      fail: () => undefined, // e.g. NO_AUTH on the node: only the reconnect re-check covers it
    });
  }

  private async findAfterLoss(lease: Lease, path: string, mode: ProtectedCreateOptions['mode'], deadline: number, signal: AbortSignal): Promise<string | null> {
    const tenant = lease.tenant;
    for (;;) {
      if (tenant.session.isUsable) {
        if (tenant.session.generation !== lease.generation) lease.assertUsable(); // expired: lease lost
        try {
          return await this.ours(tenant, tenant.client(), path, mode);
        } catch (err) {
          if (toZkgateError(err, path).code !== 'UNAVAILABLE') throw toZkgateError(err, path);
        }
      }
      if ((await wake({ deadline, signal, states: [tenant, lease] })) === 'timeout') {
        throw new ZkgateError('UNAVAILABLE', `${path}: zookeeper unreachable; gave up waiting (a node created meanwhile is deleted once it is back)`, {
          path,
          outcome: 'unknown',
        });
      }
    }
  }

  /**
   * The node our create of `path` made, if it was applied: for a sequential create the child
   * with our unique prefix; for a plain one the path itself, if it belongs to this session and
   * to no live lease.
   */
  private async ours(tenant: Tenant, client: ZkClient, path: string, mode: ProtectedCreateOptions['mode']): Promise<string | null> {
    const i = path.lastIndexOf('/');
    const parent = i === 0 ? '/' : path.slice(0, i);
    if (mode === 'ephemeral_sequential') {
      const prefix = path.slice(i + 1);
      try {
        const { children } = await client.children(parent);
        const mine = children.find((c) => c.startsWith(prefix) && /^\d{10}$/.test(c.slice(prefix.length)));
        return mine ? joinPath(parent, mine) : null;
      } catch (err) {
        if (toZkgateError(err).code === 'NO_NODE') return null;
        throw err;
      }
    }
    const stat = await client.exists(path);
    return stat && stat.ephemeralOwner === `0x${tenant.session.sessionId}` && !this.leases.ownerOf(tenant, path) ? path : null;
  }

  /**
   * Deletes, once the lease's session is usable again, the node our create of `path` may have
   * made: a create whose outcome we never learned must not leave a node nobody owns. Nothing
   * to do once that session has expired (its ephemerals are gone).
   */
  private sweepLater(lease: Lease, path: string, mode: ProtectedCreateOptions['mode']): void {
    const tenant = lease.tenant;
    let busy = false;
    const attempt = async (): Promise<void> => {
      if (tenant.session.generation !== lease.generation || tenant.session.state === 'expired') return finish();
      if (!tenant.session.isUsable || busy) return;
      busy = true;
      try {
        const client = tenant.client();
        const node = await this.ours(tenant, client, path, mode);
        if (node) await client.delete(node);
        finish();
      } catch (err) {
        if (toZkgateError(err).code === 'NO_NODE') finish(); // gone already
      } finally {
        busy = false;
      }
    };
    const finish = (): void => off();
    const off = onState(tenant, () => void attempt());
    void attempt();
  }
}

/**
 * Calls due after a delay, on one timer armed for the earliest instead of a `setTimeout` and a
 * `clearTimeout` per call: most deferred ownership watches are called off within a few ms (a
 * lock hold's release), and a timer per hold was a timer list made and dropped per lock cycle
 * (docs/benchmarks.md, locks2). A call runs no earlier than its delay, as with `setTimeout`.
 */
class Later {
  private readonly pending = new Set<{ readonly due: number; readonly run: () => void }>();
  private timer: NodeJS.Timeout | undefined;
  private armedFor = Infinity;

  /** Runs `run` after `ms`; the returned function calls it off (a no-op once it ran). */
  add(ms: number, run: () => void): () => void {
    const entry = { due: performance.now() + ms, run };
    this.pending.add(entry);
    if (entry.due < this.armedFor) this.arm(entry.due);
    return () => void this.pending.delete(entry);
  }

  private arm(at: number): void {
    clearTimeout(this.timer);
    this.armedFor = at;
    this.timer = setTimeout(() => this.fire(), Math.max(0, Math.ceil(at - performance.now())));
    this.timer.unref();
  }

  private fire(): void {
    this.timer = undefined;
    this.armedFor = Infinity;
    const now = performance.now();
    let next = Infinity;
    for (const entry of [...this.pending]) {
      if (entry.due <= now) {
        this.pending.delete(entry);
        entry.run();
      } else if (entry.due < next) next = entry.due;
    }
    // A call that ran may have added another (and armed for it): keep the earlier.
    if (next < this.armedFor) this.arm(next);
  }
}
