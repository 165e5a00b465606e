/** gRPC `zkgate.v1.Jobs`: each RPC makes one call on the caller's scope (which authorizes) and maps the answer. */
import type { ServerWritableStream, UntypedServiceImplementation } from '@grpc/grpc-js';
import { JOB_STATES, RUN_OUTCOMES, RUN_STATES, invalidArgument, type Assignment, type Gateway, type JobInfo, type JobState, type RunOutcome, type RunRecord, type RunState } from '../../core/index.js';
import { callSignal, failStream, scopeOf, unaryWith, writeWhenReady, type CallLike } from './call-context.js';
import { checkDecoded } from './malformed.js';
import { optionalString, unwrap, type Wrapped } from './proto-values.js';

interface JobRef {
  job: string;
}
interface PutRequest {
  name: string;
  shardCount: Wrapped<number>;
  retentionMs: Wrapped<number>;
  version: Wrapped<number>;
}
interface ClaimRequest extends JobRef {
  trigger: string;
  leaseId: string;
  claimer: string;
  shard: Wrapped<number>;
}
interface CompleteRequest extends JobRef {
  runId: string;
  leaseId: string;
  outcome: string;
  message: string;
}
interface MemberRequest extends JobRef {
  memberId: string;
  leaseId: string;
}
type Msg = Record<string, unknown>;

/** A proto3 string enum value checked against the core's values. @throws INVALID_ARGUMENT */
function oneOf<T extends string>(value: string, allowed: readonly T[], field: string): T {
  if (!(allowed as readonly string[]).includes(value)) throw invalidArgument(field, `must be one of ${allowed.join(', ')}`);
  return value as T;
}

const jobMessage = (j: JobInfo): Msg => ({ ...j });
const runMessage = (r: RunRecord): Msg => ({ ...r, shard: r.shard === null ? null : { value: r.shard }, endedAtMs: r.endedAtMs === null ? null : { value: r.endedAtMs } });
const assignmentMessage = (a: Assignment): Msg => ({ ...a, items: Object.fromEntries(Object.entries(a.items).map(([m, items]) => [m, { items }])) });

/** The Jobs service implementation over `gw`. */
export function jobsService(gw: Gateway): UntypedServiceImplementation {
  const unary = unaryWith(gw.logger);
  const jobs = (call: CallLike) => scopeOf(gw, call).jobs;
  return {
    Put: unary(async (req: PutRequest, call) => {
      const { job } = await jobs(call).put(req.name, { shardCount: unwrap(req.shardCount), retentionMs: unwrap(req.retentionMs), version: unwrap(req.version) });
      return jobMessage(job);
    }),
    Get: unary(async (req: { name: string }, call) => jobMessage(await jobs(call).get(req.name))),
    Delete: unary(async (req: { name: string; version: Wrapped<number> }, call) => jobs(call).delete(req.name, { version: unwrap(req.version) })),
    List: unary(async (_req: object, call) => ({ jobs: (await jobs(call).list()).map(jobMessage) })),
    SetState: unary(async (req: { name: string; state: string }, call) => jobMessage(await jobs(call).setState(req.name, oneOf<JobState>(req.state, JOB_STATES, 'state')))),
    ClaimRun: unary(async (req: ClaimRequest, call) =>
      runMessage(
        await jobs(call).claimRun(req.job, req.trigger, req.leaseId, {
          shard: unwrap(req.shard),
          claimer: optionalString(req.claimer),
          signal: callSignal(call as CallLike),
        }),
      ),
    ),
    CompleteRun: unary(async (req: CompleteRequest, call) =>
      runMessage(await jobs(call).completeRun(req.job, req.runId, req.leaseId, oneOf<RunOutcome>(req.outcome, RUN_OUTCOMES, 'outcome'), req.message)),
    ),
    GetRun: unary(async (req: JobRef & { runId: string }, call) => runMessage(await jobs(call).getRun(req.job, req.runId))),
    ListRuns: unary(async (req: JobRef & { limit: number; state: string }, call) => {
      const state = req.state ? oneOf<RunState>(req.state, RUN_STATES, 'state') : undefined;
      const r = await jobs(call).listRuns(req.job, { limit: req.limit || undefined, state });
      return { job: req.job, runs: r.runs.map(runMessage), total: r.total };
    }),
    Join: unary(async (req: MemberRequest, call) => jobs(call).join(req.job, req.memberId, req.leaseId)),
    Leave: unary(async (req: MemberRequest, call) => jobs(call).leave(req.job, req.memberId, req.leaseId)),
    Sync: unary(async (req: MemberRequest, call) => jobs(call).sync(req.job, req.memberId, req.leaseId)),
    GetAssignment: unary(async (req: JobRef, call) => assignmentMessage((await jobs(call).assignment(req.job)).assignment)),
    WatchAssignment: (call: ServerWritableStream<JobRef, Msg>) => void watchAssignment(gw, call),
  };
}

/** Streams the assignment on its own connection (a unit of the tenant's connections) until the client cancels. */
async function watchAssignment(gw: Gateway, call: ServerWritableStream<JobRef, Msg>): Promise<void> {
  let close = (): void => undefined;
  try {
    const req = checkDecoded(call.request);
    const scope = scopeOf(gw, call);
    const conn = scope.connect();
    close = () => conn.close();
    call.on('cancelled', close);
    const ac = new AbortController();
    call.on('cancelled', () => ac.abort());
    const stream = await scope.jobs.watchAssignment(conn, req.job, AbortSignal.any([ac.signal, gw.drainSignal]));
    for await (const a of stream) await writeWhenReady(call, assignmentMessage(a));
    if (!call.cancelled) call.end();
  } catch (err) {
    if (!call.cancelled) failStream(call, err, gw.logger);
  } finally {
    close();
  }
}
