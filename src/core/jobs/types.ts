/**
 * The nouns of distributed jobs (seed 003: the same crontab on N servers) and their validation:
 * a job's configuration, run records of triggers, and the shard assignment of a sharded job.
 * Names and limits live here once; every transport reuses them.
 */
import { joinPath } from '../../zk/index.js';
import { invalidArgument } from '../errors.js';

/** Where jobs live inside a tenant's chroot: `<JOBS_ROOT>/<job>`. Path scopes of API keys apply to it. */
export const JOBS_ROOT = '/zkgate/jobs';

/** `active`: triggers run; `paused`: triggers are refused, shard claims kept; `disabled`: triggers refused, no shard assigned. */
export type JobState = 'active' | 'paused' | 'disabled';
export const JOB_STATES: readonly JobState[] = ['active', 'paused', 'disabled'];

/** `running` until its claimer reports; `orphaned` once the claimer's lease ended first (reclaimable); `pending` between record and claim. */
export type RunState = 'pending' | 'running' | 'succeeded' | 'failed' | 'orphaned';
export const RUN_STATES: readonly RunState[] = ['pending', 'running', 'succeeded', 'failed', 'orphaned'];
/** What a claimer reports when a run ends. */
export type RunOutcome = 'succeeded' | 'failed';
export const RUN_OUTCOMES: readonly RunOutcome[] = ['succeeded', 'failed'];

/** Defaults and bounds of a job's settings. */
export const JOB_DEFAULTS = {
  /** 0: not sharded. */
  shardCount: 0,
  /** How long finished run records are kept, ms (7 days). */
  retentionMs: 7 * 24 * 3600_000,
} as const;
export const MAX_SHARDS = 1024;
export const MIN_RETENTION_MS = 1000;
export const MAX_RETENTION_MS = 366 * 24 * 3600_000;

/** A job's stored settings (the job node's JSON). */
export interface JobSettings {
  readonly shardCount: number;
  readonly retentionMs: number;
  readonly state: JobState;
  /** The tombstone of a delete under way (deletion.ts): the job reads as absent. */
  readonly deleting?: { readonly fromVersion: number; readonly atMs: number };
}

/** A job as read: settings plus name and the config node's version (for compare-and-set). */
export interface JobInfo extends JobSettings {
  readonly name: string;
  /** The job node's data version: pass it back as `version` to update only this state. */
  readonly version: number;
  readonly createdAtMs: number;
}

/** What DELETE of a job answers: the job as it was and what went with it. */
export interface JobDeleted {
  readonly name: string;
  /** The version the job had when it was deleted. */
  readonly version: number;
  /** Run records deleted. */
  readonly runs: number;
  /** Runs that were running: their claims were deleted and their claimers' next call answers JOB_NOT_FOUND. */
  readonly runningRuns: number;
  /** Members removed (their next sync answers JOB_NOT_FOUND; their leases stay alive). */
  readonly members: number;
  /** True when this call finished a delete an earlier call had started (and was cut). */
  readonly resumed: boolean;
}

/** One earlier attempt of a run, kept in its record when a claimer's lease ended before it reported. */
export interface RunAttempt {
  readonly attempt: number;
  readonly claimer: string;
  readonly leaseId: string;
  readonly startedAtMs: number;
  /** When the gateway found the claim gone, ms since the epoch. */
  readonly endedAtMs: number;
  readonly state: 'orphaned';
}

/** The record of one trigger (or one shard of a trigger): kept `retentionMs` after it ends. */
export interface RunRecord {
  readonly job: string;
  /** `<trigger>` or `<trigger>@<shard>`: the run's URL segment. */
  readonly runId: string;
  readonly trigger: string;
  /** The shard item for per-shard runs, else null. */
  readonly shard: number | null;
  readonly state: RunState;
  /** Who runs (or ran) it: the name the claimer gave, else its lease id. */
  readonly claimer: string;
  readonly leaseId: string;
  /** 1 for the first claim, +1 for every reclaim after an orphaned attempt. */
  readonly attempt: number;
  readonly startedAtMs: number;
  readonly endedAtMs: number | null;
  /** The claimer's note on completion (at most 1024 characters). */
  readonly message: string;
  readonly previous: readonly RunAttempt[];
  /** The record node's data version (the fence of a completion). */
  readonly version: number;
}

/** The shard assignment of a job, stored in ZooKeeper with a generation that rises with every change. */
export interface Assignment {
  readonly job: string;
  /** Rises by one with every stored change; 0 before the first. */
  readonly generation: number;
  readonly shardCount: number;
  readonly state: JobState;
  /** Live members when computed, sorted. */
  readonly members: readonly string[];
  /** Items per member (AverageAllocation); empty lists while disabled. */
  readonly items: Readonly<Record<string, readonly number[]>>;
  readonly computedAtMs: number;
}

/** What one member may do now: the items it holds claims on (process these, and only these). */
export interface MemberView {
  readonly job: string;
  readonly memberId: string;
  readonly leaseId: string;
  readonly generation: number;
  readonly state: JobState;
  readonly shardCount: number;
  /** Assigned to this member and claimed by its lease: safe to process until the next sync. */
  readonly items: readonly number[];
  /** Assigned but still claimed by the previous owner (until it syncs or its lease ends): do not process yet. */
  readonly pending: readonly number[];
  /** Items released by this sync (no longer assigned). */
  readonly released: readonly number[];
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;
const TRIGGER = /^[A-Za-z0-9][A-Za-z0-9._:+-]{0,99}$/;

/** @throws INVALID_ARGUMENT naming `field` */
export function checkName(value: string, field: string): string {
  if (!NAME.test(value)) throw invalidArgument(field, 'must be 1-100 characters of A-Z a-z 0-9 . _ -, starting with a letter or digit');
  return value;
}

/** A trigger id: the trigger time as the crontab sees it (e.g. `2026-11-30T20:00Z` or epoch seconds). @throws INVALID_ARGUMENT */
export function checkTrigger(value: string): string {
  if (!TRIGGER.test(value)) throw invalidArgument('trigger', 'must be 1-100 characters of A-Z a-z 0-9 . _ : + -, starting with a letter or digit');
  return value;
}

/** @throws INVALID_ARGUMENT */
export function checkShard(shard: number, shardCount: number, field = 'shard'): number {
  if (!Number.isInteger(shard) || shard < 0 || shard >= Math.max(shardCount, 1) || shardCount === 0) {
    throw invalidArgument(field, shardCount === 0 ? 'the job is not sharded (shardCount 0)' : `must be an integer from 0 to ${shardCount - 1}`);
  }
  return shard;
}

/** The run id of a trigger, or of one shard of it. */
export function runIdOf(trigger: string, shard: number | null): string {
  return shard === null ? trigger : `${trigger}@${shard}`;
}

/** Parses a run id back into trigger and shard. @throws INVALID_ARGUMENT */
export function parseRunId(runId: string): { trigger: string; shard: number | null } {
  const at = runId.lastIndexOf('@');
  if (at < 0) return { trigger: checkTrigger(runId), shard: null };
  const shard = runId.slice(at + 1);
  if (!/^\d{1,4}$/.test(shard)) throw invalidArgument('runId', 'must be <trigger> or <trigger>@<shard>');
  return { trigger: checkTrigger(runId.slice(0, at)), shard: Number(shard) };
}

/** The znode layout of one job (see docs/jobs.md). */
export function jobPaths(job: string): {
  readonly job: string;
  readonly runs: string;
  run(runId: string): string;
  claim(runId: string): string;
  readonly members: string;
  member(id: string): string;
  readonly items: string;
  item(n: number): string;
  readonly assignment: string;
} {
  const base = joinPath(JOBS_ROOT, job);
  const runs = joinPath(base, 'runs');
  const members = joinPath(base, 'members');
  const items = joinPath(base, 'items');
  return {
    job: base,
    runs,
    run: (id) => joinPath(runs, id),
    claim: (id) => joinPath(joinPath(runs, id), 'claim'),
    members,
    member: (id) => joinPath(members, id),
    items,
    item: (n) => joinPath(items, String(n)),
    assignment: joinPath(base, 'assignment'),
  };
}
