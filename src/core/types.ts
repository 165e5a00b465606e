/** Shared shapes of core results. */
import { CREATE_MODES, type AclEntry, type CreateMode, type Stat } from '../zk/index.js';

export type { AclEntry, CreateMode, Stat };
/** Every znode create mode (persistent, ephemeral, sequential and TTL variants). */
export { CREATE_MODES };

/** A znode's data and stat. */
export interface Znode {
  readonly path: string;
  readonly data: Buffer;
  readonly stat: Stat;
  /** Where a read was answered from: the hub's watch-fed cache or a ZooKeeper read (`get` sets it). */
  readonly source?: ReadSource;
}

/** `cache`: the state of a watch the hub holds (docs/watch.md, "Read cache"); `zookeeper`: a read. */
export type ReadSource = 'cache' | 'zookeeper';

/** One child in a listing; `stat` only when asked for. */
export interface ChildEntry {
  readonly name: string;
  readonly stat?: Stat;
}

export interface ChildrenListing {
  readonly path: string;
  /** Children sorted by name. */
  readonly children: readonly ChildEntry[];
  /** The parent's stat (its cversion and pzxid tell when the list last changed). */
  readonly stat: Stat;
  /** How many children the node had when the page was read (all pages together). */
  readonly total: number;
  /** Pass back as `cursor` for the next page; absent on the last page. */
  readonly nextCursor?: string;
}

/** Options of a children listing. */
export interface ChildrenOptions {
  /** Read each listed child's stat. @defaultValue false */
  readonly withStats?: boolean;
  /** Children per page, 1 to the tenant's maxChildrenPerListing. @defaultValue maxChildrenPerListing */
  readonly limit?: number;
  /** `nextCursor` of the previous page (opaque). */
  readonly cursor?: string;
}

/** Options of a recursive listing. */
export interface TreeOptions {
  /** Most nodes returned (the root included), 1 to maxChildrenPerListing. @defaultValue maxChildrenPerListing */
  readonly limit?: number;
  /** Most levels below the root. @defaultValue unbounded */
  readonly depth?: number;
  /** Include each node's stat. @defaultValue false */
  readonly withStats?: boolean;
}

/** A recursive listing (`ls -R`): breadth-first, cut at `limit` nodes. */
export interface TreeListing {
  readonly path: string;
  readonly nodes: readonly { readonly path: string; readonly depth: number; readonly stat?: Stat }[];
  /** True when nodes were left out because `limit` was reached. */
  readonly truncated: boolean;
  /** The bound applied. */
  readonly limit: number;
}

export interface CreateOptions {
  /** @defaultValue 'persistent' */
  readonly mode?: CreateMode;
  /** Required for the TTL modes, ms (ZooKeeper allows 1 ms to ~ 2^40 ms). */
  readonly ttlMs?: number;
  /** Create missing ancestors as persistent nodes. @defaultValue false */
  readonly createParents?: boolean;
  /** Lease that owns an ephemeral node. */
  readonly leaseId?: string;
  /**
   * Ephemeral modes: aborting (the client went away) stops waiting for the outcome of a create
   * cut by a connection loss; a node it created is deleted once ZooKeeper is back.
   */
  readonly signal?: AbortSignal;
}

export interface DeleteOptions {
  /** Expected data version; -1 or undefined for any. */
  readonly version?: number;
  /** Delete the whole subtree, up to the tenant's `maxRecursiveDeleteNodes`. @defaultValue false */
  readonly recursive?: boolean;
}
