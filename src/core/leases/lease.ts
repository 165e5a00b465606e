/**
 * A lease: what makes ZooKeeper ephemerals usable by stateless clients. The gateway holds one
 * ZooKeeper session per tenant; everything a lease owns (ephemeral nodes, lock holds and waits,
 * election candidacies) is an ephemeral node of that session, deleted by the gateway when the
 * lease ends and by ZooKeeper itself when the gateway dies.
 *
 * Reactions to the tenant's connection state:
 * - `suspended`: active → `uncertain` (nobody is told "you hold it" until ownership is re-checked)
 * - `reconnected`: every owned node is re-checked (exists, owned by this session) → `active`, else `lost`
 * - `expired`: → `lost` (the session's ephemerals are gone)
 */
import { EventEmitter, on } from 'node:events';
import { ZkgateError } from '../errors.js';
import type { Tenant } from '../tenants/tenant.js';
import { trustMs } from './trust.js';

export type LeaseState = 'active' | 'uncertain' | 'expired' | 'revoked' | 'lost';
/** What a lease owns at a path. */
export type OwnedKind =
  | 'node'
  | 'lock'
  | 'lock_wait'
  | 'candidate'
  // queue.ts and barrier.ts
  | 'queue_claim'
  | 'barrier_member'
  // semaphore.ts and rw-lock.ts
  | 'permit'
  | 'permit_wait'
  | 'read_lock'
  | 'write_lock'
  | 'rwlock_wait'
  // src/core/jobs: a job run's claim, a sharded job's membership, a shard item's claim
  | 'run'
  | 'job_member'
  | 'shard';

export interface LeaseStateEvent {
  readonly leaseId: string;
  readonly state: LeaseState;
  /**
   * Why: `granted`, `keepalive_missed`, `revoked`, `session_suspended`, `session_reconnected`,
   * `session_expired`, `node_missing` (gone after a reconnect), `node_deleted` (an owned node was
   * deleted by someone else while held).
   */
  readonly reason: string;
  /** The lease's trust window at the transition, ms (0 unless `active`; see trust.ts). */
  readonly trustMs: number;
}

export interface LeaseInfo {
  readonly id: string;
  readonly tenant: string;
  /** Id of the API key that granted it (`anonymous` without keys). */
  readonly owner: string;
  readonly ttlMs: number;
  /** ms left before the lease expires without a keepalive; 0 once ended. */
  readonly remainingMs: number;
  /**
   * ms from now for which what the lease holds can be trusted without a fresh answer: at most
   * `remainingMs`, and at most the session timeout since the gateway last heard from ZooKeeper;
   * 0 unless `active` (see trust.ts).
   */
  readonly trustMs: number;
  readonly state: LeaseState;
  readonly reason: string;
  readonly grantedAtMs: number;
  readonly owned: readonly { readonly path: string; readonly kind: OwnedKind }[];
}

const ENDED_CODES = { expired: 'LEASE_EXPIRED', revoked: 'LEASE_REVOKED', lost: 'LEASE_LOST' } as const;
const ENDED_CODE_SET: ReadonlySet<string> = new Set(Object.values(ENDED_CODES));

/** True for the error code a call naming an ended lease gets (expired, revoked or lost). */
export function isLeaseEndedCode(code: string): boolean {
  return ENDED_CODE_SET.has(code);
}

/** Emits `state` (LeaseStateEvent) on every transition, and only on transitions. */
export class Lease extends EventEmitter {
  readonly grantedAtMs = Date.now();
  private current: LeaseState = 'active';
  private why = 'granted';
  private expiresAt: number;
  private readonly owned = new Map<string, OwnedKind>();
  /** The czxid of each owned node whose create answered it: a node at the path with another is not ours. */
  private readonly czxids = new Map<string, string>();
  private readonly onDisown = new Map<string, (() => void)[]>();
  private readonly ended = new AbortController();

  constructor(
    readonly id: string,
    readonly tenant: Tenant,
    readonly ttlMs: number,
    /** The tenant session generation the lease's ephemerals belong to. */
    readonly generation: number,
    /** Id of the API key that granted it (`anonymous` without keys); other keys need lease admin. */
    readonly owner = 'anonymous',
  ) {
    super();
    this.expiresAt = Date.now() + ttlMs;
  }

  get state(): LeaseState {
    return this.current;
  }
  get reason(): string {
    return this.why;
  }
  /** Aborted when the lease ends for any reason; waits owned by the lease listen to it. */
  get signal(): AbortSignal {
    return this.ended.signal;
  }
  get isEnded(): boolean {
    return this.current === 'expired' || this.current === 'revoked' || this.current === 'lost';
  }
  get deadline(): number {
    return this.expiresAt;
  }

  /** ms from now for which the lease's holds can be trusted (trust.ts). */
  trustMs(): number {
    return trustMs(this);
  }

  info(): LeaseInfo {
    return {
      id: this.id,
      tenant: this.tenant.name,
      owner: this.owner,
      ttlMs: this.ttlMs,
      remainingMs: this.isEnded ? 0 : Math.max(0, this.expiresAt - Date.now()),
      trustMs: this.trustMs(),
      state: this.current,
      reason: this.why,
      grantedAtMs: this.grantedAtMs,
      owned: [...this.owned].map(([path, kind]) => ({ path, kind })),
    };
  }

  /** Throws the lease's end as a typed error (410), or LEASE_UNCERTAIN (503) while uncertain. */
  assertUsable(): void {
    if (this.isEnded) {
      const code = ENDED_CODES[this.current as keyof typeof ENDED_CODES];
      throw new ZkgateError(code, `lease ${this.id}: ${this.current} (${this.why})`, { leaseId: this.id, state: this.current, reason: this.why });
    }
    if (this.current === 'uncertain') {
      throw new ZkgateError('LEASE_UNCERTAIN', `lease ${this.id}: uncertain while the zookeeper session is suspended`, {
        leaseId: this.id,
        state: this.current,
        reason: this.why,
      });
    }
  }

  /** Pushes the expiry `ttlMs` into the future. @throws the lease's end (410) once ended */
  refresh(): void {
    if (this.isEnded) this.assertUsable();
    this.expiresAt = Date.now() + this.ttlMs;
  }

  /**
   * Records that the lease owns `path` as `kind` (owning it again changes the kind). `onDisown`
   * (e.g. giving back a unit of the tenant's lock quota, or ending the watch on the node) runs
   * once, when the path is disowned — released, deleted or lost; several may be added.
   */
  own(path: string, kind: OwnedKind, onDisown?: () => void): void {
    this.owned.set(path, kind);
    if (onDisown) this.onDisown.set(path, [...(this.onDisown.get(path) ?? []), onDisown]);
  }
  /**
   * Records the czxid of the owned node at `path`: every lease of a tenant shares its session,
   * so a node another lease created again at the same path has the same ephemeralOwner, and only
   * the czxid tells the two apart. Forgotten with the path on `disown`.
   */
  identify(path: string, czxid: string): void {
    if (this.owned.has(path)) this.czxids.set(path, czxid);
  }
  /** The czxid recorded for the owned node at `path` (`identify`), if any. */
  czxidOf(path: string): string | undefined {
    return this.czxids.get(path);
  }
  disown(path: string): void {
    this.owned.delete(path);
    this.czxids.delete(path);
    const done = this.onDisown.get(path) ?? [];
    this.onDisown.delete(path);
    for (const f of done) f();
  }
  owns(path: string): OwnedKind | undefined {
    return this.owned.get(path);
  }
  /** A node the lease owns as `kind` directly under `parent` (the first, if several). */
  ownedChild(parent: string, kind: OwnedKind): string | undefined {
    const prefix = parent === '/' ? '/' : `${parent}/`;
    for (const [path, k] of this.owned) if (k === kind && path.startsWith(prefix) && path.indexOf('/', prefix.length) < 0) return path;
    return undefined;
  }
  ownedPaths(): string[] {
    return [...this.owned.keys()];
  }

  /**
   * The lease's state changes as they happen, for streaming transports: the current state
   * first, then every transition; ends after the lease ends or when `signal` aborts.
   */
  async *changes(signal?: AbortSignal): AsyncGenerator<LeaseStateEvent> {
    yield { leaseId: this.id, state: this.current, reason: this.why, trustMs: this.trustMs() };
    if (this.isEnded) return;
    try {
      for await (const [event] of on(this, 'state', { signal }) as AsyncIterableIterator<[LeaseStateEvent]>) {
        yield event;
        if (this.isEnded) return;
      }
    } catch (err) {
      if (!signal?.aborted) throw err;
    }
  }

  /** Moves to `state` with `reason`; ending states abort `signal`. Returns false if nothing changed. */
  transition(state: LeaseState, reason: string): boolean {
    if (this.isEnded || this.current === state) return false;
    this.current = state;
    this.why = reason;
    if (this.isEnded) this.ended.abort(new ZkgateError(ENDED_CODES[state as keyof typeof ENDED_CODES], `lease ${this.id}: ${state} (${reason})`, { leaseId: this.id }));
    this.emit('state', { leaseId: this.id, state, reason, trustMs: this.trustMs() } satisfies LeaseStateEvent);
    return true;
  }
}
