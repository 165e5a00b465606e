/**
 * A provider's side of the service registry, in Curator x-discovery's layout: an instance is an
 * ephemeral node `<base>/<service>/<id>` holding Curator's JSON document, owned by a lease
 * (through the ownership module: protected create, found again after a connection loss by path
 * and owning session, watched so that its deletion by anyone else ends the lease as lost).
 * Registering, updating and deregistering; finding instances is discovery.ts.
 */
import { randomUUID } from 'node:crypto';
import { ZkError, type ZkClient } from '../../zk/index.js';
import { ZkgateError, dataTooLarge, toZkgateError } from '../errors.js';
import type { Lease, LeaseState } from '../leases/lease.js';
import type { OwnedNodes } from '../leases/owned-nodes.js';
import { reachable } from '../recipes/reachable.js';
import type { Tenant } from '../tenants/tenant.js';
import { checkFields, newDocument, serialize, withFields, type InstanceDocument } from './instance.js';
import { instanceOf, instancePath, notRegistered, type Instance, type ServiceRef } from './instance-set.js';

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

/** Registers, updates and deregisters lease-owned instances. */
export class Registrations {
  constructor(private readonly owned: OwnedNodes) {}

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

/** The document part of an instance view. */
function stripView(i: Instance): InstanceDocument {
  const { path: _p, uri: _u, version: _v, ephemeralOwner: _e, ...doc } = i;
  return doc;
}

