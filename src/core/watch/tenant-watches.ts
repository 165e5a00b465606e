/**
 * One tenant's shared node watches, keyed by (kind, path), and their reaction to the tenant's
 * ZooKeeper session:
 * - `suspended`: nothing yet (the C client re-registers pending watches when it reconnects)
 * - `reconnected`: every node watch re-reads and sends its subscribers a `resync`
 * - `expired`: every pending watch is void (the session is gone)
 * - `connected` (a new session): every node watch re-reads and re-arms, then sends a `resync`
 */
import { monotonicMs, type Stat, type StateChange, type ZkClient } from '../../zk/index.js';
import type { Logger } from '../logger.js';
import type { Tenant } from '../tenants/tenant.js';
import { NodeWatch, type NodeWatchHost, type NodeWatchKind, type Sink } from './node-watch.js';
import type { WatchKind, WatchStats } from './types.js';

/**
 * Node watches kept without subscribers while their ZooKeeper watch is pending (see `detach`),
 * per tenant, unless config `watch.maxIdleWatches` says otherwise; past it the oldest is dropped.
 */
export const DEFAULT_MAX_IDLE = 1000;
/** Bytes of node data the idle watches of one tenant may hold, unless `watch.maxIdleBytes` says otherwise. */
export const DEFAULT_MAX_IDLE_BYTES = 64 * 1024 * 1024;

/**
 * Let-go data watches (still on the server until their node changes) per idle watch allowed
 * before reads of new nodes stop adopting them: ZooKeeper keeps a watch for ~100 bytes, and
 * cannot remove one (the client has no removeWatches), so this bounds what the cache leaves there.
 */
export const RELEASED_PER_IDLE = 10;

/** How the hub bounds what it keeps without subscribers, per tenant. */
export interface IdleBounds {
  readonly maxIdle: number;
  readonly maxIdleBytes: number;
  /** Whether a read of an unwatched node adopts it (the read-through cache). */
  readonly readThrough: boolean;
}

const RECONNECTED_NOTE = 'zookeeper connection restored: current state; changes while disconnected may have been coalesced';
const NEW_SESSION_NOTE = 'zookeeper session expired and a new one was created: current state; changes in between may have been coalesced';

export class TenantWatches implements NodeWatchHost {
  private readonly watches = new Map<string, NodeWatch>();
  /** Node watches without subscribers, least recently used first, with the data bytes each holds. */
  private readonly idle = new Map<string, number>();
  private idleBytes = 0;
  private adopted = 0;
  readonly subscribers: Record<WatchKind, number> = { data: 0, children: 0, subtree: 0 };
  private reads = 0;
  private resyncs = 0;
  private cacheHits = 0;
  slowConsumers = 0;
  private readonly onState = (c: StateChange): void => this.tenantOnState(c);

  /** Watches of dropped node watches that ZooKeeper still holds until they fire, by kind. */
  private readonly released = { data: 0, children: 0 };
  /**
   * Paths whose data watch was let go while pending, with how many such watchers each has: a read
   * of one of them adopts without a new watch on the server (ZooKeeper keeps one per path and
   * session), a read of another only while there are fewer than `maxReleased` of them.
   */
  private readonly releasedPaths = new Map<string, number>();
  /** How often the session's watches were lost (the counts reset). */
  private sessionsLost = 0;

  constructor(
    readonly tenant: Tenant,
    private readonly log: Logger,
    private readonly bounds: IdleBounds = { maxIdle: DEFAULT_MAX_IDLE, maxIdleBytes: DEFAULT_MAX_IDLE_BYTES, readThrough: true },
  ) {
    tenant.on('state', this.onState);
  }

  client(): ZkClient {
    return this.tenant.client();
  }
  get usable(): boolean {
    return this.tenant.ready;
  }
  get maxChildren(): number {
    return this.tenant.limits.maxChildrenPerListing;
  }
  countRead(): void {
    this.reads++;
  }
  get epoch(): number {
    return this.tenant.session.liveness().epoch;
  }

  /**
   * The data and stat of `path` from its shared data watch when the watch vouches for them (see
   * `NodeWatch.cached`) and ZooKeeper answered the session within a third of its timeout (so a
   * silent partition cannot hide a missed notification); else undefined: read ZooKeeper.
   */
  cached(path: string): { readonly data: Buffer; readonly stat: Stat } | undefined {
    const w = this.watches.get(`data:${path}`);
    if (!w) return undefined;
    const epoch = this.trustedEpoch();
    if (epoch === undefined) return undefined;
    const hit = w.cached(epoch);
    if (!hit) return undefined;
    this.cacheHits++;
    const key = `data:${path}`;
    const bytes = this.idle.get(key);
    if (bytes !== undefined) {
      // Least recently used goes first: a read moves its idle watch to the back.
      this.idle.delete(key);
      this.idle.set(key, bytes);
    }
    return hit;
  }

  /**
   * Whether memory may answer for every node watch named (`kind:path`, as `attach` keys them):
   * each exists and vouches for its state (`NodeWatch.vouches`), under the same session
   * liveness rule as `cached`. What a state built from several watches (a service's instance
   * set) checks before it answers from memory.
   */
  vouch(keys: Iterable<string>): boolean {
    const epoch = this.trustedEpoch();
    if (epoch === undefined) return false;
    for (const key of keys) if (!this.watches.get(key)?.vouches(epoch)) return false;
    return true;
  }

  /**
   * The session epoch, when the session is connected and ZooKeeper answered it within a third
   * of its timeout (so a silent partition cannot hide a missed notification); else undefined.
   */
  private trustedEpoch(): number | undefined {
    const l = this.tenant.session.liveness();
    if (!l.usable || monotonicMs() - l.lastHeardAt > l.sessionTimeoutMs / 3) return undefined;
    return l.epoch;
  }

  /**
   * The read-through cache: reads `path` with a data watch (one round trip, like a plain read)
   * and keeps the node watch idle, so that later reads are answered by `cached` until the node
   * changes. Undefined when it does not apply — adoption is off, the node is already watched
   * (its state does not vouch right now), or the node has no let-go watch pending and those of
   * other nodes reached `RELEASED_PER_IDLE` × `maxIdle` (ZooKeeper cannot remove a watch, so
   * they must not grow without bound): then read ZooKeeper plainly. `missing` when the node does not exist (its creation is watched).
   * @throws what the read threw
   */
  async readThrough(path: string): Promise<{ readonly data: Buffer; readonly stat: Stat } | 'missing' | undefined> {
    const key = `data:${path}`;
    if (!this.bounds.readThrough || this.watches.has(key)) return undefined;
    if (!this.releasedPaths.has(path) && this.releasedPaths.size >= this.bounds.maxIdle * RELEASED_PER_IDLE) return undefined;
    const w = new NodeWatch('data', path, this);
    this.watches.set(key, w);
    let got: { readonly stat: Stat | null; readonly data?: Buffer };
    try {
      got = await w.adopt();
    } finally {
      // Nobody else attached meanwhile: keep it idle if its watch is pending, else let it go.
      if (this.watches.get(key) === w && w.size === 0) this.detached(key, w);
    }
    this.adopted++;
    return got.stat ? { data: got.data ?? Buffer.alloc(0), stat: got.stat } : 'missing';
  }

  /** `path`'s ACL changed: its state answers no read from memory (an idle watch is let go). */
  distrust(path: string): void {
    const key = `data:${path}`;
    const w = this.watches.get(key);
    if (!w) return;
    if (w.size === 0) this.drop(key);
    else w.distrust();
  }

  /** Attaches `sink` to the shared watch of (kind, path), creating it on first use. */
  attach(kind: NodeWatchKind, path: string, sink: Sink): void {
    const key = `${kind}:${path}`;
    this.unidle(key);
    let w = this.watches.get(key);
    if (!w) {
      w = new NodeWatch(kind, path, this);
      this.watches.set(key, w);
    }
    w.add(sink);
  }

  /**
   * Detaches `sink`. When the last one leaves, a node watch whose ZooKeeper watch is still
   * pending is kept (idle) until that watch fires: ZooKeeper cannot remove a watch, so a new one
   * per subscribe would pile up watchers on a quiet node (a long-poll client re-subscribes every
   * wait), and the next subscriber gets the current state without a read.
   */
  detach(kind: NodeWatchKind, path: string, sink: Sink): void {
    const key = `${kind}:${path}`;
    const w = this.watches.get(key);
    if (!w) return;
    w.remove(sink);
    if (w.size > 0) return;
    this.detached(key, w);
  }

  /** `w` has no subscribers left: kept idle while its watch is pending, within the bounds. */
  private detached(key: string, w: NodeWatch): void {
    if (!w.canIdle) {
      this.drop(key);
      return;
    }
    const bytes = w.heldBytes;
    this.unidle(key);
    this.idle.set(key, bytes);
    this.idleBytes += bytes;
    while (this.idle.size > this.bounds.maxIdle || this.idleBytes > this.bounds.maxIdleBytes) {
      this.drop(this.idle.keys().next().value as string);
    }
  }

  private unidle(key: string): void {
    const bytes = this.idle.get(key);
    if (bytes === undefined) return;
    this.idle.delete(key);
    this.idleBytes -= bytes;
  }

  idleWatchFired(w: NodeWatch): void {
    const key = `${w.kind}:${w.path}`;
    if (this.watches.get(key) === w && w.size === 0) this.drop(key);
  }

  releasedWatchSet(w: NodeWatch): void {
    this.release(w);
  }

  releasedWatchFired(w: NodeWatch): void {
    if (this.released[w.kind] > 0) this.released[w.kind]--;
    if (w.kind !== 'data') return;
    const n = this.releasedPaths.get(w.path) ?? 0;
    if (n > 1) this.releasedPaths.set(w.path, n - 1);
    else this.releasedPaths.delete(w.path);
  }

  /**
   * Counts a one-shot watch set outside the hub (a queue waiter's on its predecessor) like a
   * let-go one; the returned call uncounts it once it fired or was never set.
   */
  countOneShot(kind: NodeWatchKind): () => void {
    this.released[kind]++;
    const session = this.sessionsLost;
    let done = false;
    return () => {
      if (done || session !== this.sessionsLost) return; // counts reset with the session's watches
      done = true;
      if (this.released[kind] > 0) this.released[kind]--;
    };
  }

  /** Counts `w`'s pending ZooKeeper watch as let go (still on the server until it fires). */
  private release(w: NodeWatch): void {
    this.released[w.kind]++;
    if (w.kind === 'data') this.releasedPaths.set(w.path, (this.releasedPaths.get(w.path) ?? 0) + 1);
  }

  private drop(key: string): void {
    this.unidle(key);
    const w = this.watches.get(key);
    // ZooKeeper keeps a pending watch until it fires: still ours, and still counted.
    if (w?.isArmed) this.release(w);
    w?.close();
    this.watches.delete(key);
  }

  stats(): WatchStats {
    const zkWatches = { ...this.released };
    for (const w of this.watches.values()) if (w.isArmed) zkWatches[w.kind]++;
    return {
      tenant: this.tenant.name,
      zkWatches,
      idleWatches: this.idle.size,
      subscribers: { ...this.subscribers },
      reads: this.reads,
      slowConsumers: this.slowConsumers,
      resyncs: this.resyncs,
      cacheHits: this.cacheHits,
      idleBytes: this.idleBytes,
      adopted: this.adopted,
    };
  }

  close(): void {
    this.tenant.off('state', this.onState);
    for (const w of this.watches.values()) w.close();
    this.watches.clear();
    this.idle.clear();
    this.idleBytes = 0;
  }

  private tenantOnState(change: StateChange): void {
    // Idle node watches are not worth a read: drop them.
    if (change.state === 'expired' || change.state === 'reconnected' || change.state === 'connected') {
      for (const key of [...this.idle.keys()]) this.drop(key);
    }
    switch (change.state) {
      case 'expired':
        for (const w of this.watches.values()) w.sessionLost();
        this.released.data = this.released.children = 0; // the session's watches are gone
        this.releasedPaths.clear();
        this.sessionsLost++;
        return;
      case 'reconnected':
        this.resyncAll(RECONNECTED_NOTE);
        return;
      case 'connected':
        for (const w of this.watches.values()) w.sessionLost();
        this.released.data = this.released.children = 0;
        this.releasedPaths.clear();
        this.sessionsLost++;
        this.resyncAll(NEW_SESSION_NOTE);
        return;
      default:
        return;
    }
  }

  private resyncAll(note: string): void {
    if (this.watches.size === 0) return;
    this.log.info({ tenant: this.tenant.name, watches: this.watches.size }, 'watch hub: resyncing');
    for (const w of this.watches.values()) {
      this.resyncs++;
      w.resync(note);
    }
  }
}
