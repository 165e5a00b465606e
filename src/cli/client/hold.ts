/**
 * `zkgate lock` and `zkgate elect`: hold a lock or leadership while a command runs, as `consul
 * lock` does. A lease is granted and kept alive for the whole run (the wait included: a wait
 * does not keep a lease alive by itself); the command gets the fencing token in its environment;
 * when the hold is lost — the lease ends, the held node is deleted, or no keepalive has been
 * confirmed within the trust window — the command is stopped (SIGTERM, then SIGKILL after the
 * grace period). Exit codes: `EXIT` below.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import { GatewayClient, GatewayProblem, routeOf } from './http.js';

/** Exit codes of `lock` and `elect` besides the command's own. */
export const EXIT = {
  /** Refused by the gateway (bad path, no permission, …). */
  refused: 1,
  /** Usage error. */
  usage: 2,
  /** The gateway could not be reached or was unavailable. */
  unavailable: 69,
  /** The lock or leadership was not obtained within the wait. */
  notAcquired: 75,
  /** The hold was lost while the command ran; the command was stopped. */
  lost: 76,
} as const;

/** What a hold gives the command. */
export interface Held {
  readonly node: string;
  readonly fencingToken: string;
  /** Extra environment for the command. */
  readonly env: Readonly<Record<string, string>>;
}

export interface HoldSpec {
  readonly kind: 'lock' | 'leadership';
  readonly path: string;
  readonly ttlMs: number;
  /** Total wait in ms; `undefined` waits until obtained. */
  readonly waitMs: number | undefined;
  readonly graceMs: number;
  readonly command: readonly string[];
  /** One attempt of at most `waitMs`; a 409 problem means "not obtained within the wait". */
  acquire(leaseId: string, waitMs: number, signal: AbortSignal): Promise<Held>;
  release(leaseId: string, node: string): Promise<void>;
  /** Lifecycle lines (stderr). */
  report(event: string, fields: Record<string, unknown>): void;
}

/** The longest wait the gateway grants one call (core MAX_WAIT_MS). */
const MAX_ATTEMPT_MS = 600_000;

interface LeaseAnswer {
  readonly id: string;
  readonly state: string;
  readonly reason: string;
  readonly remainingMs: number;
  readonly trustMs?: number;
  readonly owned: readonly { readonly path: string }[];
}

/** Keeps a lease alive and decides when a hold can no longer be trusted. */
class LeaseKeeper {
  private timer: NodeJS.Timeout | undefined;
  private trustedUntil: number;
  private node: string | undefined;
  private done = false;
  constructor(
    private readonly client: GatewayClient,
    readonly id: string,
    private readonly ttlMs: number,
    private readonly onLost: (reason: string) => void,
  ) {
    this.trustedUntil = Date.now() + ttlMs;
  }

  start(): void {
    const every = Math.max(100, Math.floor(this.ttlMs / 3));
    this.timer = setInterval(() => void this.beat(), every);
  }

  private readonly watching = new AbortController();

  /**
   * From now on the lease must own `node`: checked at every keepalive, and pushed at once by a
   * watch stream when someone deletes the node behind the gateway's back.
   */
  watchNode(node: string): void {
    this.node = node;
    void (async () => {
      try {
        for await (const ev of this.client.events(routeOf('watch', node), { kind: 'data' }, this.watching.signal)) {
          if ((ev.data as { type?: string }).type === 'deleted') return this.lose(`node ${node} was deleted`);
        }
      } catch {
        // The keepalive check still applies; a broken stream alone proves nothing.
      }
    })();
  }

  private async beat(): Promise<void> {
    if (this.done) return;
    const sent = Date.now();
    try {
      const info = await this.client.request<LeaseAnswer>('POST', `/v1/leases/${encodeURIComponent(this.id)}/keepalive`);
      if (info.state === 'active') {
        if (this.node && !info.owned.some((o) => o.path === this.node)) return this.lose(`node ${this.node} is no longer owned by the lease`);
        // Trusted from when the keepalive was sent, for what the gateway vouches (trustMs) or the TTL.
        this.trustedUntil = Math.max(this.trustedUntil, sent + Math.min(info.trustMs ?? this.ttlMs, this.ttlMs));
      }
    } catch (err) {
      if (err instanceof GatewayProblem && err.status === 410) return this.lose(`lease ${err.code}: ${err.message}`);
      if (err instanceof GatewayProblem && err.status === 404) return this.lose(`lease gone: ${err.message}`);
    }
    if (Date.now() > this.trustedUntil) this.lose('no keepalive confirmed within the trust window');
  }

  private lose(reason: string): void {
    if (this.done) return;
    this.stop();
    this.onLost(reason);
  }

  stop(): void {
    this.done = true;
    clearInterval(this.timer);
    this.watching.abort();
  }
}

/** Runs the hold; resolves with the process exit code. */
export async function runHolding(client: GatewayClient, spec: HoldSpec): Promise<number> {
  const lease = await client.request<LeaseAnswer>('POST', '/v1/leases', { body: { ttlMs: spec.ttlMs } });
  const waitAbort = new AbortController();
  let lostReason: string | undefined;
  let child: ChildProcess | undefined;
  let killTimer: NodeJS.Timeout | undefined;
  const stopChild = (signal: NodeJS.Signals): void => {
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill(signal);
    killTimer ??= setTimeout(() => child?.kill('SIGKILL'), spec.graceMs);
  };
  const keeper = new LeaseKeeper(client, lease.id, spec.ttlMs, (reason) => {
    lostReason = reason;
    spec.report('lost', { path: spec.path, reason });
    waitAbort.abort(new Error(reason));
    stopChild('SIGTERM');
  });
  keeper.start();
  let interrupted: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    interrupted ??= signal;
    if (child) stopChild(signal);
    else waitAbort.abort(new Error(`interrupted by ${signal}`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const revoke = (): Promise<void> =>
    client.request('DELETE', `/v1/leases/${encodeURIComponent(lease.id)}`).then(
      () => undefined,
      () => undefined,
    );
  try {
    const held = await acquireWithin(spec, lease.id, waitAbort.signal);
    if (!held) {
      if (lostReason) return EXIT.lost;
      if (interrupted) return 128 + (interrupted === 'SIGINT' ? 2 : 15);
      spec.report('not_acquired', { path: spec.path, waitMs: spec.waitMs ?? null });
      return EXIT.notAcquired;
    }
    keeper.watchNode(held.node);
    spec.report('acquired', { path: spec.path, node: held.node, fencingToken: held.fencingToken });
    const [file, ...args] = spec.command as [string, ...string[]];
    child = spawn(file, args, { stdio: 'inherit', env: { ...process.env, ...held.env, ZKGATE_LEASE_ID: lease.id, ZKGATE_FENCING_TOKEN: held.fencingToken } });
    const code = await new Promise<number>((resolve) => {
      child?.once('error', (err) => {
        spec.report('command_failed', { error: err.message });
        resolve(127);
      });
      child?.once('exit', (c, sig) => resolve(c ?? 128 + signalNumber(sig)));
    });
    clearTimeout(killTimer);
    if (lostReason) return EXIT.lost;
    keeper.stop();
    await spec.release(lease.id, held.node).catch(() => undefined);
    spec.report('released', { path: spec.path, node: held.node, exitCode: code });
    return code;
  } finally {
    keeper.stop();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await revoke();
  }
}

/** Attempts until held, the total wait ends (null), or `signal` aborts (null). */
async function acquireWithin(spec: HoldSpec, leaseId: string, signal: AbortSignal): Promise<Held | null> {
  const deadline = spec.waitMs === undefined ? Infinity : Date.now() + spec.waitMs;
  for (;;) {
    const wait = Math.max(0, Math.min(MAX_ATTEMPT_MS, deadline - Date.now()));
    try {
      return await spec.acquire(leaseId, wait, signal);
    } catch (err) {
      if (signal.aborted) return null;
      if (!(err instanceof GatewayProblem && err.status === 409)) throw err;
      if (Date.now() >= deadline) return null;
    }
  }
}

function signalNumber(sig: NodeJS.Signals | null): number {
  return sig ? osConstants.signals[sig] : 0;
}

/** `zkgate lock`'s gateway calls. */
export function lockCalls(client: GatewayClient, path: string, opts: { flavour?: string; data?: string }): Pick<HoldSpec, 'acquire' | 'release'> {
  const route = routeOf('locks', path);
  return {
    async acquire(leaseId, waitMs, signal) {
      const h = await client.request<{ node: string; fencingToken: string; lockPath: string }>('POST', route, {
        body: { leaseId, waitMs, ...(opts.flavour ? { flavour: opts.flavour } : {}), ...(opts.data !== undefined ? { data: opts.data } : {}) },
        signal,
      });
      return { node: h.node, fencingToken: h.fencingToken, env: { ZKGATE_LOCK_PATH: h.lockPath, ZKGATE_LOCK_NODE: h.node } };
    },
    async release(leaseId, node) {
      await client.request('DELETE', route, { query: { leaseId, node } });
    },
  };
}

/** `zkgate elect`'s gateway calls. */
export function electionCalls(client: GatewayClient, path: string, value: string | undefined): Pick<HoldSpec, 'acquire' | 'release'> {
  const route = routeOf('elections', path);
  return {
    async acquire(leaseId, waitMs, signal) {
      const l = await client.request<{ node: string; term: string; electionPath: string }>('POST', route, {
        body: { leaseId, waitMs, ...(value !== undefined ? { value } : {}) },
        signal,
      });
      return { node: l.node, fencingToken: l.term, env: { ZKGATE_ELECTION_PATH: l.electionPath, ZKGATE_LEADER_NODE: l.node, ZKGATE_TERM: l.term } };
    },
    async release(leaseId, node) {
      await client.request('DELETE', route, { query: { leaseId, node } });
    },
  };
}
