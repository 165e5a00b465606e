/**
 * A consumer's side of the service registry: the services under a base, a service's instances
 * (Curator's `ServiceDiscovery.queryForInstances`, answered from a watch-fed set like its
 * `ServiceCache`), one instance, a pick by strategy (its `ServiceProvider`), and the instance
 * set followed as it changes (a stream or a long-poll). Curator's instances and the gateway's
 * (registrations.ts) are listed alike.
 */
import { ZkError, joinPath } from '../../zk/index.js';
import { ZkgateError, toZkgateError } from '../errors.js';
import { checkWaitMs } from '../recipes/lock.js';
import type { Tenant } from '../tenants/tenant.js';
import type { ReadSource } from '../types.js';
import { observeLatest, pollObserved } from '../watch/followed.js';
import type { WatchHub } from '../watch/hub.js';
import { instanceOf, instancePath, instanceSetOf, notRegistered, type Instance, type InstanceSet, type ServiceRef } from './instance-set.js';
import { InstanceSetWatch } from './instance-watch.js';
import { SERVICE_CACHE_DEFAULTS, ServiceCache, type ServiceCacheStats } from './service-cache.js';
import { Picker, STRATEGIES, type Strategy } from './strategies.js';

/** The service names under a base. */
export interface ServiceNames {
  readonly base: string;
  readonly services: readonly string[];
}

/** A listing, and where it was answered from: a followed set the watches vouch for (`cache`) or a read. */
export type SourcedInstanceSet = InstanceSet & { readonly source: ReadSource };

/** How a pick or listing reads. */
export interface ListOptions {
  /** ZooKeeper's `sync` on the service node first, then a read: never from memory. */
  readonly sync?: boolean;
  /**
   * `false`: a plain read of ZooKeeper, neither answered from memory nor followed from then on
   * (as a node read's `cache: false`). @defaultValue true
   */
  readonly cache?: boolean;
}

/** A long-poll answer: `unchanged` when the wait ended without a change after `index`. */
export type InstancePoll = InstanceSet & { readonly unchanged: boolean };

/** Lists, reads, picks and follows a service's instances. */
export class Discovery {
  private readonly picker = new Picker();
  private readonly cache: ServiceCache;

  constructor(private readonly hub: WatchHub) {
    const l = hub.limits;
    this.cache = new ServiceCache(hub, {
      maxServices: l.maxCachedServices ?? SERVICE_CACHE_DEFAULTS.maxServices,
      idleMs: l.cachedServiceIdleMs ?? SERVICE_CACHE_DEFAULTS.idleMs,
    });
  }

  /** Service names under `base` (its children), sorted; none when it does not exist. */
  async services(tenant: Tenant, base: string): Promise<ServiceNames> {
    try {
      const { children } = await tenant.client().children(base);
      return { base, services: [...children].sort() };
    } catch (err) {
      if (err instanceof ZkError && err.code === 'NO_NODE') return { base, services: [] };
      throw toZkgateError(err, base);
    }
  }

  /**
   * Every instance of the service: from memory when the service is followed and its watches
   * vouch for the set (Curator's `ServiceCache`), else read now (`queryForInstances`) and
   * followed from then on, within `watch.maxCachedServices` (docs/registry.md, "Picks from
   * memory"). With `sync`, ZooKeeper's `sync` and a read; with `cache: false`, a read only;
   * neither follows the service. @throws TOO_MANY_CHILDREN, UNAVAILABLE
   */
  async instances(tenant: Tenant, ref: ServiceRef, opts: ListOptions = {}): Promise<SourcedInstanceSet> {
    if (opts.sync) {
      await tenant.client().sync(ref.path).catch((err: unknown) => {
        throw toZkgateError(err, ref.path);
      });
    }
    if (opts.sync || opts.cache === false) return { ...(await this.read(tenant, ref)), source: 'zookeeper' };
    const hit = this.cache.get(tenant, ref);
    if (hit) return { ...hit, source: 'cache' };
    const set = await this.read(tenant, ref);
    this.cache.follow(tenant, ref);
    return { ...set, source: 'zookeeper' };
  }

  /** Followed services and answers from memory, per tenant, for /metrics. */
  cacheStats(): ServiceCacheStats[] {
    return this.cache.stats();
  }

  /** Lets every followed service go (the gateway is shutting down). Idempotent. */
  close(): void {
    this.cache.close();
  }

  /** The instance set read from ZooKeeper now: the listing, then each instance. */
  private async read(tenant: Tenant, ref: ServiceRef): Promise<InstanceSet> {
    const client = tenant.client();
    let listing;
    try {
      listing = await client.children(ref.path);
    } catch (err) {
      if (err instanceof ZkError && err.code === 'NO_NODE') return instanceSetOf(ref, '0', []);
      throw toZkgateError(err, ref.path);
    }
    const max = tenant.limits.maxChildrenPerListing;
    if (listing.children.length > max) {
      throw new ZkgateError('TOO_MANY_CHILDREN', `${ref.path}: ${listing.children.length} instances; a listing answers at most ${max}`, { path: ref.path, max });
    }
    const nodes = await Promise.all(
      listing.children.map(async (id) => {
        try {
          return { id, event: await client.get(joinPath(ref.path, id)) };
        } catch (err) {
          if (err instanceof ZkError && err.code === 'NO_NODE') return { id, event: { stat: null } };
          throw toZkgateError(err, ref.path);
        }
      }),
    );
    return instanceSetOf(ref, listing.stat.pzxid, nodes);
  }

  /** One instance (Curator's `queryForInstance`). @throws NO_NODE, NOT_FOUND (no instance document) */
  async instance(tenant: Tenant, ref: ServiceRef, id: string): Promise<Instance> {
    const path = instancePath(ref, id);
    try {
      const { data, stat } = await tenant.client().get(path);
      const inst = instanceOf(ref, id, data, stat);
      if (typeof inst === 'string') throw new ZkgateError('NOT_FOUND', `registry: ${path} holds no instance document (${inst})`, { path });
      return inst;
    } catch (err) {
      if (err instanceof ZkError && err.code === 'NO_NODE') throw notRegistered(ref, id, path);
      throw toZkgateError(err, path);
    }
  }

  /**
   * One enabled instance chosen by `strategy` for `caller` (see strategies.ts), from the set
   * `instances` answers (`source` says where from).
   * @throws INVALID_ARGUMENT (strategy), NO_INSTANCES
   */
  async pick(tenant: Tenant, ref: ServiceRef, strategy: string, caller: string, opts: ListOptions = {}): Promise<Instance & { strategy: Strategy; source: ReadSource }> {
    if (!(STRATEGIES as readonly string[]).includes(strategy)) throw new ZkgateError('INVALID_ARGUMENT', `strategy: must be one of ${STRATEGIES.join(', ')}`, { field: 'strategy' });
    const set = await this.instances(tenant, ref, opts);
    const enabled = set.instances.filter((i) => i.enabled);
    if (enabled.length === 0) {
      throw new ZkgateError('NO_INSTANCES', `registry: service ${ref.service} has no enabled instance (${set.instances.length} registered)`, {
        service: ref.service,
        registered: set.instances.length,
      });
    }
    const id = this.picker.pick(strategy as Strategy, `${tenant.name}\0${ref.path}\0${caller}`, enabled.map((i) => i.id));
    return { ...(enabled.find((i) => i.id === id) as Instance), strategy: strategy as Strategy, source: set.source };
  }

  /**
   * The instance set now, then every change (only the latest when the reader is slow), until
   * `signal` aborts. Followed through the watch hub: followers of one service share its watches.
   */
  async *observe(tenant: Tenant, ref: ServiceRef, opts: { signal?: AbortSignal } = {}): AsyncGenerator<InstanceSet> {
    const signal = opts.signal ?? new AbortController().signal;
    const watch = new InstanceSetWatch(this.hub, tenant, ref);
    const key = (set: InstanceSet): string => `${set.index}|${set.instances.map((i) => `${i.id}@${i.version}`).join(',')}|${set.invalid.join(',')}`;
    yield* observeLatest(watch, key, signal);
  }

  /**
   * Long-poll: answers at once when the current index differs from `index` (or none is given),
   * else at the next change or after `waitMs` with `unchanged: true`.
   */
  async waitForChange(tenant: Tenant, ref: ServiceRef, index: string | undefined, waitMs: number, signal?: AbortSignal): Promise<InstancePoll> {
    checkWaitMs(waitMs, 'wait');
    return pollObserved((stop) => this.observe(tenant, ref, { signal: stop }), () => this.read(tenant, ref), index, waitMs, signal);
  }
}
