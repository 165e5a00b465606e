/**
 * Deleting a job against a real ZooKeeper, over REST (every response checked against
 * openapi.yaml), gRPC (grpc-js) and the WebSocket call API's neighbour (REST and gRPC share the
 * core call): compare-and-delete, everything the job owned gone, live members and claimers told
 * JOB_NOT_FOUND with their leases alive, a waiting long-poll and a WatchAssignment stream answered
 * at once, a delete cut after its tombstone finished by the next one, and deletes racing claims
 * leaving neither a job node nor a claim behind.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ClientReadableStream, ServiceError } from '@grpc/grpc-js';
import { errorCode, grpcClient, type GrpcTestClient } from '../support/grpc-client.js';
import { eventually, zkAndGateway, type Problem } from '../support/test-gateway.js';
import { fourLetter } from '../support/zk-server.js';

let n = 0;
const jobName = (what: string): string => `${what}-${process.pid}-${++n}`;
const base = (job: string): string => `/zkgate/jobs/${job}`;

describe('jobs › delete', () => {
  const env = zkAndGateway({ tenants: [{ name: 'default', sessionTimeoutMs: 15_000 }] });
  const rest = () => env.g.rest;
  let grpc: GrpcTestClient;
  before(() => {
    grpc = grpcClient(env.g.running.grpcPort);
  });
  after(() => grpc?.close());

  const lease = async (): Promise<string> => ((await rest().json('POST', '/v1/leases', { ttlMs: 30_000 })).body as { id: string }).id;
  const put = (job: string, body: Record<string, unknown> = {}) => rest().json('PUT', `/v1/jobs/${job}`, body);
  const del = (job: string, query = '') => rest().json('DELETE', `/v1/jobs/${job}${query}`);
  const claim = (job: string, trigger: string, leaseId: string) => rest().json('POST', `/v1/jobs/${job}/runs`, { trigger, leaseId });
  /** The znode's existence through the znode API (HEAD-like GET): the truth in ZooKeeper. */
  const exists = async (path: string): Promise<boolean> => (await rest().json('GET', `/v1/nodes${path}`)).status === 200;
  const children = async (path: string): Promise<string[]> => {
    const r = await rest().json('GET', `/v1/children${path}`);
    return r.status === 200 ? (r.body as { children: { name: string }[] }).children.map((c) => c.name) : [];
  };
  const leaseState = async (id: string): Promise<string> => ((await rest().json('GET', `/v1/leases/${id}`)).body as { state: string }).state;

  /** A sharded job with a finished run, a running run and a joined member. */
  async function busyJob(what: string): Promise<{ job: string; version: number; runner: string; member: string }> {
    const job = jobName(what);
    const created = await put(job, { shardCount: 4 });
    assert.equal(created.status, 201);
    const runner = await lease();
    const member = await lease();
    assert.equal((await claim(job, 't1', runner)).status, 201);
    const done = await rest().json('POST', `/v1/jobs/${job}/runs/t1/complete`, { leaseId: runner, outcome: 'succeeded' });
    assert.equal(done.status, 200);
    assert.equal((await claim(job, 't2', runner)).status, 201);
    const joined = await rest().json('POST', `/v1/jobs/${job}/members`, { memberId: 'm1', leaseId: member });
    assert.equal(joined.status, 200, JSON.stringify(joined.body));
    const version = ((await rest().json('GET', `/v1/jobs/${job}`)).body as { version: number }).version;
    return { job, version, runner, member };
  }

  test('a deleted job is no longer followed: no watch of the gateway is left on its nodes, in ZooKeeper or in its count', async () => {
    /** The paths of the job that hold a data or exists watch in ZooKeeper (`wchp`: every such path, then its sessions). */
    const watchedPaths = async (job: string): Promise<string[]> =>
      (await fourLetter(env.zk.clientPort, 'wchp')).split('\n').filter((l) => l === base(job) || l.startsWith(`${base(job)}/`));
    const gatewayWatches = async (): Promise<number> => {
      const text = await (await fetch(`${env.g.base}/metrics`)).text();
      return [...text.matchAll(/^zkgate_watch_zk_watches\{tenant="default",kind="\w+"\} (\d+)$/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
    };
    const job = jobName('unfollow');
    const before = await gatewayWatches();
    assert.equal((await put(job, { shardCount: 2 })).status, 201);
    const member = await lease();
    assert.equal((await rest().json('POST', `/v1/jobs/${job}/members`, { memberId: 'm1', leaseId: member })).status, 200);
    assert.ok((await watchedPaths(job)).includes(base(job)), 'the job node is followed while the job lives');
    assert.equal((await del(job)).status, 200);
    await eventually(async () => (await watchedPaths(job)).length === 0, 10_000, `no watch left on the job's nodes (${(await watchedPaths(job)).join(' ')})`);
    await eventually(async () => (await gatewayWatches()) <= before, 10_000, `the gateway's watch count back to ${before} (${await gatewayWatches()})`);
    assert.equal(await leaseState(member), 'active');
  });

  test('a wrong version answers 412 BAD_VERSION and changes nothing', async () => {
    const { job, version, runner, member } = await busyJob('cas');
    const before = await children(`${base(job)}/runs`);
    const r = await del(job, `?version=${version + 1}`);
    assert.equal(r.status, 412);
    const p = r.body as Problem;
    assert.equal(p.code, 'BAD_VERSION');
    assert.equal(p.details?.version, version, 'details.version is the current one, as for PUT');
    assert.equal((await rest().json('GET', `/v1/jobs/${job}`)).status, 200);
    assert.deepEqual((await children(`${base(job)}/runs`)).sort(), before.sort());
    assert.equal((await rest().json('POST', `/v1/jobs/${job}/members/m1/sync`, { leaseId: member })).status, 200);
    assert.equal((await rest().json('POST', `/v1/jobs/${job}/runs/t2/complete`, { leaseId: runner, outcome: 'succeeded' })).status, 200);
    const bad = await del(job, '?version=x');
    assert.equal(bad.status, 400);
    assert.equal((await rest().json('GET', `/v1/jobs/${job}`)).status, 200);
  });

  test('removes everything the job owns; members and claimers get JOB_NOT_FOUND and keep their leases', async () => {
    const { job, version, runner, member } = await busyJob('all');
    const r = await del(job, `?version=${version}`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(r.body, { name: job, version, runs: 2, runningRuns: 1, members: 1, resumed: false });
    assert.equal(await exists(base(job)), false, 'the job node and its subtree are gone from ZooKeeper');
    const get = await rest().json('GET', `/v1/jobs/${job}`);
    assert.equal(get.status, 404);
    assert.equal((get.body as Problem).code, 'JOB_NOT_FOUND');
    for (const [what, call] of [
      ['sync', () => rest().json('POST', `/v1/jobs/${job}/members/m1/sync`, { leaseId: member })],
      ['complete', () => rest().json('POST', `/v1/jobs/${job}/runs/t2/complete`, { leaseId: runner, outcome: 'succeeded' })],
      ['claim', () => claim(job, 't3', runner)],
      ['assignment', () => rest().json('GET', `/v1/jobs/${job}/assignment`)],
      ['runs', () => rest().json('GET', `/v1/jobs/${job}/runs`)],
    ] as const) {
      const a = await call();
      assert.equal(a.status, 404, `${what}: ${JSON.stringify(a.body)}`);
      assert.equal((a.body as Problem).code, 'JOB_NOT_FOUND', what);
    }
    assert.equal(await exists(base(job)), false, 'no call brought a node of the job back');
    assert.equal(await leaseState(runner), 'active', "the claimer's lease was not ended by the deletion of its claim");
    assert.equal(await leaseState(member), 'active', "the member's lease was not ended by the deletion of its member node");
    const again = await del(job);
    assert.equal(again.status, 404, 'a second delete: already gone');
    assert.equal((again.body as Problem).code, 'JOB_NOT_FOUND');
    const fresh = await put(job);
    assert.equal(fresh.status, 201, 'a PUT afterwards creates a new job');
    assert.equal(((await rest().json('GET', `/v1/jobs/${job}/runs`)).body as { total: number }).total, 0);
    const rejoined = await rest().json('POST', `/v1/jobs/${job}/members`, { memberId: 'm1', leaseId: member });
    assert.equal(rejoined.status, 200, `the same lease joins the new job: ${JSON.stringify(rejoined.body)}`);
  });

  test("a member's long-poll on the assignment is answered JOB_NOT_FOUND when the job is deleted", async () => {
    const { job } = await busyJob('poll');
    const gen = ((await rest().json('GET', `/v1/jobs/${job}/assignment`)).body as { generation: number }).generation;
    const started = Date.now();
    const poll = rest().json('GET', `/v1/jobs/${job}/assignment?after=${gen}&wait=60000`);
    await new Promise((r) => setTimeout(r, 300)); // the poll is waiting (its answer is checked either way)
    assert.equal((await del(job)).status, 200);
    const answer = await poll;
    assert.equal(answer.status, 404, JSON.stringify(answer.body));
    assert.equal((answer.body as Problem).code, 'JOB_NOT_FOUND');
    assert.ok(Date.now() - started < 60_000, 'answered by the delete, not by the end of the wait');
  });

  test('gRPC Delete: ABORTED on a wrong version, then deleted; WatchAssignment ends with NOT_FOUND', async () => {
    const { job, version } = await busyJob('grpc');
    const md = grpc.metadata();
    const stream = (grpc.services.Jobs as unknown as { WatchAssignment(req: unknown, md: unknown): ClientReadableStream<unknown> }).WatchAssignment({ job }, md);
    let first: () => void = () => undefined;
    const got = new Promise<void>((r) => (first = r));
    stream.on('data', () => first());
    const ended = new Promise<ServiceError>((resolve) => stream.on('error', resolve));
    await got;
    await assert.rejects(grpc.unary('Jobs', 'Delete', { name: job, version: { value: version + 5 } }), (err: ServiceError) => {
      assert.equal(err.code, 10); // ABORTED
      assert.equal(errorCode(err), 'BAD_VERSION');
      return true;
    });
    assert.equal(await exists(base(job)), true);
    const out = await grpc.unary<{ name: string; runs: number; runningRuns: number; members: number; resumed: boolean }>('Jobs', 'Delete', { name: job, version: { value: version } });
    assert.deepEqual({ ...out }, { name: job, version, runs: 2, runningRuns: 1, members: 1, resumed: false });
    const err = await ended;
    assert.equal(err.code, 5, `the stream ends NOT_FOUND: ${err.message}`);
    assert.equal(errorCode(err), 'JOB_NOT_FOUND');
    await assert.rejects(grpc.unary('Jobs', 'Get', { name: job }), (e: ServiceError) => e.code === 5);
    await assert.rejects(grpc.unary('Jobs', 'Delete', { name: job }), (e: ServiceError) => e.code === 5 && errorCode(e) === 'JOB_NOT_FOUND');
  });

  test('a delete cut after its tombstone: the job reads as absent, the next DELETE finishes it (resumed)', async () => {
    const { job } = await busyJob('cut');
    // The state a delete leaves when cut right after step 1 (deletion.ts): the tombstone, nothing deleted yet.
    const node = await rest().json('GET', `/v1/nodes${base(job)}`);
    const settings = JSON.parse((node.body as { data: string }).data) as Record<string, unknown>;
    const stat = (node.body as { stat: { version: number } }).stat;
    const cut = await rest().json('PUT', `/v1/nodes${base(job)}`, { data: JSON.stringify({ ...settings, deleting: { fromVersion: stat.version, atMs: Date.now() } }), version: stat.version });
    assert.equal(cut.status, 200, JSON.stringify(cut.body));
    assert.equal((await rest().json('GET', `/v1/jobs/${job}`)).status, 404, 'a job being deleted reads as absent');
    assert.ok(!((await rest().json('GET', '/v1/jobs')).body as { jobs: { name: string }[] }).jobs.some((j) => j.name === job), 'and is not listed');
    const r = await del(job, `?version=${stat.version + 7}`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal((r.body as { resumed: boolean }).resumed, true);
    assert.equal((r.body as { version: number }).version, stat.version);
    assert.equal(await exists(base(job)), false);

    const { job: job2 } = await busyJob('cut-put');
    const node2 = await rest().json('GET', `/v1/nodes${base(job2)}`);
    const v2 = (node2.body as { stat: { version: number } }).stat.version;
    const s2 = JSON.parse((node2.body as { data: string }).data) as Record<string, unknown>;
    await rest().json('PUT', `/v1/nodes${base(job2)}`, { data: JSON.stringify({ ...s2, deleting: { fromVersion: v2, atMs: Date.now() } }), version: v2 });
    const created = await put(job2);
    assert.equal(created.status, 201, 'a PUT on a half-deleted job finishes the delete and creates it afresh');
    assert.equal(((await rest().json('GET', `/v1/jobs/${job2}/runs`)).body as { total: number }).total, 0);
  });

  test('deletes racing claims leave no job node and no claim behind; a claim told to run learns the job is gone', async () => {
    const leases = await Promise.all([1, 2, 3, 4].map(() => lease()));
    let ran = 0;
    let refused = 0;
    for (let round = 0; round < 12; round++) {
      const job = jobName('race');
      assert.equal((await put(job)).status, 201);
      const claims = leases.map((l, i) => claim(job, `t${i}`, l));
      if (round % 2) await new Promise((r) => setTimeout(r, round)); // vary where the delete lands
      const [deleted, ...answers] = await Promise.all([del(job), ...claims]);
      assert.equal(deleted.status, 200, JSON.stringify(deleted.body));
      for (const [i, a] of answers.entries()) {
        assert.ok(a.status === 201 || a.status === 404, `claim: ${a.status} ${JSON.stringify(a.body)}`);
        if (a.status === 404) {
          refused++;
          assert.equal((a.body as Problem).code, 'JOB_NOT_FOUND');
        } else {
          ran++;
          const c = await rest().json('POST', `/v1/jobs/${job}/runs/t${i}/complete`, { leaseId: leases[i], outcome: 'succeeded' });
          assert.equal(c.status, 404, 'its complete answers JOB_NOT_FOUND');
        }
      }
      assert.equal(await exists(base(job)), false, `round ${round}: no node of the job survives the delete`);
    }
    for (const l of leases) assert.equal(await leaseState(l), 'active');
    console.log(`delete racing claims: 12 rounds × 4 claims: ${ran} told to run before the delete, ${refused} refused JOB_NOT_FOUND`);
  });
});
