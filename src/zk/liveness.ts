/**
 * When the gateway last heard from ZooKeeper, as a bound on how long its session is certainly
 * alive. ZooKeeper expires a session only after `sessionTimeoutMs` without hearing from its
 * client, so once ZooKeeper answered a request sent at time `t`, the session (and every
 * ephemeral, lock hold and watch it has) is alive at least until `t + sessionTimeoutMs` by the
 * server's clock. The send time is used, not the arrival of the answer: the server heard from
 * us no earlier than that. The C client pings on its own but does not tell, so a heartbeat read
 * keeps the time fresh when the session is otherwise idle.
 */
import { performance } from 'node:perf_hooks';
import type { ZkErrorCode } from './errors.js';

/** Errors that are ZooKeeper's answer to a request (the server heard it), not a client-side failure. */
export const SERVER_ANSWERS: ReadonlySet<ZkErrorCode> = new Set<ZkErrorCode>([
  'NO_NODE',
  'NODE_EXISTS',
  'BAD_VERSION',
  'NOT_EMPTY',
  'NO_CHILDREN_FOR_EPHEMERALS',
  'NO_AUTH',
  'INVALID_ACL',
  'UNIMPLEMENTED',
]);

/** A monotonic clock in ms (keeps running while the process is stopped, unlike timers). */
export const monotonicMs = (): number => performance.now();

/** What the gateway knows about its session's liveness at one moment. */
export interface SessionLiveness {
  /** True while operations can be sent (connected or reconnected). */
  readonly usable: boolean;
  /** Bumped on every state transition (suspended, reconnected, expired, connected, ...). */
  readonly epoch: number;
  /** The session timeout ZooKeeper granted, ms (the requested one until it answered). */
  readonly sessionTimeoutMs: number;
  /**
   * Monotonic ms ({@link monotonicMs}) at which the latest request ZooKeeper answered on this
   * session was sent; `-Infinity` before any.
   */
  readonly lastHeardAt: number;
  /** Monotonic ms before which the session cannot have expired: `lastHeardAt + sessionTimeoutMs`. */
  readonly aliveUntil: number;
}

/**
 * Sends a cheap read (`exists /`) whenever nothing was heard for `intervalMs`, so `lastHeardAt`
 * stays within about `intervalMs` of now on an idle session. One heartbeat at a time.
 */
export class Heartbeat {
  private timer: NodeJS.Timeout | undefined;
  private inFlight = false;

  constructor(
    private readonly intervalMs: () => number,
    private readonly lastHeardAt: () => number,
    private readonly send: () => Promise<unknown> | undefined,
  ) {}

  start(): void {
    if (this.timer) return;
    this.tick();
  }

  /** Sends a heartbeat now unless one is in flight (e.g. right after a reconnect). */
  beat(): void {
    if (this.inFlight) return;
    const p = this.send();
    if (!p) return;
    this.inFlight = true;
    void p.then(
      () => (this.inFlight = false),
      () => (this.inFlight = false),
    );
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private tick(): void {
    const interval = Math.max(50, this.intervalMs());
    const silent = monotonicMs() - this.lastHeardAt();
    if (silent >= interval) this.beat();
    // Wake when the next heartbeat would be due (at most one interval away).
    const next = silent >= interval ? interval : interval - silent;
    this.timer = setTimeout(() => this.tick(), Math.max(10, next));
    this.timer.unref();
  }
}
