/**
 * Distributed jobs (seed 003: one crontab on N servers): run-once triggers with run records and
 * failover of orphaned runs, and sharded jobs whose items are spread over the live members by
 * Elastic-Job's AverageAllocation, fenced by lease-owned item claims. docs/jobs.md has the
 * layout and the safety argument.
 */
export { averageAllocation } from './allocation.js';
export { JobLeaseRelease, type JobRemoval } from './deletion.js';
export { JobStore, type JobUpdate } from './job-store.js';
export { RunService, type ClaimOptions, type ListRunsOptions } from './runs.js';
export { ShardService } from './sharding.js';
export {
  JOBS_ROOT,
  JOB_DEFAULTS,
  JOB_STATES,
  MAX_SHARDS,
  RUN_OUTCOMES,
  RUN_STATES,
  jobPaths,
  runIdOf,
  type Assignment,
  type JobDeleted,
  type JobInfo,
  type JobState,
  type MemberView,
  type RunOutcome,
  type RunRecord,
  type RunState,
} from './types.js';

import type { JobStore } from './job-store.js';
import type { RunService } from './runs.js';
import type { ShardService } from './sharding.js';

/** The job services a scope wraps. */
export interface JobServices {
  readonly store: JobStore;
  readonly runs: RunService;
  readonly shards: ShardService;
}
