/** The typed promise API the rest of zkgate uses to reach ZooKeeper (one session's handle). */

/** A znode's stat. 64-bit values (zxids, session id) are decimal or hex strings, never JS numbers. */
export interface Stat {
  /** zxid of the create, decimal string. */
  readonly czxid: string;
  /** zxid of the last data change, decimal string. */
  readonly mzxid: string;
  /** zxid of the last child change, decimal string. */
  readonly pzxid: string;
  /** Creation time, ms since the epoch. */
  readonly ctimeMs: number;
  /** Last modification time, ms since the epoch. */
  readonly mtimeMs: number;
  /** Data version (bumped by every set). */
  readonly version: number;
  /** Children version. */
  readonly cversion: number;
  /** ACL version. */
  readonly aversion: number;
  /** Owning session id as `0x…` hex for ephemerals, `"0"` otherwise. */
  readonly ephemeralOwner: string;
  readonly dataLength: number;
  readonly numChildren: number;
}

/** ZooKeeper create modes. TTL modes need the server flag `zookeeper.extendedTypesEnabled=true`. */
export type CreateMode =
  | 'persistent'
  | 'persistent_sequential'
  | 'ephemeral'
  | 'ephemeral_sequential'
  | 'container'
  | 'ttl'
  | 'ttl_sequential';

export const CREATE_MODES: readonly CreateMode[] = [
  'persistent',
  'persistent_sequential',
  'ephemeral',
  'ephemeral_sequential',
  'container',
  'ttl',
  'ttl_sequential',
];

/** One ACL entry; `perms` is ZooKeeper's bit mask (READ 1, WRITE 2, CREATE 4, DELETE 8, ADMIN 16). */
export interface AclEntry {
  readonly perms: number;
  readonly scheme: string;
  readonly id: string;
}

/** What a one-shot watch reports. `session` events are delivered to the session, not to watches. */
export type WatchEventType = 'created' | 'deleted' | 'changed' | 'children' | 'not_watching';

export interface WatchEvent {
  readonly type: WatchEventType;
  readonly path: string;
}

export type Watcher = (event: WatchEvent) => void;

export interface NodeData {
  readonly data: Buffer;
  readonly stat: Stat;
}

export interface ChildrenResult {
  readonly children: string[];
  readonly stat: Stat;
}

/** A node `createWithStat` made: its path (with the sequence, if any) and its stat. */
export interface Created {
  readonly path: string;
  readonly stat: Stat;
}

/**
 * One ZooKeeper session's operations. Every method rejects with `ZkError`; a watcher passed in
 * fires at most once (ZooKeeper watches are one-shot) and never after the session expired.
 */
export interface ZkClient {
  /** Session id as lowercase hex without `0x`, as ZooKeeper's logs show it. */
  readonly sessionId: string;
  create(path: string, data: Buffer, mode: CreateMode, ttlMs?: number): Promise<string>;
  /**
   * Like `create` (not for TTL modes), and resolves the new node's stat as of its creation too,
   * in the same round trip (ZooKeeper's create2).
   */
  createWithStat(path: string, data: Buffer, mode: Exclude<CreateMode, 'ttl' | 'ttl_sequential'>): Promise<Created>;
  get(path: string, watcher?: Watcher): Promise<NodeData>;
  /** Resolves null when the node does not exist (the watcher then fires on its creation). */
  exists(path: string, watcher?: Watcher): Promise<Stat | null>;
  children(path: string, watcher?: Watcher): Promise<ChildrenResult>;
  set(path: string, data: Buffer, version?: number): Promise<Stat>;
  delete(path: string, version?: number): Promise<void>;
  getAcl(path: string): Promise<{ acl: AclEntry[]; stat: Stat }>;
  setAcl(path: string, acl: readonly AclEntry[], version?: number): Promise<void>;
  sync(path: string): Promise<void>;
  addAuth(scheme: string, auth: string): Promise<void>;
}
