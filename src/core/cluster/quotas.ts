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

/**
 * Most a value that only gives units back waits before it is written, ms: a unit released on
 * one instance comes back on the others this much later (plus a write and a notification).
 */
export const RELEASE_DELAY_MS = 500;

type Counts = Record<QuotaKind, number>;
/** What an instance publishes: its counts per tenant (tenants holding nothing left out). */
interface Published {
  readonly tenants: Readonly<Record<string, Partial<Counts>>>;
  /** Set from the start of a graceful shutdown: the instance is no tenant's home any more (docs/cluster.md "Lease placement"). */
  readonly draining?: true;
}

const KINDS = Object.keys(QUOTA_LIMITS) as QuotaKind[];

export class ClusterQuotas implements QuotaSharing {
  /** Tenant → the other instances' units, summed. */
  private sums = new Map<string, Counts>();
  private timer: NodeJS.Timeout | null = null;
  private lastAt = 0;
  private retired = false;
  /** Whether the pending timer is a release waiting out RELEASE_DELAY_MS. */
  private deferred = false;
  /** The counts last handed to the board, and as JSON (null before the first publication). */
  private last: Readonly<Record<string, Partial<Counts>>> = {};
  private lastText: string | null = null;
  /** When the counts first fell below the last written ones without being written yet. */
  private releasedAt: number | null = null;
  private draining = false;
  /**
   * Tenants whose counts differ from the last written: true when some count is above it (a take,
   * written at the usual pace), false when all are at or below it (units given back, written once
   * RELEASE_DELAY_MS has passed without a take cancelling them out).
   */
  private readonly off = new Map<string, boolean>();

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

  changed(tenant: string, held: Readonly<Counts>): void {
    if (this.retired) return;
    const written = this.last[tenant];
    let above = false;
    let below = false;
    for (const k of KINDS) {
      const d = held[k] - (written?.[k] ?? 0);
      if (d > 0) above = true;
      else if (d < 0) below = true;
    }
    if (above) this.off.set(tenant, true);
    else if (below) this.off.set(tenant, false);
    else this.off.delete(tenant);
    // Back to what was written (a lock cycle's take after its release): nothing to write, and no
    // timer armed for it. Was a timer of 0 ms (1 ms in Node) at each take and each release, both
    // finding nothing to write, and often a wake-up of their own (docs/cluster.md "Forwarding
    // overhead"); a deferred publication still pending finds nothing when it fires.
    if (this.off.size === 0) return void (this.releasedAt = null);
    if (this.timer && !this.deferred) return; // due at the usual pace: it sees this change too
    if (above) {
      // A take after a deferred release: it goes out at the usual pace, not with the release.
      if (this.timer) clearTimeout(this.timer);
      return this.schedule(Math.max(0, this.lastAt + PUBLISH_INTERVAL_MS - Date.now()), false);
    }
    this.releasedAt ??= Date.now();
    if (!this.timer) this.schedule(this.releasedAt + RELEASE_DELAY_MS - Date.now(), true);
  }

  private schedule(wait: number, deferred: boolean): void {
    this.deferred = deferred;
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
    this.board.publishUsage(this.value({}));
  }

  /**
   * Says at once, and in every later publication, that this instance is shutting down: the
   * others stop placing new leases here (`publishedDraining`). Idempotent.
   */
  drain(): void {
    if (this.draining) return;
    this.draining = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.deferred = false;
    this.releasedAt = null;
    const tenants = this.retired ? {} : this.counts();
    this.lastAt = Date.now();
    this.lastText = JSON.stringify(tenants);
    this.last = tenants;
    this.off.clear();
    this.board.publishUsage(this.value(tenants));
  }

  private value(tenants: Readonly<Record<string, Partial<Counts>>>): Published {
    return this.draining ? { tenants, draining: true } : { tenants };
  }

  private counts(): Record<string, Partial<Counts>> {
    const tenants: Record<string, Partial<Counts>> = {};
    for (const [name, c] of this.local()) {
      const held = Object.fromEntries(KINDS.filter((k) => c[k] > 0).map((k) => [k, c[k]])) as Partial<Counts>;
      if (Object.keys(held).length > 0) tenants[name] = held;
    }
    return tenants;
  }

  private publish(): void {
    this.timer = null;
    this.deferred = false;
    if (this.retired) return;
    const now = Date.now();
    const tenants = this.counts();
    // Only a value that differs from the last one written is written: a unit taken and given
    // back between two publications (a lock cycle) leaves the counts as they were. A value
    // that only gives units back waits up to RELEASE_DELAY_MS for a take to cancel it out. On a
    // busy lock each instance's count went 1 → 0 → 1 per cycle and was written at every chance
    // (20 writes/s per instance, each a quorum write plus a notification and three reads on
    // every other instance: two thirds of the ensemble's requests in bench:cluster's lock rounds).
    const text = JSON.stringify(tenants);
    if (text === this.lastText) {
      this.releasedAt = null;
      this.off.clear();
      return;
    }
    if (onlyLower(tenants, this.last)) {
      this.releasedAt ??= now;
      if (now < this.releasedAt + RELEASE_DELAY_MS) return this.schedule(this.releasedAt + RELEASE_DELAY_MS - now, true);
    }
    this.releasedAt = null;
    this.lastAt = now;
    this.lastText = text;
    this.last = tenants;
    this.off.clear();
    this.board.publishUsage(this.value(tenants));
  }

  private resum(): void {
    const sums = new Map<string, Counts>();
    for (const value of this.board.usage().values()) addPublished(sums, value);
    this.sums = sums;
  }
}

/** True when no count of `next` is above its count in `prev` (units only given back). */
function onlyLower(next: Readonly<Record<string, Partial<Counts>>>, prev: Readonly<Record<string, Partial<Counts>>>): boolean {
  for (const [name, held] of Object.entries(next)) for (const k of KINDS) if ((held[k] ?? 0) > (prev[name]?.[k] ?? 0)) return false;
  return true;
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

/** True when an instance's published usage says it is shutting down (`ClusterQuotas.drain`). */
export function publishedDraining(value: unknown): boolean {
  return (value as Partial<Published> | null)?.draining === true;
}
