/**
 * The service registry for one caller. Instances are znodes, so the znode actions apply:
 * registering, updating and deregistering need `node.write` on the instance's path (and the
 * lease must be the caller's), listing and picking `node.read` on the service's path, watching
 * `watch`. A long-poll holds a unit of the tenant's subscriptions while it waits; a watch stream
 * is opened on a streaming connection (`ScopedConnection.instances`).
 */
import { ZkgateError } from '../errors.js';
import { DEFAULT_BASE, instancePath, serviceRef, type Instance, type ServiceRef } from '../registry/instance-set.js';
import type { InstancePoll, ListOptions, ServiceNames, SourcedInstanceSet } from '../registry/discovery.js';
import type { Deregistration, Registration } from '../registry/registrations.js';
import type { Strategy } from '../registry/strategies.js';
import { checkPath } from '../paths.js';
import type { ReadSource } from '../types.js';
import type { ScopeContext } from './scope.js';

/** What a provider sends to register (Curator's settable fields; see registry/instance.ts). */
export interface RegisterRequest {
  readonly leaseId: string;
  /** Default: a random UUID. */
  readonly id?: string;
  /** Take over an id registered by someone else (their node is deleted first). */
  readonly replace?: boolean;
  /** address, port, sslPort, payload, uriSpec, enabled (validated by core). */
  readonly fields: Record<string, unknown>;
  readonly signal?: AbortSignal;
}

export class ScopedRegistry {
  constructor(private readonly ctx: ScopeContext) {}

  /**
   * Registers an instance of `service` under `base` (default `/services`), owned by the lease.
   * @throws INVALID_ARGUMENT, INVALID_PATH, PERMISSION_DENIED, LEASE_NOT_FOUND, NODE_EXISTS, DATA_TOO_LARGE, the lease's end
   */
  register(base: string | undefined, service: string, req: RegisterRequest): Promise<Registration> {
    const ref = serviceRef(base, service);
    if (req.id !== undefined) this.ctx.authorize('node.write', instancePath(ref, req.id));
    else this.ctx.authorize('node.write', ref.path);
    const lease = this.ctx.lease(req.leaseId, 'lease.write', 'leaseId');
    return this.ctx.services.registrations.register(lease, ref, req.fields, {
      id: req.id,
      replace: req.replace,
      signal: req.signal,
      ensureService: () => this.ensureService(ref),
    });
  }

  /** Replaces the given fields of the lease's instance. @throws NO_NODE, INSTANCE_NOT_OWNED, … */
  update(base: string | undefined, service: string, id: string, leaseId: string, fields: Record<string, unknown>): Promise<Registration> {
    const ref = serviceRef(base, service);
    this.ctx.authorize('node.write', instancePath(ref, id));
    const lease = this.ctx.lease(leaseId, 'lease.write', 'leaseId');
    return this.ctx.services.registrations.update(lease, ref, id, fields);
  }

  /** Removes the lease's instance; idempotent. @throws INSTANCE_NOT_OWNED */
  deregister(base: string | undefined, service: string, id: string, leaseId: string): Promise<Deregistration> {
    const ref = serviceRef(base, service);
    this.ctx.authorize('node.write', instancePath(ref, id));
    const lease = this.ctx.lease(leaseId, 'lease.write', 'leaseId');
    return this.ctx.services.registrations.deregister(lease, ref, id);
  }

  /** The service names under `base`. */
  services(base: string | undefined): Promise<ServiceNames> {
    const b = checkPath(base ?? DEFAULT_BASE);
    this.ctx.authorize('node.read', b);
    return this.ctx.services.discovery.services(this.ctx.tenant, b);
  }

  /** Every instance of the service: from memory when its followed set vouches for it, else read (`source` says which). */
  instances(base: string | undefined, service: string, opts: ListOptions = {}): Promise<SourcedInstanceSet> {
    return this.ctx.services.discovery.instances(this.ctx.tenant, this.read(base, service), opts);
  }

  /** One instance. @throws NO_NODE */
  instance(base: string | undefined, service: string, id: string): Promise<Instance> {
    const ref = serviceRef(base, service);
    this.ctx.authorize('node.read', instancePath(ref, id));
    return this.ctx.services.discovery.instance(this.ctx.tenant, ref, id);
  }

  /**
   * One enabled instance chosen by `strategy`; round-robin and sticky state is kept per
   * `caller` (default: the caller's API key id). @throws NO_INSTANCES, INVALID_ARGUMENT
   */
  pick(base: string | undefined, service: string, strategy: Strategy | string = 'round_robin', caller?: string, opts: ListOptions = {}): Promise<Instance & { strategy: Strategy; source: ReadSource }> {
    const ref = this.read(base, service);
    if (caller !== undefined && (caller === '' || caller.length > 256)) throw new ZkgateError('INVALID_ARGUMENT', 'caller: must be 1 to 256 characters', { field: 'caller' });
    return this.ctx.services.discovery.pick(this.ctx.tenant, ref, strategy, `${this.ctx.principal.keyId}\0${caller ?? ''}`, opts);
  }

  /**
   * Long-poll on the instance set (see `Discovery.waitForChange`), holding one unit of the
   * tenant's subscriptions while it waits. @throws LIMIT_EXCEEDED
   */
  async waitForChange(base: string | undefined, service: string, index: string | undefined, waitMs: number, signal?: AbortSignal): Promise<InstancePoll> {
    const ref = this.read(base, service, 'watch');
    const release = this.ctx.tenant.quotas.take('subscriptions');
    try {
      return await this.ctx.services.discovery.waitForChange(this.ctx.tenant, ref, index, waitMs, signal);
    } finally {
      release();
    }
  }

  private read(base: string | undefined, service: string, action: 'node.read' | 'watch' = 'node.read'): ServiceRef {
    const ref = serviceRef(base, service);
    this.ctx.authorize(action, ref.path);
    return ref;
  }

  /** Creates `<base>/<service>` and missing ancestors as persistent nodes (Curator's creatingParentsIfNeeded), within the caller's prefixes. */
  private async ensureService(ref: ServiceRef): Promise<void> {
    const nodes = this.ctx.services.nodes(this.ctx.tenant, this.ctx.principal.prefixes);
    await nodes.create(ref.path, Buffer.alloc(0), { mode: 'persistent', createParents: true }).catch((err: unknown) => {
      if (!(err instanceof ZkgateError && err.code === 'NODE_EXISTS')) throw err;
    });
  }
}
