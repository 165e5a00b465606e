/**
 * The only module that imports the `zookeeper` npm package (ZooKeeper's C client). It wraps one
 * native handle — one ZooKeeper session — as a typed `ZkClient`. Handle re-creation after expiry
 * lives in `session.ts`.
 */
import { createRequire } from 'node:module';
import { EventEmitter } from 'node:events';
import type { AclEntry, ChildrenResult, CreateMode, Created, NodeData, Stat, Watcher, WatchEventType, ZkClient } from './client.js';
import { ZkError, toZkError } from './errors.js';
import { SERVER_ANSWERS, monotonicMs } from './liveness.js';

interface NativeStat {
  czxid: number;
  mzxid: number;
  pzxid: number;
  ctime: Date | number;
  mtime: Date | number;
  version: number;
  cversion: number;
  aversion: number;
  ephemeralOwner: string;
  dataLength: number;
  numChildren: number;
}
type NativeWatchCb = (type: number, state: number, path: string) => void;
interface NativeAcl {
  perms: number;
  scheme: string;
  auth: string;
}
/** The subset of the package's promise API zkgate uses. */
interface NativeHandle extends EventEmitter {
  readonly client_id: string;
  readonly client_password: string;
  /** The negotiated session timeout, ms (the requested one before the server answered; -1 without a handle). */
  readonly timeout: number;
  init(config: object): NativeHandle;
  close(): void;
  /** Present with the patched binding (patches/README.md): stop for good without closeSession. */
  detach?(): void;
  create(path: string, data: Buffer, flags: number, ttl?: number): Promise<string>;
  /** Present with the patched binding (patches/README.md): ZooKeeper's create2. */
  create2?(path: string, data: Buffer, flags: number): Promise<[string, NativeStat]>;
  get(path: string, watch: boolean): Promise<[NativeStat, Buffer | null]>;
  w_get(path: string, cb: NativeWatchCb): Promise<[NativeStat, Buffer | null]>;
  exists(path: string, watch: boolean): Promise<NativeStat>;
  w_exists(path: string, cb: NativeWatchCb): Promise<NativeStat>;
  get_children2(path: string, watch: boolean): Promise<[string[], NativeStat]>;
  w_get_children2(path: string, cb: NativeWatchCb): Promise<[string[], NativeStat]>;
  set(path: string, data: Buffer, version: number): Promise<NativeStat>;
  delete_(path: string, version: number): Promise<void>;
  get_acl(path: string): Promise<[NativeAcl[], NativeStat]>;
  set_acl(path: string, version: number, acl: NativeAcl[]): Promise<void>;
  sync(path: string): Promise<void>;
  add_auth(scheme: string, auth: string, cb: (rc: number, error: string) => void): void;
}
interface NativeModule {
  new (config: object): NativeHandle;
  readonly constants: Record<string, number>;
}

const require = createRequire(import.meta.url);
const ZooKeeper = require('zookeeper') as NativeModule;
const C = ZooKeeper.constants;

/** Levels of the C client's log (`zoo_set_debug_level`), which writes to stderr. */
export type NativeLogLevel = 'off' | 'error' | 'warn' | 'info' | 'debug';
const LOG_LEVELS: Record<NativeLogLevel, number> = { off: 0, error: 1, warn: 2, info: 3, debug: 4 };
let debugLevel = LOG_LEVELS.error;

/**
 * Sets the C client's log level for the handles opened from now on (the C client keeps one
 * level per process). At `error` and above its messages reach stderr, including the one it
 * writes before it aborts the process; the binding's own lines go there too (patches/README.md, 6).
 * @defaultValue `error`
 */
export function setNativeLogLevel(level: NativeLogLevel): void {
  debugLevel = LOG_LEVELS[level];
}

const FLAGS: Record<CreateMode, number> = {
  persistent: C.ZOO_PERSISTENT as number,
  persistent_sequential: C.ZOO_PERSISTENT_SEQUENTIAL as number,
  ephemeral: C.ZOO_EPHEMERAL as number,
  ephemeral_sequential: C.ZOO_EPHEMERAL_SEQUENTIAL as number,
  container: C.ZOO_CONTAINER as number,
  ttl: C.ZOO_PERSISTENT_WITH_TTL as number,
  ttl_sequential: C.ZOO_PERSISTENT_SEQUENTIAL_WITH_TTL as number,
};

const EVENT_TYPES = new Map<number, WatchEventType>([
  [C.ZOO_CREATED_EVENT as number, 'created'],
  [C.ZOO_DELETED_EVENT as number, 'deleted'],
  [C.ZOO_CHANGED_EVENT as number, 'changed'],
  [C.ZOO_CHILD_EVENT as number, 'children'],
  [C.ZOO_NOTWATCHING_EVENT as number, 'not_watching'],
]);

function zxid(n: number): string {
  // String() of a safe integer is exact and much cheaper than BigInt (it showed in a GET profile);
  // above 2^53 String() would round, so BigInt keeps the digits the double holds.
  return Number.isSafeInteger(n) ? String(n) : BigInt(Math.trunc(n)).toString();
}
function ms(t: Date | number): number {
  return t instanceof Date ? t.getTime() : t;
}

/** Converts the native stat; zxids become decimal strings, the owner `0x…` hex. */
export function toStat(s: NativeStat): Stat {
  return {
    czxid: zxid(s.czxid),
    mzxid: zxid(s.mzxid),
    pzxid: zxid(s.pzxid),
    ctimeMs: ms(s.ctime),
    mtimeMs: ms(s.mtime),
    version: s.version,
    cversion: s.cversion,
    aversion: s.aversion,
    ephemeralOwner: s.ephemeralOwner === '0' ? '0' : `0x${s.ephemeralOwner}`,
    dataLength: s.dataLength,
    numChildren: s.numChildren,
  };
}

function wrapWatcher(watcher: Watcher): NativeWatchCb {
  return (type, _state, path) => {
    const t = EVENT_TYPES.get(type);
    if (t) watcher({ type: t, path });
  };
}

/** Options for one native handle. */
export interface NativeClientOptions {
  /** `host:port,…[/chroot]`. */
  readonly connect: string;
  /** Requested session timeout in ms; the server clamps it to [2, 20] × tickTime. */
  readonly sessionTimeoutMs: number;
  /** Resume an existing session (id hex, password hex); used by tests to force expiry. */
  readonly resume?: { readonly sessionId: string; readonly password: string };
}

/** How often a connected handle looks up its servers' names again (ms; see the constructor). */
export const RESOLUTION_DELAY_MS = 10_000;

/** Native connection events, forwarded as they come. */
export type NativeEvent = 'connect' | 'connecting' | 'close';

/**
 * One native handle. Emits `connect` (connected or reconnected), `connecting` (connection lost,
 * the C client retries) and `close` (handle dead: session expired, auth failed or closed by us).
 */
export class NativeZkClient extends EventEmitter implements ZkClient {
  private readonly handle: NativeHandle;
  private closed = false;
  private readonly requestedTimeoutMs: number;
  private heardAt = Number.NEGATIVE_INFINITY;

  constructor(opts: NativeClientOptions) {
    super();
    this.requestedTimeoutMs = opts.sessionTimeoutMs;
    this.handle = new ZooKeeper({
      connect: opts.connect,
      timeout: opts.sessionTimeoutMs,
      // stderr only, never the gateway's JSON log on stdout; at `error` a connection loss is a
      // line or two, and a process that dies says why (setNativeLogLevel).
      debug_level: debugLevel,
      host_order_deterministic: false,
      // The addon closes a handle as "expired" after this many empty polls; a server restart
      // must not look like an expiry, so only real expiry (or our close) ends a handle.
      response_counter_limit: 1 << 30,
      // The C client re-resolves the connect string after every response by default (a netlink
      // dump, a /dev/urandom read and a reshuffle each time: patches/README.md, resolution-delay patch); while
      // connected, once per RESOLUTION_DELAY_MS is enough. Every reconnect still resolves.
      resolution_delay_ms: RESOLUTION_DELAY_MS,
      ...(opts.resume ? { client_id: opts.resume.sessionId, client_password: opts.resume.password } : {}),
    });
    this.handle.on('connect', () => this.emit('connect'));
    this.handle.on('connecting', () => this.emit('connecting'));
    this.handle.on('close', () => {
      this.closed = true;
      this.emit('close');
    });
    this.handle.init({});
  }

  get sessionId(): string {
    return this.handle.client_id;
  }
  /** Session password (hex); secret, never logged. */
  get sessionPassword(): string {
    return this.handle.client_password;
  }
  get isClosed(): boolean {
    return this.closed;
  }
  /** The session timeout ZooKeeper granted (it clamps the requested one), ms. */
  get sessionTimeoutMs(): number {
    const t = this.closed ? -1 : this.handle.timeout;
    return t > 0 ? t : this.requestedTimeoutMs;
  }
  /**
   * Monotonic ms at which the latest request ZooKeeper answered was sent (answers include
   * errors such as NONODE; connection loss and timeouts are not answers). See liveness.ts.
   */
  get lastHeardAt(): number {
    return this.heardAt;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.handle.close();
  }

  /**
   * Stops using the session for good without closing it — no more requests, pings or
   * reconnects, socket shut down, no closeSession — so that another process can resume it from
   * `sessionId` and `sessionPassword` and be its only user. Requests still outstanding never
   * complete. Returns false (and does nothing) when the binding lacks the patch that allows it.
   */
  detach(): boolean {
    if (this.closed || typeof this.handle.detach !== 'function') return false;
    this.closed = true;
    this.handle.detach();
    return true;
  }

  private async call<T>(path: string, op: () => Promise<T>): Promise<T> {
    if (this.closed) throw new ZkError('SESSION_EXPIRED', -112, 'zookeeper: session closed', path);
    const sentAt = monotonicMs();
    try {
      const r = await op();
      this.heard(sentAt);
      return r;
    } catch (err) {
      const e = toZkError(err, path);
      if (SERVER_ANSWERS.has(e.code)) this.heard(sentAt);
      throw e;
    }
  }

  private heard(sentAt: number): void {
    if (!this.closed && sentAt > this.heardAt) this.heardAt = sentAt;
  }

  create(path: string, data: Buffer, mode: CreateMode, ttlMs?: number): Promise<string> {
    return this.call(path, () => this.handle.create(path, data, FLAGS[mode], ttlMs));
  }

  async createWithStat(path: string, data: Buffer, mode: Exclude<CreateMode, 'ttl' | 'ttl_sequential'>): Promise<Created> {
    const handle = this.handle;
    if (!handle.create2) {
      // A binding built before the patch had create2 (node_modules older than the patch file):
      // the same answer in two round trips.
      const created = await this.create(path, data, mode);
      const stat = await this.exists(created);
      if (!stat) throw new ZkError('NO_NODE', -101, `${created}: deleted right after its create`, created);
      return { path: created, stat };
    }
    const [created, stat] = await this.call(path, () => (handle.create2 as NonNullable<NativeHandle['create2']>)(path, data, FLAGS[mode]));
    return { path: created, stat: toStat(stat) };
  }

  async get(path: string, watcher?: Watcher): Promise<NodeData> {
    const [stat, data] = await this.call(path, () =>
      watcher ? this.handle.w_get(path, wrapWatcher(watcher)) : this.handle.get(path, false),
    );
    return { stat: toStat(stat), data: data ?? Buffer.alloc(0) };
  }

  async exists(path: string, watcher?: Watcher): Promise<Stat | null> {
    try {
      const stat = await this.call(path, () =>
        watcher ? this.handle.w_exists(path, wrapWatcher(watcher)) : this.handle.exists(path, false),
      );
      return toStat(stat);
    } catch (err) {
      // The package rejects a missing node with NONODE; the watch is still set by the server.
      if (err instanceof ZkError && err.code === 'NO_NODE') return null;
      throw err;
    }
  }

  async children(path: string, watcher?: Watcher): Promise<ChildrenResult> {
    const [children, stat] = await this.call(path, () =>
      watcher ? this.handle.w_get_children2(path, wrapWatcher(watcher)) : this.handle.get_children2(path, false),
    );
    return { children, stat: toStat(stat) };
  }

  async set(path: string, data: Buffer, version = -1): Promise<Stat> {
    return toStat(await this.call(path, () => this.handle.set(path, data, version)));
  }

  delete(path: string, version = -1): Promise<void> {
    return this.call(path, () => this.handle.delete_(path, version));
  }

  async getAcl(path: string): Promise<{ acl: AclEntry[]; stat: Stat }> {
    // The addon crashes the process (SIGSEGV) when get_acl fails (no node, no auth), so a read
    // first surfaces those errors safely. A node that allows ADMIN but not READ is therefore
    // reported NO_AUTH, and a delete racing between the two calls can still reach the crash
    // (README "Known limits").
    await this.get(path);
    const [acl, stat] = await this.call(path, () => this.handle.get_acl(path));
    return { acl: acl.map((a) => ({ perms: a.perms, scheme: a.scheme, id: a.auth })), stat: toStat(stat) };
  }

  setAcl(path: string, acl: readonly AclEntry[], version = -1): Promise<void> {
    const native = acl.map((a) => ({ perms: a.perms, scheme: a.scheme, auth: a.id }));
    return this.call(path, () => this.handle.set_acl(path, version, native));
  }

  sync(path: string): Promise<void> {
    return this.call(path, () => this.handle.sync(path));
  }

  addAuth(scheme: string, auth: string): Promise<void> {
    return this.call('/', () =>
      new Promise<void>((resolve, reject) => {
        this.handle.add_auth(scheme, auth, (rc, error) => (rc === 0 ? resolve() : reject(new Error(`${rc} ${error}`))));
      }),
    );
  }
}
