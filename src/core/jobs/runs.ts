/**
 * Run-once triggers. Every server's crontab posts a run for (job, trigger); exactly one is told
 * to run. Layout under `<job>/runs`:
 * - `<runId>`: the persistent run record (JSON: claimer, attempt, state, times), every change a
 *   compare-and-set on its version;
 * - `<runId>/claim`: an ephemeral node owned by the claimer's lease, present exactly while an
 *   attempt runs. ZooKeeper lets one such node exist, so one attempt runs at a time.
 * The record turns `running` only after its writer created the claim, so a `running` record
 * without a claim is an attempt whose lease ended first: `orphaned`, and the next post of the
 * trigger reclaims it (attempt + 1). A completion is fenced by the record's version: an
 * orphaned claimer's late report finds the record moved on and is refused (RUN_NOT_HELD).
 */
import type { ZkClient } from '../../zk/index.js';
import { ZkgateError, invalidArgument, toZkgateError } from '../errors.js';
import type { Lease } from '../leases/lease.js';
import type { LeaseManager } from '../leases/lease-manager.js';
import type { OwnedNodes } from '../leases/owned-nodes.js';
import type { Tenant } from '../tenants/tenant.js';
import { reachable } from '../recipes/reachable.js';
import { childrenOf, ensureInJob, readJson, type JobStore } from './job-store.js';
import { RUN_OUTCOMES, checkShard, checkTrigger, jobPaths, parseRunId, runIdOf, type RunOutcome, type RunRecord, type RunState } from './types.js';

type StoredRun = Omit<RunRecord, 'job' | 'runId' | 'version'>;
interface ClaimData {
  readonly leaseId: string;
  readonly claimer: string;
}

export interface ClaimOptions {
  /** A shard item of a sharded job: the run is (trigger, shard), and only the item's holder may claim it. */
  readonly shard?: number;
  /** Who claims, for the record and for the others' "already claimed by". @defaultValue the lease id */
  readonly claimer?: string;
  /** Aborting gives up the claim (nothing is left claimed). */
  readonly signal?: AbortSignal;
}

export interface ListRunsOptions {
  /** How many of the most recent runs (by trigger, natural order) to read, 1 to 1000. @defaultValue 100 */
  readonly limit?: number;
  /** Only runs in this state (among those read). */
  readonly state?: RunState;
}

/** Longest time a claim cut by a connection loss looks for its node, ms. */
const CLAIM_FIND_MS = 10_000;
/** Earlier attempts kept in a record. */
const MAX_PREVIOUS = 10;
/** Least time between two prunes of one job's records by this instance, ms. */
const PRUNE_EVERY_MS = 30_000;
const TERMINAL: readonly RunState[] = ['succeeded', 'failed'];
const CLAIMER = /^[\x21-\x7e][\x20-\x7e]{0,199}$/;

const natural = (a: string, b: string): number => a.localeCompare(b, 'en', { numeric: true });

export class RunService {
  private readonly lastPrune = new WeakMap<Tenant, Map<string, number>>();

  constructor(
    private readonly store: JobStore,
    private readonly owned: OwnedNodes,
    private readonly leases: LeaseManager,
  ) {}

  /**
   * Claims the run of `trigger` (or of one shard of it) for the lease: resolves with the record
   * (`running`, this lease's attempt) when the caller must run it; posting again with the same
   * lease while it runs answers the same. Aborting `signal` leaves nothing claimed.
   * @throws RUN_CLAIMED (another attempt runs, or the run ended: `details.claimer`, `details.state`),
   *   JOB_NOT_FOUND, JOB_NOT_ACTIVE (paused or disabled), SHARD_NOT_HELD, INVALID_ARGUMENT,
   *   the lease's end (410) or LEASE_UNCERTAIN, UNAVAILABLE
   */
  async claim(lease: Lease, job: string, trigger: string, opts: ClaimOptions = {}): Promise<RunRecord> {
    checkTrigger(trigger);
    const claimer = opts.claimer ?? lease.id;
    if (!CLAIMER.test(claimer)) throw invalidArgument('claimer', 'must be 1-200 printable ASCII characters');
    const p = jobPaths(job);
    // The reads before the claim's create ride through a connection loss as the create does
    // (CLAIM_FIND_MS): they may simply be sent again once the session is back.
    const findUntil = Date.now() + CLAIM_FIND_MS;
    const signal = opts.signal ? AbortSignal.any([opts.signal, lease.signal]) : lease.signal;
    const cfg = await reachable(lease, p.job, findUntil, signal, async () => {
      const read = await this.store.get(lease.tenant, job);
      lease.assertUsable(); // LEASE_UNCERTAIN right after a reconnect: read again once it is settled
      return read;
    });
    const shard = opts.shard === undefined ? null : checkShard(opts.shard, cfg.shardCount);
    if (cfg.state !== 'active') throw new ZkgateError('JOB_NOT_ACTIVE', `job ${job}: ${cfg.state}; no run is started`, { job, state: cfg.state });
    if (shard !== null && lease.owns(p.item(shard)) !== 'shard') {
      throw new ZkgateError('SHARD_NOT_HELD', `job ${job}: shard ${shard} is not claimed by lease ${lease.id} (sync the member first)`, { job, shard, leaseId: lease.id });
    }
    const runId = runIdOf(trigger, shard);
    const path = p.run(runId);
    const claimPath = p.claim(runId);
    const existing = await reachable(lease, path, findUntil, signal, () => readJson<StoredRun>(lease.tenant.client(), path));
    const state = existing && (await reachable(lease, claimPath, findUntil, signal, () => this.stateOf(lease.tenant.client(), claimPath, existing.value)));
    const client = lease.tenant.client();
    this.pruneSoon(lease.tenant, job, cfg.retentionMs);
    this.store.release.follow(lease.tenant, job); // a delete on another instance disowns the claim here first

    if (existing && state !== 'orphaned' && existing.value.state !== 'pending') {
      if (existing.value.leaseId === lease.id && lease.owns(claimPath) === 'run') return this.record(job, runId, existing.value, existing.stat.version);
      throw claimed(job, runId, existing.value.state === 'running' ? 'running' : existing.value.state, existing.value.claimer, existing.value.attempt);
    }
    const pending = (): Buffer => Buffer.from(JSON.stringify(this.fresh(trigger, shard)));
    if (!existing) await ensureInJob(client, job, path, pending());
    try {
      await this.owned.create(lease, claimPath, {
        data: Buffer.from(JSON.stringify({ leaseId: lease.id, claimer } satisfies ClaimData)),
        mode: 'ephemeral',
        kind: 'run',
        deadline: Date.now() + CLAIM_FIND_MS,
        signal: opts.signal,
        onNoNode: async () => void (await ensureInJob(client, job, path, pending())),
      });
    } catch (err) {
      if (toZkgateError(err).code !== 'NODE_EXISTS') throw err;
      const holder = await readJson<ClaimData>(client, claimPath);
      if (holder?.value.leaseId === lease.id && lease.owns(claimPath) === 'run') {
        const mine = await readJson<StoredRun>(client, path);
        if (mine?.value.state === 'running' && mine.value.leaseId === lease.id) return this.record(job, runId, mine.value, mine.stat.version);
      }
      throw claimed(job, runId, 'running', holder?.value.claimer ?? 'unknown', existing?.value.attempt ?? 0);
    }
    try {
      const rec = await this.start(client, job, runId, lease, claimer);
      // Read after our claim and record were written: a delete whose tombstone came first is
      // seen here; one that came later lists our nodes and deletes them (deletion.ts).
      await this.store.assertLive(client, job);
      return rec;
    } catch (err) {
      await this.leases.deleteOwned(lease, claimPath).catch(() => undefined);
      if (toZkgateError(err).code === 'NO_NODE') await this.store.assertLive(client, job); // deleted under us
      throw err;
    }
  }

  /**
   * Reports the end of the lease's attempt: the record becomes `outcome`, the claim is deleted.
   * Reporting the same outcome again answers the record (idempotent).
   * @throws RUN_NOT_HELD (not this lease's running attempt: orphaned and reclaimed, or never claimed),
   *   NOT_FOUND (no such run), the lease's end (410), INVALID_ARGUMENT, UNAVAILABLE
   */
  async complete(lease: Lease, job: string, runId: string, outcome: RunOutcome, message = ''): Promise<RunRecord> {
    parseRunId(runId);
    if (!RUN_OUTCOMES.includes(outcome)) throw invalidArgument('outcome', `must be one of ${RUN_OUTCOMES.join(', ')}`);
    if (message.length > 1024) throw invalidArgument('message', 'must be at most 1024 characters');
    await this.store.get(lease.tenant, job);
    const p = jobPaths(job);
    const path = p.run(runId);
    const claimPath = p.claim(runId);
    const client = lease.tenant.client();
    for (;;) {
      const r = await readJson<StoredRun>(client, path);
      if (!r) {
        await this.store.assertLive(client, job); // deleted meanwhile: JOB_NOT_FOUND rather than no run
        throw new ZkgateError('NOT_FOUND', `job ${job}: no run ${runId}`, { job, runId });
      }
      const rec = r.value;
      if (rec.leaseId === lease.id && rec.state === outcome) return this.record(job, runId, rec, r.stat.version);
      lease.assertUsable();
      if (rec.leaseId !== lease.id || rec.state !== 'running' || lease.owns(claimPath) !== 'run') {
        throw new ZkgateError('RUN_NOT_HELD', `job ${job}: run ${runId} is not running for lease ${lease.id} (state ${rec.state}, attempt ${rec.attempt} by ${rec.claimer})`, {
          job,
          runId,
          state: rec.state,
          claimer: rec.claimer,
          attempt: rec.attempt,
        });
      }
      const next: StoredRun = { ...rec, state: outcome, endedAtMs: Date.now(), message };
      const stat = await this.store.cas(client, path, next, r.stat.version);
      if (!stat) continue;
      await this.leases.deleteOwned(lease, claimPath);
      return this.record(job, runId, next, stat.version);
    }
  }

  /** One run's record; a `running` attempt whose claim is gone is reported (and stored) `orphaned`. @throws NOT_FOUND, JOB_NOT_FOUND */
  async get(tenant: Tenant, job: string, runId: string): Promise<RunRecord> {
    parseRunId(runId);
    await this.store.get(tenant, job);
    const client = tenant.client();
    const p = jobPaths(job);
    const r = await readJson<StoredRun>(client, p.run(runId));
    if (!r) throw new ZkgateError('NOT_FOUND', `job ${job}: no run ${runId}`, { job, runId });
    return this.settle(client, job, runId, r.value, r.stat.version);
  }

  /** The most recent runs of the job, newest trigger first, and how many records it keeps. @throws JOB_NOT_FOUND, INVALID_ARGUMENT */
  async list(tenant: Tenant, job: string, opts: ListRunsOptions = {}): Promise<{ runs: RunRecord[]; total: number }> {
    const limit = opts.limit ?? 100;
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw invalidArgument('limit', 'must be an integer from 1 to 1000');
    const cfg = await this.store.get(tenant, job);
    this.pruneSoon(tenant, job, cfg.retentionMs);
    const client = tenant.client();
    const p = jobPaths(job);
    const names = await childrenOf(client, p.runs);
    const recent = names.sort((a, b) => natural(b, a)).slice(0, limit);
    const runs = await Promise.all(
      recent.map(async (id) => {
        const r = await readJson<StoredRun>(client, p.run(id));
        return r ? this.settle(client, job, id, r.value, r.stat.version) : null;
      }),
    );
    return { runs: runs.filter((r): r is RunRecord => r !== null && (!opts.state || r.state === opts.state)), total: names.length };
  }

  private fresh(trigger: string, shard: number | null): StoredRun {
    return { trigger, shard, state: 'pending', claimer: '', leaseId: '', attempt: 0, startedAtMs: Date.now(), endedAtMs: null, message: '', previous: [] };
  }

  /** With the claim held: turns the record into this lease's running attempt (compare-and-set, retried). */
  private async start(client: ZkClient, job: string, runId: string, lease: Lease, claimer: string): Promise<RunRecord> {
    const path = jobPaths(job).run(runId);
    for (;;) {
      const r = await readJson<StoredRun>(client, path);
      if (!r) {
        await this.store.assertLive(client, job); // the job was deleted under the claim
        throw new ZkgateError('INTERNAL', `job ${job}: run ${runId} vanished under its claim`, { job, runId });
      }
      const rec = r.value;
      if (TERMINAL.includes(rec.state)) throw claimed(job, runId, rec.state, rec.claimer, rec.attempt);
      const previous =
        rec.attempt > 0
          ? [...rec.previous, { attempt: rec.attempt, claimer: rec.claimer, leaseId: rec.leaseId, startedAtMs: rec.startedAtMs, endedAtMs: rec.endedAtMs ?? Date.now(), state: 'orphaned' as const }]
          : rec.previous;
      const next: StoredRun = {
        trigger: rec.trigger,
        shard: rec.shard,
        state: 'running',
        claimer,
        leaseId: lease.id,
        attempt: rec.attempt + 1,
        startedAtMs: Date.now(),
        endedAtMs: null,
        message: '',
        previous: previous.slice(-MAX_PREVIOUS),
      };
      const stat = await this.store.cas(client, path, next, r.stat.version);
      if (stat) return this.record(job, runId, next, stat.version);
    }
  }

  /** The record as reported: a running attempt without its claim is stored `orphaned` (compare-and-set; a lost race re-reads). */
  private async settle(client: ZkClient, job: string, runId: string, rec: StoredRun, version: number): Promise<RunRecord> {
    if ((await this.stateOf(client, jobPaths(job).claim(runId), rec)) !== 'orphaned' || rec.state === 'orphaned') return this.record(job, runId, rec, version);
    const next: StoredRun = { ...rec, state: 'orphaned', endedAtMs: Date.now() };
    const stat = await this.store.cas(client, jobPaths(job).run(runId), next, version);
    if (stat) return this.record(job, runId, next, stat.version);
    const again = await readJson<StoredRun>(client, jobPaths(job).run(runId));
    if (!again) throw new ZkgateError('NOT_FOUND', `job ${job}: no run ${runId}`, { job, runId });
    return this.record(job, runId, again.value, again.stat.version);
  }

  /** The state as it stands: `running` only while the claim exists. */
  private async stateOf(client: ZkClient, claimPath: string, rec: StoredRun): Promise<RunState> {
    if (rec.state !== 'running') return rec.state;
    return (await client.exists(claimPath)) ? 'running' : 'orphaned';
  }

  private record(job: string, runId: string, rec: StoredRun, version: number): RunRecord {
    return { job, runId, ...rec, version };
  }

  /** Deletes, at most every PRUNE_EVERY_MS per job, the records that ended more than `retentionMs` ago. Best effort, in the background. */
  private pruneSoon(tenant: Tenant, job: string, retentionMs: number): void {
    let last = this.lastPrune.get(tenant);
    if (!last) this.lastPrune.set(tenant, (last = new Map()));
    if (Date.now() - (last.get(job) ?? 0) < Math.min(PRUNE_EVERY_MS, retentionMs)) return;
    last.set(job, Date.now());
    void this.prune(tenant, job, retentionMs).catch(() => undefined);
  }

  private async prune(tenant: Tenant, job: string, retentionMs: number): Promise<void> {
    const client = tenant.client();
    const p = jobPaths(job);
    const cutoff = Date.now() - retentionMs;
    for (const id of await childrenOf(client, p.runs)) {
      const r = await readJson<StoredRun>(client, p.run(id)).catch(() => null);
      if (!r) continue;
      const state = await this.stateOf(client, p.claim(id), r.value);
      const since = state === 'pending' || state === 'orphaned' ? (r.value.endedAtMs ?? r.value.startedAtMs) : r.value.endedAtMs;
      if (state === 'running' || since === null || since > cutoff) continue;
      await client.delete(p.run(id), r.stat.version).catch(() => undefined); // changed or claimed meanwhile: kept
    }
  }
}

function claimed(job: string, runId: string, state: RunState, claimer: string, attempt: number): ZkgateError {
  const what = state === 'running' ? `already claimed by ${claimer}` : `already ${state} (attempt ${attempt} by ${claimer})`;
  return new ZkgateError('RUN_CLAIMED', `job ${job}: run ${runId} ${what}`, { job, runId, claimer, state, attempt });
}
