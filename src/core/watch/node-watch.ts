/**
 * One ZooKeeper watch shared by every subscriber of one (path, kind): the hub's unit of
 * deduplication. ZooKeeper watches are one-shot and carry no data, so each notification leads
 * to exactly one read that also re-arms the watch (get / getChildren / exists with a watcher),
 * and the state read is compared with the last one to tell what changed. Nothing is skipped:
 * the re-armed watch covers every change after the state just read.
 */
import { ZkError, type Stat, type ZkClient } from '../../zk/index.js';
import { ZkgateError, toZkgateError } from '../errors.js';
import type { WatchEvent, WatchEventType } from './types.js';

/** The kinds one ZooKeeper watch serves; subtrees are built from these. */
export type NodeWatchKind = 'data' | 'children';

/** Receives one node watch's events, in order. The first is always `current` (or `resync`). */
export interface Sink {
  deliver(event: WatchEvent): void;
  /** The watch cannot go on (e.g. NO_AUTH); the sink is dropped after this. */
  fail(err: ZkgateError): void;
}

/** What a node watch needs from its tenant. */
export interface NodeWatchHost {
  /** The tenant's client. @throws UNAVAILABLE while the session is down */
  client(): ZkClient;
  /** Counts one ZooKeeper read. */
  countRead(): void;
  /** Whether the tenant's session is connected now. */
  readonly usable: boolean;
  /** The watch of a node watch without subscribers fired: it is of no further use. */
  idleWatchFired(w: NodeWatch): void;
  /** A read that was in flight when the node watch closed set a ZooKeeper watch: still held. */
  releasedWatchSet(w: NodeWatch): void;
  /** The pending watch of a closed (dropped) node watch fired: ZooKeeper no longer holds it. */
  releasedWatchFired(w: NodeWatch): void;
  /** Most children a children watch may report (`limits.maxChildrenPerListing`). */
  readonly maxChildren: number;
  /** The tenant session's epoch (it changes on every suspension, reconnection and new session). */
  readonly epoch: number;
}

interface Snapshot {
  readonly stat: Stat | null;
  readonly data?: Buffer;
  readonly children?: readonly string[];
}

/** Builds the event for a state; one object is shared by every subscriber. */
function eventOf(type: WatchEventType, kind: NodeWatchKind, path: string, s: Snapshot, note?: string): WatchEvent {
  const ev: { -readonly [K in keyof WatchEvent]: WatchEvent[K] } = {
    type,
    path,
    stat: s.stat,
    zxid: s.stat ? (kind === 'data' ? s.stat.mzxid : s.stat.pzxid) : '0',
  };
  if (s.stat && kind === 'data') ev.data = s.data;
  if (s.stat && kind === 'children') ev.children = s.children;
  if (note) ev.note = note;
  return ev;
}

/** The change events between two states (none when nothing this kind follows changed). */
function changes(kind: NodeWatchKind, path: string, prev: Snapshot, next: Snapshot): WatchEvent[] {
  if (!prev.stat && !next.stat) return [];
  if (!prev.stat) return [eventOf('created', kind, path, next)];
  if (!next.stat) return [eventOf('deleted', kind, path, next)];
  // Deleted and created again between two reads: say both rather than "changed".
  if (prev.stat.czxid !== next.stat.czxid) return [eventOf('deleted', kind, path, { stat: null }), eventOf('created', kind, path, next)];
  if (kind === 'data' && prev.stat.mzxid !== next.stat.mzxid) return [eventOf('data_changed', kind, path, next)];
  if (kind === 'children' && prev.stat.pzxid !== next.stat.pzxid) return [eventOf('children_changed', kind, path, next)];
  return [];
}

/**
 * One plain read of a node's current state (no watch), as a `current` event: for a caller that
 * must check the state itself rather than trust the shared watch (a long-poll after a gap).
 * @throws ZkError other than NO_NODE (a missing node is a state: `stat` null)
 */
export async function readNodeState(client: ZkClient, kind: NodeWatchKind, path: string): Promise<WatchEvent> {
  try {
    if (kind === 'data') {
      const { data, stat } = await client.get(path);
      return eventOf('current', kind, path, { stat, data });
    }
    const { children, stat } = await client.children(path);
    return eventOf('current', kind, path, { stat, children: [...children].sort() });
  } catch (err) {
    if (!(err instanceof ZkError && err.code === 'NO_NODE')) throw err;
    return eventOf('current', kind, path, { stat: null });
  }
}

/** Backoff of re-reads that failed while the session stayed connected (e.g. an operation timeout), ms. */
const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 5000;

/** A sink's mark before its first event. */
const UNPRIMED = -1;

export class NodeWatch {
  /**
   * Attached sinks, each with the number of the state (`stateNo`) it was primed with, or
   * UNPRIMED: one map walked in place by `publish` (no copy, no lookup per sink).
   */
  private readonly sinks = new Map<Sink, number>();
  /** Counts the states published; a sink primed with the state being published is not sent its changes. */
  private stateNo = 0;
  private snap: Snapshot | undefined;
  /** The `current` event of `snap`, one object for every sink primed with that state (serialized once). */
  private current: { readonly of: Snapshot; readonly ev: WatchEvent } | undefined;
  /** True while a ZooKeeper watch set by our last read is pending. */
  private armed = false;
  /** Identifies the watcher of the latest watching read; older ones are ignored when they fire. */
  private token = 0;
  private firedToken = -1;
  private running = false;
  private dirty = false;
  private resyncNote: string | undefined;
  private closed = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryMs = RETRY_MIN_MS;
  /** The session epoch in which the state held was read with our watch pending all along (-1: none). */
  private coveredEpoch = -1;
  /** Bumped by `distrust`: a read begun before it does not vouch for its state. */
  private trustGen = 0;

  constructor(
    readonly kind: NodeWatchKind,
    readonly path: string,
    private readonly host: NodeWatchHost,
  ) {}

  /** Subscribers attached. */
  get size(): number {
    return this.sinks.size;
  }
  /** Whether a ZooKeeper watch is pending for this node watch. */
  get isArmed(): boolean {
    return this.armed && !this.closed;
  }
  /**
   * Whether it can be kept without subscribers and still answer a new one at once: its watch is
   * pending, so the state it holds is still the node's current state.
   */
  get canIdle(): boolean {
    return this.isArmed && this.snap !== undefined && !this.running;
  }

  /**
   * Whether the state held is still the node's state as far as this session can tell: our
   * ZooKeeper watch is pending (so no change was notified since the read), no read is running
   * or due, and the read was made in `epoch` with the watch pending (no suspension, reconnect or
   * expiry since). Every subscriber has been sent that state.
   */
  vouches(epoch: number): boolean {
    return !this.closed && this.armed && !this.running && !this.dirty && this.coveredEpoch === epoch && this.snap !== undefined;
  }

  /** The data and stat held when the watch `vouches` for them; undefined otherwise, and for a missing node. */
  cached(epoch: number): { readonly data: Buffer; readonly stat: Stat } | undefined {
    const s = this.snap;
    if (!this.vouches(epoch) || !s?.stat || !s.data) return undefined;
    return { data: s.data, stat: s.stat };
  }

  /** Bytes of node data the state holds (what an idle watch costs beyond its bookkeeping). */
  get heldBytes(): number {
    return this.snap?.data?.length ?? 0;
  }

  /**
   * The first read of a node watch created for a read (the read-through cache): one read that
   * sets the watch, like `run`'s, but its failure is the caller's to report rather than retried.
   * Subscribers that attached meanwhile are primed with its state (or read again if it failed).
   * @throws what the read threw (a ZkError, UNAVAILABLE while the session is down)
   */
  async adopt(): Promise<{ readonly stat: Stat | null; readonly data?: Buffer }> {
    this.running = true;
    const epoch = this.host.epoch;
    const gen = this.trustGen;
    let next: Snapshot;
    try {
      next = await this.read(true);
    } catch (err) {
      this.running = false;
      if (this.dirty && !this.closed) void this.run();
      throw err;
    }
    this.running = false;
    if (this.armed && this.host.epoch === epoch && this.trustGen === gen) this.coveredEpoch = epoch;
    if (!this.closed) this.publish(next, undefined);
    if (this.dirty && !this.closed) void this.run();
    return next;
  }

  /**
   * Something the watch does not see changed (the node's ACL: ZooKeeper fires no watch for it):
   * the state held answers no read from memory until the next read after a notification.
   */
  distrust(): void {
    this.trustGen++;
    this.coveredEpoch = -1;
  }

  /** Attaches a sink; it gets the current state at once if known, else after the first read. */
  add(sink: Sink): void {
    this.sinks.set(sink, UNPRIMED);
    if (this.snap) this.prime(sink, this.snap);
    else this.kick();
  }

  remove(sink: Sink): void {
    this.sinks.delete(sink);
  }

  /** Re-reads and sends every sink a `resync` with `note` (after a reconnect or a new session). */
  resync(note: string): void {
    this.resyncNote = note;
    this.kick();
  }

  /** The session expired: its watches will never fire, so the next read must set a new one. */
  sessionLost(): void {
    this.armed = false;
    this.coveredEpoch = -1;
    this.token++;
  }

  /** Stops reading; a pending ZooKeeper watch is ignored when it fires. */
  close(): void {
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.sinks.clear();
    this.snap = undefined; // a pending watcher keeps this object alive until it fires: keep it small
    this.current = undefined;
  }

  private prime(sink: Sink, s: Snapshot): void {
    this.sinks.set(sink, this.stateNo);
    if (this.current?.of !== s) this.current = { of: s, ev: eventOf('current', this.kind, this.path, s) };
    sink.deliver(this.current.ev);
  }

  private kick(): void {
    this.dirty = true;
    if (!this.running) void this.run();
  }

  private onFire(token: number): void {
    if (this.closed && this.armed && token === this.token && this.firedToken !== token) {
      this.firedToken = token;
      this.armed = false;
      this.host.releasedWatchFired(this);
      return;
    }
    if (this.closed || token !== this.token || this.firedToken === token) return;
    this.firedToken = token;
    this.armed = false;
    if (this.sinks.size === 0) {
      this.host.idleWatchFired(this);
      return;
    }
    this.kick();
  }

  private async run(): Promise<void> {
    this.running = true;
    try {
      while (this.dirty && !this.closed) {
        this.dirty = false;
        const note = this.resyncNote;
        this.resyncNote = undefined;
        let next: Snapshot;
        const epoch = this.host.epoch;
        const gen = this.trustGen;
        this.coveredEpoch = -1;
        try {
          // A pending watch still covers us: a resync then only needs a plain read.
          next = await this.read(!this.armed);
        } catch (err) {
          const e = toZkgateError(err, this.path);
          if (e.code !== 'UNAVAILABLE' && e.code !== 'SESSION_EXPIRED') {
            this.fail(e);
            return;
          }
          this.resyncNote ??= note; // the resync still owes its note
          if (this.dirty) continue; // a resync came while this read was failing: do it now
          // Session down: the hub resyncs every node watch once it is back. Still up (the call
          // timed out): nothing else would re-read, so retry with backoff.
          if (this.host.usable) this.retryLater();
          return;
        }
        this.retryMs = RETRY_MIN_MS;
        // Still armed (not fired during the read) in the same epoch: the watch covers this state.
        if (this.armed && this.host.epoch === epoch && this.trustGen === gen) this.coveredEpoch = epoch;
        if (!this.closed) this.publish(next, note);
      }
    } finally {
      this.running = false;
    }
  }

  private retryLater(): void {
    if (this.retryTimer || this.closed) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.kick();
    }, this.retryMs);
    this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
  }

  /** One read of the node (re-arming the watch when `watch`); a missing node gets an exists watch. */
  private async read(watch: boolean): Promise<Snapshot> {
    const client = this.host.client();
    const token = watch ? ++this.token : this.token;
    const watcher = watch ? (): void => this.onFire(token) : undefined;
    this.host.countRead();
    for (;;) {
      try {
        if (this.kind === 'data') {
          const { data, stat } = await client.get(this.path, watcher);
          if (watch) this.setArmed();
          return { stat, data };
        }
        const { children, stat } = await client.children(this.path, watcher);
        if (watch) this.setArmed();
        this.checkChildren(children.length);
        return { stat, children: [...children].sort() };
      } catch (err) {
        if (!(err instanceof ZkError && err.code === 'NO_NODE')) throw err;
      }
      // ZooKeeper sets no get/children watch on a missing node; exists watches for its creation.
      const stat = await client.exists(this.path, watcher);
      if (stat === null) {
        if (watch) this.setArmed();
        return { stat: null };
      }
      // Created between the two calls: read it (its exists watch fires at most once, ignored).
    }
  }

  /** Our watching read set a ZooKeeper watch (counted by the host as released if we closed meanwhile). */
  private setArmed(): void {
    this.armed = true;
    if (this.closed) this.host.releasedWatchSet(this);
  }

  /** A listing too large to send ends the watch, like REST refuses it. @throws TOO_MANY_CHILDREN */
  private checkChildren(n: number): void {
    const max = this.host.maxChildren;
    if (n <= max) return;
    throw new ZkgateError('TOO_MANY_CHILDREN', `${this.path}: ${n} children; a children watch reports at most ${max}`, {
      path: this.path,
      limit: 'maxChildrenPerListing',
      max,
      numChildren: n,
    });
  }

  private publish(next: Snapshot, note: string | undefined): void {
    const prev = this.snap;
    this.snap = next;
    const events = note ? [eventOf('resync', this.kind, this.path, next, note)] : prev ? changes(this.kind, this.path, prev, next) : [];
    const no = ++this.stateNo;
    // Walked in place: a sink removed by an earlier delivery (e.g. a cut consumer) is not visited,
    // one added meanwhile is, but `add` primed it with `next` already (marked `no`): skipped.
    this.sinks.forEach((primedWith, sink) => {
      if (primedWith === no) return;
      if (primedWith === UNPRIMED) this.prime(sink, next);
      else for (const ev of events) sink.deliver(ev);
    });
  }

  private fail(err: ZkgateError): void {
    for (const sink of [...this.sinks.keys()]) sink.fail(err);
    this.sinks.clear();
  }
}
