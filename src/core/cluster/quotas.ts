/**
 * Quotas per tenant across a cluster (docs/cluster.md "Quotas across the cluster"). Each
 * instance counts the units taken through it (TenantQuotas, in memory, as alone) and publishes
 * its counts to an ephemeral znode of its registration's session; it watches the others' and a
 * take refuses when its own count plus the others' last published counts reach the limit. No
 * ZooKeeper round trip is on the path of a take: the publication is written behind it, at most
 * one write in flight and one per PUBLISH_INTERVAL_MS per instance. The price is staleness: two
 * instances taking the last units within that window (plus a write and a watch notification)
 * may both succeed, so a tenant can briefly exceed its limit by what the others took in the
 * window; it is then refused until it is back under. Units of a dead instance come back when
 * its registration's session expires, which is also when its nodes (locks, candidacies) go.
 */
import { QUOTA_LIMITS, type QuotaKind, type QuotaSharing } from '../limits/quotas.js';

/** Most often an instance writes its usage, ms (bounds the write rate; adds to the staleness). */
export const PUBLISH_INTERVAL_MS = 50;

/** Where usage is published and read (src/zk InstanceRegistration). */
export interface UsageBoard {
  /** The others' published values: instance id → value. */
  usage(): ReadonlyMap<string, unknown>;
  publishUsage(value: unknown): void;
  on(event: 'usage', listener: () => void): unknown;
}

type Counts = Record<QuotaKind, number>;
/** What an instance publishes: its counts per tenant (tenants holding nothing left out). */
interface Published {
  readonly tenants: Readonly<Record<string, Partial<Counts>>>;
}

const KINDS = Object.keys(QUOTA_LIMITS) as QuotaKind[];

export class ClusterQuotas implements QuotaSharing {
  /** Tenant → the other instances' units, summed. */
  private sums = new Map<string, Counts>();
  private timer: NodeJS.Timeout | null = null;
  private lastAt = 0;
  private retired = false;

  constructor(
    private readonly board: UsageBoard,
    /** This instance's counts per tenant now. */
    private readonly local: () => ReadonlyMap<string, Counts>,
  ) {
    board.on('usage', () => this.resum());
    this.resum();
  }

  elsewhere(tenant: string, kind: QuotaKind): number {
    return this.sums.get(tenant)?.[kind] ?? 0;
  }

  changed(): void {
    if (this.timer || this.retired) return;
    const wait = Math.max(0, this.lastAt + PUBLISH_INTERVAL_MS - Date.now());
    this.timer = setTimeout(() => this.publish(), wait);
    this.timer.unref();
  }

  /**
   * After a handoff this instance holds nothing that counts: its leases (and their locks) are
   * counted by the instance that adopted them. Publishes zero and stops publishing.
   */
  retire(): void {
    this.retired = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.board.publishUsage({ tenants: {} } satisfies Published);
  }

  private publish(): void {
    this.timer = null;
    if (this.retired) return;
    this.lastAt = Date.now();
    const tenants: Record<string, Partial<Counts>> = {};
    for (const [name, c] of this.local()) {
      const held = Object.fromEntries(KINDS.filter((k) => c[k] > 0).map((k) => [k, c[k]])) as Partial<Counts>;
      if (Object.keys(held).length > 0) tenants[name] = held;
    }
    this.board.publishUsage({ tenants } satisfies Published);
  }

  private resum(): void {
    const sums = new Map<string, Counts>();
    for (const value of this.board.usage().values()) addPublished(sums, value);
    this.sums = sums;
  }
}

/** Adds one instance's published value (any JSON: a malformed one adds nothing) to per-tenant sums. */
function addPublished(sums: Map<string, Counts>, value: unknown): void {
  const tenants = (value as Partial<Published> | null)?.tenants;
  if (!tenants || typeof tenants !== 'object') return;
  for (const [name, held] of Object.entries(tenants)) {
    let s = sums.get(name);
    if (!s) sums.set(name, (s = { leases: 0, locks: 0, subscriptions: 0, connections: 0 }));
    for (const k of KINDS) {
      const n = held?.[k];
      if (typeof n === 'number' && Number.isFinite(n) && n > 0) s[k] += n;
    }
  }
}

/** The leases an instance's published usage counts, all tenants together. */
export function publishedLeases(value: unknown): number {
  const sums = new Map<string, Counts>();
  addPublished(sums, value);
  let n = 0;
  for (const c of sums.values()) n += c.leases;
  return n;
}
