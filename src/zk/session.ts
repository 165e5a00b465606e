/**
 * A long-lived ZooKeeper session that survives expiry by building a new handle. It reports every
 * transition as a `ConnectionState` so that leases, recipes and watches can react: `suspended`
 * makes ownership uncertain, `expired` means every ephemeral of the old session is gone.
 */
import { EventEmitter } from 'node:events';
import type { ZkClient } from './client.js';
import { ZkError } from './errors.js';
import { Heartbeat, type SessionLiveness } from './liveness.js';
import { NativeZkClient } from './native-client.js';
import { backoffDelay } from './backoff.js';

/** Heartbeats per session timeout on an idle session: "last heard" stays within a sixth of it. */
const HEARTBEATS_PER_TIMEOUT = 6;

/**
 * - `connecting`: no session yet (start-up, or a new one being built after expiry)
 * - `connected`: a new session is established (first, or the replacement after expiry)
 * - `suspended`: the connection dropped; the session may still be alive on the server
 * - `reconnected`: the same session is back; its ephemerals and watches are intact
 * - `expired`: the session is gone; its ephemerals are deleted and its watches will never fire
 * - `closed`: closed by the gateway
 */
export type ConnectionState = 'connecting' | 'connected' | 'suspended' | 'reconnected' | 'expired' | 'closed';

export interface StateChange {
  readonly state: ConnectionState;
  /** Id (hex) of the session the change is about; empty while connecting. */
  readonly sessionId: string;
  /** Bumped each time a new session is established (1 for the first). */
  readonly generation: number;
}

export interface ZkSessionOptions {
  readonly connect: string;
  /** Requested session timeout, ms. */
  readonly sessionTimeoutMs: number;
  /** Credentials added to every handle before it counts as connected (e.g. digest `user:pass`). */
  readonly auth?: readonly { readonly scheme: string; readonly credential: string }[];
  /**
   * Delay before building a replacement handle after expiry, ms; a replacement that fails
   * before it is established doubles it (with jitter) up to `maxRebuildDelayMs`. @defaultValue 100
   */
  readonly rebuildDelayMs?: number;
  /** Cap of the rebuild delay, ms. @defaultValue 30000 */
  readonly maxRebuildDelayMs?: number;
  /**
   * Resume this session (handed over by another instance that detached it) with the first
   * handle, instead of creating one. Replacements after an expiry are new sessions.
   */
  readonly resume?: { readonly sessionId: string; readonly password: string };
}

/** A replacement handle that died before it was established, and when the next one is built. */
export interface RebuildFailure {
  /** Failed builds in a row (1 for the first). */
  readonly failures: number;
  /** Why it failed (e.g. authentication refused). */
  readonly reason: string;
  /** Delay before the next build, ms. */
  readonly nextAttemptMs: number;
}

/**
 * Emits `state` with a `StateChange` on every transition, and only on transitions, and
 * `rebuildFailed` with a `RebuildFailure` each time a replacement handle dies unestablished.
 */
export class ZkSession extends EventEmitter {
  private handle: NativeZkClient | null = null;
  private current: ConnectionState = 'connecting';
  private gen = 0;
  private lifecycle: 'idle' | 'running' | 'closed' = 'idle';
  private rebuildTimer: NodeJS.Timeout | undefined;
  private epochs = 0;
  private readonly heartbeat = new Heartbeat(
    () => this.sessionTimeoutMs / HEARTBEATS_PER_TIMEOUT,
    () => this.handle?.lastHeardAt ?? Number.NEGATIVE_INFINITY,
    () => (this.isUsable && this.handle ? this.handle.exists('/').catch(() => null) : undefined),
  );
  /** Builds in a row that died before being established; reset by an established session. */
  private failures = 0;

  constructor(private readonly opts: ZkSessionOptions) {
    super();
  }

  /** The session timeout ZooKeeper granted (the requested one before it answered), ms. */
  get sessionTimeoutMs(): number {
    return this.handle?.sessionTimeoutMs ?? this.opts.sessionTimeoutMs;
  }

  /**
   * How sure the gateway can be that its session is alive, now: see liveness.ts. `aliveUntil`
   * is `-Infinity` while the session is not usable (suspended, expired, connecting, closed).
   */
  liveness(): SessionLiveness {
    const usable = this.isUsable && this.handle !== null;
    const lastHeardAt = usable && this.handle ? this.handle.lastHeardAt : Number.NEGATIVE_INFINITY;
    const sessionTimeoutMs = this.sessionTimeoutMs;
    return { usable, epoch: this.epochs, sessionTimeoutMs, lastHeardAt, aliveUntil: lastHeardAt + sessionTimeoutMs };
  }

  get state(): ConnectionState {
    return this.current;
  }
  /**
   * Bumped by every state transition (a connection lost or back, an expiry, a new session): a
   * fact learned on the session holds only while this has not moved (`liveness().epoch`).
   */
  get epoch(): number {
    return this.epochs;
  }
  get generation(): number {
    return this.gen;
  }
  /** True while operations can be sent (connected or reconnected). */
  get isUsable(): boolean {
    return this.current === 'connected' || this.current === 'reconnected';
  }
  /** Current session id (hex) or empty. */
  get sessionId(): string {
    return this.handle && this.gen > 0 ? this.handle.sessionId : '';
  }
  /** The session password (hex) of the current handle; for tests that force expiry. */
  get sessionPassword(): string {
    return this.handle ? this.handle.sessionPassword : '';
  }

  /** Starts connecting; resolves on the first established session or rejects after `timeoutMs`. */
  async start(timeoutMs = 15_000): Promise<void> {
    if (this.lifecycle !== 'idle') throw new Error('zk session: already started');
    this.lifecycle = 'running';
    this.build();
    if (this.isUsable) return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.off('state', onState);
        reject(new ZkError('CONNECTION_LOSS', -4, `zookeeper: no session with ${this.opts.connect} after ${timeoutMs} ms`));
      }, timeoutMs);
      const onState = (c: StateChange): void => {
        if (c.state === 'connected') {
          clearTimeout(timer);
          this.off('state', onState);
          resolve();
        }
      };
      this.on('state', onState);
    });
  }

  /**
   * The client to send operations with. Throws CONNECTION_LOSS at once while suspended or
   * connecting, so callers fail fast instead of queueing behind a dead connection.
   */
  client(): ZkClient {
    if (!this.isUsable || !this.handle) {
      throw new ZkError('CONNECTION_LOSS', -4, `zookeeper: session is ${this.current}`);
    }
    return this.handle;
  }

  /**
   * Stops using the session without closing it, so that another process can resume it (see
   * `NativeZkClient.detach`); the session's state here becomes `closed`. Resolves with the
   * session's id and password, or null when there is no established session to hand over or
   * the binding cannot detach (the session is then left as it was).
   */
  detach(): { sessionId: string; password: string } | null {
    if (this.lifecycle !== 'running' || !this.handle || !this.isUsable) return null;
    const creds = { sessionId: this.handle.sessionId, password: this.handle.sessionPassword };
    if (!this.handle.detach()) return null;
    this.lifecycle = 'closed';
    clearTimeout(this.rebuildTimer);
    this.heartbeat.stop();
    this.transition('closed');
    return creds;
  }

  /** Closes the session (its ephemerals go at once); idempotent. */
  close(): void {
    if (this.lifecycle === 'closed') return;
    this.lifecycle = 'closed';
    clearTimeout(this.rebuildTimer);
    this.heartbeat.stop();
    this.handle?.close();
    this.transition('closed');
  }

  private transition(state: ConnectionState): void {
    if (state === this.current) return;
    this.current = state;
    this.epochs++;
    if (state === 'connected' || state === 'reconnected') {
      // Hear from ZooKeeper on the (re)established session at once, then keep it fresh.
      this.heartbeat.beat();
      this.heartbeat.start();
    }
    this.emit('state', { state, sessionId: this.sessionId, generation: this.gen } satisfies StateChange);
  }

  private build(): void {
    const resume = this.gen === 0 && this.failures === 0 ? this.opts.resume : undefined;
    const handle = new NativeZkClient({ connect: this.opts.connect, sessionTimeoutMs: this.opts.sessionTimeoutMs, ...(resume ? { resume } : {}) });
    this.handle = handle;
    let established = false;
    let failure = 'the handle closed before a session was established';
    handle.on('connect', () => {
      if (this.handle !== handle) return;
      if (established) {
        this.transition('reconnected');
        return;
      }
      established = true;
      void this.authenticate(handle).then(
        () => {
          if (this.handle !== handle || handle.isClosed) return;
          this.gen += 1;
          this.failures = 0;
          this.transition('connected');
        },
        (err: Error) => {
          established = false; // never usable: its close is a failed build, not an expiry
          failure = `authentication failed: ${err.message}`;
          handle.close();
          if (this.handle === handle) this.scheduleRebuild(failure);
        },
      );
    });
    handle.on('connecting', () => {
      if (this.handle === handle && established) this.transition('suspended');
    });
    handle.on('close', () => {
      if (this.handle !== handle || this.lifecycle === 'closed') return;
      this.epochs++;
      if (this.rebuildTimer) return; // a failed build already scheduled its successor
      if (established) {
        this.transition('expired');
        this.current = 'connecting';
        this.rebuildTimer = setTimeout(() => this.rebuild(), this.opts.rebuildDelayMs ?? 100);
      } else {
        this.scheduleRebuild(failure);
      }
    });
  }

  private rebuild(): void {
    this.rebuildTimer = undefined;
    if (this.lifecycle === 'running') this.build();
  }

  /** After a build that died unestablished: the next one after an exponential, jittered delay. */
  private scheduleRebuild(reason: string): void {
    if (this.lifecycle !== 'running' || this.rebuildTimer) return;
    this.current = 'connecting';
    this.failures += 1;
    const nextAttemptMs = backoffDelay(this.failures - 1, this.opts.rebuildDelayMs ?? 100, this.opts.maxRebuildDelayMs ?? 30_000);
    this.rebuildTimer = setTimeout(() => this.rebuild(), nextAttemptMs);
    this.emit('rebuildFailed', { failures: this.failures, reason, nextAttemptMs } satisfies RebuildFailure);
  }

  private async authenticate(handle: NativeZkClient): Promise<void> {
    for (const a of this.opts.auth ?? []) await handle.addAuth(a.scheme, a.credential);
  }
}
