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
  /** Held through this instance. */
  readonly used: number;
  /** Held through the other instances of a cluster, as last published (0 alone). */
  readonly elsewhere: number;
  readonly max: number;
}

/**
 * How a tenant's quotas are shared by the instances of a cluster (core/cluster/quotas.ts): what
 * the others hold, and where this instance's changes go to be published to them.
 */
export interface QuotaSharing {
  /** Units of `kind` the tenant holds through the other instances, as last seen. */
  elsewhere(tenant: string, kind: QuotaKind): number;
  /** This instance's counts for `tenant` changed; `held` is what it holds now. */
  changed(tenant: string, held: Readonly<Record<QuotaKind, number>>): void;
}

/** Counts what one tenant holds; `take` hands back a release function. */
export class TenantQuotas {
  private readonly used: Record<QuotaKind, number> = { leases: 0, locks: 0, subscriptions: 0, connections: 0 };
  private sharing: QuotaSharing | null = null;

  constructor(
    private readonly tenant: string,
    private readonly limits: Limits,
  ) {}

  /** Counts the units of the tenant's other instances too (a cluster); set once at start. */
  share(sharing: QuotaSharing): void {
    this.sharing = sharing;
  }

  /**
   * Takes one unit of `kind`. The returned function gives it back; calling it again does nothing.
   * In a cluster the units held through the other instances count too (as last published).
   * `force` counts the unit even past the limit (a lease adopted in a handoff was granted within it).
   * @throws ZkgateError LIMIT_EXCEEDED when the tenant already holds the maximum.
   */
  take(kind: QuotaKind, opts: { force?: boolean } = {}): () => void {
    const limit = QUOTA_LIMITS[kind];
    const max = this.limits[limit];
    const elsewhere = this.sharing?.elsewhere(this.tenant, kind) ?? 0;
    if (!opts.force && this.used[kind] + elsewhere >= max) {
      const where = this.sharing ? ' across the cluster' : '';
      throw new ZkgateError('LIMIT_EXCEEDED', `tenant ${this.tenant}: at most ${max} ${kind}${where} (limits.${limit})`, { limit, max });
    }
    this.used[kind] += 1;
    this.sharing?.changed(this.tenant, this.used);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.used[kind] -= 1;
      this.sharing?.changed(this.tenant, this.used);
    };
  }

  /** What this instance holds now (what it publishes to the others of a cluster). */
  held(): Record<QuotaKind, number> {
    return { ...this.used };
  }

  /** What is held now, against each limit. */
  usage(): Record<QuotaKind, QuotaUsage> {
    const out = {} as Record<QuotaKind, QuotaUsage>;
    for (const kind of Object.keys(QUOTA_LIMITS) as QuotaKind[]) {
      out[kind] = { used: this.used[kind], elsewhere: this.sharing?.elsewhere(this.tenant, kind) ?? 0, max: this.limits[QUOTA_LIMITS[kind]] };
    }
    return out;
  }
}
