/**
 * Jobs for one caller: every call authorizes `job` (write) or `job.read` on the job's node
 * (`/zkgate/jobs/<job>`, so API key path prefixes apply), and a call made with a lease checks the
 * lease is the caller's. A long-poll or stream of the assignment holds a unit of the tenant's
 * subscriptions while open.
 */
import type { Action } from '../auth/roles.js';
import { parseJson } from '../jobs/job-store.js';
import type { JobUpdate } from '../jobs/job-store.js';
import type { ClaimOptions, ListRunsOptions } from '../jobs/runs.js';
import { checkName, jobPaths, type Assignment, type JobDeleted, type JobInfo, type JobState, type MemberView, type RunOutcome, type RunRecord } from '../jobs/types.js';
import type { ScopedConnection } from './connection.js';
import type { ScopeContext } from './scope.js';

export class ScopedJobs {
  constructor(private readonly ctx: ScopeContext) {}

  private allow(action: Extract<Action, 'job' | 'job.read'>, job: string): void {
    this.ctx.authorize(action, jobPaths(checkName(job, 'job')).job);
  }

  /** Creates the job or updates its settings. @throws INVALID_ARGUMENT, BAD_VERSION, PERMISSION_DENIED */
  async put(job: string, update: JobUpdate): Promise<{ job: JobInfo; created: boolean }> {
    this.allow('job', job);
    const out = await this.ctx.services.jobs.store.put(this.ctx.tenant, job, update);
    await this.settled(job);
    return out;
  }

  /**
   * Deletes the job and everything it owns in ZooKeeper (see `JobStore.delete`); with `version`,
   * only if the job is still at that version. Needs the role a PUT needs.
   * @throws JOB_NOT_FOUND, BAD_VERSION, INVALID_ARGUMENT, PERMISSION_DENIED, UNAVAILABLE
   */
  delete(job: string, opts: { version?: number } = {}): Promise<JobDeleted> {
    this.allow('job', job);
    return this.ctx.services.jobs.store.delete(this.ctx.tenant, job, opts);
  }

  /** The job's settings and state. @throws JOB_NOT_FOUND */
  get(job: string): Promise<JobInfo> {
    this.allow('job.read', job);
    return this.ctx.services.jobs.store.get(this.ctx.tenant, job);
  }

  /** The jobs the caller may read, by name. */
  async list(): Promise<JobInfo[]> {
    const names = await this.ctx.services.jobs.store.list(this.ctx.tenant);
    const readable = names.filter((n) => {
      try {
        this.allow('job.read', n);
        return true;
      } catch {
        return false;
      }
    });
    const jobs = await Promise.all(readable.map((n) => this.ctx.services.jobs.store.get(this.ctx.tenant, n).catch(() => null)));
    return jobs.filter((j): j is JobInfo => j !== null);
  }

  /** Pauses (`paused`), resumes (`active`) or disables (`disabled`) the job. @throws JOB_NOT_FOUND */
  async setState(job: string, state: JobState): Promise<JobInfo> {
    this.allow('job', job);
    const out = await this.ctx.services.jobs.store.setState(this.ctx.tenant, job, state);
    await this.settled(job);
    return out;
  }

  /** The assignment follows a change of settings before the answer (members see it pushed at once; nothing is left writing afterwards). */
  private async settled(job: string): Promise<void> {
    await this.ctx.services.jobs.shards.rebalance(this.ctx.tenant, job);
  }

  /** Claims the run of `trigger` for the caller's lease (see `RunService.claim`). @throws RUN_CLAIMED, JOB_NOT_ACTIVE, … */
  claimRun(job: string, trigger: string, leaseId: string, opts: ClaimOptions = {}): Promise<RunRecord> {
    this.allow('job', job);
    const lease = this.ctx.lease(leaseId, 'lease.write', 'leaseId');
    return this.ctx.services.jobs.runs.claim(lease, job, trigger, opts);
  }

  /** Reports the end of the lease's run. @throws RUN_NOT_HELD, NOT_FOUND, … */
  completeRun(job: string, runId: string, leaseId: string, outcome: RunOutcome, message?: string): Promise<RunRecord> {
    this.allow('job', job);
    const lease = this.ctx.lease(leaseId, 'lease.write', 'leaseId');
    return this.ctx.services.jobs.runs.complete(lease, job, runId, outcome, message);
  }

  /** One run record. @throws NOT_FOUND, JOB_NOT_FOUND */
  getRun(job: string, runId: string): Promise<RunRecord> {
    this.allow('job.read', job);
    return this.ctx.services.jobs.runs.get(this.ctx.tenant, job, runId);
  }

  /** The job's most recent runs. @throws JOB_NOT_FOUND, INVALID_ARGUMENT */
  listRuns(job: string, opts: ListRunsOptions = {}): Promise<{ runs: RunRecord[]; total: number }> {
    this.allow('job.read', job);
    return this.ctx.services.jobs.runs.list(this.ctx.tenant, job, opts);
  }

  /** Joins the sharded job as `memberId` with the caller's lease. @throws NODE_EXISTS, JOB_NOT_FOUND, … */
  join(job: string, memberId: string, leaseId: string): Promise<MemberView> {
    this.allow('job', job);
    const lease = this.ctx.lease(leaseId, 'lease.write', 'leaseId');
    return this.ctx.services.jobs.shards.join(lease, job, memberId);
  }

  /** Leaves the job, releasing the lease's items. Idempotent. */
  leave(job: string, memberId: string, leaseId: string): Promise<{ left: boolean; released: number[] }> {
    this.allow('job', job);
    const lease = this.ctx.lease(leaseId, 'lease.write', 'leaseId');
    return this.ctx.services.jobs.shards.leave(lease, job, memberId);
  }

  /** Acknowledges and refreshes the member's items (see `ShardService.sync`). @throws NOT_JOB_MEMBER, … */
  sync(job: string, memberId: string, leaseId: string): Promise<MemberView> {
    this.allow('job', job);
    const lease = this.ctx.lease(leaseId, 'lease.write', 'leaseId');
    return this.ctx.services.jobs.shards.sync(lease, job, memberId);
  }

  /**
   * The job's shard assignment; with `after` (a generation) waits up to `waitMs` for a newer one.
   * @throws JOB_NOT_FOUND, LIMIT_EXCEEDED, UNAVAILABLE
   */
  async assignment(job: string, wait?: { after: number; waitMs: number; signal?: AbortSignal }): Promise<{ assignment: Assignment; changed: boolean }> {
    this.allow('job.read', job);
    const { shards } = this.ctx.services.jobs;
    if (!wait) return { assignment: await shards.assignment(this.ctx.tenant, job), changed: true };
    // A wait holds a subscription unit like every other wait (issue 17: no wait outside the quotas).
    const release = this.ctx.tenant.quotas.take('subscriptions');
    try {
      return await shards.waitForChange(this.ctx.tenant, job, wait.after, wait.waitMs, wait.signal);
    } finally {
      release();
    }
  }

  /**
   * The assignment now, then every new generation, on a streaming connection (one of its
   * subscriptions) until `signal` aborts or the connection closes.
   * @throws JOB_NOT_FOUND, PERMISSION_DENIED, LIMIT_EXCEEDED
   */
  async watchAssignment(conn: ScopedConnection, job: string, signal?: AbortSignal): Promise<AsyncGenerator<Assignment>> {
    this.allow('job.read', job);
    const { shards } = this.ctx.services.jobs;
    const tenant = this.ctx.tenant;
    await shards.assignment(tenant, job);
    const path = jobPaths(job).assignment;
    const stream = conn.watch(path, { kind: 'data', signal });
    return (async function* assignments() {
      let last = -1;
      try {
        for await (const ev of stream) {
          if (!ev.stat) await shards.assignment(tenant, job); // deleted: JOB_NOT_FOUND ends the stream (else it is made again)
          if (!ev.stat || !ev.data) continue;
          const a = { job, ...parseJson<Omit<Assignment, 'job'>>(ev.data, path) };
          if (a.generation === last) continue; // a resync of the same state
          last = a.generation;
          yield a;
        }
      } finally {
        stream.stop();
      }
    })();
  }
}
