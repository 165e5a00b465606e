/**
 * A job's configuration node (`<JOBS_ROOT>/<job>`, persistent, JSON settings) and the small
 * ZooKeeper helpers the run and shard services share: JSON reads, creating a persistent path
 * with its parents, compare-and-set writes.
 */
import type { Stat, ZkClient } from '../../zk/index.js';
import { ZkgateError, invalidArgument, toZkgateError } from '../errors.js';
import type { Tenant } from '../tenants/tenant.js';
import { removeJobTree, type JobLeaseRelease } from './deletion.js';
import {
  JOB_DEFAULTS,
  JOB_STATES,
  JOBS_ROOT,
  MAX_RETENTION_MS,
  MAX_SHARDS,
  MIN_RETENTION_MS,
  checkName,
  jobPaths,
  type JobDeleted,
  type JobInfo,
  type JobSettings,
  type JobState,
} from './types.js';

/** What a PUT of a job may set; absent fields keep their value (or take the default on create). */
export interface JobUpdate {
  readonly shardCount?: number;
  readonly retentionMs?: number;
  /** Compare-and-set: update only if the job node's version is still this (-1: must not exist yet). */
  readonly version?: number;
}

/** Parses a JSON node; anything unreadable is INTERNAL naming the node (someone wrote it by hand). */
export function parseJson<T>(data: Buffer, path: string): T {
  try {
    return JSON.parse(data.toString('utf8')) as T;
  } catch (err) {
    throw new ZkgateError('INTERNAL', `${path}: not a JSON document written by zkgate`, { path }, { cause: err });
  }
}

/** Reads a JSON node, or null when it does not exist. */
export async function readJson<T>(client: ZkClient, path: string): Promise<{ value: T; stat: Stat } | null> {
  try {
    const { data, stat } = await client.get(path);
    return { value: parseJson<T>(data, path), stat };
  } catch (err) {
    if (toZkgateError(err, path).code === 'NO_NODE') return null;
    throw toZkgateError(err, path);
  }
}

/**
 * Creates a persistent node (and its missing parents); an existing one is left as it is. Returns
 * true if it created `path`. With `within`, parents are created below `within` only: a missing
 * `within` is NO_NODE (a job's nodes never bring back a deleted job's node).
 */
export async function ensurePersistent(client: ZkClient, path: string, data: Buffer = Buffer.alloc(0), within?: string): Promise<boolean> {
  for (let attempt = 0; ; attempt++) {
    try {
      await client.create(path, data, 'persistent');
      return true;
    } catch (err) {
      const e = toZkgateError(err, path);
      if (e.code === 'NODE_EXISTS') return false;
      if (e.code !== 'NO_NODE' || attempt > 0) throw e;
      const parent = path.slice(0, path.lastIndexOf('/')) || '/';
      if (within !== undefined && !parent.startsWith(`${within}/`)) throw e;
      if (parent !== '/') await ensurePersistent(client, parent, Buffer.alloc(0), within);
    }
  }
}

/** `ensurePersistent` inside the job's node, which it never creates. @throws JOB_NOT_FOUND when the job node is gone */
export async function ensureInJob(client: ZkClient, job: string, path: string, data?: Buffer): Promise<boolean> {
  try {
    return await ensurePersistent(client, path, data, jobPaths(job).job);
  } catch (err) {
    if (toZkgateError(err).code === 'NO_NODE') throw jobNotFound(job);
    throw err;
  }
}

function jobNotFound(name: string): ZkgateError {
  return new ZkgateError('JOB_NOT_FOUND', `job ${name}: no such job (create it with PUT /v1/jobs/${name})`, { job: name });
}

/** The children of `path`, or none when it does not exist. */
export async function childrenOf(client: ZkClient, path: string): Promise<string[]> {
  try {
    return (await client.children(path)).children;
  } catch (err) {
    if (toZkgateError(err).code === 'NO_NODE') return [];
    throw toZkgateError(err, path);
  }
}

/** Validates a JobUpdate. @throws INVALID_ARGUMENT naming the field */
function checkUpdate(u: JobUpdate): void {
  if (u.shardCount !== undefined && !(Number.isInteger(u.shardCount) && u.shardCount >= 0 && u.shardCount <= MAX_SHARDS)) {
    throw invalidArgument('shardCount', `must be an integer from 0 to ${MAX_SHARDS}`);
  }
  if (u.retentionMs !== undefined && !(Number.isInteger(u.retentionMs) && u.retentionMs >= MIN_RETENTION_MS && u.retentionMs <= MAX_RETENTION_MS)) {
    throw invalidArgument('retentionMs', `must be an integer from ${MIN_RETENTION_MS} to ${MAX_RETENTION_MS}`);
  }
  if (u.version !== undefined && !(Number.isInteger(u.version) && u.version >= -1)) throw invalidArgument('version', 'must be an integer >= -1');
}

function badVersion(name: string, current: number, expected: number): ZkgateError {
  return new ZkgateError('BAD_VERSION', `job ${name}: version is ${current}, not ${expected}`, { job: name, version: current });
}

function info(name: string, s: JobSettings, stat: Stat): JobInfo {
  return { name, shardCount: s.shardCount, retentionMs: s.retentionMs, state: s.state, version: stat.version, createdAtMs: stat.ctimeMs };
}

/** Job configuration nodes of one tenant. */
export class JobStore {
  /** @param release what a delete does to this instance's leases that own nodes of the job */
  constructor(readonly release: JobLeaseRelease) {}

  /** The job's settings; a job being deleted (tombstone) reads as absent. @throws JOB_NOT_FOUND, INVALID_ARGUMENT (name), UNAVAILABLE */
  async get(tenant: Tenant, name: string): Promise<JobInfo> {
    checkName(name, 'job');
    const r = await this.assertLive(tenant.client(), name);
    return info(name, r.value, r.stat);
  }

  /** Reads the job node now (after the caller's writes): JOB_NOT_FOUND when it is gone or being deleted. */
  async assertLive(client: ZkClient, name: string): Promise<{ value: JobSettings; stat: Stat }> {
    const r = await readJson<JobSettings>(client, jobPaths(name).job);
    if (!r || r.value.deleting) throw jobNotFound(name);
    return r;
  }

  /**
   * Deletes the job: its settings, run records and claims, members, item claims and assignment
   * (deletion.ts has the order and why each state in between is safe). With `version`, only if
   * the job's version is still that (compare-and-delete). A delete that finds the job already
   * being deleted (an earlier delete was cut) finishes it, whatever `version` says.
   * @throws JOB_NOT_FOUND, BAD_VERSION (`details.version`: the current one), INVALID_ARGUMENT, UNAVAILABLE (cut: DELETE again finishes it)
   */
  async delete(tenant: Tenant, name: string, opts: { version?: number } = {}): Promise<JobDeleted> {
    checkName(name, 'job');
    const v = opts.version;
    if (v !== undefined && !(Number.isInteger(v) && v >= 0)) throw invalidArgument('version', 'must be an integer >= 0');
    const client = tenant.client();
    for (;;) {
      const current = await readJson<JobSettings>(client, jobPaths(name).job);
      if (!current) throw jobNotFound(name);
      let version = current.value.deleting?.fromVersion ?? current.stat.version;
      const resumed = current.value.deleting !== undefined;
      if (!resumed) {
        if (v !== undefined && v !== current.stat.version) throw badVersion(name, current.stat.version, v);
        const tombstone: JobSettings = { ...current.value, deleting: { fromVersion: current.stat.version, atMs: Date.now() } };
        if (!(await this.cas(client, jobPaths(name).job, tombstone, current.stat.version))) {
          if (v !== undefined) throw new ZkgateError('BAD_VERSION', `job ${name}: changed meanwhile`, { job: name });
          continue;
        }
        version = current.stat.version;
      }
      this.release.disown(tenant, name);
      const removed = await removeJobTree(client, name);
      return { name, version, ...removed, resumed };
    }
  }

  /**
   * Creates the job, or updates its shard count / retention. Resolves with the job and whether it was created.
   * @throws INVALID_ARGUMENT, BAD_VERSION (`version` given and no longer current), UNAVAILABLE
   */
  async put(tenant: Tenant, name: string, update: JobUpdate): Promise<{ job: JobInfo; created: boolean }> {
    checkName(name, 'job');
    checkUpdate(update);
    const client = tenant.client();
    const p = jobPaths(name);
    for (;;) {
      const current = await readJson<JobSettings>(client, p.job);
      if (current?.value.deleting) {
        // An earlier delete was cut: finish it, then create the job afresh.
        this.release.disown(tenant, name);
        await removeJobTree(client, name);
        continue;
      }
      if (!current) {
        if (update.version !== undefined && update.version !== -1) throw new ZkgateError('BAD_VERSION', `job ${name}: does not exist (version ${update.version} expected)`, { job: name });
        const settings: JobSettings = {
          shardCount: update.shardCount ?? JOB_DEFAULTS.shardCount,
          retentionMs: update.retentionMs ?? JOB_DEFAULTS.retentionMs,
          state: 'active',
        };
        await ensurePersistent(client, JOBS_ROOT);
        if (!(await ensurePersistent(client, p.job, Buffer.from(JSON.stringify(settings))))) continue; // created meanwhile: update it
        for (const child of [p.runs, p.members, p.items]) await ensureInJob(client, name, child);
        return { job: await this.get(tenant, name), created: true };
      }
      if (update.version !== undefined && update.version !== current.stat.version) throw badVersion(name, current.stat.version, update.version);
      const next: JobSettings = { ...current.value, shardCount: update.shardCount ?? current.value.shardCount, retentionMs: update.retentionMs ?? current.value.retentionMs };
      const stat = await this.cas(client, p.job, next, current.stat.version);
      if (stat) return { job: info(name, next, stat), created: false };
      if (update.version !== undefined) throw new ZkgateError('BAD_VERSION', `job ${name}: changed meanwhile`, { job: name });
    }
  }

  /** Moves the job to `state` (pause, resume, disable). Idempotent. @throws JOB_NOT_FOUND, UNAVAILABLE */
  async setState(tenant: Tenant, name: string, state: JobState): Promise<JobInfo> {
    checkName(name, 'job');
    if (!JOB_STATES.includes(state)) throw invalidArgument('state', `must be one of ${JOB_STATES.join(', ')}`);
    const client = tenant.client();
    for (;;) {
      const job = await this.get(tenant, name);
      if (job.state === state) return job;
      const next: JobSettings = { shardCount: job.shardCount, retentionMs: job.retentionMs, state };
      const stat = await this.cas(client, jobPaths(name).job, next, job.version);
      if (stat) return info(name, next, stat);
    }
  }

  /** The tenant's job names, sorted. @throws UNAVAILABLE */
  async list(tenant: Tenant): Promise<string[]> {
    return (await childrenOf(tenant.client(), JOBS_ROOT)).sort();
  }

  /** Writes JSON if the version still matches; null when it lost the race. */
  async cas(client: ZkClient, path: string, value: unknown, version: number): Promise<Stat | null> {
    try {
      return await client.set(path, Buffer.from(JSON.stringify(value)), version);
    } catch (err) {
      const e = toZkgateError(err, path);
      if (e.code === 'BAD_VERSION') return null;
      throw e;
    }
  }
}
