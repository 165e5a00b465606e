/** The shapes of watch streams: kinds, events and options. */
import type { Stat } from '../../zk/index.js';

/**
 * What a subscription follows:
 * - `data`: one node's existence, data and stat
 * - `children`: one node's existence and list of children
 * - `subtree`: existence, data and stat of the node and every node below it
 */
export type WatchKind = 'data' | 'children' | 'subtree';
export const WATCH_KINDS: readonly WatchKind[] = ['data', 'children', 'subtree'];

/**
 * - `current`: the state when the subscription (or, in a subtree, the node's tracking) started
 * - `created`, `deleted`, `data_changed`, `children_changed`: a change
 * - `resync`: the state after a ZooKeeper disconnect or session expiry; changes in between may
 *   have been coalesced into it (see `note`)
 */
export type WatchEventType = 'current' | 'created' | 'deleted' | 'data_changed' | 'children_changed' | 'resync';

/** One event of a watch stream. It carries the new state, so nobody has to read after it. */
export interface WatchEvent {
  readonly type: WatchEventType;
  /** The node the event is about (in a subtree: the node below the subscribed path). */
  readonly path: string;
  /** Its stat, or null when the node does not exist. */
  readonly stat: Stat | null;
  /** Its data (`data` and `subtree` subscriptions), when it exists. */
  readonly data?: Buffer;
  /** Its children, sorted (`children` subscriptions), when it exists. */
  readonly children?: readonly string[];
  /**
   * The zxid that identifies this state, a decimal string: mzxid for data, pzxid for children,
   * "0" when the node does not exist. Long-poll clients send it back as `index`.
   */
  readonly zxid: string;
  /** For `resync`: why it came and that changes in between may have been coalesced. */
  readonly note?: string;
}

/** Options of one subscription. */
export interface WatchOptions {
  readonly kind: WatchKind;
  /** Aborting ends the stream without an error. */
  readonly signal?: AbortSignal;
  /** Events that may wait for this subscriber; capped by config `watch.queueSize`. */
  readonly queueSize?: number;
  /** Subtree only: most nodes covered; capped by config `watch.maxSubtreeNodes`. */
  readonly maxNodes?: number;
}

/** The hub's limits (config `watch`). */
export interface WatchLimits {
  readonly queueSize: number;
  readonly maxSubscriptionsPerConnection: number;
  readonly maxSubtreeNodes: number;
  readonly maxWaitMs: number;
  /** ZooKeeper watches per tenant kept without subscribers. @defaultValue 1000 */
  readonly maxIdleWatches?: number;
  /** Bytes of node data idle watches may hold per tenant. @defaultValue 64 MiB */
  readonly maxIdleBytes?: number;
  /** Whether a read of an unwatched node adopts it as an idle watch (the read-through cache). @defaultValue true */
  readonly readThrough?: boolean;
  /** Services per tenant the registry keeps following for picks from memory (0: none). @defaultValue 100 */
  readonly maxCachedServices?: number;
  /** A followed service unused for this long is let go, ms. @defaultValue 300000 */
  readonly cachedServiceIdleMs?: number;
}

/** Counters and gauges of one tenant's watches, for /metrics. */
export interface WatchStats {
  readonly tenant: string;
  /**
   * ZooKeeper watches the gateway holds set, by kind (`data` includes existence watches): those
   * of subscriptions, recipes and election observers, idle ones, and ones let go past the idle
   * bound that ZooKeeper still holds until they fire (it cannot remove a watch).
   */
  readonly zkWatches: { readonly data: number; readonly children: number };
  /** Watches kept without subscribers (bounded by `watch.maxIdleWatches`). */
  readonly idleWatches: number;
  /** Open subscriptions, by kind. */
  readonly subscribers: { readonly data: number; readonly children: number; readonly subtree: number };
  /** ZooKeeper reads the hub made (each also re-arms its watch). */
  readonly reads: number;
  /** Subscribers cut for falling behind. */
  readonly slowConsumers: number;
  /** Resyncs the hub performed per ZooKeeper watch (after a reconnect or a new session). */
  readonly resyncs: number;
  /** Node reads answered from a shared data watch's state instead of ZooKeeper (the read cache). */
  readonly cacheHits: number;
  /** Bytes of node data the idle watches hold (bounded by `watch.maxIdleBytes`). */
  readonly idleBytes: number;
  /** Reads that set a watch and kept the node as an idle watch (the read-through cache). */
  readonly adopted: number;
}
