/**
 * When a one-holder queue's new node is provably alone in its parent, so the acquire can hold
 * without listing (docs/recipes.md, "An uncontended acquire without a listing").
 *
 * ZooKeeper names a sequential node with its parent's count of child CREATES (the stored
 * cversion, PrepRequestProcessor.pRequest2TxnCreate; a delete does not move it — the cversion a
 * stat reports is 2 × creates − children, DataNode.copyStat). So if our node X was the parent's
 * only child at some moment after its create (a listing answered after the create showed it
 * alone, or X was itself proven alone this way), our delete of X was answered before our create
 * of N was sent, and N's sequence is X's + 1, then nothing was created in the parent between X
 * and N and everything that was there at that moment (X alone) is gone: N is the only child.
 *
 * That counter restarts when the parent is deleted and created again (a container swept once
 * empty, or anyone's delete), so the argument also needs the parent to be the same node: an
 * exists watch on it, set once per parent and session (from the acquire after one that found
 * our node alone there: a lock path used once costs nothing extra), clears what is known of it when it fires
 * (deleted or changed). ZooKeeper sends a session its watch events before the answers to its
 * later requests, and the C client and the binding deliver both in that order, each on its own
 * callback (the watcher synchronously): a deletion before N's create is known before N's answer
 * is read. A connection lost or back, an expiry or a new session moves the session's epoch, and
 * everything learned under an older epoch counts for nothing (the watch is set again).
 */
import { parentOf, type Stat, type ZkClient } from '../../zk/index.js';
import type { Tenant } from '../tenants/tenant.js';
import type { WatchHub } from '../watch/hub.js';

/** Parents remembered per tenant (least recently used first out). */
export const SOLE_DIRS_PER_TENANT = 1024;

/** Our node that was alone in its parent; `released` once our delete of it was answered. */
interface Alone {
  readonly node: string;
  readonly seq: number;
  readonly epoch: number;
  released: boolean;
}

/** What is known of one parent on the current session. */
class Dir {
  /** The session epoch under which our exists watch on the parent was answered (the parent present). */
  armedAt = -1;
  /** The epoch an exists watch is in flight under, if one is. */
  armingAt = -1;
  /**
   * A listing once showed our node alone here: only then is the parent watched. A lock path used
   * once (a lock per order id) costs no exists request and no watch held on the server.
   */
  seenAlone = false;
  /** Watch events seen on the parent: an arming that saw one in flight does not count. */
  events = 0;
  alone: Alone | undefined;

  constructor(readonly path: string) {}
}

/** A prediction made before a create: the record that says the parent is empty now. */
export type SolePrediction = Alone | undefined;

/** The parents of one tenant, by path. */
class TenantDirs {
  readonly dirs = new Map<string, Dir>();
  private newest: Dir | undefined;
  constructor(readonly tenant: Tenant) {}

  get epoch(): number {
    return this.tenant.session.epoch;
  }

  /** The parent's record, made most recently used; made if missing (the oldest goes past the bound). */
  dir(path: string): Dir {
    let d = this.dirs.get(path);
    if (d && d === this.newest) return d; // most recently used already: no reordering per acquire
    if (d) {
      this.dirs.delete(path);
    } else {
      d = new Dir(path);
      if (this.dirs.size >= SOLE_DIRS_PER_TENANT) this.dirs.delete(this.dirs.keys().next().value as string);
    }
    this.dirs.set(path, d);
    this.newest = d;
    return d;
  }
}

/**
 * This process's knowledge of which queue parents hold only a node of its own, per tenant;
 * used by `SequentialQueue` for one-holder queues only.
 */
export class SoleDirs {
  private readonly tenants = new WeakMap<Tenant, TenantDirs>();

  constructor(private readonly hub: WatchHub) {}

  private of(tenant: Tenant): TenantDirs {
    let t = this.tenants.get(tenant);
    if (!t) this.tenants.set(tenant, (t = new TenantDirs(tenant)));
    return t;
  }

  /**
   * Called right after our create under `parent` is sent: sets the parent's exists watch if a
   * listing once showed our node alone there and it is not set on this session (it goes after
   * the create, which the parent cannot lose while our node is in it), and answers the record that predicts our node will be alone — then no
   * listing need be sent with the create.
   */
  predict(tenant: Tenant, parent: string, client: ZkClient): SolePrediction {
    const t = this.of(tenant);
    const d = t.dir(parent);
    const epoch = t.epoch;
    if (d.seenAlone && d.armedAt !== epoch && d.armingAt !== epoch) this.arm(t, d, client, epoch);
    const a = d.alone;
    return a && a.released && a.epoch === epoch && d.armedAt === epoch ? a : undefined;
  }

  private arm(t: TenantDirs, d: Dir, client: ZkClient, epoch: number): void {
    d.armingAt = epoch;
    const events = d.events;
    // Counted in zkgate_watch_zk_watches while ZooKeeper holds it, as the recipes' other one-shot watches.
    const uncount = this.hub.countOneShot(t.tenant, 'data');
    const fired = (): void => {
      uncount();
      d.events++;
      d.armedAt = -1;
      d.alone = undefined;
    };
    client.exists(d.path, fired).then(
      (stat) => {
        if (d.armingAt === epoch) d.armingAt = -1;
        // Present, and no event and no connection change since it was sent: the watch is on this
        // parent node. A missing parent's watch (it fires on the create) arms nothing.
        if (stat && d.events === events && t.epoch === epoch) d.armedAt = epoch;
      },
      () => {
        uncount(); // not set (connection loss, no auth): the next create tries again
        if (d.armingAt === epoch) d.armingAt = -1;
      },
    );
  }

  /**
   * After the create's answer: true when `prediction` still stands (no watch event on the parent,
   * no connection change, no other record made since) and `node`'s sequence follows the
   * predicted one's: `node` is alone, and is recorded so. Else the prediction is dropped.
   */
  confirm(tenant: Tenant, prediction: SolePrediction, node: string, seq: number, stat: Stat | null): boolean {
    if (!prediction) return false;
    const t = this.of(tenant);
    const d = t.dirs.get(parentOf(node));
    if (!d || d.alone !== prediction) return false;
    if (stat && seq === ((prediction.seq + 1) | 0) && prediction.epoch === t.epoch && d.armedAt === t.epoch) {
      d.alone = { node, seq, epoch: t.epoch, released: false };
      return true;
    }
    d.alone = undefined; // someone else created meanwhile
    return false;
  }

  /** A listing answered after our create of `node` showed it as the parent's only child. */
  seenAlone(tenant: Tenant, node: string, seq: number): void {
    const t = this.of(tenant);
    const d = t.dirs.get(parentOf(node));
    if (!d) return;
    d.seenAlone = true;
    // Only a watch armed while our node was in the parent proves it the same parent later.
    if (d.armedAt === t.epoch) d.alone = { node, seq, epoch: t.epoch, released: false };
  }

  /** Our delete of `node` was answered (it is gone, deleted by us before anything we send next). */
  released(tenant: Tenant, node: string): void {
    const t = this.tenants.get(tenant);
    const a = t?.dirs.get(parentOf(node))?.alone;
    if (a && a.node === node && a.epoch === t?.epoch) a.released = true;
  }
}

/** The sequence ZooKeeper appended to `requested` (a sequential create's path) to make `node`. */
export function sequenceOf(requested: string, node: string): number {
  return Number(node.slice(requested.length));
}
