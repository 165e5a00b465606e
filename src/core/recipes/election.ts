/**
 * Leader election over a lease, in Curator LeaderLatch's layout (`_c_<uuid>-latch-<seq>`, data =
 * the candidate's value, leader = first in Curator's order), so Curator services and gateway
 * clients run in one election. The term (fencing token) is the leader node's czxid; it rises
 * with every new leader. Observation reports the current state first, then every change,
 * "no leader" included.
 */
import type { ZkClient, Stat } from '../../zk/index.js';
import { ZkgateError, toZkgateError } from '../errors.js';
import type { Lease, LeaseState } from '../leases/lease.js';
import type { Tenant } from '../tenants/tenant.js';
import { curatorFlavour } from './flavours.js';
import { checkRecipePath, checkWaitMs, childNode } from './lock.js';
import { JoinedWaits } from './joined-wait.js';
import { SequentialQueue, listContenders, type Contender, type LeaveOutcome, type QueueOutcome } from './sequential-queue.js';
import { LeaderWatch } from './leader-watch.js';
import { observeLatest, pollObserved } from '../watch/followed.js';
import { findQueues, type CatalogBounds, type CatalogOptions } from './catalog.js';

const LATCH = curatorFlavour('latch-');

export interface Leader {
  /** The leader's node (full path). */
  readonly node: string;
  readonly value: Buffer;
  /** The leader node's czxid, decimal: rises with every new leader. */
  readonly term: string;
  /** The leader node's data version: rises with every proclaim. */
  readonly version: number;
}

/** The election as anyone sees it. */
export interface LeaderState {
  readonly electionPath: string;
  readonly leader: Leader | null;
  /**
   * A zxid (decimal) that changes whenever the leader or its value changes (it may also change
   * when other candidates come and go); long-poll clients send it back as `after`.
   */
  readonly index: string;
}

/** A won campaign (or a proclaim). */
export interface Leadership {
  readonly electionPath: string;
  readonly leader: true;
  readonly node: string;
  readonly term: string;
  readonly value: Buffer;
  readonly leaseId: string;
  readonly leaseState: LeaseState;
  /** ms from now the leadership can be trusted without a fresh answer (`Lease.trustMs`). */
  readonly trustMs: number;
}

export interface CampaignOptions {
  /** How long to wait for leadership, ms; 0 = only if nobody else is a candidate. @defaultValue 0 */
  readonly waitMs?: number;
  /** Aborting it withdraws the candidacy. */
  readonly signal?: AbortSignal;
}

/** An election as a listing shows it: the leader and every candidate in line order. */
export interface ElectionSummary {
  readonly electionPath: string;
  readonly leader: Leader | null;
  /** Every candidate, leader first, in Curator LeaderLatch's order. */
  readonly candidates: readonly Contender[];
}

/** The elections under a path (`GET /v1/recipes/elections/{path}`). */
export interface ElectionListing extends CatalogBounds {
  readonly elections: readonly ElectionSummary[];
}

/** A long-poll answer: `unchanged` when the wait ended without a change after `after`. */
export type LeaderPoll = LeaderState & { readonly unchanged: boolean };

const maxZxid = (a: string, b: string): string => (BigInt(a) >= BigInt(b) ? a : b);

export class ElectionService {
  /** Campaigns waiting now, by lease and election path: a campaign by the same lease joins its wait. */
  private readonly waits = new JoinedWaits<QueueOutcome>({ held: false, reason: 'timeout' });

  constructor(private readonly queue: SequentialQueue) {}

  /**
   * Becomes a candidate with `value` (default: the lease id as UTF-8) and waits up to `waitMs` to
   * lead. A campaign by a lease whose earlier campaign still waits joins that wait (one
   * candidate, the first's value; see `LockService.acquire`).
   * @throws NOT_ELECTED (current leader in details) when the wait ends first, the candidacy
   *   withdrawn; the lease's end (410) or LEASE_UNCERTAIN; the signal's reason on abort
   */
  async campaign(lease: Lease, electionPath: string, value: Buffer | undefined, opts: CampaignOptions = {}): Promise<Leadership> {
    checkRecipePath(electionPath);
    const data = value ?? Buffer.from(lease.id, 'utf8');
    const waitMs = checkWaitMs(opts.waitMs ?? 0);
    const ours = lease.ownedChild(electionPath, 'candidate');
    const again = ours === undefined ? undefined : await this.leadingAlready(lease, electionPath, ours, value);
    if (again) return again;
    const outcome = await this.waits.wait(lease, electionPath, Date.now() + waitMs, opts.signal, (joined) =>
      this.queue.enqueue(lease, electionPath, {
        flavour: LATCH,
        data,
        waitMs,
        until: joined.until,
        signal: joined.abort,
        kinds: { waiting: 'candidate', holding: 'candidate' },
      }),
    );
    if (!outcome.held) {
      const { leader } = await this.leader(lease.tenant, electionPath).catch(() => ({ leader: null }));
      const details: Record<string, string | number> = { electionPath, waitMs };
      if (leader) Object.assign(details, { leader: leader.node, term: leader.term });
      throw new ZkgateError('NOT_ELECTED', `election ${electionPath}: not leader within ${waitMs} ms`, details);
    }
    return this.leadership(lease, electionPath, outcome.node, outcome.stat.czxid, data);
  }

  /**
   * The leadership of `ours`, this lease's candidate at `electionPath`, if it leads: a campaign
   * by the leader answers it again (its value replaced when the campaign names another one), as etcd's campaign reuses
   * its session's key, instead of queueing a second candidate behind the first. So a campaign
   * sent twice — a retry after a lost answer, a balancer's replay — leaves one candidacy. A
   * candidate of this lease still waiting is not the leader: the campaign joins its wait.
   */
  private async leadingAlready(lease: Lease, electionPath: string, ours: string, value: Buffer | undefined): Promise<Leadership | undefined> {
    lease.assertUsable();
    const { leader } = await this.leader(lease.tenant, electionPath).catch((err: unknown) => Promise.reject(toZkgateError(err, electionPath)));
    if (leader?.node !== ours) return undefined;
    if (value !== undefined && !value.equals(leader.value)) return this.proclaim(lease, electionPath, ours, value);
    return this.leadership(lease, electionPath, ours, leader.term, leader.value);
  }

  /**
   * Replaces the leader's value; only the current leader's own node may.
   * @throws NOT_LEADER when `node` is not this lease's or not the leader; the lease's end (410);
   *   LEASE_UNCERTAIN while the session is suspended
   */
  async proclaim(lease: Lease, electionPath: string, node: string, value: Buffer): Promise<Leadership> {
    checkRecipePath(electionPath);
    const full = childNode(electionPath, node);
    lease.assertUsable();
    const { leader } = await this.leader(lease.tenant, electionPath);
    if (lease.owns(full) !== 'candidate' || leader?.node !== full) {
      const details: Record<string, string> = { electionPath, node: full };
      if (leader) Object.assign(details, { leader: leader.node, term: leader.term });
      throw new ZkgateError('NOT_LEADER', `election ${electionPath}: ${full} is not this lease's leader node`, details);
    }
    try {
      const stat = await lease.tenant.client().set(full, value, -1);
      return this.leadership(lease, electionPath, full, stat.czxid, value);
    } catch (err) {
      throw toZkgateError(err, full);
    }
  }

  /** Withdraws the candidacy (or leadership) of `node` if this lease owns it. Idempotent. @throws the lease's end (410) */
  async resign(lease: Lease, electionPath: string, node: string): Promise<LeaveOutcome & { node: string; leaseId: string; leaseState: LeaseState; trustMs: number }> {
    checkRecipePath(electionPath);
    const full = childNode(electionPath, node);
    const out = await this.queue.leave(lease, full, ['candidate']);
    return { ...out, node: full, leaseId: lease.id, leaseState: lease.state, trustMs: lease.trustMs() };
  }

  /** The current leader (or null) and the index. @throws UNAVAILABLE, INVALID_PATH */
  async leader(tenant: Tenant, electionPath: string): Promise<LeaderState> {
    checkRecipePath(electionPath);
    return readLeader(tenant.client(), electionPath);
  }

  /**
   * The leader state now, then every change (leader, value, or no leader) until `signal` aborts;
   * while ZooKeeper is unreachable nothing is yielded, and the state is re-read once it is back.
   * Followed through the watch hub: observers of one election share its ZooKeeper watches, which
   * the hub counts and, once nobody observes, keeps idle within its bound.
   */
  async *observe(tenant: Tenant, electionPath: string, opts: { signal?: AbortSignal } = {}): AsyncGenerator<LeaderState> {
    checkRecipePath(electionPath);
    const signal = opts.signal ?? new AbortController().signal;
    const watch = new LeaderWatch(this.queue.hub, tenant, electionPath, LATCH);
    yield* observeLatest(watch, (state) => (state.leader ? `${state.leader.node}@${state.leader.version}` : ''), signal);
  }

  /**
   * Long-poll: answers at once when the current index differs from `after` (or `after` is
   * absent), else at the next change or after `waitMs` with `unchanged: true`.
   * @throws UNAVAILABLE when ZooKeeper stays unreachable for the whole wait
   */
  async waitForChange(tenant: Tenant, electionPath: string, after: string | undefined, waitMs: number, signal?: AbortSignal): Promise<LeaderPoll> {
    checkWaitMs(waitMs, 'wait');
    return pollObserved((stop) => this.observe(tenant, electionPath, { signal: stop }), () => this.leader(tenant, electionPath), after, waitMs, signal);
  }

  /**
   * Every election at or under `path` (LeaderLatch naming): leader, term and candidates in
   * order; the walk is bounded like a tree listing (`truncated`).
   * @throws INVALID_PATH, INVALID_ARGUMENT (limit), UNAVAILABLE
   */
  async list(tenant: Tenant, path: string, opts: CatalogOptions = {}): Promise<ElectionListing> {
    const found = await findQueues(tenant, path, ['latch'], opts);
    const client = tenant.client();
    const read = await Promise.all(
      found.queues.map(async (q): Promise<ElectionSummary> => {
        const { queue } = await listContenders(client, q.path, LATCH);
        const first = queue[0];
        const leader = first ? { node: first.node, value: first.data, term: first.fencingToken, version: first.stat.version } : null;
        return { electionPath: q.path, leader, candidates: queue };
      }),
    );
    return { path: found.path, truncated: found.truncated, limit: found.limit, elections: read.filter((e) => e.candidates.length > 0) };
  }

  private leadership(lease: Lease, electionPath: string, node: string, term: string, value: Buffer): Leadership {
    return { electionPath, leader: true, node, term, value, leaseId: lease.id, leaseState: lease.state, trustMs: lease.trustMs() };
  }
}

/** Reads the leader (no watches). */
async function readLeader(client: ZkClient, electionPath: string): Promise<LeaderState> {
  let listing: { children: string[]; stat: Stat };
  try {
    listing = await client.children(electionPath);
  } catch (err) {
    if (toZkgateError(err).code !== 'NO_NODE') throw err;
    return { electionPath, leader: null, index: '0' };
  }
  for (const name of LATCH.order(listing.children)) {
    const node = `${electionPath}/${name}`;
    try {
      const { data, stat } = await client.get(node);
      return { electionPath, leader: { node, value: data, term: stat.czxid, version: stat.version }, index: maxZxid(listing.stat.pzxid, stat.mzxid) };
    } catch (err) {
      if (toZkgateError(err).code !== 'NO_NODE') throw err; // deleted since the listing: the next one leads
    }
  }
  return { electionPath, leader: null, index: listing.stat.pzxid };
}
