/**
 * The only module that imports the `zookeeper` npm package (ZooKeeper's C client). It wraps one
 * native handle — one ZooKeeper session — as a typed `ZkClient`. Handle re-creation after expiry
 * lives in `session.ts`.
 */
import { createRequire } from 'node:module';
import { EventEmitter } from 'node:events';
import type { AclEntry, ChildrenResult, CreateMode, Created, NodeData, Stat, Watcher, WatchEventType, ZkClient } from './client.js';
import { ZkError, toZkError, zkErrorOf, type ZkOpKind } from './errors.js';
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
  // The callback API under the promise one (`lib/zookeeper.js`): each returns the C call's
  // return code (below 0: refused before anything was sent, the callback never runs).
  a_create(path: string, data: Buffer, flags: number, cb: NativeCb<string>): number;
  a_createTtl(path: string, data: Buffer, flags: number, ttl: number, cb: NativeCb<string>): number;
  /** Present with the patched binding (patches/README.md): ZooKeeper's create2. */
  a_create2?(path: string, data: Buffer, flags: number, cb: NativeCb<string, NativeStat>): number;
  a_get(path: string, watch: boolean, cb: NativeCb<NativeStat, Buffer | null>): number;
  aw_get(path: string, watcher: NativeWatchCb, cb: NativeCb<NativeStat, Buffer | null>): number;
  a_exists(path: string, watch: boolean, cb: NativeCb<NativeStat>): number;
  aw_exists(path: string, watcher: NativeWatchCb, cb: NativeCb<NativeStat>): number;
  a_get_children2(path: string, watch: boolean, cb: NativeCb<string[], NativeStat>): number;
  aw_get_children2(path: string, watcher: NativeWatchCb, cb: NativeCb<string[], NativeStat>): number;
  a_set(path: string, data: Buffer, version: number, cb: NativeCb<NativeStat>): number;
  a_delete_(path: string, version: number, cb: NativeCb): number;
  a_sync(path: string, cb: NativeCb): number;
}
/** A completion of the callback API: `rc` 0 and the results, or a ZooKeeper error code. */
type NativeCb<A = undefined, B = undefined> = (rc: number, error: string, a: A, b: B) => void;
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

const NO_NODE_RC = -101;
const created = (path: string): string => path;
const createdWithStat = (path: string, stat: NativeStat): Created => ({ path, stat: toStat(stat) });
const nodeData = (stat: NativeStat, data: Buffer | null): NodeData => ({ stat: toStat(stat), data: data ?? Buffer.alloc(0) });
const childrenResult = (children: string[], stat: NativeStat): ChildrenResult => ({ children, stat: toStat(stat) });
const noStat = (): null => null;
const nothing = (): void => undefined;

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

  /** For the calls still made through the package's promise API (ACLs, auth). */
  private async call<T>(path: string, kind: ZkOpKind, op: () => Promise<T>): Promise<T> {
    if (this.closed) throw new ZkError('SESSION_EXPIRED', -112, 'zookeeper: session closed', path, undefined, kind);
    const sentAt = monotonicMs();
    try {
      const r = await op();
      this.heard(sentAt);
      return r;
    } catch (err) {
      const e = toZkError(err, path, kind);
      if (SERVER_ANSWERS.has(e.code)) this.heard(sentAt);
      throw e;
    }
  }

  /**
   * One request through the package's callback API, answered by one native promise: its
   * promise API wraps each call in a `Promise` subclass (which every `await` re-wraps, two more
   * microtask turns), a bound function, argument and result arrays, and `call()` above added an
   * async layer — a lock cycle makes three requests (docs/benchmarks.md, locks, 11:00 UTC).
   * `answer` shapes the completion's results; `missing`, when given, is the answer to NONODE.
   * `kind` goes on every error, so that a connection loss says whether a write was cut.
   */
  private request<A, B, T>(path: string, kind: ZkOpKind, send: (cb: NativeCb<A, B>) => number, answer: (a: A, b: B) => T, missing?: () => T): Promise<T> {
    if (this.closed) return Promise.reject(new ZkError('SESSION_EXPIRED', -112, 'zookeeper: session closed', path, undefined, kind));
    const sentAt = monotonicMs();
    return new Promise<T>((resolve, reject) => {
      const complete = (code: number, error: string, a: A, b: B): void => {
        try {
          if (code === 0) {
            this.heard(sentAt);
            resolve(answer(a, b));
            return;
          }
          if (code === NO_NODE_RC && missing) {
            this.heard(sentAt);
            resolve(missing());
            return;
          }
          const e = zkErrorOf(code, path, new Error(`${code} ${error}`), kind);
          if (SERVER_ANSWERS.has(e.code)) this.heard(sentAt);
          reject(e);
        } catch (err) {
          reject(toZkError(err, path, kind));
        }
      };
      let rc: number;
      try {
        rc = send(complete);
      } catch (err) {
        return reject(toZkError(err, path, kind));
      }
      if (rc < 0) reject(zkErrorOf(rc, path, new Error(`zookeeper: request refused before it was sent (${rc})`), kind));
    });
  }

  private heard(sentAt: number): void {
    if (!this.closed && sentAt > this.heardAt) this.heardAt = sentAt;
  }

  create(path: string, data: Buffer, mode: CreateMode, ttlMs?: number): Promise<string> {
    const h = this.handle;
    const flags = FLAGS[mode];
    return this.request(path, 'write', (cb: NativeCb<string>) => (ttlMs ? h.a_createTtl(path, data, flags, ttlMs, cb) : h.a_create(path, data, flags, cb)), created);
  }

  async createWithStat(path: string, data: Buffer, mode: Exclude<CreateMode, 'ttl' | 'ttl_sequential'>): Promise<Created> {
    const handle = this.handle;
    if (!handle.a_create2) {
      // A binding built before the patch had create2 (node_modules older than the patch file):
      // the same answer in two round trips.
      const created = await this.create(path, data, mode);
      const stat = await this.exists(created);
      if (!stat) throw new ZkError('NO_NODE', -101, `${created}: deleted right after its create`, created, undefined, 'write');
      return { path: created, stat };
    }
    type Create2 = NonNullable<NativeHandle['a_create2']>;
    return this.request(path, 'write', (cb: NativeCb<string, NativeStat>) => (handle.a_create2 as Create2)(path, data, FLAGS[mode], cb), createdWithStat);
  }

  get(path: string, watcher?: Watcher): Promise<NodeData> {
    const h = this.handle;
    return this.request(path, 'read', (cb: NativeCb<NativeStat, Buffer | null>) => (watcher ? h.aw_get(path, wrapWatcher(watcher), cb) : h.a_get(path, false, cb)), nodeData);
  }

  exists(path: string, watcher?: Watcher): Promise<Stat | null> {
    const h = this.handle;
    // A missing node is an answer (null); the watch is still set by the server.
    return this.request(path, 'read', (cb: NativeCb<NativeStat>) => (watcher ? h.aw_exists(path, wrapWatcher(watcher), cb) : h.a_exists(path, false, cb)), toStat, noStat);
  }

  children(path: string, watcher?: Watcher): Promise<ChildrenResult> {
    const h = this.handle;
    return this.request(
      path,
      'read',
      (cb: NativeCb<string[], NativeStat>) => (watcher ? h.aw_get_children2(path, wrapWatcher(watcher), cb) : h.a_get_children2(path, false, cb)),
      childrenResult,
    );
  }

  set(path: string, data: Buffer, version = -1): Promise<Stat> {
    const h = this.handle;
    return this.request(path, 'write', (cb: NativeCb<NativeStat>) => h.a_set(path, data, version, cb), toStat);
  }

  delete(path: string, version = -1): Promise<void> {
    const h = this.handle;
    return this.request(path, 'write', (cb: NativeCb) => h.a_delete_(path, version, cb), nothing);
  }

  async getAcl(path: string): Promise<{ acl: AclEntry[]; stat: Stat }> {
    // The addon crashes the process (SIGSEGV) when get_acl fails (no node, no auth), so a read
    // first surfaces those errors safely. A node that allows ADMIN but not READ is therefore
    // reported NO_AUTH, and a delete racing between the two calls can still reach the crash
    // (README "Known limits").
    await this.get(path);
    const [acl, stat] = await this.call(path, 'read', () => this.handle.get_acl(path));
    return { acl: acl.map((a) => ({ perms: a.perms, scheme: a.scheme, id: a.auth })), stat: toStat(stat) };
  }

  setAcl(path: string, acl: readonly AclEntry[], version = -1): Promise<void> {
    const native = acl.map((a) => ({ perms: a.perms, scheme: a.scheme, auth: a.id }));
    return this.call(path, 'write', () => this.handle.set_acl(path, version, native));
  }

  sync(path: string): Promise<void> {
    const h = this.handle;
    return this.request(path, 'read', (cb: NativeCb) => h.a_sync(path, cb), nothing);
  }

  addAuth(scheme: string, auth: string): Promise<void> {
    return this.call('/', 'read', () =>
      new Promise<void>((resolve, reject) => {
        this.handle.add_auth(scheme, auth, (rc, error) => (rc === 0 ? resolve() : reject(new Error(`${rc} ${error}`))));
      }),
    );
  }
}
