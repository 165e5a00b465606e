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

const RECONNECTED_NOTE = 'zookeeper connection restored: current state; changes while disconnected may have been coalesced';
const NEW_SESSION_NOTE = 'zookeeper session expired and a new one was created: current state; changes in between may have been coalesced';

export class TenantWatches implements NodeWatchHost {
  private readonly watches = new Map<string, NodeWatch>();
  /** Keys of node watches without subscribers, oldest first. */
  private readonly idle = new Set<string>();
  readonly subscribers: Record<WatchKind, number> = { data: 0, children: 0, subtree: 0 };
  private reads = 0;
  private resyncs = 0;
  private cacheHits = 0;
  slowConsumers = 0;
  private readonly onState = (c: StateChange): void => this.tenantOnState(c);

  /** Watches of dropped node watches that ZooKeeper still holds until they fire, by kind. */
  private readonly released = { data: 0, children: 0 };
  /** How often the session's watches were lost (the counts reset). */
  private sessionsLost = 0;

  constructor(
    readonly tenant: Tenant,
    private readonly log: Logger,
    private readonly maxIdle = DEFAULT_MAX_IDLE,
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
    const l = this.tenant.session.liveness();
    if (!l.usable || monotonicMs() - l.lastHeardAt > l.sessionTimeoutMs / 3) return undefined;
    const hit = w.cached(l.epoch);
    if (hit) this.cacheHits++;
    return hit;
  }

  /** Attaches `sink` to the shared watch of (kind, path), creating it on first use. */
  attach(kind: NodeWatchKind, path: string, sink: Sink): void {
    const key = `${kind}:${path}`;
    this.idle.delete(key);
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
    if (!w.canIdle) {
      this.drop(key);
      return;
    }
    this.idle.add(key);
    while (this.idle.size > this.maxIdle) this.drop(this.idle.values().next().value as string);
  }

  idleWatchFired(w: NodeWatch): void {
    const key = `${w.kind}:${w.path}`;
    if (this.watches.get(key) === w && w.size === 0) this.drop(key);
  }

  releasedWatchSet(w: NodeWatch): void {
    this.released[w.kind]++;
  }

  releasedWatchFired(w: NodeWatch): void {
    if (this.released[w.kind] > 0) this.released[w.kind]--;
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

  private drop(key: string): void {
    this.idle.delete(key);
    const w = this.watches.get(key);
    // ZooKeeper keeps a pending watch until it fires: still ours, and still counted.
    if (w?.isArmed) this.released[w.kind]++;
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
    };
  }

  close(): void {
    this.tenant.off('state', this.onState);
    for (const w of this.watches.values()) w.close();
    this.watches.clear();
    this.idle.clear();
  }

  private tenantOnState(change: StateChange): void {
    // Idle node watches are not worth a read: drop them.
    if (change.state === 'expired' || change.state === 'reconnected' || change.state === 'connected') {
      for (const key of [...this.idle]) this.drop(key);
    }
    switch (change.state) {
      case 'expired':
        for (const w of this.watches.values()) w.sessionLost();
        this.released.data = this.released.children = 0; // the session's watches are gone
        this.sessionsLost++;
        return;
      case 'reconnected':
        this.resyncAll(RECONNECTED_NOTE);
        return;
      case 'connected':
        for (const w of this.watches.values()) w.sessionLost();
        this.released.data = this.released.children = 0;
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
