/**
 * A lease held by another instance, as this instance shows it to a caller: the owner's latest
 * answer about it (info), kept current by forwarded calls. While anything listens to its
 * `state` events (a gRPC KeepAlive stream, a WebSocket bound to it) it follows the owner's
 * changes over the internal channel; the last listener leaving stops that stream on the owner.
 */
import { Lease, type LeaseInfo, type LeaseState } from '../leases/lease.js';
import type { Tenant } from '../tenants/tenant.js';

/** Follows the owner's changes of `lease` until `signal` aborts or the lease ends. */
export type Follow = (lease: RemoteLease, signal: AbortSignal) => Promise<void>;

export class RemoteLease extends Lease {
  private snap: LeaseInfo;
  private snapAt = Date.now();
  private following: AbortController | undefined;
  /** When it was last handed to a caller (for the cache's sweep), ms since the epoch. */
  usedAt = Date.now();

  constructor(info: LeaseInfo, tenant: Tenant, private readonly follow: Follow) {
    super(info.id, tenant, info.ttlMs, -1, info.owner);
    this.snap = info;
    this.update(info);
    this.on('newListener', (event: string) => {
      if (event === 'state' && !this.following && !this.isEnded) this.startFollowing();
    });
    this.on('removeListener', (event: string) => {
      if (event === 'state' && this.listenerCount('state') === 0) this.stopFollowing();
    });
  }

  /** True while a caller listens to its changes. */
  get followed(): boolean {
    return this.following !== undefined;
  }

  override get deadline(): number {
    return this.snapAt + this.snap.remainingMs;
  }

  override trustMs(): number {
    return this.state === 'active' ? Math.max(0, this.snap.trustMs - (Date.now() - this.snapAt)) : 0;
  }

  override info(): LeaseInfo {
    const elapsed = Date.now() - this.snapAt;
    return {
      ...this.snap,
      state: this.state,
      reason: this.reason,
      remainingMs: this.isEnded ? 0 : Math.max(0, this.snap.remainingMs - elapsed),
      trustMs: this.trustMs(),
    };
  }

  /** Takes the owner's latest answer; a change of state is emitted like a local lease's. */
  update(info: LeaseInfo): void {
    if (this.isEnded) return;
    this.snap = info;
    this.snapAt = Date.now();
    this.usedAt = this.snapAt;
    if (info.state !== this.state) this.transition(info.state, info.reason);
  }

  /** Ends it here with `reason` (the owner is gone), whatever the owner said last. */
  end(state: Extract<LeaseState, 'lost'>, reason: string): void {
    this.snap = { ...this.snap, state, reason, remainingMs: 0, trustMs: 0 };
    this.transition(state, reason);
    this.stopFollowing();
  }

  private startFollowing(): void {
    const ac = new AbortController();
    this.following = ac;
    void this.follow(this, ac.signal).finally(() => {
      if (this.following === ac) this.following = undefined;
    });
  }

  private stopFollowing(): void {
    this.following?.abort();
    this.following = undefined;
  }
}
