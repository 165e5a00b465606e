/**
 * Per-tenant quotas on things that live in the gateway (leases, locks, subscriptions, streaming
 * connections). Taking a unit past the limit throws LIMIT_EXCEEDED (HTTP 429, gRPC
 * RESOURCE_EXHAUSTED, WebSocket close 4429) naming the limit; nothing is queued.
 */
import type { Limits } from './limits.js';
import { ZkgateError } from '../errors.js';

export type QuotaKind = 'leases' | 'locks' | 'subscriptions' | 'connections';

/** The `limits` field that bounds each kind. */
export const QUOTA_LIMITS: Readonly<Record<QuotaKind, keyof Limits>> = {
  leases: 'maxLeasesPerTenant',
  locks: 'maxLocksPerTenant',
  subscriptions: 'maxSubscriptionsPerTenant',
  connections: 'maxConnectionsPerTenant',
};

export interface QuotaUsage {
  readonly used: number;
  readonly max: number;
}

/** Counts what one tenant holds; `take` hands back a release function. */
export class TenantQuotas {
  private readonly used: Record<QuotaKind, number> = { leases: 0, locks: 0, subscriptions: 0, connections: 0 };

  constructor(
    private readonly tenant: string,
    private readonly limits: Limits,
  ) {}

  /**
   * Takes one unit of `kind`. The returned function gives it back; calling it again does nothing.
   * @throws ZkgateError LIMIT_EXCEEDED when the tenant already holds the maximum.
   */
  take(kind: QuotaKind): () => void {
    const limit = QUOTA_LIMITS[kind];
    const max = this.limits[limit];
    if (this.used[kind] >= max) {
      throw new ZkgateError('LIMIT_EXCEEDED', `tenant ${this.tenant}: at most ${max} ${kind} (limits.${limit})`, { limit, max });
    }
    this.used[kind] += 1;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.used[kind] -= 1;
    };
  }

  /** What is held now, against each limit. */
  usage(): Record<QuotaKind, QuotaUsage> {
    const out = {} as Record<QuotaKind, QuotaUsage>;
    for (const kind of Object.keys(QUOTA_LIMITS) as QuotaKind[]) out[kind] = { used: this.used[kind], max: this.limits[QUOTA_LIMITS[kind]] };
    return out;
  }
}
