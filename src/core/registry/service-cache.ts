/**
 * Instance sets kept in memory for picks and listings, as Curator's `ServiceProvider` reads a
 * watch-fed `ServiceCache` instead of ZooKeeper. A service is followed (an `InstanceSetWatch`
 * over the hub's shared watches) once a pick or listing of it has read ZooKeeper; later ones are
 * answered from its set while that set vouches for its state (the read cache's rule, see
 * `InstanceSetWatch.vouched`). Bounded per tenant: at most `maxServices` followed, the least
 * recently used let go first, and one unused for `idleMs` is let go too.
 */
import { monotonicMs } from '../../zk/index.js';
import type { Tenant } from '../tenants/tenant.js';
import type { WatchHub } from '../watch/hub.js';
import type { InstanceSet, ServiceRef } from './instance-set.js';
import { InstanceSetWatch } from './instance-watch.js';

/** How many services are followed, and for how long without use. */
export interface ServiceCacheBounds {
  /** Followed services per tenant; 0 turns the cache off. */
  readonly maxServices: number;
  /** ms a followed service may go unused before it is let go. */
  readonly idleMs: number;
}

export const SERVICE_CACHE_DEFAULTS: ServiceCacheBounds = { maxServices: 100, idleMs: 300_000 };

/** One tenant's figures for /metrics. */
export interface ServiceCacheStats {
  readonly tenant: string;
  /** Services followed now. */
  readonly followed: number;
  /** Picks and listings answered from memory. */
  readonly hits: number;
}

interface Followed {
  readonly watch: InstanceSetWatch;
  usedAt: number;
}

interface TenantServices {
  /** By service path, least recently used first. */
  readonly services: Map<string, Followed>;
  hits: number;
}

export class ServiceCache {
  private readonly tenants = new Map<Tenant, TenantServices>();
  private sweeper: NodeJS.Timeout | undefined;

  constructor(
    private readonly hub: WatchHub,
    private readonly bounds: ServiceCacheBounds,
  ) {}

  /** The service's set from memory when its followed set vouches for it; else undefined (read ZooKeeper, then `follow`). */
  get(tenant: Tenant, ref: ServiceRef): InstanceSet | undefined {
    const t = this.tenants.get(tenant);
    const f = t?.services.get(ref.path);
    if (!t || !f) return undefined;
    // Most recently used goes last.
    t.services.delete(ref.path);
    t.services.set(ref.path, f);
    f.usedAt = monotonicMs();
    let set: InstanceSet | undefined;
    try {
      set = f.watch.vouched();
    } catch {
      // Its watch failed (too many instances, no read permission): let it go; reads report why.
      this.drop(t, ref.path);
      return undefined;
    }
    if (set) t.hits++;
    return set;
  }

  /** Starts following the service (no-op when followed already or the cache is off). */
  follow(tenant: Tenant, ref: ServiceRef): void {
    if (this.bounds.maxServices === 0) return;
    let t = this.tenants.get(tenant);
    if (!t) {
      t = { services: new Map(), hits: 0 };
      this.tenants.set(tenant, t);
    }
    if (t.services.has(ref.path)) return;
    t.services.set(ref.path, { watch: new InstanceSetWatch(this.hub, tenant, ref), usedAt: monotonicMs() });
    while (t.services.size > this.bounds.maxServices) this.drop(t, t.services.keys().next().value as string);
    this.sweeper ??= setInterval(() => this.sweep(), Math.min(this.bounds.idleMs / 2, 30_000)).unref();
  }

  stats(): ServiceCacheStats[] {
    return [...this.tenants].map(([tenant, t]) => ({ tenant: tenant.name, followed: t.services.size, hits: t.hits }));
  }

  /** Lets every followed service go. Idempotent. */
  close(): void {
    clearInterval(this.sweeper);
    this.sweeper = undefined;
    for (const t of this.tenants.values()) for (const path of [...t.services.keys()]) this.drop(t, path);
  }

  private drop(t: TenantServices, path: string): void {
    t.services.get(path)?.watch.close();
    t.services.delete(path);
  }

  /** Lets go of the services unused for `idleMs`. */
  private sweep(): void {
    const oldest = monotonicMs() - this.bounds.idleMs;
    let left = 0;
    for (const t of this.tenants.values()) {
      for (const [path, f] of t.services) {
        if (f.usedAt > oldest) break; // least recently used first: the rest are newer
        this.drop(t, path);
      }
      left += t.services.size;
    }
    if (left === 0) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }
}
