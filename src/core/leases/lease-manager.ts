/**
 * Grants, looks up, keeps alive and ends leases, and deletes what they own. Lease ids carry the
 * granting instance's id (`<instance>.<random>`) so a load balancer can route a lease back to
 * the gateway instance that holds it.
 */
import { randomBytes } from 'node:crypto';
import type { Stat, StateChange } from '../../zk/index.js';
import { ZkgateError, invalidArgument, toZkgateError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Tenant } from '../tenants/tenant.js';
import { Lease, type LeaseState, type OwnedKind } from './lease.js';

export interface LeaseLimits {
  /** Shortest TTL granted, ms. @defaultValue 1000 */
  readonly minTtlMs: number;
  /** Longest TTL granted, ms. @defaultValue 3_600_000 */
  readonly maxTtlMs: number;
  /** How long an ended lease's id still answers 410 (not 404), ms. @defaultValue 600_000 */
  readonly tombstoneMs: number;
}

export const LEASE_DEFAULTS: LeaseLimits = { minTtlMs: 1000, maxTtlMs: 3_600_000, tombstoneMs: 600_000 };

/** A lease as handed from one instance to another with its session (docs/cluster.md). */
export interface LeaseRecord {
  readonly id: string;
  readonly owner: string;
  readonly ttlMs: number;
  /** `czxid`: the node's, when its lease knew it (Lease.identify); absent from older instances. */
  readonly owned: readonly { readonly path: string; readonly kind: OwnedKind; readonly czxid?: string }[];
}

export class LeaseManager {
  private readonly leases = new Map<string, Lease>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  /**
   * Nodes to delete once the tenant's session is back (they ended while it was suspended). Only
   * for the same session: after an expiry ZooKeeper has deleted them already, and a same-named
   * node in the new session belongs to someone else.
   */
  private readonly pendingDeletes = new Map<Tenant, Set<string>>();
  private readonly watched = new WeakSet<Tenant>();
  /** Gives back a lease's unit of its tenant's `leases` quota when it ends. */
  private readonly releases = new WeakMap<Lease, () => void>();

  constructor(
    readonly instanceId: string,
    private readonly log: Logger,
    private readonly limits: LeaseLimits = LEASE_DEFAULTS,
    /** Makes lease ids; in a cluster they also name the instance's start and carry a MAC (cluster/lease-ids.ts). */
    private readonly mintId: () => string = () => `${instanceId}.${randomBytes(12).toString('hex')}`,
  ) {}

  /**
   * Grants a lease of `ttlMs` in the tenant, owned by the API key `owner`.
   * @throws INVALID_ARGUMENT for a TTL out of range, UNAVAILABLE while the tenant's session is down,
   * LIMIT_EXCEEDED past the tenant's `maxLeasesPerTenant`
   */
  grant(tenant: Tenant, ttlMs: number, owner?: string): Lease {
    if (!Number.isInteger(ttlMs) || ttlMs < this.limits.minTtlMs || ttlMs > this.limits.maxTtlMs) {
      throw invalidArgument('ttlMs', `must be an integer from ${this.limits.minTtlMs} to ${this.limits.maxTtlMs}`);
    }
    tenant.client(); // fail fast with UNAVAILABLE while the session is down
    const release = tenant.quotas.take('leases');
    this.watchTenant(tenant);
    const id = this.mintId();
    const lease = new Lease(id, tenant, ttlMs, tenant.session.generation, owner);
    this.releases.set(lease, release);
    this.leases.set(id, lease);
    this.arm(lease);
    this.log.debug({ leaseId: id, tenant: tenant.name, ttlMs }, 'lease granted');
    return lease;
  }

  /**
   * The lease with `id` in `tenant`, in any state (ended leases are kept for a while as tombstones).
   * @throws LEASE_NOT_FOUND (also for another tenant's lease)
   */
  lookup(tenant: Tenant, id: string): Lease {
    const lease = this.leases.get(id);
    // By name: a lease adopted with a handed-over session belongs to another Tenant object of the same tenant.
    if (!lease || lease.tenant.name !== tenant.name) {
      const other = id.split('.')[0];
      const hint = other && other !== this.instanceId ? ` (it was not granted by this instance, ${this.instanceId})` : '';
      throw new ZkgateError('LEASE_NOT_FOUND', `lease ${id} not found${hint}`, { leaseId: id });
    }
    return lease;
  }

  /** True while `id` is live or remembered as ended here (a tombstone). */
  knows(id: string): boolean {
    return this.leases.has(id);
  }

  /** A lease that can own new things right now. @throws LEASE_NOT_FOUND, LEASE_EXPIRED/REVOKED/LOST (410), LEASE_UNCERTAIN */
  usable(tenant: Tenant, id: string): Lease {
    const lease = this.lookup(tenant, id);
    lease.assertUsable();
    return lease;
  }

  /** Resets the TTL. @throws LEASE_NOT_FOUND, the lease's end (410) */
  keepAlive(tenant: Tenant, id: string): Lease {
    const lease = this.lookup(tenant, id);
    lease.refresh();
    this.arm(lease);
    return lease;
  }

  /** Ends the lease and deletes everything it owns; revoking an ended lease answers its end. */
  async revoke(tenant: Tenant, id: string): Promise<Lease> {
    const lease = this.lookup(tenant, id);
    if (lease.isEnded) lease.assertUsable();
    await this.end(lease, 'revoked', 'revoked');
    return lease;
  }

  /**
   * Ends the lease as lost (`reason`, e.g. `node_deleted`) and deletes what it still owns; the
   * loss reaches its holder on every channel (lease state, gRPC KeepAlive, WebSocket).
   */
  async lose(lease: Lease, reason: string): Promise<void> {
    await this.end(lease, 'lost', reason);
  }

  /** The live lease of `tenant` that owns `path`, if any. */
  ownerOf(tenant: Tenant, path: string): Lease | undefined {
    return this.live(tenant).find((l) => l.owns(path) !== undefined);
  }

  /**
   * The tenant's leases granted by this instance, oldest first: live ones, and with
   * `includeEnded` also ended ones whose id still answers 410 (tombstones).
   */
  list(tenant: Tenant, opts: { includeEnded?: boolean } = {}): Lease[] {
    return [...this.leases.values()].filter((l) => l.tenant.name === tenant.name && (opts.includeEnded || !l.isEnded));
  }

  /** All leases of a tenant that have not ended. */
  live(tenant: Tenant): Lease[] {
    return [...this.leases.values()].filter((l) => l.tenant === tenant && !l.isEnded);
  }

  /**
   * Hands the live leases of `tenant` (this Tenant object: one session) over: returns them as
   * records and forgets them here without ending them or touching their nodes, which stay with
   * the session for the instance that adopts it. Their ids then answer from that instance.
   */
  handOver(tenant: Tenant): LeaseRecord[] {
    const out: LeaseRecord[] = [];
    for (const l of this.live(tenant)) {
      out.push({ id: l.id, owner: l.owner, ttlMs: l.ttlMs, owned: l.info().owned.map((o) => ({ ...o, czxid: l.czxidOf(o.path) })) });
      clearTimeout(this.timers.get(l.id));
      this.timers.delete(l.id);
      this.leases.delete(l.id);
    }
    return out;
  }

  /**
   * Takes over leases handed over with their session, now `tenant`'s (a started Tenant on the
   * resumed session). Each restarts its TTL; each owned node must still exist and belong to the
   * session (and be the node the record's czxid names), else the lease is lost (`node_missing`).
   * `own` records (with its czxid, when known) and watches an owned node.
   */
  async adopt(
    tenant: Tenant,
    records: readonly LeaseRecord[],
    own: (lease: Lease, path: string, kind: OwnedKind, czxid: string | undefined) => void,
  ): Promise<{ adopted: number; lost: number }> {
    this.watchTenant(tenant);
    const session = `0x${tenant.session.sessionId}`;
    let lost = 0;
    await Promise.all(
      records.map(async (r) => {
        const lease = new Lease(r.id, tenant, r.ttlMs, tenant.session.generation, r.owner);
        // Counted even past the limit: it was granted within it.
        this.releases.set(lease, tenant.quotas.take('leases', { force: true }));
        this.leases.set(r.id, lease);
        this.arm(lease);
        for (const o of r.owned) own(lease, o.path, o.kind, o.czxid);
        // No answer (undefined) counts as missing too: adopting is all or nothing.
        const stats = await Promise.all(r.owned.map((o) => tenant.client().exists(o.path).catch(() => undefined)));
        if (await this.loseMissing(lease, session, r.owned.map((o) => o.path), stats)) lost += 1;
      }),
    );
    return { adopted: records.length - lost, lost };
  }

  /** Ends every lease (gateway shutdown); their nodes go with the session close. */
  close(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }

  /**
   * Deletes one owned node now, or once the session is back when it is suspended (`pending`).
   * NONODE, or a session that has expired (taking the node with it), count as `gone`.
   */
  async deleteOwned(lease: Lease, path: string): Promise<'deleted' | 'gone' | 'pending'> {
    if (!this.sameSession(lease)) {
      lease.disown(path);
      return 'gone';
    }
    // Disowned right after the delete is sent rather than before: no answer or watch event can
    // come in between (they come on a later turn of the loop), and the disowning's bookkeeping
    // (a hold's record, its quota, the ownership watch's timer) then runs while ZooKeeper works
    // instead of before the request leaves — a lock release (docs/benchmarks.md, locks, 11:00 UTC).
    let deleting: Promise<void>;
    try {
      deleting = lease.tenant.client().delete(path);
    } catch (err) {
      deleting = Promise.reject(err);
    }
    try {
      lease.disown(path);
    } catch (err) {
      deleting.catch(() => undefined);
      throw err;
    }
    try {
      await deleting;
      return 'deleted';
    } catch (err) {
      const e = toZkgateError(err, path);
      if (e.code === 'NO_NODE') return 'gone';
      if (e.code === 'UNAVAILABLE') {
        this.pending(lease.tenant).add(path);
        return 'pending';
      }
      throw e;
    }
  }

  /** True while the session the lease's nodes belong to may still be alive. */
  private sameSession(lease: Lease): boolean {
    const s = lease.tenant.session;
    return lease.generation === s.generation && s.state !== 'expired' && s.state !== 'connecting' && s.state !== 'closed';
  }

  /**
   * Disowns a node deleted through the znode API: the lease's end must not delete it again (a
   * failed write on ZooKeeper). A plain ephemeral is the caller's own delete, no loss of its
   * lease (nor for the re-check after a reconnect). Anything else (a lock hold, a candidacy, a
   * claim) ends its lease as lost (`node_deleted`) at once, as the ownership watch would once
   * it saw the deletion: its holder must hear that it is gone.
   */
  forget(tenant: Tenant, path: string): void {
    for (const l of this.live(tenant)) {
      const kind = l.owns(path);
      if (kind === undefined) continue;
      l.disown(path);
      // A lease of an expired session is lost as session_expired (its node was not this one).
      if (kind !== 'node' && l.generation === tenant.session.generation) void this.lose(l, 'node_deleted');
    }
  }

  private pending(t: Tenant): Set<string> {
    let s = this.pendingDeletes.get(t);
    if (!s) this.pendingDeletes.set(t, (s = new Set()));
    return s;
  }

  private arm(lease: Lease): void {
    clearTimeout(this.timers.get(lease.id));
    const t = setTimeout(() => {
      if (Date.now() >= lease.deadline) void this.end(lease, 'expired', 'keepalive_missed');
      else this.arm(lease);
    }, Math.max(0, lease.deadline - Date.now()));
    t.unref();
    this.timers.set(lease.id, t);
  }

  private async end(lease: Lease, state: Extract<LeaseState, 'expired' | 'revoked' | 'lost'>, reason: string): Promise<void> {
    if (!lease.transition(state, reason)) return;
    this.releases.get(lease)?.();
    clearTimeout(this.timers.get(lease.id));
    this.timers.delete(lease.id);
    this.log.info({ leaseId: lease.id, tenant: lease.tenant.name, state, reason }, 'lease ended');
    const paths = lease.ownedPaths();
    await Promise.all(
      paths.map((p) =>
        this.deleteOwned(lease, p).catch((err: unknown) => this.log.warn({ err, path: p, leaseId: lease.id }, 'could not delete a lease node')),
      ),
    );
    const tomb = setTimeout(() => this.leases.delete(lease.id), this.limits.tombstoneMs);
    tomb.unref();
  }

  private watchTenant(tenant: Tenant): void {
    if (this.watched.has(tenant)) return;
    this.watched.add(tenant);
    tenant.on('state', (c: StateChange) => void this.onTenantState(tenant, c));
  }

  private async onTenantState(tenant: Tenant, change: StateChange): Promise<void> {
    const leases = this.live(tenant);
    switch (change.state) {
      case 'suspended':
        for (const l of leases) l.transition('uncertain', 'session_suspended');
        return;
      case 'expired':
        this.pendingDeletes.delete(tenant);
        await Promise.all(leases.map((l) => this.end(l, 'lost', 'session_expired')));
        return;
      case 'reconnected':
        await this.flushPending(tenant);
        await Promise.all(leases.map((l) => this.recheck(l)));
        return;
      default:
        return;
    }
  }

  private async flushPending(tenant: Tenant): Promise<void> {
    const paths = [...(this.pendingDeletes.get(tenant) ?? [])];
    this.pendingDeletes.delete(tenant);
    if (!tenant.session.isUsable) return void paths.forEach((p) => this.pending(tenant).add(p));
    const client = tenant.client();
    await Promise.all(
      paths.map((p) =>
        client.delete(p).catch((err: unknown) => {
          if (toZkgateError(err).code === 'UNAVAILABLE') this.pending(tenant).add(p);
        }),
      ),
    );
  }

  /** After a reconnect: every owned node must still exist, belong to this session and be the node the lease created. */
  private async recheck(lease: Lease): Promise<void> {
    if (lease.generation !== lease.tenant.session.generation) return this.end(lease, 'lost', 'session_expired');
    const session = `0x${lease.tenant.session.sessionId}`;
    try {
      const client = lease.tenant.client();
      const paths = lease.ownedPaths();
      const stats = await Promise.all(paths.map((p) => client.exists(p)));
      if (await this.loseMissing(lease, session, paths, stats)) return;
      if (!lease.isEnded) lease.transition('active', 'session_reconnected');
    } catch {
      // Still unreachable: stay uncertain; the next reconnect re-checks.
    }
  }

  /**
   * Ends `lease` as lost (`node_missing`) when `exists` (`stats`, one per path of `paths`;
   * undefined: no answer) found one of its nodes gone, not of `session` (`0x<id>`), or of it but
   * with another czxid than the lease recorded (another lease of the tenant, same session, made
   * the path again). Those found so are disowned first, so that the end deletes only what may
   * still be the lease's: deleting a missing node is a failed write on ZooKeeper, and another
   * session's or lease's node is not ours to delete. One with no answer stays owned (deleted by
   * the end): nothing may outlive the lease. Resolves true when the lease ended (or had ended
   * meanwhile).
   */
  private async loseMissing(lease: Lease, session: string, paths: readonly string[], stats: readonly (Stat | null | undefined)[]): Promise<boolean> {
    const found = (s: Stat | null | undefined, path: string): boolean => {
      if (s === undefined) return false;
      const czxid = lease.czxidOf(path);
      return s === null || s.ephemeralOwner !== session || (czxid !== undefined && s.czxid !== czxid);
    };
    if (!stats.some((s, i) => s === undefined || found(s, paths[i] as string))) return lease.isEnded;
    if (lease.isEnded) return true;
    paths.forEach((p, i) => found(stats[i], p) && lease.disown(p));
    await this.end(lease, 'lost', 'node_missing');
    return true;
  }
}
