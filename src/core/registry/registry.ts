/**
 * The service registry, in Curator x-discovery's layout: an instance is an ephemeral node
 * `<base>/<service>/<id>` holding Curator's JSON document, owned by a lease (through the
 * ownership module: protected create, found again after a connection loss by path and owning
 * session, watched so that its deletion by anyone else ends the lease as lost). Curator's
 * `ServiceDiscovery` on the same base sees gateway instances, and the gateway lists Curator's.
 */
import { randomUUID } from 'node:crypto';
import { ZkError, joinPath, type ZkClient } from '../../zk/index.js';
import { ZkgateError, dataTooLarge, toZkgateError } from '../errors.js';
import type { Lease, LeaseState } from '../leases/lease.js';
import type { OwnedNodes } from '../leases/owned-nodes.js';
import { checkWaitMs } from '../recipes/lock.js';
import { reachable } from '../recipes/reachable.js';
import type { Tenant } from '../tenants/tenant.js';
import { checkFields, newDocument, serialize, withFields, type InstanceDocument } from './instance.js';
import { instanceOf, instancePath, instanceSetOf, checkSegment, type Instance, type InstanceSet, type ServiceRef } from './instance-set.js';
import { InstanceSetWatch } from './instance-watch.js';
import { observeLatest, pollObserved } from '../watch/followed.js';
import { Picker, STRATEGIES, type Strategy } from './strategies.js';
import { SERVICE_CACHE_DEFAULTS, ServiceCache, type ServiceCacheStats } from './service-cache.js';
import type { ReadSource } from '../types.js';

/** A registration or update as its provider sees it. */
export interface Registration {
  readonly instance: Instance;
  readonly leaseId: string;
  readonly leaseState: LeaseState;
  /** ms from now the registration can be trusted without a fresh answer (`Lease.trustMs`). */
  readonly trustMs: number;
}

export interface RegisterOptions {
  /** The instance id; default a random UUID (as Curator's builder). */
  readonly id?: string;
  /** Take over an id registered by someone else: their node is deleted first (what Curator's re-registration does). */
  readonly replace?: boolean;
  readonly signal?: AbortSignal;
  /** Creates `<base>/<service>` (and missing ancestors) when it is missing. */
  readonly ensureService: () => Promise<void>;
}

export interface Deregistration {
  readonly deregistered: boolean;
  /** `deleted`, `pending` (deleted once ZooKeeper is back), or why nothing was deleted: `not_registered`, `lease_ended`. */
  readonly reason: string;
  readonly path: string;
}

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

export class RegistryService {
  private readonly picker = new Picker();
  private readonly cache: ServiceCache;

  constructor(private readonly owned: OwnedNodes) {
    const l = owned.hub.limits;
    this.cache = new ServiceCache(owned.hub, {
      maxServices: l.maxCachedServices ?? SERVICE_CACHE_DEFAULTS.maxServices,
      idleMs: l.cachedServiceIdleMs ?? SERVICE_CACHE_DEFAULTS.idleMs,
    });
  }

  /**
   * Registers an instance owned by `lease`. Registering again with the lease that owns the id
   * updates it (a provider may retry). @throws INVALID_ARGUMENT, DATA_TOO_LARGE, NODE_EXISTS (the
   * id is someone else's; see `replace`), the lease's end, UNAVAILABLE
   */
  async register(lease: Lease, ref: ServiceRef, input: Record<string, unknown>, opts: RegisterOptions): Promise<Registration> {
    const id = opts.id ?? randomUUID();
    const path = instancePath(ref, id);
    const fields = checkFields(input);
    lease.assertUsable();
    const deadline = Date.now() + lease.tenant.sessionTimeoutMs;
    // Sent again by its owner: an update whose read rides through a connection loss as the create does.
    if (lease.owns(path) === 'node') return this.rewrite(lease, ref, id, path, fields, { deadline, signal: opts.signal ?? lease.signal });
    const doc = newDocument(ref.service, id, fields);
    const data = this.bytes(lease.tenant, doc);
    const create = (): Promise<string> =>
      this.owned.create(lease, path, { data, mode: 'ephemeral', kind: 'node', deadline, signal: opts.signal, onNoNode: opts.ensureService });
    try {
      await create();
    } catch (err) {
      const e = toZkgateError(err, path);
      if (e.code !== 'NODE_EXISTS') throw e;
      if (!opts.replace) {
        throw new ZkgateError('NODE_EXISTS', `registry: instance ${id} of service ${ref.service} is registered by another owner; send replace: true to take it over`, { path, id });
      }
      await this.deleteOther(lease.tenant, path);
      await create();
    }
    // Just created by the lease's session: version 0.
    const instance = instanceOf(ref, id, data, { version: 0, ephemeralOwner: `0x${lease.tenant.session.sessionId}` }) as Instance;
    return this.registration(lease, instance);
  }

  /**
   * Replaces the given fields of the lease's instance (name, id, registration time and type
   * never change). @throws NO_NODE, INSTANCE_NOT_OWNED, INVALID_ARGUMENT, the lease's end
   */
  async update(lease: Lease, ref: ServiceRef, id: string, input: Record<string, unknown>): Promise<Registration> {
    const path = instancePath(ref, id);
    const fields = checkFields(input);
    lease.assertUsable();
    return this.rewrite(lease, ref, id, path, fields);
  }

  /**
   * `update` with checked fields; with `ride`, its reads are sent again after a connection loss
   * until `ride.deadline` (a write's outcome is unknown: it is not).
   */
  private async rewrite(
    lease: Lease,
    ref: ServiceRef,
    id: string,
    path: string,
    fields: ReturnType<typeof checkFields>,
    ride?: { deadline: number; signal: AbortSignal },
  ): Promise<Registration> {
    await this.assertOwned(lease, path, ref, id);
    const read = (): ReturnType<ZkClient['get']> => lease.tenant.client().get(path);
    for (let attempt = 0; ; attempt++) {
      try {
        const { data, stat } = await (ride ? reachable(lease, path, ride.deadline, ride.signal, read) : read());
        const current = instanceOf(ref, id, data, stat);
        if (typeof current === 'string') throw new ZkgateError('NOT_FOUND', `registry: ${path} holds no instance document (${current})`, { path });
        const next = withFields(stripView(current), fields);
        const bytes = this.bytes(lease.tenant, next);
        const written = await lease.tenant.client().set(path, bytes, stat.version);
        return this.registration(lease, instanceOf(ref, id, bytes, written) as Instance);
      } catch (err) {
        const e = toZkgateError(err, path);
        if (e.code !== 'BAD_VERSION' || attempt >= 3) throw e; // a concurrent update of the same instance: read again
      }
    }
  }

  /** Removes the lease's instance; idempotent (`deregistered: false` when there was none). @throws INSTANCE_NOT_OWNED */
  async deregister(lease: Lease, ref: ServiceRef, id: string): Promise<Deregistration> {
    const path = instancePath(ref, id);
    if (lease.owns(path) !== 'node') {
      if (lease.isEnded) return { deregistered: false, reason: 'lease_ended', path };
      await this.assertOwned(lease, path, ref, id).catch((err: unknown) => {
        if (!(err instanceof ZkgateError && err.code === 'NO_NODE')) throw err;
      });
      return { deregistered: false, reason: 'not_registered', path };
    }
    const out = await this.owned.leases.deleteOwned(lease, path);
    return { deregistered: out !== 'gone', reason: out === 'gone' ? 'not_registered' : out, path };
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
    const watch = new InstanceSetWatch(this.owned.hub, tenant, ref);
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

  private registration(lease: Lease, instance: Instance): Registration {
    return { instance, leaseId: lease.id, leaseState: lease.state, trustMs: lease.trustMs() };
  }

  private bytes(tenant: Tenant, doc: InstanceDocument): Buffer {
    const data = serialize(doc);
    const max = tenant.limits.maxDataBytes;
    if (data.length > max) throw dataTooLarge(data.length, max, 'registry: the instance document');
    return data;
  }

  /** @throws NO_NODE when the instance is not registered, INSTANCE_NOT_OWNED when someone else owns it */
  private async assertOwned(lease: Lease, path: string, ref: ServiceRef, id: string): Promise<void> {
    if (lease.owns(path) === 'node') return;
    const stat = await lease.tenant.client().exists(path).catch((err: unknown) => {
      throw toZkgateError(err, path);
    });
    if (!stat) throw notRegistered(ref, id, path);
    throw new ZkgateError('INSTANCE_NOT_OWNED', `registry: instance ${id} of service ${ref.service} is not owned by lease ${lease.id}`, {
      path,
      leaseId: lease.id,
      ephemeralOwner: stat.ephemeralOwner,
    });
  }

  /**
   * Deletes an instance node of another owner. A lease of this gateway that owned it ends as
   * lost (`node_deleted`), as when anyone deletes a lease's node: its own watch cannot tell, since
   * every lease of the tenant shares the session that re-creates the node.
   */
  private async deleteOther(tenant: Tenant, path: string): Promise<void> {
    const owner = this.owned.leases.ownerOf(tenant, path);
    if (owner) {
      await this.owned.leases.lose(owner, 'node_deleted');
      return;
    }
    try {
      await tenant.client().delete(path);
    } catch (err) {
      if (!(err instanceof ZkError && err.code === 'NO_NODE')) throw toZkgateError(err, path);
    }
  }
}

function notRegistered(ref: ServiceRef, id: string, path: string): ZkgateError {
  checkSegment('id', id);
  return new ZkgateError('NO_NODE', `registry: instance ${id} of service ${ref.service} is not registered`, { path, id });
}

/** The document part of an instance view. */
function stripView(i: Instance): InstanceDocument {
  const { path: _p, uri: _u, version: _v, ephemeralOwner: _e, ...doc } = i;
  return doc;
}

