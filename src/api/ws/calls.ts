/**
 * WebSocket request/response calls: `{op:"call", id, method, params}` answered by
 * `{type:"result", id, method, result}` or an `error` with the same `id`. Methods are the gRPC
 * RPC names (`Znodes.Get`, `Locks.Acquire`…), params their request fields in camelCase, and
 * results the REST JSON bodies (openapi.yaml), so the three transports share one vocabulary.
 * Each method validates, makes one call on the caller's core scope (which authorizes) and maps.
 */
import { z } from 'zod';
import { claimOutcomeJson, deliveryJson, queueInspectionJson } from '../queue-json.js';
import {
  CREATE_MODES,
  DELIVERY_MODES,
  JOB_STATES,
  LOCK_FLAVOURS,
  RW_MODES,
  RUN_OUTCOMES,
  RUN_STATES,
  invalidArgument,
  type CreateMode,
  type DeliveryMode,
  type JobState,
  type LockFlavour,
  type RunOutcome,
  type RunState,
  type RwMode,
  type Scope,
} from '../../core/index.js';
import { decodeData, electionListingJson, encodeData, leaderStateJson, leadershipJson, leaseListingJson, lockInspectionJson, lockListingJson, semaphoreInspectionJson, rwInspectionJson } from '../json.js';

/** What a call runs with: the socket's caller (the core facade), and a signal aborted when the socket closes. */
export interface CallContext {
  readonly scope: Scope;
  readonly signal: AbortSignal;
}

const path = z.string();
const data = z.string().optional();
const encoding = z.enum(['utf8', 'base64']).optional();
const int = z.number().int().optional();
const leaseId = z.string().min(1);
const node = z.string().min(1);
const flavour = z.enum(LOCK_FLAVOURS as [LockFlavour, ...LockFlavour[]]).optional();
const listing = { path, limit: int };
const str = z.string().optional();
/** A registry instance's settable fields: their values are checked by core, which names the bad one. */
const anyValue = z.unknown().optional();
const instanceFields = { address: anyValue, port: anyValue, sslPort: anyValue, payload: anyValue, uriSpec: anyValue, enabled: anyValue };
const job = z.string();
const member = { job, memberId: z.string(), leaseId };
const optBuffer = (d: string | undefined, e: string | undefined): Buffer | undefined => (d === undefined ? undefined : decodeData(d, e));

/** A method: its params schema and its body (one core call through the scope). */
interface Method<S extends z.ZodType> {
  readonly params: S;
  run(c: CallContext, p: z.output<S>): Promise<unknown> | unknown;
}
const method = <S extends z.ZodType>(params: S, run: (c: CallContext, p: z.output<S>) => Promise<unknown> | unknown): Method<S> => ({ params, run });
const o = <T extends z.ZodRawShape>(shape: T) => z.object(shape).strict();

export const WS_METHODS = {
  'Znodes.Get': method(o({ path, encoding, sync: z.boolean().optional(), cache: z.boolean().optional() }), async (c, p) => {
    const n = await c.scope.nodes.get(p.path, { sync: p.sync, cache: p.cache });
    return { path: n.path, ...encodeData(n.data, p.encoding), stat: n.stat, source: n.source };
  }),
  'Znodes.Exists': method(o({ path }), async (c, p) => {
    const stat = await c.scope.nodes.exists(p.path);
    return { exists: stat !== null, stat };
  }),
  'Znodes.Children': method(o({ path, withStats: z.boolean().optional(), limit: int, cursor: z.string().optional() }), (c, p) => c.scope.nodes.children(p.path, p)),
  'Znodes.Tree': method(o({ path, limit: int, depth: int, withStats: z.boolean().optional() }), (c, p) => c.scope.nodes.tree(p.path, p)),
  'Znodes.Create': method(
    o({ path, data, encoding, mode: z.enum(CREATE_MODES as [CreateMode, ...CreateMode[]]).optional(), ttlMs: int, createParents: z.boolean().optional(), leaseId: leaseId.optional() }),
    async (c, p) => ({ path: await c.scope.nodes.create(p.path, decodeData(p.data, p.encoding), p) }),
  ),
  'Znodes.Set': method(o({ path, data, encoding, version: int }), async (c, p) => ({
    path: p.path,
    stat: await c.scope.nodes.set(p.path, decodeData(p.data, p.encoding), p),
  })),
  'Znodes.Delete': method(o({ path, version: int, recursive: z.boolean().optional() }), async (c, p) => {
    await c.scope.nodes.delete(p.path, p);
    return {};
  }),
  'Leases.Grant': method(o({ ttlMs: z.number().int() }), async (c, p) => (await c.scope.leases.grant(p.ttlMs)).info()),
  'Leases.TimeToLive': method(o({ id: leaseId }), async (c, p) => (await c.scope.leases.get(p.id)).info()),
  'Leases.KeepAlive': method(o({ id: leaseId }), async (c, p) => (await c.scope.leases.keepAlive(p.id)).info()),
  'Leases.Revoke': method(o({ id: leaseId }), async (c, p) => (await c.scope.leases.revoke(p.id)).info()),
  'Leases.List': method(o({ includeEnded: z.boolean().optional() }), async (c, p) => leaseListingJson(await c.scope.leases.listing(p))),
  'Locks.Acquire': method(o({ path, leaseId, waitMs: int, flavour, data, encoding }), (c, p) =>
    c.scope.locks.acquire(p.path, p.leaseId, { flavour: p.flavour, waitMs: p.waitMs, data: optBuffer(p.data, p.encoding), signal: c.signal }),
  ),
  'Locks.Release': method(o({ path, leaseId, node }), (c, p) => c.scope.locks.release(p.path, p.leaseId, p.node)),
  'Locks.Inspect': method(o({ path, flavour }), async (c, p) => lockInspectionJson(await c.scope.locks.inspect(p.path, p.flavour))),
  'Locks.List': method(o(listing), async (c, p) => lockListingJson(await c.scope.locks.list(p.path, p))),
  'Elections.Campaign': method(o({ path, leaseId, value: data, encoding, waitMs: int }), async (c, p) =>
    leadershipJson(await c.scope.elections.campaign(p.path, p.leaseId, optBuffer(p.value, p.encoding), { waitMs: p.waitMs, signal: c.signal })),
  ),
  'Elections.Leader': method(o({ path }), async (c, p) => leaderStateJson(await c.scope.elections.leader(p.path))),
  'Elections.Proclaim': method(o({ path, leaseId, node, value: z.string(), encoding }), async (c, p) =>
    leadershipJson(await c.scope.elections.proclaim(p.path, p.leaseId, p.node, decodeData(p.value, p.encoding))),
  ),
  'Elections.Resign': method(o({ path, leaseId, node }), async (c, p) => {
    const out = await c.scope.elections.resign(p.path, p.leaseId, p.node);
    return { resigned: out.left, reason: out.reason, node: out.node, leaseId: out.leaseId, leaseState: out.leaseState };
  }),
  'Elections.List': method(o(listing), async (c, p) => electionListingJson(await c.scope.elections.list(p.path, p))),
  'Queues.Put': method(o({ path, data: z.string(), encoding }), (c, p) => c.scope.queues.put(p.path, decodeData(p.data, p.encoding))),
  // A take with waitMs is the push: the result comes when an item arrives (closing the socket gives up the wait).
  'Queues.Take': method(o({ path, mode: z.enum(DELIVERY_MODES as [DeliveryMode, ...DeliveryMode[]]).optional(), leaseId: leaseId.optional(), waitMs: int, encoding }), async (c, p) =>
    deliveryJson(await c.scope.queues.take(p.path, { mode: p.mode, leaseId: p.leaseId, waitMs: p.waitMs, signal: c.signal }), p.encoding),
  ),
  'Queues.Ack': method(o({ path, leaseId, item: node }), async (c, p) => claimOutcomeJson(await c.scope.queues.ack(p.path, p.leaseId, p.item), 'acked')),
  'Queues.Release': method(o({ path, leaseId, item: node }), async (c, p) => claimOutcomeJson(await c.scope.queues.release(p.path, p.leaseId, p.item), 'released')),
  'Barriers.Set': method(o({ path }), (c, p) => c.scope.barriers.set(p.path)),
  'Barriers.Remove': method(o({ path }), (c, p) => c.scope.barriers.remove(p.path)),
  'Barriers.Wait': method(o({ path, waitMs: int }), (c, p) => c.scope.barriers.wait(p.path, { waitMs: p.waitMs, signal: c.signal })),
  'Barriers.Enter': method(o({ path, leaseId, members: z.number().int(), waitMs: int, data, encoding }), (c, p) =>
    c.scope.barriers.enter(p.path, p.leaseId, p.members, { waitMs: p.waitMs, data: optBuffer(p.data, p.encoding), signal: c.signal }),
  ),
  'Barriers.Leave': method(o({ path, leaseId, node, waitMs: int }), (c, p) => c.scope.barriers.leave(p.path, p.leaseId, p.node, { waitMs: p.waitMs, signal: c.signal })),
  'Barriers.InspectDouble': method(o({ path }), (c, p) => c.scope.barriers.inspectDouble(p.path)),
  'Queues.Inspect': method(o({ path, encoding }), async (c, p) => queueInspectionJson(await c.scope.queues.inspect(p.path), p.encoding)),
  'Semaphores.Acquire': method(o({ path, leaseId, permits: int, maxPermits: int, countPath: z.string().optional(), waitMs: int, data, encoding }), (c, p) => {
    const { data: d, encoding: e, leaseId: id, ...rest } = p;
    return c.scope.semaphores.acquire(p.path, id, { ...rest, data: optBuffer(d, e), signal: c.signal });
  }),
  'Semaphores.Release': method(o({ path, leaseId, node: node.optional() }), (c, p) => c.scope.semaphores.release(p.path, p.leaseId, p.node)),
  'ReadWriteLocks.Acquire': method(o({ path, leaseId, mode: z.enum(RW_MODES as [RwMode, ...RwMode[]]), waitMs: int, data, encoding }), (c, p) =>
    c.scope.rwLocks.acquire(p.path, p.leaseId, { mode: p.mode, waitMs: p.waitMs, data: optBuffer(p.data, p.encoding), signal: c.signal }),
  ),
  'ReadWriteLocks.Release': method(o({ path, leaseId, node }), (c, p) => c.scope.rwLocks.release(p.path, p.leaseId, p.node)),
  'ReadWriteLocks.Inspect': method(o({ path }), async (c, p) => rwInspectionJson(await c.scope.rwLocks.inspect(p.path))),
  'Semaphores.Inspect': method(o({ path, maxPermits: int, countPath: z.string().optional() }), async (c, p) => semaphoreInspectionJson(await c.scope.semaphores.inspect(p.path, p))),
  'Jobs.Put': method(o({ name: job, shardCount: int, retentionMs: int, version: int }), async (c, p) => (await c.scope.jobs.put(p.name, p)).job),
  'Jobs.Get': method(o({ name: job }), (c, p) => c.scope.jobs.get(p.name)),
  'Jobs.Delete': method(o({ name: job, version: int }), (c, p) => c.scope.jobs.delete(p.name, { version: p.version })),
  'Jobs.List': method(o({}), async (c) => ({ jobs: await c.scope.jobs.list() })),
  'Jobs.SetState': method(o({ name: job, state: z.enum(JOB_STATES as [JobState, ...JobState[]]) }), (c, p) => c.scope.jobs.setState(p.name, p.state)),
  'Jobs.ClaimRun': method(o({ job, trigger: z.string(), leaseId, claimer: z.string().optional(), shard: int }), (c, p) =>
    c.scope.jobs.claimRun(p.job, p.trigger, p.leaseId, { shard: p.shard, claimer: p.claimer, signal: c.signal }),
  ),
  'Jobs.CompleteRun': method(o({ job, runId: z.string(), leaseId, outcome: z.enum(RUN_OUTCOMES as [RunOutcome, ...RunOutcome[]]), message: z.string().optional() }), (c, p) =>
    c.scope.jobs.completeRun(p.job, p.runId, p.leaseId, p.outcome, p.message),
  ),
  'Jobs.GetRun': method(o({ job, runId: z.string() }), (c, p) => c.scope.jobs.getRun(p.job, p.runId)),
  'Jobs.ListRuns': method(o({ job, limit: int, state: z.enum(RUN_STATES as [RunState, ...RunState[]]).optional() }), async (c, p) => ({ job: p.job, ...(await c.scope.jobs.listRuns(p.job, p)) })),
  'Jobs.Join': method(o(member), (c, p) => c.scope.jobs.join(p.job, p.memberId, p.leaseId)),
  'Jobs.Leave': method(o(member), (c, p) => c.scope.jobs.leave(p.job, p.memberId, p.leaseId)),
  'Jobs.Sync': method(o(member), (c, p) => c.scope.jobs.sync(p.job, p.memberId, p.leaseId)),
  'Jobs.GetAssignment': method(o({ job }), async (c, p) => (await c.scope.jobs.assignment(p.job)).assignment),
  'Registry.Register': method(o({ base: str, service: str, leaseId, id: str, replace: z.boolean().optional(), ...instanceFields }), (c, p) => {
    const { base, service, leaseId: l, id, replace, ...fields } = p;
    return c.scope.registry.register(base, service ?? '', { leaseId: l, id, replace, fields, signal: c.signal });
  }),
  'Registry.Update': method(o({ base: str, service: str, id: str, leaseId, ...instanceFields }), (c, p) => {
    const { base, service, id, leaseId: l, ...fields } = p;
    return c.scope.registry.update(base, service ?? '', id ?? '', l, fields);
  }),
  'Registry.Deregister': method(o({ base: str, service: str, id: str, leaseId }), (c, p) => c.scope.registry.deregister(p.base, p.service ?? '', p.id ?? '', p.leaseId)),
  'Registry.ListServices': method(o({ base: str }), (c, p) => c.scope.registry.services(p.base)),
  'Registry.ListInstances': method(o({ base: str, service: str, sync: z.boolean().optional(), cache: z.boolean().optional() }), (c, p) =>
    c.scope.registry.instances(p.base, p.service ?? '', { sync: p.sync, cache: p.cache }),
  ),
  'Registry.GetInstance': method(o({ base: str, service: str, id: str }), (c, p) => c.scope.registry.instance(p.base, p.service ?? '', p.id ?? '')),
  'Registry.Pick': method(o({ base: str, service: str, strategy: str, caller: str, sync: z.boolean().optional(), cache: z.boolean().optional() }), (c, p) =>
    c.scope.registry.pick(p.base, p.service ?? '', p.strategy, p.caller, { sync: p.sync, cache: p.cache }),
  ),
} as const;

export type WsMethod = keyof typeof WS_METHODS;
export const WS_METHOD_NAMES = Object.keys(WS_METHODS) as WsMethod[];

/**
 * Runs `method` with raw `params`.
 * @throws INVALID_ARGUMENT (unknown method, bad params naming the field), and whatever the core call throws
 */
export async function runCall(c: CallContext, name: string, params: unknown): Promise<unknown> {
  const m = (WS_METHODS as Record<string, Method<z.ZodType>>)[name];
  if (!m) throw invalidArgument('method', `unknown method ${JSON.stringify(name)}; one of ${WS_METHOD_NAMES.join(', ')}`);
  const r = m.params.safeParse(params ?? {});
  if (!r.success) {
    const issue = r.error.issues[0];
    throw invalidArgument(issue?.path.join('.') || 'params', issue?.message ?? 'invalid'); // the field name, as REST names it
  }
  return m.run(c, r.data);
}
