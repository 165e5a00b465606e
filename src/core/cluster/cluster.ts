/**
 * Several gateway instances as one (docs/cluster.md). Every call that names a lease held by
 * another instance is carried out on that instance: the facade throws `LeaseElsewhere` from its
 * lease lookup, and the forwarding scope (`wrap`) sends the whole facade call — operation name,
 * arguments and the caller's principal — over the signed internal channel, where the owner
 * re-checks the principal against its own configuration and runs the same facade method. New
 * facade methods that resolve their lease first are forwarded without code of their own.
 * Reads and watches never name a lease and stay local.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { HandoffTarget, MemberRecord } from '../../zk/index.js';
import type { Authenticator, Principal } from '../auth/authenticator.js';
import { ZkgateError, cancelled, toZkgateError } from '../errors.js';
import { isLeaseEndedCode, type Lease, type LeaseInfo } from '../leases/lease.js';
import type { LeaseManager, LeaseRecord } from '../leases/lease-manager.js';
import type { Logger } from '../logger.js';
import type { Scope } from '../facade/scope.js';
import type { LeaseListEntry, LeaseListing, UnansweredInstance } from '../facade/leases.js';
import { CALL_PATH, ChannelClient, ChannelError, ChannelVerifier, readBody, readJson, readLines, secretKey } from './channel.js';
import { FrameServer, MAX_BODY } from './frames.js';
import { decode, encode, findAbort, findSignal, stoppedByHandoff, withSignal, withWaitLeft, type Json } from './codec.js';
import { signalOf } from '../recipes/wake.js';
import { LeaseElsewhere, type ClusterHooks } from './hooks.js';
import { LeaseIds } from './lease-ids.js';
import { RemoteLease } from './remote-lease.js';
import { publishedDraining, publishedLeases, type UsageBoard } from './quotas.js';
import { AbandonedGrants, PlacedGrants, SKEW_MS, placementOf, type AbandonOutcome, type HandedOverGrant } from './placed-grants.js';

/** The membership as this instance sees it (src/zk InstanceRegistration); it also carries quota usage. */
export interface MembershipView extends UsageBoard {
  members(): ReadonlyMap<string, MemberRecord>;
  /** Reads ZooKeeper now (after a sync), handoff records included. */
  refresh(): Promise<ReadonlyMap<string, MemberRecord>>;
  /** `<instanceId>.<incarnation>` → the instance its leases were handed to. */
  handoffs(): ReadonlyMap<string, HandoffTarget>;
  recordHandoff(origin: string, target: HandoffTarget): Promise<void>;
  /** Deletes the record of `origin` if it still names `target`; true when it is gone. */
  clearHandoff(origin: string, target: HandoffTarget): Promise<boolean>;
}

/** A session handed over with its leases (one per Tenant object of the draining instance). */
export interface SessionHandoff {
  readonly tenant: string;
  readonly sessionId: string;
  readonly password: string;
  readonly leases: readonly LeaseRecord[];
  /** The placed grants whose leases go with it (their caller may still abandon them: placed-grants.ts). */
  readonly placed?: readonly HandedOverGrant[];
}

/** What the gateway does for a handoff (core-internal). */
export interface HandoffHooks {
  /** Detaches every session that holds live leases and returns them with their leases. */
  detachAll(): SessionHandoff[];
  /** Resumes a handed-over session and adopts its leases. */
  adopt(h: SessionHandoff): Promise<{ adopted: number; lost: number }>;
}

export interface ClusterOptions {
  readonly secret: string;
  readonly instanceId: string;
  readonly incarnation: string;
  /** How long a forwarded call that does not wait may take, ms. */
  readonly forwardTimeoutMs: number;
  /** Where lease grants are carried out (docs/cluster.md "Lease placement"). @defaultValue 'local' (the config's default is 'tenant') */
  readonly leasePlacement?: 'tenant' | 'local';
  /** How long an ended lease's id is remembered (`LeaseLimits.tombstoneMs`): handoff records are swept at this pace, at most every 30 s. */
  readonly tombstoneMs?: number;
}

/** The body of a forwarded call (`op`, `args`) or of a stream of a lease's changes (`leaseId`). */
interface InternalRequest {
  readonly tenant: string;
  readonly keyId: string;
  readonly op?: string;
  readonly args?: Json;
  readonly leaseId?: string;
  /** A placed grant's token and deadline (placed-grants.ts). */
  readonly placement?: unknown;
}

/** Scope properties that are not facade groups. */
const NOT_GROUPS = new Set(['principal', 'ctx']);

/** The facade call that placement carries out on the tenant's home instance. */
const GRANT = 'leases.grant';
/** The internal operation by which a caller that gave up on a placed grant's answer tells the home (placed-grants.ts). */
const ABANDON = 'placement.abandon';
/**
 * Longest a placed grant waits for the home's answer before granting here, ms (at most
 * `forwardTimeoutMs`): placement must never make a grant fail, and only a little slower.
 */
const PLACEMENT_TIMEOUT_MS = 2000;

/** Rendezvous (highest-random-weight) weight of `instance` for `tenant`: 48 bits of SHA-1. */
function weight(tenant: string, instance: string): number {
  return createHash('sha1').update(`${tenant}\n${instance}`).digest().readUIntBE(0, 6);
}

/**
 * The tenant's home among `ids` (docs/cluster.md "Lease placement"): the id of highest weight.
 * Removing an instance moves only the tenants homed there; adding one takes about 1/N of them.
 */
export function homeOf(tenant: string, ids: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestW = -1;
  for (const id of ids) {
    const w = weight(tenant, id);
    if (w > bestW || (w === bestW && best !== undefined && id < best)) [best, bestW] = [id, w];
  }
  return best;
}

/** `<instanceId>.<incarnation>`: one start of an instance (a restart at the same address is another). */
const processOf = (m: MemberRecord): string => `${m.id}.${m.incarnation}`;

/** Aborted when the forwarding instance goes away before the POST's answer was sent. */
function closedBefore(res: ServerResponse): AbortController {
  const ac = new AbortController();
  res.on('close', () => {
    if (!res.writableFinished) ac.abort(cancelled('client_gone', 'cluster: the forwarding instance went away'));
  });
  return ac;
}
const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((r) => {
    const t = setTimeout(r, ms);
    signal?.addEventListener('abort', () => (clearTimeout(t), r()), { once: true });
  });

/** The answer for a lease whose instance is gone. */
export function instanceGone(leaseId: string, instance: string): ZkgateError {
  return new ZkgateError('LEASE_LOST', `lease ${leaseId}: lost (instance_gone): instance ${instance} that held it is gone`, {
    leaseId,
    state: 'lost',
    reason: 'instance_gone',
    instance,
  });
}

/** Figures for /readyz and /metrics. */
export interface ClusterStatus {
  readonly instanceId: string;
  readonly incarnation: string;
  readonly members: readonly (MemberRecord & { readonly self: boolean })[];
  /** Forwarded calls by outcome (`ok` or an error code). */
  readonly forwarded: Readonly<Record<string, number>>;
  /** Lease grants by where they were carried out: `local`, `home` (another instance, the tenant's home), `fallback` (the home did not answer: here). */
  readonly placements: Readonly<Record<string, number>>;
  /** Leases held elsewhere that callers here follow now. */
  readonly followedRemoteLeases: number;
}

export class Cluster implements ClusterHooks {
  readonly ids: LeaseIds;
  private readonly client: ChannelClient;
  private readonly verifier: ChannelVerifier;
  /** Forwarded calls arriving as frames on peers' persistent connections (frames.ts). */
  private readonly frames: FrameServer;
  private readonly remotes = new Map<string, RemoteLease>();
  /** `<instance>.<incarnation>` of instances found not listening: gone for good. */
  private readonly dead = new Set<string>();
  /**
   * `<instance>.<incarnation>` of instances that answered a grant `moved` (shutting down) before
   * their usage node said so here: no tenant's home any more. A restart is a new incarnation.
   */
  private readonly leaving = new Set<string>();
  /** Internal addresses whose certificate was not trusted, logged once each (every call to them fails). */
  private readonly untrusted = new Set<string>();
  private readonly forwarded = new Map<string, number>();
  private readonly placements = new Map<string, number>();
  /** Home side: placed grants by token (a lost answer leaves no lease behind). */
  private readonly placedGrants = new PlacedGrants();
  /** Caller side: homes being told of grants whose answer was lost. */
  private readonly abandoned = new AbandonedGrants();
  /** Set from the start of a graceful shutdown: this instance is no tenant's home. */
  private draining = false;
  private readonly sweep: NodeJS.Timeout;
  /** Aborted when a handoff starts: internal calls running here stop, and answer `moved` once it is done. */
  private readonly handingOff = new AbortController();
  /**
   * The forwarded waits running here (owner side) that a handoff stops: a set, aborted by
   * `beginHandoff`, rather than an `AbortSignal.any` per wait over the connection's signal and
   * the process-long `handingOff` one (a new signal, weak references and a finalizer each; ~40 µs
   * of CPU a call here on Node 20).
   */
  private readonly stoppable = new Set<AbortController>();
  private handoffDone: Promise<void> | undefined;
  private finishHandoff = (): void => undefined;
  /** True once this instance's leases are held elsewhere. */
  private handedOff = false;
  /** True once a handoff has ended (done or failed): waits starting later are not stopped by it. */
  private handoffFinished = false;
  /** Facade calls and streams of internal requests running now (a handoff waits for them to stop). */
  private readonly running = new Set<Promise<void>>();
  /** Set by the gateway: how to detach and adopt sessions. */
  hooks: HandoffHooks | null = null;
  /** Handoff records naming this instance: origin → the ids of the leases adopted from it. */
  private readonly adoptedFrom = new Map<string, Set<string>>();
  /** Records whose target was not registered at the last sweep (deleted if still so at the next). */
  private readonly orphaned = new Set<string>();
  private readonly recordSweep: NodeJS.Timeout;

  constructor(
    private readonly opts: ClusterOptions,
    private readonly membership: MembershipView,
    private readonly deps: {
      readonly auth: Authenticator;
      readonly leases: LeaseManager;
      readonly logger: Logger;
      /** A facade for `principal` that never forwards (what a forwarded call runs on). */
      readonly local: (principal: Principal) => Scope;
    },
  ) {
    this.ids = new LeaseIds(opts.secret, opts.instanceId, opts.incarnation);
    this.client = new ChannelClient(opts.secret, opts.instanceId);
    this.verifier = new ChannelVerifier(opts.secret);
    this.frames = new FrameServer(secretKey(opts.secret), this.verifier, (body, gone, reply) => this.serveCall(body, gone, reply), (err) => this.failedInternally(err, false));
    this.sweep = setInterval(() => this.sweepRemotes(), 30_000);
    this.sweep.unref();
    const every = Math.min(30_000, Math.max(500, opts.tombstoneMs ?? 30_000));
    this.recordSweep = setInterval(() => void this.sweepRecords().catch((err: unknown) => this.logger.debug({ err }, 'cluster: handoff record sweep failed')), every);
    this.recordSweep.unref();
  }

  elsewhere(id: string): boolean {
    const o = this.ids.origin(id);
    return o !== null && (this.handedOff || !this.ids.isMine(o));
  }

  isRemote(lease: Lease): boolean {
    return lease instanceof RemoteLease;
  }

  status(): ClusterStatus {
    const members = [...this.membership.members().values()]
      .sort((a, b) => a.id.localeCompare(b.id))
      .map((m) => ({ ...m, self: m.id === this.opts.instanceId && m.incarnation === this.opts.incarnation }));
    const followed = [...this.remotes.values()].filter((l) => l.followed).length;
    return {
      instanceId: this.opts.instanceId,
      incarnation: this.opts.incarnation,
      members,
      forwarded: Object.fromEntries(this.forwarded),
      placements: Object.fromEntries(this.placements),
      followedRemoteLeases: followed,
    };
  }

  /** The facade for a caller: calls naming another instance's lease are carried out there. */
  wrap(scope: Scope): Scope {
    const groups = new Map<string, object>();
    const principal = scope.principal;
    return new Proxy(scope, {
      get: (target, prop, receiver) => {
        const v: unknown = Reflect.get(target, prop, receiver);
        if (typeof prop !== 'string' || NOT_GROUPS.has(prop) || v === null || typeof v !== 'object' || !Object.hasOwn(target, prop)) return v;
        let g = groups.get(prop);
        if (!g) groups.set(prop, (g = this.wrapGroup(prop, v, principal)));
        return g;
      },
    });
  }

  private wrapGroup(group: string, obj: object, principal: Principal): object {
    return new Proxy(obj, {
      get: (target, prop, receiver) => {
        const v: unknown = Reflect.get(target, prop, receiver);
        if (typeof prop !== 'string' || typeof v !== 'function') return v;
        const fn = v as (...a: unknown[]) => unknown;
        return (...args: unknown[]): unknown => this.invoke(`${group}.${prop}`, () => target, fn, principal, args);
      },
    });
  }

  /**
   * Runs one facade call here, or on the instance holding its lease. A call that waits (its
   * arguments carry a signal) is also stopped by a handoff of this instance, and once the
   * handoff is done it is run again — on the successor, which now holds the lease.
   */
  private invoke(op: string, target: () => object, fn: (...a: unknown[]) => unknown, principal: Principal, args: unknown[]): unknown {
    if (op === GRANT) {
      const home = this.opts.leasePlacement === 'tenant' ? this.home(principal.tenant.name) : null;
      if (home) return this.grantOnHome(home, principal, args, () => fn.apply(target(), args));
      this.place('local');
    }
    const signal = findAbort(args);
    // A wait that starts while a handoff of this instance runs (a request read just before the
    // listeners closed) is stopped at once like those running when it began, and run again once
    // it is done: left to run here, it would queue its node in a session about to be handed over,
    // then wait on a detached handle until its deadline (answered 503) while the successor's
    // session held the node — the lock then held for the lease with nobody told.
    const stoppable = signal !== undefined && !this.handoffFinished;
    const startedAt = Date.now();
    // Combined with the handoff's signal (AbortSignal.any, made lazily for a lazy abort), not a
    // controller unhooked when the call settles (as a forwarded wait's on the owner): what a call
    // returns may use its signal after that (keepAliveWhileOpen's timer, a generator), and must
    // still stop when the caller goes or a handoff begins.
    const callArgs = stoppable ? withSignal(args, signal, stoppedByHandoff(signal, this.handingOff.signal)) : args;
    const elsewhere = (err: unknown): Promise<unknown> => {
      if (err instanceof LeaseElsewhere) return this.forward(principal, op, args, err.leaseId);
      if (stoppable && this.handingOff.signal.aborted && !signalOf(signal).aborted && this.handoffDone) {
        return this.handoffDone.then(() => this.invoke(op, target, fn, principal, withWaitLeft(args, startedAt)));
      }
      return Promise.reject(err);
    };
    let out: unknown;
    try {
      out = fn.apply(target(), callArgs);
    } catch (err) {
      // A synchronous facade method cannot wait for another instance: methods that take a
      // lease id return promises (see facade/scope.ts).
      if (err instanceof LeaseElsewhere) return elsewhere(err);
      throw err;
    }
    if (!(out instanceof Promise)) return out;
    // A handoff waits for calls using this instance's sessions to end.
    const settled = out.then(
      () => undefined,
      () => undefined,
    );
    this.running.add(settled);
    void settled.then(() => this.running.delete(settled));
    return out.catch(elsewhere);
  }

  /**
   * Aborts `ac` when a handoff of this instance begins, until `unstop`: for a forwarded wait on
   * the owner, whose signal nothing uses once its answer is sent. @see stoppable
   */
  private stopOnHandoff(ac: AbortController): void {
    if (this.handingOff.signal.aborted) ac.abort(this.handingOff.signal.reason);
    else this.stoppable.add(ac);
  }

  private unstop(ac: AbortController): void {
    this.stoppable.delete(ac);
  }

  /** From the start of a graceful shutdown: new leases are placed on the other instances. */
  drain(): void {
    this.draining = true;
  }

  /**
   * The tenant's home when it is another instance (null: this one): the rendezvous hash of the
   * tenant over the registered members that are listening and not shutting down, as this
   * instance sees them. Membership changes move only where new leases go.
   */
  private home(tenant: string): MemberRecord | null {
    const usage = this.membership.usage();
    const live = new Map<string, MemberRecord>();
    for (const m of this.membership.members().values()) {
      const self = m.id === this.opts.instanceId && m.incarnation === this.opts.incarnation;
      const key = `${m.id}.${m.incarnation}`;
      if (self ? this.draining : !m.address || this.dead.has(key) || this.leaving.has(key) || publishedDraining(usage.get(m.id))) continue;
      live.set(m.id, m);
    }
    const id = homeOf(tenant, live.keys());
    return id === undefined || id === this.opts.instanceId ? null : (live.get(id) ?? null);
  }

  private place(outcome: 'local' | 'home' | 'fallback'): void {
    this.placements.set(outcome, (this.placements.get(outcome) ?? 0) + 1);
  }

  /**
   * A lease grant carried out on the tenant's home (one forwarded call; the home re-checks the
   * principal and grants with its own session, so the id is the home's). A home that answers it
   * is shutting down (its `draining` usage has not reached this instance yet) is no home: the
   * grant goes to the next one, as it will once the usage arrives. Availability first: when the
   * home does not answer — gone, unreachable, overloaded — the lease is granted here (`local`)
   * and counted as a `fallback`; errors about the grant itself (limits, permission, arguments)
   * are the caller's answer as for a local grant.
   */
  private async grantOnHome(home: MemberRecord, principal: Principal, args: unknown[], local: () => unknown): Promise<unknown> {
    // A token and a deadline (placed-grants.ts): if the answer is lost, the home is told to drop
    // what it granted under the token, and refuses the grant if it only arrives after the deadline.
    const timeoutMs = Math.min(this.opts.forwardTimeoutMs, PLACEMENT_TIMEOUT_MS);
    const placement = { token: randomBytes(16).toString('hex'), deadline: Date.now() + timeoutMs };
    const body = { tenant: principal.tenant.name, keyId: principal.keyId, op: GRANT, args: encode(args), placement };
    let answer: { ok?: Json; error?: { code: string; message: string; details?: Record<string, string | number | boolean> }; moved?: true };
    try {
      answer = (await this.client.call(home.address, CALL_PATH, body, { timeoutMs, process: processOf(home) })) as typeof answer;
    } catch (err) {
      const kind = err instanceof ChannelError ? err.kind : 'failed';
      if (kind === 'refused') this.dead.add(`${home.id}.${home.incarnation}`);
      // Refused, untrusted or unsent: nothing was sent. Otherwise the home may have granted it.
      else if (kind === 'failed') this.abandonGrant(home, principal, placement.token, placement.deadline, typeof args[0] === 'number' ? args[0] : 0);
      return this.grantHere(home, local, kind);
    }
    if (answer.moved) {
      this.leaving.add(`${home.id}.${home.incarnation}`);
      const next = this.home(principal.tenant.name);
      if (next) return this.grantOnHome(next, principal, args, local);
      this.place('local');
      return local();
    }
    if (answer.error) {
      if (answer.error.code === 'UNAVAILABLE') return this.grantHere(home, local, 'unavailable');
      throw new ZkgateError(answer.error.code as ZkgateError['code'], answer.error.message, answer.error.details ?? {});
    }
    this.place('home');
    return decode(answer.ok ?? null, { lease: (info) => this.remoteLease(principal, info) });
  }

  /**
   * Tells `home`, in the background, that the grant under `token` was given up on (its answer
   * lost): it revokes the lease granted under it, or refuses the grant if it has not arrived.
   * Tried again until the deadline plus the lease's TTL and the clock skew tolerated have passed:
   * a lease granted under the token by its deadline has lapsed by then unless kept alive, and
   * nobody holds its id to keep it alive. A home found not listening is gone with its leases.
   */
  private abandonGrant(home: MemberRecord, principal: Principal, token: string, deadline: number, ttlMs: number): void {
    const body = { tenant: principal.tenant.name, keyId: principal.keyId, op: ABANDON, args: [token, deadline] };
    let target = home;
    const attempt = async (): Promise<AbandonOutcome> => {
      try {
        const answer = (await this.client.call(target.address, CALL_PATH, body, { timeoutMs: PLACEMENT_TIMEOUT_MS, process: processOf(target) })) as { ok?: Json; error?: { code: string } };
        // An error other than UNAVAILABLE: the home cannot do it (an instance of an older version: no such operation).
        return answer.error?.code === 'UNAVAILABLE' ? 'retry' : 'done';
      } catch (err) {
        // Untrusted: never will be told. Unsent or failed: again.
        if (!(err instanceof ChannelError) || err.kind !== 'refused') return err instanceof ChannelError && err.kind === 'untrusted' ? 'done' : 'retry';
        // Not listening: gone with its leases, unless it handed them over in a graceful shutdown
        // and exited; the tokens went with them, and the abandon goes where the leases are now.
        this.dead.add(processOf(target));
        const now = await this.holderOf({ instanceId: home.id, incarnation: home.incarnation }).catch(() => undefined);
        if (now === undefined) return 'retry'; // ZooKeeper cannot say now
        if (now === null) return 'done';
        target = now;
        return 'retry';
      }
    };
    const until = deadline + ttlMs + SKEW_MS;
    this.abandoned.tell(attempt, until, () => this.logger.warn({ home: home.id, token }, 'cluster: could not tell the home that a lease grant was given up on; a lease granted there lapses by its TTL'));
  }

  /** A placed grant on this instance (its home): one lease per token, none after its deadline or once abandoned. */
  private placedGrant(msg: InternalRequest, principal: Principal, ttlMs: unknown, grant: () => Promise<unknown>): Promise<Lease> {
    return this.placedGrants.grant(placementOf(msg.placement), principal.tenant.name, typeof ttlMs === 'number' ? ttlMs : 0, grant as () => Promise<Lease>, (id) => this.revokeAbandoned(principal, id));
  }

  /** Ends a lease granted under a token its caller gave up on; one that ended already (or is gone) is fine. */
  private async revokeAbandoned(principal: Principal, id: string): Promise<void> {
    const ended = (err: unknown): void => {
      const code = toZkgateError(err).code;
      if (code !== 'LEASE_NOT_FOUND' && !isLeaseEndedCode(code)) throw err;
    };
    try {
      await this.deps.local(principal).leases.revoke(id);
      this.logger.info({ leaseId: id }, 'cluster: revoked a placed lease whose caller did not get the answer');
    } catch (err) {
      // Handed over since (a graceful restart of this instance): revoked where it is now.
      if (err instanceof LeaseElsewhere) await this.forward(principal, 'leases.revoke', [id], id).catch(ended);
      else ended(err);
    }
  }

  /** A caller gave up on a placed grant here (`ABANDON`: token, deadline). */
  private async serveAbandon(msg: InternalRequest, reply: (v: unknown) => void): Promise<void> {
    const [token, deadline] = Array.isArray(msg.args) ? msg.args : [];
    try {
      const { token: t, deadline: d } = placementOf({ token, deadline });
      const principal = this.deps.auth.principalFor(msg.tenant, msg.keyId);
      await this.placedGrants.abandon(t, d, principal.tenant.name, (id) => this.revokeAbandoned(principal, id));
      reply({ ok: true });
    } catch (err) {
      const e = toZkgateError(err);
      reply({ error: { code: e.code, message: e.message, details: e.details } });
    }
  }

  private grantHere(home: MemberRecord, local: () => unknown, reason: string): unknown {
    this.place('fallback');
    this.logger.info({ home: home.id, reason }, 'cluster: the tenant\'s home instance did not take a lease grant; granted here');
    return local();
  }

  /**
   * The live member holding lease `id`: null when it is gone (not registered with the id's
   * incarnation, or found not listening). Reads ZooKeeper again before saying gone, so an
   * instance that registered a moment ago is found. @throws UNAVAILABLE when ZooKeeper cannot say
   */
  async locate(id: string): Promise<MemberRecord | null> {
    const o = this.ids.origin(id);
    return o ? this.holderOf(o, id) : null;
  }

  /** The live member holding the leases of start `o` of an instance (`locate`). @throws UNAVAILABLE */
  private async holderOf(o: { readonly instanceId: string; readonly incarnation: string }, leaseId?: string): Promise<MemberRecord | null> {
    const find = (m: ReadonlyMap<string, MemberRecord>): MemberRecord | undefined => {
      // A handoff record wins over the origin's own registration (a draining instance is still registered).
      const moved = this.membership.handoffs().get(`${o.instanceId}.${o.incarnation}`);
      const id = moved ? moved.id : o.instanceId;
      const incarnation = moved ? moved.incarnation : o.incarnation;
      if (this.dead.has(`${id}.${incarnation}`)) return undefined;
      const r = m.get(id);
      return r && r.incarnation === incarnation && r.address ? r : undefined;
    };
    const seen = find(this.membership.members());
    if (seen) return seen;
    try {
      return find(await this.membership.refresh()) ?? null;
    } catch (err) {
      throw new ZkgateError('UNAVAILABLE', 'cluster: cannot read the membership from zookeeper to find the lease\'s instance', leaseId === undefined ? {} : { leaseId }, { cause: err });
    }
  }

  /** Carries out facade call `op` on the instance holding `leaseId`. */
  async forward(principal: Principal, op: string, args: unknown[], leaseId: string): Promise<unknown> {
    try {
      const v = await this.forwardOnce(principal, op, args, leaseId, 0);
      this.count('ok');
      return v;
    } catch (err) {
      this.count(err instanceof ZkgateError ? err.code : 'INTERNAL');
      throw err;
    }
  }

  private async forwardOnce(principal: Principal, op: string, args: unknown[], leaseId: string, attempt: number): Promise<unknown> {
    const owner = await this.locate(leaseId);
    const origin = this.ids.origin(leaseId);
    if (!owner) throw instanceGone(leaseId, origin?.instanceId ?? '?');
    const signal = findSignal(args);
    const sentAt = Date.now();
    const body = { tenant: principal.tenant.name, keyId: principal.keyId, op, args: encode(args) };
    let answer: { ok?: Json; error?: { code: string; message: string; details?: Record<string, string | number | boolean> }; moved?: true };
    try {
      answer = (await this.client.call(owner.address, CALL_PATH, body, signal ? { signal, process: processOf(owner) } : { timeoutMs: this.opts.forwardTimeoutMs, process: processOf(owner) })) as typeof answer;
    } catch (err) {
      if (signal?.aborted) throw toZkgateError(signal.reason);
      const failed = await this.ownerFailed(owner, leaseId, err);
      if (failed.code !== 'LEASE_LOST') throw failed;
      // The owner is not listening (marked dead now). It may have handed its leases over and
      // exited, with a view here not yet updated or a call open across its exit: `locate` skips
      // it now and reads the handoff records again. Only when no live instance holds the lease
      // is it lost; ZooKeeper not answering that question is UNAVAILABLE, not a loss.
      const now = await this.locate(leaseId);
      if (!now) throw failed;
      // Refused: nothing was sent, so the call can go to the successor.
      const refused = err instanceof ChannelError && err.kind === 'refused';
      if (refused && attempt < 30) return this.forwardOnce(principal, op, withWaitLeft(args, sentAt), leaseId, attempt + 1);
      // Cut while open: the owner may have carried it out before it went; sending it again is
      // the client's call (a keepalive may, a lock acquire re-reads first).
      throw new ZkgateError(
        'UNAVAILABLE',
        refused
          ? `cluster: lease ${leaseId} is being handed over; retry`
          : `cluster: instance ${owner.id} holding lease ${leaseId} handed it to instance ${now.id} and went away while this call was open; the outcome is unknown, retry`,
        { leaseId, instance: owner.id, reason: 'handoff', outcome: refused ? 'not_applied' : 'unknown' },
        { cause: err },
      );
    }
    if (answer.moved) {
      // The lease is being handed to another instance (a rolling restart): find it again.
      if (attempt >= 30) throw new ZkgateError('UNAVAILABLE', `cluster: lease ${leaseId} is being handed over; retry`, { leaseId, reason: 'handoff', outcome: 'not_applied' });
      await sleep(Math.min(500, 50 * (attempt + 1)));
      await this.membership.refresh().catch(() => undefined);
      // A wait stopped by the owner's handoff goes on at the successor for what is left of it.
      return this.forwardOnce(principal, op, withWaitLeft(args, sentAt), leaseId, attempt + 1);
    }
    if (answer.error) throw new ZkgateError(answer.error.code as ZkgateError['code'], answer.error.message, answer.error.details ?? {});
    return decode(answer.ok ?? null, { lease: (info) => this.remoteLease(principal, info) });
  }

  /**
   * What a caller hears when the owner failed before answering: LEASE_LOST (instance_gone) when
   * it is not listening any more (crashed or stopped), UNAVAILABLE with outcome not_applied when
   * the call was provably never sent (certificate not trusted, connection not opened), else
   * UNAVAILABLE with outcome unknown.
   */
  private async ownerFailed(owner: MemberRecord, leaseId: string, err: unknown): Promise<ZkgateError> {
    // Its certificate is not trusted here: nothing was sent, and a probe would meet the same one.
    if (err instanceof ChannelError && err.kind === 'untrusted') {
      if (this.untrusted.size < 1024 && !this.untrusted.has(owner.address) && this.untrusted.add(owner.address))
        this.logger.warn({ instance: owner.id, address: owner.address, err: err.message }, 'cluster: the internal address\'s TLS certificate is not trusted; calls to it fail');
      return new ZkgateError('UNAVAILABLE', `cluster: instance ${owner.id} holding lease ${leaseId} cannot be reached: the TLS certificate of its internal address is not trusted by this instance (${(err.cause as Error | undefined)?.message ?? 'verification failed'}); nothing was done`, { leaseId, instance: owner.id, reason: 'owner_unreachable', outcome: 'not_applied' }, { cause: err });
    }
    // The connection for calls did not open (no answer to the upgrade in time, or backing off
    // after such an open): the call was never written, so it was not carried out. No probe: a
    // hung owner's address accepts TCP connections, and the answer would still be "not applied".
    if (err instanceof ChannelError && err.kind === 'unsent') {
      return new ZkgateError('UNAVAILABLE', `cluster: instance ${owner.id} holding lease ${leaseId} did not take the connection for calls; nothing was sent, retry (${err.message})`, { leaseId, instance: owner.id, reason: 'owner_unreachable', outcome: 'not_applied' }, { cause: err });
    }
    let refused = err instanceof ChannelError && err.kind === 'refused';
    if (!refused) {
      // Cut mid-call: probe once whether the process still listens.
      refused = await this.client.open(owner.address, '/cluster/v1/ping', {}, { timeoutMs: 1000 }).then(
        (res) => (res.resume(), false),
        (e: unknown) => e instanceof ChannelError && e.kind === 'refused',
      );
    }
    if (refused) {
      this.dead.add(`${owner.id}.${owner.incarnation}`);
      this.logger.info({ instance: owner.id, address: owner.address }, 'cluster: instance not listening; its leases are reported lost');
      return instanceGone(leaseId, owner.id);
    }
    return new ZkgateError('UNAVAILABLE', `cluster: instance ${owner.id} holding lease ${leaseId} did not answer; the outcome is unknown`, { leaseId, instance: owner.id, reason: 'owner_unreachable', outcome: 'unknown' }, { cause: err });
  }

  private get logger(): Logger {
    return this.deps.logger;
  }

  private count(outcome: string): void {
    this.forwarded.set(outcome, (this.forwarded.get(outcome) ?? 0) + 1);
  }

  /** The one object this instance shows for a remote lease, updated with `info`. */
  private remoteLease(principal: Principal, info: LeaseInfo): RemoteLease {
    const key = `${principal.tenant.name}/${info.id}`;
    let l = this.remotes.get(key);
    if (!l || l.isEnded) {
      l = new RemoteLease(info, principal.tenant, (lease, signal) => this.follow(principal, lease, signal));
      this.remotes.set(key, l);
    } else l.update(info);
    return l;
  }

  private sweepRemotes(): void {
    const old = Date.now() - 60_000;
    for (const [k, l] of this.remotes) if (!l.followed && l.usedAt < old) this.remotes.delete(k);
  }

  /** Mirrors the owner's changes of `lease` until `signal` aborts or it ends (owner gone: lost, instance_gone). */
  private async follow(principal: Principal, lease: RemoteLease, signal: AbortSignal): Promise<void> {
    while (!signal.aborted && !lease.isEnded) {
      const owner = await this.locate(lease.id).catch(() => undefined);
      if (owner === null) return lease.end('lost', 'instance_gone');
      if (owner) {
        try {
          const res = await this.client.open(owner.address, '/cluster/v1/changes', { tenant: principal.tenant.name, keyId: principal.keyId, leaseId: lease.id }, { signal });
          for await (const line of readLines(res)) {
            const l = line as { info?: LeaseInfo; error?: { code: string } };
            if (l.info) lease.update(l.info);
            if (l.error) return;
          }
        } catch (err) {
          if (signal.aborted) return;
          if (err instanceof ChannelError && err.kind === 'refused') this.dead.add(`${owner.id}.${owner.incarnation}`);
        }
      }
      await sleep(500, signal);
    }
  }

  async keepAliveWhileOpen(principal: Principal, lease: Lease, signal: AbortSignal): Promise<void> {
    const keep = (): Promise<unknown> => this.forward(principal, 'leases.keepAlive', [lease.id], lease.id);
    await keep();
    const timer = setInterval(() => {
      if (lease.isEnded) return clearInterval(timer);
      keep().catch((err: unknown) => {
        // The lease's end reaches the caller through its state; a gone owner ends it here.
        if (err instanceof ZkgateError && err.details.reason === 'instance_gone' && lease instanceof RemoteLease) lease.end('lost', 'instance_gone');
      });
    }, Math.max(50, Math.floor(lease.ttlMs / 3)));
    timer.unref();
    signal.addEventListener('abort', () => clearInterval(timer), { once: true });
  }

  async listElsewhere(principal: Principal, opts: { includeEnded?: boolean }): Promise<LeaseListing> {
    const others = [...this.membership.members().values()].filter((m) => m.address && !(m.id === this.opts.instanceId && m.incarnation === this.opts.incarnation));
    const body = { tenant: principal.tenant.name, keyId: principal.keyId, op: 'leases.list', args: encode([opts]) };
    const unanswered: UnansweredInstance[] = [];
    const lists = await Promise.all(
      others.map(async (m): Promise<LeaseListEntry[]> => {
        // Found not listening earlier and still registered (its session has not expired yet).
        if (this.dead.has(`${m.id}.${m.incarnation}`)) return (unanswered.push({ instance: m.id, reason: 'not_listening' }), []);
        try {
          const answer = (await this.client.call(m.address, CALL_PATH, body, { timeoutMs: this.opts.forwardTimeoutMs, process: processOf(m) })) as { ok?: Json; error?: { code: string; message: string; details?: Record<string, string | number | boolean> } };
          if (answer.error) throw new ZkgateError(answer.error.code as ZkgateError['code'], answer.error.message, answer.error.details ?? {});
          // A draining instance answers `moved`: its leases are being listed by its successor.
          return Array.isArray(answer.ok) ? (decode(answer.ok, { lease: (info) => this.remoteLease(principal, info) }) as LeaseListEntry[]) : [];
        } catch (err) {
          if (err instanceof ZkgateError && err.code === 'PERMISSION_DENIED') throw err;
          // Said in the answer (`incomplete`), not only in the log: a silent gap reads as "no leases there".
          const kind = err instanceof ChannelError ? err.kind : undefined;
          const reason = kind === 'refused' ? 'not_listening' : kind === 'untrusted' ? 'untrusted' : err instanceof ZkgateError ? 'error' : 'no_answer';
          unanswered.push({ instance: m.id, reason });
          this.logger.warn({ err, instance: m.id, reason }, 'cluster: an instance did not answer a lease listing; the answer says it is incomplete');
          return [];
        }
      }),
    );
    return { leases: lists.flat(), unanswered: unanswered.sort((a, b) => a.instance.localeCompare(b.instance)) };
  }

  /** Handles one request of the internal listener. */
  handle(req: IncomingMessage, res: ServerResponse): void {
    void this.serve(req, res).catch((err: unknown) => {
      this.failedInternally(err, req.destroyed);
      if (!res.headersSent) res.writeHead(500).end();
      else res.destroy();
    });
  }

  /** Handles an upgrade request of the internal listener: a peer's persistent connection for forwarded calls (frames.ts). */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.frames.upgrade(req, socket, head);
  }

  /** Tells the peers' connections this instance goes away, waits (≤ 1 s) for them to close, then ends them. */
  closeConnections(): Promise<void> {
    return this.frames.close();
  }

  private failedInternally(err: unknown, peerWentAway: boolean): void {
    // A peer that reset or went away mid-request is an expected outcome (issue 9): no stack, not at warn.
    const code = (err as NodeJS.ErrnoException | undefined)?.code;
    const peerGone = peerWentAway && (code === 'ECONNRESET' || code === 'ERR_STREAM_PREMATURE_CLOSE' || (err instanceof ZkgateError && err.code === 'CANCELLED'));
    if (peerGone) this.logger.debug({ code, detail: (err as Error).message }, 'cluster: internal request ended: the peer went away');
    else this.logger.warn({ err }, 'cluster: internal request failed');
  }

  /** Runs `work` (which uses this instance's sessions) so that a handoff waits for it to end. */
  private async tracked<T>(work: () => Promise<T>): Promise<T> {
    const p = work();
    const settled = p.then(
      () => undefined,
      () => undefined,
    );
    this.running.add(settled);
    try {
      return await p;
    } finally {
      this.running.delete(settled);
    }
  }

  /**
   * Hands every lease of this instance — and the ZooKeeper sessions owning their nodes — to a
   * live instance (graceful shutdown, docs/cluster.md "Rolling restarts"). Internal calls running
   * here are stopped first; each session is detached (this process never uses it again: no
   * request, ping, reconnect or closeSession) before its id and password are sent, so one
   * instance at a time uses it. Calls naming the leases are then answered `moved` here and
   * carried out by the successor. Resolves with what was handed over; without a successor
   * nothing is (the leases end with this process's sessions, as for a single gateway).
   */
  /**
   * First step of a handoff, at the start of a graceful shutdown: stops the waits running here
   * (each is run again on the successor once `handoff` is done). Idempotent.
   */
  beginHandoff(): void {
    if (this.handingOff.signal.aborted) return;
    this.handoffDone = new Promise<void>((r) => (this.finishHandoff = r));
    const reason = new ZkgateError('UNAVAILABLE', 'cluster: handing leases over', {});
    this.handingOff.abort(reason);
    for (const ac of this.stoppable) ac.abort(reason);
    this.stoppable.clear();
  }

  async handoff(): Promise<{ to: string | null; sessions: number; leases: number; lost: number }> {
    this.beginHandoff();
    try {
      await Promise.race([Promise.allSettled([...this.running]), sleep(5000)]);
      const members = await this.membership.refresh().catch(() => this.membership.members());
      // The live instance holding the fewest leases (as published for quotas) takes them all: a
      // rolling restart then spreads them instead of piling every lease on the first id, where
      // one later crash would lose them all. All go to one instance because handoff records
      // route by origin: one origin's leases must be held in one place.
      const usage = this.membership.usage();
      const ranked = [...members.values()]
        .filter((m) => m.id !== this.opts.instanceId && m.address && !this.dead.has(`${m.id}.${m.incarnation}`))
        .map((m) => ({ m, held: publishedLeases(usage.get(m.id)), draining: publishedDraining(usage.get(m.id)) }));
      if (ranked.length === 0 || !this.hooks) return { to: null, sessions: 0, leases: 0, lost: 0 };
      const sessions = this.hooks.detachAll();
      // With tenant placement, the instance that is now the next home of most of these leases'
      // tenants (the rendezvous hash over the instances not shutting down) takes them, so they
      // again share a process with their tenant's new leases (not a session: the adopted one
      // stays separate). One origin's leases must go to one place, so a mix of tenants cannot
      // follow each its own home.
      const homed = new Map<string, number>();
      if (this.opts.leasePlacement === 'tenant') {
        const live = ranked.filter((c) => !c.draining).map((c) => c.m.id);
        for (const h of sessions) {
          const id = homeOf(h.tenant, live);
          if (id !== undefined) homed.set(id, (homed.get(id) ?? 0) + h.leases.length);
        }
      }
      const candidates = ranked
        .sort((a, b) => Number(a.draining) - Number(b.draining) || (homed.get(b.m.id) ?? 0) - (homed.get(a.m.id) ?? 0) || a.held - b.held || a.m.id.localeCompare(b.m.id))
        .map((c) => c.m);
      let successor = candidates.shift() as MemberRecord;
      this.handedOff = true;
      let leases = 0;
      let lost = 0;
      let adoptedAny = false;
      for (const h of sessions) {
        try {
          let res: IncomingMessage;
          for (;;) {
            try {
              res = await this.client.open(successor.address, '/cluster/v1/adopt', { ...h, placed: this.placedGrants.handedOver(h.tenant, new Set(h.leases.map((l) => l.id))) }, { timeoutMs: 30_000 });
              break;
            } catch (err) {
              // Nothing was sent — refused (gone since the membership was read), its certificate
              // not trusted here, or never connected: the next candidate is safe to ask, as long
              // as no session went to this one.
              const kind = err instanceof ChannelError ? err.kind : 'failed';
              const next = !adoptedAny && kind !== 'failed' ? candidates.shift() : undefined;
              if (!next) throw err;
              this.logger.warn({ from: successor.id, to: next.id, reason: kind }, 'cluster: handoff target could not be sent the sessions; trying the next instance');
              successor = next;
            }
          }
          adoptedAny = true;
          const out = (await readJson(res)) as { ok?: { adopted: number; lost: number }; error?: { message: string } };
          if (!out.ok) throw new Error(out.error?.message ?? `status ${res.statusCode}`);
          leases += out.ok.adopted;
          lost += out.ok.lost;
        } catch (err) {
          lost += h.leases.length;
          this.logger.error({ err, tenant: h.tenant, leases: h.leases.length, to: successor.id }, 'cluster: handoff of a session failed; its leases end with it');
        }
      }
      this.logger.info({ to: successor.id, sessions: sessions.length, leases, lost }, 'cluster: leases handed over');
      return { to: successor.id, sessions: sessions.length, leases, lost };
    } finally {
      this.handedOff = true;
      this.handoffFinished = true;
      this.finishHandoff();
    }
  }

  /** Adopts a handed-over session: resumes it, takes its leases, records where their ids answer now. */
  private async serveAdopt(h: SessionHandoff): Promise<{ adopted: number; lost: number }> {
    if (!this.hooks) throw new ZkgateError('UNAVAILABLE', 'cluster: not ready to adopt', {});
    const out = await this.hooks.adopt(h);
    this.placedGrants.adopt(h.tenant, Array.isArray(h.placed) ? h.placed : []);
    const me = { id: this.opts.instanceId, incarnation: this.opts.incarnation };
    for (const l of h.leases) {
      const o = this.ids.origin(l.id);
      if (!o) continue;
      const origin = `${o.instanceId}.${o.incarnation}`;
      let ids = this.adoptedFrom.get(origin);
      if (!ids) this.adoptedFrom.set(origin, (ids = new Set()));
      ids.add(l.id);
    }
    for (const origin of new Set(h.leases.map((l) => this.ids.origin(l.id)).filter((o) => o !== null).map((o) => `${o.instanceId}.${o.incarnation}`))) {
      await this.membership.recordHandoff(origin, me);
    }
    return out;
  }

  /**
   * Deletes handoff records nobody needs (docs/cluster.md): those naming this instance once none
   * of their leases is remembered here any more (all ended, tombstones dropped), and those naming
   * an instance that was not registered at two sweeps in a row (its leases went with it). A
   * record is deleted only if it still names the same target (a later handoff rewrote it: kept).
   */
  private async sweepRecords(): Promise<void> {
    if (this.handingOff.signal.aborted) return;
    const me = { id: this.opts.instanceId, incarnation: this.opts.incarnation };
    for (const [origin, ids] of this.adoptedFrom) {
      if ([...ids].some((id) => this.deps.leases.knows(id))) continue;
      if (await this.membership.clearHandoff(origin, me)) this.logger.info({ origin }, 'cluster: every lease of a handoff ended; its record is deleted');
      this.adoptedFrom.delete(origin);
    }
    if (this.membership.handoffs().size === 0) return this.orphaned.clear();
    const members = await this.membership.refresh();
    for (const [origin, target] of this.membership.handoffs()) {
      if (members.get(target.id)?.incarnation === target.incarnation) {
        this.orphaned.delete(origin);
      } else if (this.orphaned.delete(origin)) {
        if (await this.membership.clearHandoff(origin, target)) this.logger.info({ origin, target: target.id }, 'cluster: a handoff record named an instance that is gone; deleted');
      } else this.orphaned.add(origin);
    }
  }

  private async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // Only a body that may be genuine is read (up to MAX_BODY): without a well-formed, fresh
    // signature the request is refused at once and the connection closed, its body unread.
    if (req.method !== 'POST' || !this.verifier.plausible(req.headers)) return void res.writeHead(401, { connection: 'close' }).end();
    const text = await readBody(req, MAX_BODY);
    if (text === null) return void res.writeHead(413, { connection: 'close' }).end();
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    // The path as sent is what was signed (senders sign exactly the path they send).
    const path = q < 0 ? url : url.slice(0, q);
    if (!this.verifier.verify(req.headers, path, text)) return void res.writeHead(401).end();
    if (path === '/cluster/v1/ping') return void res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    const reply = (v: unknown): void => void res.writeHead(200, { 'content-type': 'application/json' }).end(`${JSON.stringify(v)}\n`);
    if (path === '/cluster/v1/adopt') {
      return this.serveAdopt(JSON.parse(text) as SessionHandoff).then(
        (ok) => reply({ ok }),
        (err: unknown) => reply({ error: { message: toZkgateError(err).message } }),
      );
    }
    if (path === CALL_PATH) return this.serveCall(text, () => closedBefore(res), reply);
    if (path !== '/cluster/v1/changes') return void res.writeHead(404).end();
    return this.answered(text, reply, (msg, principal) => {
      const ac = closedBefore(res);
      this.stopOnHandoff(ac);
      return this.tracked(() => this.serveChanges(principal, msg.leaseId ?? '', res, ac.signal)).finally(() => this.unstop(ac));
    });
  }

  /**
   * Runs one forwarded facade call (`text`, as POSTed or framed) on the caller's principal,
   * re-checked here; `gone` makes the controller standing for the caller going away (only for a
   * call that waits; a handoff aborts it too), `reply` sends the answer. @throws on a malformed
   * call (answered 500 / `E`)
   */
  private serveCall(text: string, gone: () => AbortController, reply: (v: unknown) => void): Promise<void> {
    return this.answered(text, reply, async (msg, principal) => {
      const [group, method] = (msg.op ?? '').split('.');
      const scope = this.deps.local(principal) as unknown as Record<string, unknown>;
      const target = group && !NOT_GROUPS.has(group) && Object.hasOwn(scope, group) ? (scope[group] as Record<string, unknown> | null) : null;
      const fn = target && method && method !== 'constructor' && Object.hasOwn(Object.getPrototypeOf(target) as object, method) ? target[method] : undefined;
      if (typeof fn !== 'function') throw new ZkgateError('INVALID_ARGUMENT', `cluster: no facade operation ${msg.op}`, { field: 'op' });
      // Only a call that waits carries the caller's cancellation (encoded `{"$s":1}`); the others
      // do not pay for a signal (the exchange's end and a handoff both abort one that waits).
      const ac = text.includes('{"$s":1}') ? gone() : undefined;
      if (ac) this.stopOnHandoff(ac);
      const signal = ac?.signal;
      try {
        const args = decode(msg.args ?? [], { ...(signal ? { signal } : {}), lease: (info) => this.deps.leases.lookup(principal.tenant, info.id) }) as unknown[];
        const run = (): Promise<unknown> => this.tracked(async () => (fn as (...a: unknown[]) => unknown).apply(target, args));
        reply({ ok: encode(await (msg.op === GRANT && msg.placement !== undefined ? this.placedGrant(msg, principal, args[0], run) : run())) });
      } finally {
        if (ac) this.unstop(ac);
      }
    });
  }

  /**
   * Runs `work` for the principal internal request `text` names (re-checked against this
   * instance's configuration); its errors are answered with `reply`, and during a handoff
   * `moved` (the caller goes to the successor).
   */
  private async answered(text: string, reply: (v: unknown) => void, work: (msg: InternalRequest, principal: Principal) => Promise<void>): Promise<void> {
    const msg = JSON.parse(text) as InternalRequest;
    // Before the handoff's `moved`: a lease granted here under the token may have been handed
    // over, and is then revoked on the successor (revokeAbandoned).
    if (msg.op === ABANDON) return this.serveAbandon(msg, reply);
    // A shutting-down instance is no tenant's home: the caller grants the lease itself, at once.
    if (msg.op === GRANT && this.draining) return reply({ moved: true });
    // While this instance hands its leases over, calls about them wait, then go to the successor.
    if (this.handingOff.signal.aborted) {
      await this.handoffDone;
      return reply({ moved: true });
    }
    try {
      await work(msg, this.deps.auth.principalFor(msg.tenant, msg.keyId));
    } catch (err) {
      if (this.handingOff.signal.aborted) {
        // Stopped by the handoff (a wait) or refused after it: the successor carries it out.
        await this.handoffDone;
        return reply({ moved: true });
      }
      if (err instanceof LeaseElsewhere) return reply({ moved: true });
      const e = toZkgateError(err);
      if (e.code === 'INTERNAL') this.logger.error({ err, op: msg.op }, 'cluster: forwarded call failed');
      reply({ error: { code: e.code, message: e.message, details: e.details } });
    }
  }

  /** Streams the lease's state (its info at each change) until it ends or the caller goes. */
  private async serveChanges(principal: Principal, leaseId: string, res: ServerResponse, signal: AbortSignal): Promise<void> {
    const lease = await this.deps.local(principal).leases.get(leaseId);
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    for await (const _ of lease.changes(signal)) res.write(`${JSON.stringify({ info: lease.info() })}\n`);
    res.end();
  }

  /** Stops following remote leases and closes idle channel sockets. */
  close(): void {
    clearInterval(this.sweep);
    clearInterval(this.recordSweep);
    for (const l of this.remotes.values()) l.removeAllListeners('state');
    this.abandoned.close();
    this.client.close();
  }
}

