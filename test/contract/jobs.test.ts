/**
 * Contract: jobs — run-once triggers, run records, sharded membership and sync, pause, the
 * job error codes and roles — behave the same over REST, gRPC (zkgate.v1.Jobs) and WebSocket
 * (`call` methods `Jobs.*`). The jobs caller below maps each transport onto REST's shapes.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { Metadata, credentials, loadPackageDefinition, type Client, type GrpcObject, type ServiceClientConstructor, type ServiceError } from '@grpc/grpc-js';
import { loadContract } from '../../src/api/grpc/server.js';
import { restClient } from '../support/openapi.js';
import { WsTestClient, type Json } from '../support/ws-client.js';
import { CallError, type Transport } from './clients.js';
import { KEYS, contractGateway, forEachTransport, rejectsWith, type KeyName } from './harness.js';

type Obj = Record<string, any>;
/** A Jobs method by its gRPC name, with REST-shaped params and result. */
type JobsCall = (method: string, params: Obj) => Promise<Obj>;

const { env, client } = contractGateway();
const closers: (() => void)[] = [];
after(() => closers.forEach((c) => c()));

const REST_ROUTES: Record<string, (p: Obj) => [string, string, Obj | undefined, Record<string, string>?]> = {
  Put: (p) => ['PUT', `/v1/jobs/${p.name}`, { shardCount: p.shardCount, retentionMs: p.retentionMs }],
  Get: (p) => ['GET', `/v1/jobs/${p.name}`, undefined],
  Delete: (p) => ['DELETE', `/v1/jobs/${p.name}`, undefined, p.version === undefined ? undefined : { version: String(p.version) }],
  SetState: (p) => ['POST', `/v1/jobs/${p.name}/${({ paused: 'pause', active: 'resume', disabled: 'disable' } as Obj)[p.state]}`, undefined],
  ClaimRun: (p) => ['POST', `/v1/jobs/${p.job}/runs`, { trigger: p.trigger, leaseId: p.leaseId, claimer: p.claimer, shard: p.shard }],
  CompleteRun: (p) => ['POST', `/v1/jobs/${p.job}/runs/${encodeURIComponent(p.runId)}/complete`, { leaseId: p.leaseId, outcome: p.outcome }],
  GetRun: (p) => ['GET', `/v1/jobs/${p.job}/runs/${encodeURIComponent(p.runId)}`, undefined],
  ListRuns: (p) => ['GET', `/v1/jobs/${p.job}/runs`, undefined],
  Join: (p) => ['POST', `/v1/jobs/${p.job}/members`, { memberId: p.memberId, leaseId: p.leaseId }],
  Sync: (p) => ['POST', `/v1/jobs/${p.job}/members/${p.memberId}/sync`, { leaseId: p.leaseId }],
  Leave: (p) => ['DELETE', `/v1/jobs/${p.job}/members/${p.memberId}`, undefined, { leaseId: p.leaseId }],
  GetAssignment: (p) => ['GET', `/v1/jobs/${p.job}/assignment`, undefined],
};

const defined = (o: Obj | undefined): Obj | undefined => o && Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));

/** gRPC answers in REST's shapes: wrappers unwrapped, item lists flattened. */
function fromGrpc(method: string, r: Obj): Obj {
  if ('shard' in r && 'runId' in r) return { ...r, shard: r.shard?.value ?? null, endedAtMs: r.endedAtMs ? Number(r.endedAtMs.value) : null };
  if (method === 'ListRuns') return { ...r, runs: (r.runs as Obj[]).map((x) => fromGrpc('GetRun', x)) };
  if (method === 'GetAssignment') return { ...r, items: Object.fromEntries(Object.entries(r.items as Obj).map(([m, l]) => [m, (l as Obj).items])) };
  return r;
}

async function jobsCaller(t: Transport, key: KeyName): Promise<JobsCall> {
  const apiKey = KEYS[key];
  if (t === 'rest') {
    const rest = restClient(`http://127.0.0.1:${env.gw.httpPort}`);
    return async (method, p) => {
      const [verb, url, body, query] = REST_ROUTES[method]!(p);
      const res = await rest.json(verb, url, defined(body), { headers: { authorization: `Bearer ${apiKey}` }, query });
      const b = (res.body ?? {}) as Obj;
      if (res.status >= 400) throw new CallError(b.code, b.details ?? {}, b.detail ?? '');
      return b;
    };
  }
  if (t === 'grpc') {
    const v1 = (loadPackageDefinition(loadContract()).zkgate as GrpcObject).v1 as GrpcObject;
    const jobs = new (v1.Jobs as ServiceClientConstructor)(`127.0.0.1:${env.gw.grpcPort}`, credentials.createInsecure()) as Client & Record<string, Function>;
    closers.push(() => jobs.close());
    const wrap = (method: string, p: Obj): Obj => ({
      ...p,
      ...(p.shardCount !== undefined ? { shardCount: { value: p.shardCount } } : {}),
      ...(p.shard !== undefined ? { shard: { value: p.shard } } : {}),
      ...(method === 'Delete' && p.version !== undefined ? { version: { value: p.version } } : {}),
    });
    return (method, p) =>
      new Promise((resolve, reject) => {
        const md = new Metadata();
        md.set('authorization', `Bearer ${apiKey}`);
        jobs[method]!.call(jobs, wrap(method, p), md, (err: ServiceError | null, res: Obj) => {
          if (!err) return resolve(fromGrpc(method, res));
          const code = err.metadata.get('zkgate-error-code')[0];
          const details = err.metadata.get('zkgate-error-details')[0];
          reject(new CallError(String(code), details ? (JSON.parse(String(details)) as Obj) : {}, err.details));
        });
      });
  }
  const ws = await WsTestClient.open(`ws://127.0.0.1:${env.gw.httpPort}/v1/ws`, { authorization: `Bearer ${apiKey}` });
  closers.push(() => ws.close());
  let seq = 0;
  return async (method, p) => {
    const id = `j${++seq}`;
    ws.send({ op: 'call', id, method: `Jobs.${method}`, params: defined(p) });
    const m: Json = await ws.take((x) => x.id === id && (x.type === 'result' || x.type === 'error'), 30_000);
    if (m.type === 'error') throw new CallError(m.code as string, (m.details ?? {}) as Obj, m.message as string);
    return m.result as Obj;
  };
}

/** Pushes of a job's assignment: REST long-poll, the gRPC WatchAssignment stream, a WebSocket subscription to its node. */
async function assignmentPushes(t: Transport, job: string): Promise<(after: number) => Promise<Obj>> {
  if (t === 'rest') {
    const rest = restClient(`http://127.0.0.1:${env.gw.httpPort}`);
    return async (after) => {
      const res = await rest.json('GET', `/v1/jobs/${job}/assignment`, undefined, { headers: { authorization: `Bearer ${KEYS.admin}` }, query: { after, wait: 10_000 } });
      assert.equal(res.headers.get('x-zkgate-unchanged'), null, 'a change, not the end of the wait');
      return res.body as Obj;
    };
  }
  const inbox: Obj[] = [];
  if (t === 'grpc') {
    const v1 = (loadPackageDefinition(loadContract()).zkgate as GrpcObject).v1 as GrpcObject;
    const jobs = new (v1.Jobs as ServiceClientConstructor)(`127.0.0.1:${env.gw.grpcPort}`, credentials.createInsecure()) as Client & Record<string, Function>;
    const md = new Metadata();
    md.set('authorization', `Bearer ${KEYS.admin}`);
    const stream = jobs.WatchAssignment!.call(jobs, { job }, md) as NodeJS.EventEmitter & { cancel(): void };
    stream.on('data', (m: Obj) => inbox.push(fromGrpc('GetAssignment', m)));
    stream.on('error', () => undefined); // cancelled at the end
    closers.push(() => {
      stream.cancel();
      jobs.close();
    });
  } else {
    const ws = await WsTestClient.open(`ws://127.0.0.1:${env.gw.httpPort}/v1/ws`, { authorization: `Bearer ${KEYS.admin}` });
    closers.push(() => ws.close());
    ws.send({ op: 'subscribe', id: 'a', path: `/zkgate/jobs/${job}/assignment`, kind: 'data' });
    void (async () => {
      for (;;) {
        const m = await ws.event('a', undefined, 60_000).catch(() => null);
        if (!m) return;
        inbox.push(JSON.parse((m.event as Obj).data as string) as Obj);
      }
    })();
  }
  return async (after) => {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const i = inbox.findIndex((a) => Number(a.generation) > after);
      if (i >= 0) return inbox[i]!;
      if (Date.now() > deadline) throw new Error(`no assignment after generation ${after}; got ${JSON.stringify(inbox)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
}

forEachTransport((t) => {
  const job = (what: string): string => `c-${t}-${what}-${Math.random().toString(36).slice(2, 8)}`;

  test('jobs › one claimer runs a trigger; others get RUN_CLAIMED with the claimer; completion is fenced', async () => {
    const c = await client(t);
    const j = await jobsCaller(t, 'admin');
    const name = job('once');
    assert.equal((await j('Put', { name })).state, 'active');
    const [a, b] = [await c.grant(30_000), await c.grant(30_000)];
    const run = await j('ClaimRun', { job: name, trigger: '2026-11-30T02:00Z', leaseId: a.id, claimer: 'A' });
    assert.deepEqual([run.state, run.attempt, run.claimer, run.shard, run.endedAtMs], ['running', 1, 'A', null, null]);
    const busy = await rejectsWith(j('ClaimRun', { job: name, trigger: '2026-11-30T02:00Z', leaseId: b.id, claimer: 'B' }), 'RUN_CLAIMED');
    assert.deepEqual([busy.details.claimer, busy.details.state], ['A', 'running']);
    await rejectsWith(j('CompleteRun', { job: name, runId: run.runId, leaseId: b.id, outcome: 'succeeded' }), 'RUN_NOT_HELD');
    assert.equal((await j('CompleteRun', { job: name, runId: run.runId, leaseId: a.id, outcome: 'succeeded' })).state, 'succeeded');
    const done = await rejectsWith(j('ClaimRun', { job: name, trigger: '2026-11-30T02:00Z', leaseId: b.id }), 'RUN_CLAIMED');
    assert.equal(done.details.state, 'succeeded');
    const rec = await j('GetRun', { job: name, runId: run.runId });
    assert.equal(rec.state, 'succeeded');
    assert.ok(typeof rec.endedAtMs === 'number');
    assert.equal((await j('ListRuns', { job: name })).total, 1);
    assert.equal((await rejectsWith(j('ClaimRun', { job: name, trigger: 'a/b', leaseId: a.id }), 'INVALID_ARGUMENT')).details.field, 'trigger');
    await rejectsWith(j('ClaimRun', { job: `${name}-none`, trigger: 't', leaseId: a.id }), 'JOB_NOT_FOUND');
    await j('SetState', { name, state: 'paused' });
    await rejectsWith(j('ClaimRun', { job: name, trigger: 't2', leaseId: a.id }), 'JOB_NOT_ACTIVE');
    await c.revoke(a.id);
    await c.revoke(b.id);
  });

  test('jobs › members get AverageAllocation items, handed over only after a sync; shard runs need the item', async () => {
    const c = await client(t);
    const j = await jobsCaller(t, 'admin');
    const name = job('shard');
    await j('Put', { name, shardCount: 4 });
    const [a, b] = [await c.grant(30_000), await c.grant(30_000)];
    assert.deepEqual((await j('Join', { job: name, memberId: 'a', leaseId: a.id })).items, [0, 1, 2, 3]);
    const vb = await j('Join', { job: name, memberId: 'b', leaseId: b.id });
    assert.deepEqual([vb.items, vb.pending], [[], [2, 3]]);
    await rejectsWith(j('Join', { job: name, memberId: 'b', leaseId: a.id }), 'INVALID_ARGUMENT');
    const va = await j('Sync', { job: name, memberId: 'a', leaseId: a.id });
    assert.deepEqual([va.items, va.released], [[0, 1], [2, 3]]);
    assert.deepEqual((await j('Sync', { job: name, memberId: 'b', leaseId: b.id })).items, [2, 3]);
    const g = await j('GetAssignment', { job: name });
    assert.deepEqual([g.members, g.items], [['a', 'b'], { a: [0, 1], b: [2, 3] }]);
    await rejectsWith(j('Sync', { job: name, memberId: 'a', leaseId: b.id }), 'NOT_JOB_MEMBER');
    await rejectsWith(j('ClaimRun', { job: name, trigger: 't', shard: 0, leaseId: b.id }), 'SHARD_NOT_HELD');
    assert.equal((await j('ClaimRun', { job: name, trigger: 't', shard: 2, leaseId: b.id })).runId, 't@2');
    assert.deepEqual(await j('Leave', { job: name, memberId: 'b', leaseId: b.id }), { left: true, released: [2, 3] });
    assert.deepEqual((await j('Sync', { job: name, memberId: 'a', leaseId: a.id })).items, [0, 1, 2, 3]);
    await c.revoke(a.id);
    await c.revoke(b.id);
  });

  test('jobs › members are pushed every new assignment: a join, a leave, a pause', async () => {
    const c = await client(t);
    const j = await jobsCaller(t, 'admin');
    const name = job('push');
    await j('Put', { name, shardCount: 3 });
    const next = await assignmentPushes(t, name);
    const g0 = Number((await j('GetAssignment', { job: name })).generation);
    const l = await c.grant(30_000);
    await j('Join', { job: name, memberId: 'm1', leaseId: l.id });
    const joined = await next(g0);
    assert.deepEqual([joined.members, joined.items], [['m1'], { m1: [0, 1, 2] }]);
    await j('SetState', { name, state: 'paused' });
    const paused = await next(Number(joined.generation));
    assert.equal(paused.state, 'paused');
    await c.revoke(l.id); // the member's lease ends: it leaves
    const left = await next(Number(paused.generation));
    assert.deepEqual([left.members, left.items], [[], {}]);
  });

  test('jobs › Delete: BAD_VERSION changes nothing; then the job, its runs and members are gone and its members told JOB_NOT_FOUND', async () => {
    const c = await client(t);
    const j = await jobsCaller(t, 'admin');
    const name = job('delete');
    const v = Number((await j('Put', { name, shardCount: 2 })).version);
    const l = await c.grant(30_000);
    await j('Join', { job: name, memberId: 'm', leaseId: l.id });
    await j('ClaimRun', { job: name, trigger: 't', leaseId: l.id });
    assert.equal((await rejectsWith(j('Delete', { name, version: v + 3 }), 'BAD_VERSION')).details.version, v);
    assert.equal((await j('Get', { name })).name, name, 'nothing changed');
    await rejectsWith((await jobsCaller(t, 'read'))('Delete', { name }), 'PERMISSION_DENIED');
    const out = await j('Delete', { name, version: v });
    assert.deepEqual([out.name, out.version, out.runs, out.runningRuns, out.members, out.resumed], [name, v, 1, 1, 1, false]);
    await rejectsWith(j('Get', { name }), 'JOB_NOT_FOUND');
    await rejectsWith(j('Sync', { job: name, memberId: 'm', leaseId: l.id }), 'JOB_NOT_FOUND');
    await rejectsWith(j('CompleteRun', { job: name, runId: 't', leaseId: l.id, outcome: 'succeeded' }), 'JOB_NOT_FOUND');
    await rejectsWith(j('Delete', { name }), 'JOB_NOT_FOUND');
    await c.revoke(l.id);
  });

  test('jobs › a reader may read but not claim; a key scoped elsewhere may do neither', async () => {
    const admin = await jobsCaller(t, 'admin');
    const name = job('roles');
    await admin('Put', { name });
    const reader = await jobsCaller(t, 'read');
    assert.equal((await reader('Get', { name })).name, name);
    await rejectsWith(reader('Put', { name, shardCount: 3 }), 'PERMISSION_DENIED');
    await rejectsWith(reader('ClaimRun', { job: name, trigger: 't', leaseId: 'gw-x.00' }), 'PERMISSION_DENIED');
    const scoped = await jobsCaller(t, 'scoped');
    await rejectsWith(scoped('Get', { name }), 'PERMISSION_DENIED');
    assert.equal((await admin('Get', { name })).shardCount, 0, 'nothing changed');
  });
});
