/**
 * Sharded jobs. Layout under `<job>`:
 * - `members/<memberId>`: ephemeral, owned by the member's lease (joined while it lives);
 * - `assignment`: persistent JSON, the AverageAllocation of items over the sorted live members
 *   with a `generation` that rises by one per change. Written only by compare-and-set on its
 *   version, so when several gateway instances recompute at once exactly one write wins and the
 *   others re-read the same answer;
 * - `items/<n>`: ephemeral, owned by the lease of the member that may process item n now.
 * Safety does not rest on the assignment (members read it at different moments) but on the item
 * claims: ZooKeeper lets one `items/<n>` exist, a member processes only the items its last sync
 * returned (all claimed by its lease), and a claim is deleted only by its member's next sync
 * (which acknowledges that it stopped them) or by the end of its lease. The argument is in
 * docs/jobs.md.
 */
import type { ZkClient } from '../../zk/index.js';
import { ZkgateError, invalidArgument, toZkgateError } from '../errors.js';
import type { Lease } from '../leases/lease.js';
import type { LeaseManager } from '../leases/lease-manager.js';
import type { OwnedNodes } from '../leases/owned-nodes.js';
import type { Tenant } from '../tenants/tenant.js';
import type { WatchHub } from '../watch/hub.js';
import { blockingRead } from '../watch/long-poll.js';
import { reachable } from '../recipes/reachable.js';
import { averageAllocation } from './allocation.js';
import { followJobNode } from './deletion.js';
import { childrenOf, ensureInJob, parseJson, readJson, type JobStore } from './job-store.js';
import { checkName, jobPaths, type Assignment, type JobInfo, type MemberView } from './types.js';

type StoredAssignment = Omit<Assignment, 'job'>;
/** Longest time a claim cut by a connection loss looks for its node, ms. */
const FIND_MS = 10_000;

export class ShardService {
  /** Jobs whose members this instance follows (a change recomputes the assignment), per tenant. */
  private readonly followed = new WeakMap<Tenant, Map<string, { running: boolean; again: boolean }>>();

  constructor(
    private readonly store: JobStore,
    private readonly owned: OwnedNodes,
    private readonly leases: LeaseManager,
    private readonly hub: WatchHub,
  ) {}

  /**
   * Joins the job as `memberId` with the lease (an ephemeral member node it owns), recomputes
   * the assignment and syncs. Joining again with the same lease and id is a sync.
   * @throws JOB_NOT_FOUND, NODE_EXISTS (the id is another lease's member), INVALID_ARGUMENT
   *   (the lease is already a member under another id), the lease's end (410), UNAVAILABLE
   */
  async join(lease: Lease, job: string, memberId: string): Promise<MemberView> {
    checkName(memberId, 'memberId');
    const p = jobPaths(job);
    // Rides through a connection loss as the member's create does (FIND_MS): a read may be sent again.
    await reachable(lease, p.job, Date.now() + FIND_MS, lease.signal, async () => {
      await this.store.get(lease.tenant, job);
      lease.assertUsable(); // LEASE_UNCERTAIN right after a reconnect: read again once it is settled
    });
    const mine = this.membership(lease, job);
    if (mine !== undefined && mine !== memberId) throw invalidArgument('memberId', `lease ${lease.id} already joined job ${job} as ${mine}`);
    if (mine === undefined) {
      const client = lease.tenant.client();
      this.store.release.follow(lease.tenant, job); // a delete on another instance disowns the membership here first
      try {
        await this.owned.create(lease, p.member(memberId), {
          data: Buffer.from(JSON.stringify({ memberId, leaseId: lease.id, joinedAtMs: Date.now() })),
          mode: 'ephemeral',
          kind: 'job_member',
          deadline: Date.now() + FIND_MS,
          onNoNode: async () => void (await ensureInJob(client, job, p.members)),
        });
      } catch (err) {
        const e = toZkgateError(err);
        if (e.code !== 'NODE_EXISTS') throw e;
        throw new ZkgateError('NODE_EXISTS', `job ${job}: member ${memberId} is joined with another lease`, { job, memberId });
      }
    }
    return this.sync(lease, job, memberId);
  }

  /**
   * Leaves the job: releases the lease's item claims, deletes its member node and recomputes
   * the assignment. Idempotent (leaving twice answers `left: false`).
   * @throws JOB_NOT_FOUND, INVALID_ARGUMENT, UNAVAILABLE
   */
  async leave(lease: Lease, job: string, memberId: string): Promise<{ left: boolean; released: number[] }> {
    checkName(memberId, 'memberId');
    await this.store.get(lease.tenant, job);
    const p = jobPaths(job);
    if (lease.owns(p.member(memberId)) !== 'job_member') return { left: false, released: [] };
    const released = this.heldItems(lease, job);
    for (const n of released) await this.leases.deleteOwned(lease, p.item(n));
    await this.leases.deleteOwned(lease, p.member(memberId));
    await this.rebalance(lease.tenant, job);
    return { left: true, released };
  }

  /**
   * The member's acknowledgement and refresh: releases the item claims it holds that are no
   * longer assigned to it (the caller promises it stopped processing them), claims its assigned
   * items that are free, and answers which items it may process now (`items`) and which are
   * still held by their previous owner (`pending`).
   * @throws NOT_JOB_MEMBER (the lease has not joined as `memberId`), JOB_NOT_FOUND, the lease's end (410), UNAVAILABLE
   */
  async sync(lease: Lease, job: string, memberId: string): Promise<MemberView> {
    checkName(memberId, 'memberId');
    const p = jobPaths(job);
    lease.assertUsable();
    if (lease.owns(p.member(memberId)) !== 'job_member') {
      await this.store.get(lease.tenant, job);
      throw new ZkgateError('NOT_JOB_MEMBER', `job ${job}: lease ${lease.id} has not joined as member ${memberId}`, { job, memberId, leaseId: lease.id });
    }
    const a = await this.rebalance(lease.tenant, job);
    const target = new Set(a.items[memberId] ?? []);
    const held = this.heldItems(lease, job);
    const released = held.filter((n) => !target.has(n));
    for (const n of released) await this.leases.deleteOwned(lease, p.item(n));
    const items: number[] = [];
    const pending: number[] = [];
    const client = lease.tenant.client();
    for (const n of [...target].sort((x, y) => x - y)) {
      if (lease.owns(p.item(n)) === 'shard') {
        items.push(n);
        continue;
      }
      try {
        await this.owned.create(lease, p.item(n), {
          data: Buffer.from(JSON.stringify({ memberId, leaseId: lease.id, generation: a.generation })),
          mode: 'ephemeral',
          kind: 'shard',
          deadline: Date.now() + FIND_MS,
          onNoNode: async () => void (await ensureInJob(client, job, p.items)),
        });
        items.push(n);
      } catch (err) {
        if (toZkgateError(err).code !== 'NODE_EXISTS') throw err;
        pending.push(n);
      }
    }
    return { job, memberId, leaseId: lease.id, generation: a.generation, state: a.state, shardCount: a.shardCount, items, pending, released };
  }

  /** The stored assignment, recomputed first if the live members or the job's settings changed. @throws JOB_NOT_FOUND, UNAVAILABLE */
  async assignment(tenant: Tenant, job: string): Promise<Assignment> {
    return this.rebalance(tenant, job);
  }

  /**
   * Long-poll: resolves when the assignment's generation is above `after`, or when `waitMs`
   * passed or `signal` aborted (`changed: false`, the current assignment).
   * @throws JOB_NOT_FOUND, LIMIT_EXCEEDED (a unit of the tenant's subscriptions while waiting), UNAVAILABLE
   */
  async waitForChange(tenant: Tenant, job: string, after: number, waitMs: number, signal?: AbortSignal): Promise<{ assignment: Assignment; changed: boolean }> {
    let current = await this.rebalance(tenant, job);
    const deadline = Date.now() + waitMs;
    let index: string | undefined;
    while (current.generation <= after && Date.now() < deadline && !signal?.aborted) {
      const r = await blockingRead(this.hub, tenant, jobPaths(job).assignment, 'data', { index, waitMs: deadline - Date.now(), signal });
      if (r.state.stat && r.state.data) current = { job, ...parseJson<StoredAssignment>(r.state.data, jobPaths(job).assignment) };
      else current = await this.rebalance(tenant, job); // gone: JOB_NOT_FOUND if the job was deleted, else made again
      if (r.unchanged) break;
      index = r.state.zxid;
    }
    return { assignment: current, changed: current.generation > after };
  }

  /**
   * Brings the stored assignment in line with the live members and the job's settings: computes
   * AverageAllocation and writes it with generation + 1 by compare-and-set; a lost race re-reads
   * and re-checks (another instance wrote the same answer). Starts following the job's members.
   */
  async rebalance(tenant: Tenant, job: string): Promise<Assignment> {
    const p = jobPaths(job);
    const client = tenant.client();
    for (;;) {
      const cfg = await this.store.get(tenant, job);
      this.follow(tenant, job);
      const members = (await childrenOf(client, p.members)).sort();
      const cur = await readJson<StoredAssignment>(client, p.assignment);
      if (cur && same(cur.value, cfg, members)) return { job, ...cur.value };
      const next: StoredAssignment = {
        generation: (cur?.value.generation ?? 0) + 1,
        shardCount: cfg.shardCount,
        state: cfg.state,
        members,
        items: cfg.state === 'disabled' ? Object.fromEntries(members.map((m) => [m, []])) : averageAllocation(members, cfg.shardCount),
        computedAtMs: Date.now(),
      };
      const data = Buffer.from(JSON.stringify(next));
      if (!cur) {
        if (await ensureInJob(client, job, p.assignment, data)) return { job, ...next };
      } else if (await this.store.cas(client, p.assignment, next, cur.stat.version)) {
        return { job, ...next };
      }
    }
  }

  /** The member id the lease joined `job` as, if any. */
  private membership(lease: Lease, job: string): string | undefined {
    const prefix = `${jobPaths(job).members}/`;
    const path = lease.ownedPaths().find((x) => x.startsWith(prefix) && lease.owns(x) === 'job_member');
    return path?.slice(prefix.length);
  }

  /** Items of `job` the lease holds claims on. */
  private heldItems(lease: Lease, job: string): number[] {
    const prefix = `${jobPaths(job).items}/`;
    return lease
      .ownedPaths()
      .filter((x) => x.startsWith(prefix) && lease.owns(x) === 'shard')
      .map((x) => Number(x.slice(prefix.length)))
      .sort((a, b) => a - b);
  }

  /**
   * Follows the job's members and settings (once per tenant and job, through the hub): a member
   * that joins, leaves or dies — on any instance, or with the gateway that held it — and a change
   * of state or shard count recompute the assignment here too; recomputations are serialized per
   * job. A tombstone or the job node's deletion ends the following (its watches are let go
   * before the deletions fire them, so none is re-armed on a deleted path); a job of that name
   * made again is followed again by its next rebalance.
   */
  private follow(tenant: Tenant, job: string): void {
    let jobs = this.followed.get(tenant);
    if (!jobs) this.followed.set(tenant, (jobs = new Map()));
    if (jobs.has(job)) return;
    const known = jobs;
    const flight = { running: false, again: false };
    known.set(job, flight);
    const offs: (() => void)[] = [];
    let gone = false;
    const end = (): void => {
      gone = true;
      if (known.get(job) === flight) known.delete(job);
      for (const off of offs) off();
    };
    const run = async (): Promise<void> => {
      if (gone) return;
      if (flight.running) return void (flight.again = true);
      flight.running = true;
      try {
        do {
          flight.again = false;
          await this.rebalance(tenant, job).catch(() => undefined); // unreachable or deleted: the next change or sync retries
        } while (flight.again);
      } finally {
        flight.running = false;
      }
    };
    offs.push(this.hub.follow(tenant, 'children', jobPaths(job).members, { deliver: () => void run(), fail: () => undefined }));
    // Pause, disable, a new shard count: recomputed; the job's end: the members' watch let go too.
    offs.push(followJobNode(this.hub, tenant, job, { change: () => void run(), gone: end }));
  }
}

function same(a: StoredAssignment, cfg: JobInfo, members: readonly string[]): boolean {
  return a.shardCount === cfg.shardCount && a.state === cfg.state && a.members.length === members.length && a.members.every((m, i) => m === members[i]);
}
