/**
 * Deleting a job (`DELETE /v1/jobs/{job}`). The `zookeeper` client has no multi-op, so the delete
 * is a sequence of single writes, ordered so that every state in between is safe and a delete
 * cut anywhere is finished by the next DELETE (or PUT) of the job:
 * 1. the job node gets a tombstone (`deleting` in its JSON, a compare-and-set on its version —
 *    which is the caller's compare-and-delete). From then on the job reads as absent
 *    (JOB_NOT_FOUND) to every call, and no writer creates anything under it: creates of records,
 *    members, items and the assignment never create the job node itself (`ensureInJob`);
 * 2. the leases of this instance that own nodes of the job disown them (so their deletion does
 *    not end those leases as lost); other instances do the same when their follow of the job node
 *    sees the tombstone — ZooKeeper sends a session's notifications in order, so the tombstone
 *    arrives before the deletions;
 * 3. everything under the job node is deleted, leaves first (run claims, run records, items,
 *    members, the assignment); a node created meanwhile makes its parent's delete NOT_EMPTY and
 *    the listing is read again;
 * 4. the job node itself.
 * A claim races step 1 safely: it re-reads the job node after its claim and its record are
 * written, so either it sees the tombstone and takes its claim back (JOB_NOT_FOUND), or its
 * writes precede the tombstone and the delete's listing (made after the tombstone) finds them.
 */
import { joinPath, type ZkClient } from '../../zk/index.js';
import { ZkgateError, toZkgateError } from '../errors.js';
import type { LeaseManager } from '../leases/lease-manager.js';
import type { Tenant } from '../tenants/tenant.js';
import type { WatchHub } from '../watch/hub.js';
import { jobPaths } from './types.js';

/** Rounds of "list, delete leaves, delete the node" before a delete gives up on a subtree that keeps growing. */
const MAX_ROUNDS = 20;
/** The order children of a job node are deleted in: runs first (claims stop being granted), the assignment last. */
const ORDER = ['runs', 'items', 'members', 'assignment'];

/** What a delete removed. */
export interface JobRemoval {
  /** Run records deleted. */
  runs: number;
  /** Run claims deleted: attempts that were running (their claimers' next call answers JOB_NOT_FOUND). */
  runningRuns: number;
  /** Member nodes deleted (their next sync answers JOB_NOT_FOUND). */
  members: number;
}

/**
 * The lease-side half of a job's deletion on this instance: disowning the job's nodes from the
 * local leases that own them, and following the job nodes of jobs those leases work on so that a
 * delete made on another instance is seen before its deletions.
 */
export class JobLeaseRelease {
  private readonly followed = new WeakMap<Tenant, Map<string, () => void>>();

  constructor(
    private readonly leases: LeaseManager,
    private readonly hub: WatchHub,
  ) {}

  /** Disowns every node under the job's node from this instance's live leases of `tenant`. */
  disown(tenant: Tenant, job: string): void {
    const prefix = `${jobPaths(job).job}/`;
    for (const lease of this.leases.live(tenant)) {
      for (const path of lease.ownedPaths()) if (path.startsWith(prefix)) lease.disown(path);
    }
  }

  /**
   * Follows the job's node (once per tenant and job) before a lease of this instance owns a node
   * of it: a tombstone or the node's deletion disowns the job's nodes here, then stops following
   * (the next claim or join of a job of that name follows again).
   */
  follow(tenant: Tenant, job: string): void {
    let jobs = this.followed.get(tenant);
    if (!jobs) this.followed.set(tenant, (jobs = new Map()));
    if (jobs.has(job)) return;
    const known = jobs;
    const entry = { stop: (): void => undefined };
    known.set(job, () => entry.stop());
    entry.stop = followJobNode(this.hub, tenant, job, {
      gone: () => {
        this.disown(tenant, job);
        known.delete(job);
      },
      fail: () => known.delete(job),
    });
  }
}

/**
 * Follows a job's node through the hub until its end — a tombstone or the node's deletion —
 * calling `change` for every other state and then `gone` once; the watch is let go at the end
 * (also when the state that came synchronously already said gone), before the deletions that
 * follow a tombstone fire it, so it is never set again on a deleted path. Returns the stop.
 */
export function followJobNode(hub: WatchHub, tenant: Tenant, job: string, on: { change?: () => void; gone: () => void; fail?: () => void }): () => void {
  let stop: (() => void) | undefined;
  let ended = false;
  stop = hub.follow(tenant, 'data', jobPaths(job).job, {
    deliver: (ev) => {
      if (ended) return;
      if (ev.stat && !(ev.data && isTombstone(ev.data))) return on.change?.();
      ended = true;
      on.gone();
      stop?.();
    },
    fail: () => on.fail?.(),
  });
  if (ended) stop(); // the state came synchronously and said gone
  return stop;
}

/** True when the job node's JSON carries a tombstone. */
function isTombstone(data: Buffer): boolean {
  try {
    return (JSON.parse(data.toString('utf8')) as { deleting?: unknown }).deleting !== undefined;
  } catch {
    return false;
  }
}

/**
 * Steps 3 and 4 above: deletes everything under the (tombstoned) job node, then the node.
 * Idempotent; resolves with what it removed.
 * @throws UNAVAILABLE (cut, or nodes kept being created under it: DELETE again finishes)
 */
export async function removeJobTree(client: ZkClient, job: string): Promise<JobRemoval> {
  const p = jobPaths(job);
  const counts: JobRemoval = { runs: 0, runningRuns: 0, members: 0 };
  const count = (path: string): void => {
    const parent = path.slice(0, path.lastIndexOf('/'));
    if (parent === p.runs) counts.runs++;
    else if (path.endsWith('/claim') && parent.startsWith(`${p.runs}/`)) counts.runningRuns++;
    else if (parent === p.members) counts.members++;
  };
  await removeTree(client, p.job, count);
  return counts;
}

async function removeTree(client: ZkClient, path: string, deleted: (path: string) => void): Promise<void> {
  for (let round = 0; ; round++) {
    const children = await listed(client, path);
    if (children === null) return;
    children.sort((a, b) => rank(a) - rank(b));
    for (const c of children) await removeTree(client, joinPath(path, c), deleted);
    try {
      await client.delete(path);
      deleted(path);
      return;
    } catch (err) {
      const e = toZkgateError(err, path);
      if (e.code === 'NO_NODE') return;
      if (e.code !== 'NOT_EMPTY') throw e;
      if (round >= MAX_ROUNDS) throw new ZkgateError('UNAVAILABLE', `${path}: nodes keep being created under it; DELETE the job again`, { path });
    }
  }
}

const rank = (name: string): number => (ORDER.includes(name) ? ORDER.indexOf(name) : ORDER.length);

/** The children of `path`, or null when it is gone. */
async function listed(client: ZkClient, path: string): Promise<string[] | null> {
  try {
    return (await client.children(path)).children;
  } catch (err) {
    const e = toZkgateError(err, path);
    if (e.code === 'NO_NODE') return null;
    throw e;
  }
}
