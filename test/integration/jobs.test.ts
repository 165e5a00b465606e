/**
 * Jobs over REST against a real ZooKeeper: run-once triggers (one winner among concurrent
 * claimers, records, completion fencing, orphaned runs reclaimed after the claimer's lease ends,
 * retention), sharded jobs (AverageAllocation, generations, item claims handed over only after
 * the previous member's sync, pause/resume/disable, long-poll), and bad input refused with
 * nothing changed. Every response is checked against openapi.yaml.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { contract } from '../support/openapi.js';
import { eventually, startTestGateway, zkAndGateway, type Problem } from '../support/test-gateway.js';

interface Run {
  runId: string;
  state: string;
  claimer: string;
  leaseId: string;
  attempt: number;
  endedAtMs: number | null;
  previous: { attempt: number; claimer: string; state: string }[];
}
interface View {
  generation: number;
  items: number[];
  pending: number[];
  released: number[];
  state: string;
}
interface Assignment {
  generation: number;
  members: string[];
  items: Record<string, number[]>;
  state: string;
}

let n = 0;
const jobName = (what: string): string => `${what}-${process.pid}-${++n}`;

describe('jobs against a real ZooKeeper', () => {
  const env = zkAndGateway({ tenants: [{ name: 'default', sessionTimeoutMs: 15_000 }] }); // a loaded CI machine must not suspend the session mid-test
  const rest = () => env.g.rest;
  const lease = async (ttlMs = 30_000): Promise<string> => ((await rest().json('POST', '/v1/leases', { ttlMs })).body as { id: string }).id;
  const put = (job: string, body: Record<string, unknown> = {}) => rest().json('PUT', `/v1/jobs/${job}`, body);
  const claim = (job: string, body: Record<string, unknown>) => rest().json('POST', `/v1/jobs/${job}/runs`, body);
  const complete = (job: string, runId: string, body: Record<string, unknown>) => rest().json('POST', `/v1/jobs/${job}/runs/${encodeURIComponent(runId)}/complete`, body);
  const getRun = (job: string, runId: string) => rest().json('GET', `/v1/jobs/${job}/runs/${encodeURIComponent(runId)}`);
  const join = async (job: string, memberId: string, leaseId: string): Promise<View> => {
    const r = await rest().json('POST', `/v1/jobs/${job}/members`, { memberId, leaseId });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body as View;
  };
  const sync = async (job: string, memberId: string, leaseId: string): Promise<View> => {
    const r = await rest().json('POST', `/v1/jobs/${job}/members/${memberId}/sync`, { leaseId });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body as View;
  };
  const assignment = async (job: string): Promise<Assignment> => (await rest().json('GET', `/v1/jobs/${job}/assignment`)).body as Assignment;

  test('run-once › of concurrent claimers exactly one is told to run, the others get the claimer', async () => {
    const job = jobName('once');
    assert.equal((await put(job)).status, 201);
    assert.equal((await put(job)).status, 200, 'PUT again is idempotent');
    const leases = await Promise.all([1, 2, 3, 4, 5].map(() => lease()));
    const answers = await Promise.all(leases.map((l, i) => claim(job, { trigger: '2026-11-30T20:00Z', leaseId: l, claimer: `host${i}` })));
    const winners = answers.filter((a) => a.status === 201);
    assert.equal(winners.length, 1, JSON.stringify(answers.map((a) => a.status)));
    const won = winners[0]!.body as Run;
    assert.equal(won.state, 'running');
    assert.equal(won.attempt, 1);
    for (const a of answers.filter((x) => x.status !== 201)) {
      assert.equal(a.status, 409);
      const p = a.body as Problem;
      assert.equal(p.code, 'RUN_CLAIMED');
      assert.equal(p.details?.claimer, won.claimer);
      assert.equal(p.details?.state, 'running');
    }
    const again = await claim(job, { trigger: '2026-11-30T20:00Z', leaseId: won.leaseId, claimer: won.claimer });
    assert.equal(again.status, 201, `the running claimer posting again gets its own run (retry-safe): ${JSON.stringify(again.body)}`);

    const other = leases.find((l) => l !== won.leaseId)!;
    const stolen = await complete(job, won.runId, { leaseId: other, outcome: 'succeeded' });
    assert.equal(stolen.status, 409);
    assert.equal((stolen.body as Problem).code, 'RUN_NOT_HELD');

    const done = await complete(job, won.runId, { leaseId: won.leaseId, outcome: 'succeeded', message: 'sent 42 mails' });
    assert.equal(done.status, 200);
    assert.equal((done.body as Run).state, 'succeeded');
    assert.equal((await complete(job, won.runId, { leaseId: won.leaseId, outcome: 'succeeded' })).status, 200, 'completion is idempotent');
    const late = await claim(job, { trigger: '2026-11-30T20:00Z', leaseId: other });
    assert.equal(late.status, 409);
    assert.equal((late.body as Problem).details?.state, 'succeeded');

    const listed = (await rest().json('GET', `/v1/jobs/${job}/runs`)).body as { runs: Run[]; total: number };
    assert.equal(listed.total, 1);
    assert.equal(listed.runs[0]!.state, 'succeeded');
    const info = (await rest().json('GET', `/v1/leases/${won.leaseId}`)).body as { owned: unknown[] };
    assert.deepEqual(info.owned, [], 'the claim is gone with the completion');
  });

  test('run-once › a run whose claimer lease ends is orphaned and reclaimed, and the late report is refused', async () => {
    const job = jobName('orphan');
    await put(job);
    const a = await lease(1000);
    const first = (await claim(job, { trigger: '100', leaseId: a, claimer: 'A' })).body as Run;
    assert.equal(first.state, 'running');
    const b = await lease();
    const busy = await claim(job, { trigger: '100', leaseId: b, claimer: 'B' });
    assert.equal(busy.status, 409, 'never two attempts at once');
    // A stops keeping its lease alive (crashed): the claim goes with the lease.
    await eventually(async () => ((await getRun(job, '100')).body as Run).state === 'orphaned', 10_000, 'run orphaned');
    const second = await claim(job, { trigger: '100', leaseId: b, claimer: 'B' });
    assert.equal(second.status, 201);
    const rec = second.body as Run;
    assert.equal(rec.attempt, 2);
    assert.equal(rec.claimer, 'B');
    assert.deepEqual(rec.previous.map((p) => [p.attempt, p.claimer, p.state]), [[1, 'A', 'orphaned']]);
    const lateA = await complete(job, '100', { leaseId: a, outcome: 'succeeded' });
    assert.equal(lateA.status, 410, 'the ended lease cannot report');
    assert.equal(((await getRun(job, '100')).body as Run).state, 'running');
    assert.equal((await complete(job, '100', { leaseId: b, outcome: 'failed', message: 'disk full' })).status, 200);
    assert.equal(((await getRun(job, '100')).body as Run).state, 'failed');
  });

  test('run-once › records are deleted retentionMs after they end', async () => {
    const job = jobName('retention');
    await put(job, { retentionMs: 1000 });
    const l = await lease();
    await claim(job, { trigger: '1', leaseId: l });
    await complete(job, '1', { leaseId: l, outcome: 'succeeded' });
    assert.equal((await getRun(job, '1')).status, 200);
    await eventually(
      async () => {
        await rest().json('GET', `/v1/jobs/${job}/runs`); // a listing prunes (at most once per retentionMs)
        return (await getRun(job, '1')).status === 404;
      },
      10_000,
      'record pruned',
    );
  });

  test('jobs › paused and disabled jobs refuse runs; resume runs again', async () => {
    const job = jobName('pause');
    await put(job);
    const l = await lease();
    assert.equal(((await rest().json('POST', `/v1/jobs/${job}/pause`)).body as { state: string }).state, 'paused');
    const refused = await claim(job, { trigger: 't1', leaseId: l });
    assert.equal(refused.status, 409);
    assert.equal((refused.body as Problem).code, 'JOB_NOT_ACTIVE');
    assert.equal((await rest().json('POST', `/v1/jobs/${job}/disable`)).status, 200);
    assert.equal((await claim(job, { trigger: 't1', leaseId: l })).status, 409);
    assert.equal(((await rest().json('POST', `/v1/jobs/${job}/resume`)).body as { state: string }).state, 'active');
    assert.equal((await claim(job, { trigger: 't1', leaseId: l })).status, 201);
    const jobs = (await rest().json('GET', '/v1/jobs')).body as { jobs: { name: string }[] };
    assert.ok(jobs.jobs.some((j) => j.name === job));
  });

  test('sharding › items follow AverageAllocation over sorted members and move only after the previous holder syncs', async () => {
    const job = jobName('shard');
    await put(job, { shardCount: 8 });
    const [la, lb, lc] = await Promise.all([lease(), lease(), lease()]);
    const a1 = await join(job, 'a', la);
    assert.deepEqual(a1.items, [0, 1, 2, 3, 4, 5, 6, 7]);
    const b1 = await join(job, 'b', lb);
    const g2 = await assignment(job);
    assert.deepEqual(g2.items, { a: [0, 1, 2, 3], b: [4, 5, 6, 7] });
    assert.deepEqual(b1.items, [], 'a still holds every item: nothing is handed over before a syncs');
    assert.deepEqual(b1.pending, [4, 5, 6, 7]);
    const a2 = await sync(job, 'a', la);
    assert.deepEqual([a2.items, a2.released], [[0, 1, 2, 3], [4, 5, 6, 7]]);
    assert.deepEqual((await sync(job, 'b', lb)).items, [4, 5, 6, 7]);
    await join(job, 'c', lc);
    const g3 = await assignment(job);
    assert.ok(g3.generation > g2.generation, 'a new generation for every change');
    assert.deepEqual(g3.items, { a: [0, 1, 6], b: [2, 3, 7], c: [4, 5] }, "Elastic-Job's AverageAllocation: remainder to the first members");
    // Until everyone has synced, no item is claimed by two members.
    const views = [await sync(job, 'c', lc), await sync(job, 'b', lb), await sync(job, 'a', la), await sync(job, 'c', lc), await sync(job, 'b', lb)];
    const claimed = new Map<number, string>();
    for (const [id, v] of [['a', views[2]!], ['b', views[4]!], ['c', views[3]!]] as const) {
      for (const item of v.items) {
        assert.equal(claimed.get(item), undefined, `item ${item} held once`);
        claimed.set(item, id);
      }
    }
    assert.equal(claimed.size, 8, 'every item is covered once all synced');
    // A member whose lease is revoked loses its items; the others take them over.
    await rest().json('DELETE', `/v1/leases/${lc}`);
    const g4 = await eventually(async () => {
      const g = await assignment(job);
      return g.members.length === 2 ? g : null;
    }, 10_000, 'c removed from the assignment');
    assert.deepEqual(g4.items, { a: [0, 1, 2, 3], b: [4, 5, 6, 7] });
    const after = [await sync(job, 'a', la), await sync(job, 'b', lb), await sync(job, 'a', la)];
    assert.deepEqual([after[2]!.items, after[1]!.items], [[0, 1, 2, 3], [4, 5, 6, 7]]);
    // Only the item's holder may claim a shard run.
    const stolen = await claim(job, { trigger: 't', shard: 0, leaseId: lb });
    assert.equal((stolen.body as Problem).code, 'SHARD_NOT_HELD');
    const mine = await claim(job, { trigger: 't', shard: 0, leaseId: la, claimer: 'a' });
    assert.equal(mine.status, 201);
    assert.equal((mine.body as Run).runId, 't@0');
    // Leaving releases at once.
    const left = await rest().json('DELETE', `/v1/jobs/${job}/members/a`, undefined, { query: { leaseId: la } });
    assert.deepEqual(left.body, { left: true, released: [0, 1, 2, 3] });
    assert.deepEqual((await sync(job, 'b', lb)).items, [0, 1, 2, 3, 4, 5, 6, 7]);
  });

  test('sharding › disable empties every member, pause keeps items; the long-poll answers the next generation', async () => {
    const job = jobName('shard-state');
    await put(job, { shardCount: 3 });
    const l = await lease();
    const v = await join(job, 'm', l);
    assert.deepEqual(v.items, [0, 1, 2]);
    const g = v.generation;
    const unchanged = await rest().json('GET', `/v1/jobs/${job}/assignment`, undefined, { query: { after: String(g), wait: '200' } });
    assert.equal(unchanged.headers.get('x-zkgate-unchanged'), 'true');
    const poll = rest().json('GET', `/v1/jobs/${job}/assignment`, undefined, { query: { after: String(g), wait: '20000' } });
    await rest().json('POST', `/v1/jobs/${job}/disable`);
    const next = (await poll).body as Assignment;
    assert.equal(next.generation, g + 1);
    assert.equal(next.state, 'disabled');
    assert.deepEqual(next.items, { m: [] });
    const off = await sync(job, 'm', l);
    assert.deepEqual([off.items, off.released, off.state], [[], [0, 1, 2], 'disabled']);
    await rest().json('POST', `/v1/jobs/${job}/resume`);
    await rest().json('POST', `/v1/jobs/${job}/pause`);
    const paused = await sync(job, 'm', l);
    assert.deepEqual([paused.items, paused.state], [[0, 1, 2], 'paused']);
    const other = await lease();
    const dup = await rest().json('POST', `/v1/jobs/${job}/members`, { memberId: 'm', leaseId: other });
    assert.equal((dup.body as Problem).code, 'NODE_EXISTS');
  });

  test('jobs › bad input is refused with a clear error and changes nothing', async () => {
    const job = jobName('bad');
    await put(job, { shardCount: 2 });
    const l = await lease();
    const cases: [string, string, string, Record<string, unknown> | undefined, string, string?][] = [
      ['PUT', `/v1/jobs/${job}`, '', { shardCount: -1 }, 'INVALID_ARGUMENT', 'shardCount'],
      ['PUT', `/v1/jobs/${job}`, '', { shardCount: 2000 }, 'INVALID_ARGUMENT', 'shardCount'],
      ['PUT', `/v1/jobs/${job}`, '', { retentionMs: 5 }, 'INVALID_ARGUMENT', 'retentionMs'],
      ['PUT', `/v1/jobs/${job}`, '', { nope: 1 }, 'INVALID_ARGUMENT'],
      ['PUT', '/v1/jobs/.x', '', {}, 'INVALID_ARGUMENT', 'job'],
      ['PUT', '/v1/jobs/a%20b', '', {}, 'INVALID_ARGUMENT', 'job'],
      ['POST', `/v1/jobs/${job}/runs`, '', { trigger: '', leaseId: l }, 'INVALID_ARGUMENT', 'trigger'],
      ['POST', `/v1/jobs/${job}/runs`, '', { trigger: 'a/b', leaseId: l }, 'INVALID_ARGUMENT', 'trigger'],
      ['POST', `/v1/jobs/${job}/runs`, '', { trigger: 'x' }, 'INVALID_ARGUMENT', 'leaseId'],
      ['POST', `/v1/jobs/${job}/runs`, '', { trigger: 'x', leaseId: l, shard: 2 }, 'INVALID_ARGUMENT', 'shard'],
      ['POST', `/v1/jobs/${job}/runs`, '', { trigger: 'x', leaseId: l, claimer: '\n' }, 'INVALID_ARGUMENT', 'claimer'],
      ['POST', `/v1/jobs/${job}/runs`, '', { trigger: 'x', leaseId: l, shard: 1 }, 'SHARD_NOT_HELD'],
      ['POST', `/v1/jobs/${job}/runs`, '', { trigger: 'x', leaseId: 'nope' }, 'LEASE_NOT_FOUND'],
      ['POST', `/v1/jobs/${job}/runs/x/complete`, '', { leaseId: l, outcome: 'maybe' }, 'INVALID_ARGUMENT', 'outcome'],
      ['POST', `/v1/jobs/${job}/runs/x/complete`, '', { leaseId: l, outcome: 'failed' }, 'NOT_FOUND'],
      ['POST', `/v1/jobs/${job}/members`, '', { memberId: 'a/b', leaseId: l }, 'INVALID_ARGUMENT', 'memberId'],
      ['POST', `/v1/jobs/${job}/members/m1/sync`, '', { leaseId: l }, 'NOT_JOB_MEMBER'],
      ['GET', `/v1/jobs/${job}/runs`, '?limit=0', undefined, 'INVALID_ARGUMENT', 'limit'],
      ['GET', `/v1/jobs/${job}/runs`, '?state=done', undefined, 'INVALID_ARGUMENT'],
      ['GET', `/v1/jobs/${job}/assignment`, '?wait=100', undefined, 'INVALID_ARGUMENT', 'after'],
      ['POST', '/v1/jobs/no-such-job/runs', '', { trigger: 'x', leaseId: l }, 'JOB_NOT_FOUND'],
      ['GET', '/v1/jobs/no-such-job', '', undefined, 'JOB_NOT_FOUND'],
    ];
    for (const [method, path, query, body, code, field] of cases) {
      const r = await rest().json(method, path + query, body);
      const p = r.body as Problem;
      assert.equal(p.code, code, `${method} ${path}${query} ${JSON.stringify(body)} → ${r.status} ${JSON.stringify(p)}`);
      if (field) assert.equal(p.details?.field, field, `${method} ${path} names ${field}`);
    }
    const after = (await rest().json('GET', `/v1/jobs/${job}`)).body as { shardCount: number; version: number };
    assert.equal(after.shardCount, 2);
    assert.equal(after.version, 0, 'the job was never changed');
    assert.equal(((await rest().json('GET', `/v1/jobs/${job}/runs`)).body as { total: number }).total, 0, 'no run record was made');
    assert.equal((await rest().json('GET', '/v1/jobs/no-such-job')).status, 404, 'nothing was created');
    assert.deepEqual(((await rest().json('GET', `/v1/leases/${l}`)).body as { owned: unknown[] }).owned, [], 'the lease owns nothing');
    const wrong = await rest().json('DELETE', `/v1/jobs/${job}/runs`);
    assert.equal(wrong.status, 405);
  });

  test('jobs › every route answers a wrong method 405, a bad name 400, an unknown job 404 and an ended lease 410', async () => {
    const job = jobName('routes');
    await put(job);
    const l = await lease();
    const ended = await lease();
    await rest().json('DELETE', `/v1/leases/${ended}`);
    const routes: [string, string, Record<string, unknown> | undefined][] = [
      ['PUT', '', {}],
      ['POST', '/pause', undefined],
      ['POST', '/resume', undefined],
      ['POST', '/disable', undefined],
      ['GET', '/runs', undefined],
      ['POST', '/runs', { trigger: 't', leaseId: l }],
      ['GET', '/runs/t', undefined],
      ['POST', '/runs/t/complete', { leaseId: l, outcome: 'failed' }],
      ['POST', '/members', { memberId: 'm', leaseId: l }],
      ['DELETE', '/members/m?leaseId=' + l, undefined],
      ['POST', '/members/m/sync', { leaseId: l }],
      ['GET', '/assignment', undefined],
      ['GET', '', undefined],
      ['DELETE', '', undefined],
    ];
    for (const [method, tail, body] of routes) {
      const wrong = await rest().json('PATCH', `/v1/jobs/${job}${tail.split('?')[0]}`, {});
      assert.equal(wrong.status, 405, `PATCH ${tail}`);
      const bad = await rest().json(method, `/v1/jobs/.x${tail}`, body);
      assert.equal(bad.status, 400, `${method} ${tail} with a bad job name`);
      if (method === 'PUT') continue; // a PUT creates it
      const none = await rest().json(method, `/v1/jobs/${job}-none${tail}`, body);
      assert.equal((none.body as Problem).code, 'JOB_NOT_FOUND', `${method} ${tail} on an unknown job`);
    }
    for (const [method, tail] of [['POST', '/runs'], ['POST', '/members'], ['POST', '/members/m/sync']] as const) {
      const body = tail === '/runs' ? { trigger: 't', leaseId: ended } : tail === '/members' ? { memberId: 'm', leaseId: ended } : { leaseId: ended };
      const gone = await rest().json(method, `/v1/jobs/${job}${tail}`, body);
      assert.equal(gone.status, 410, `${method} ${tail} with an ended lease`);
    }
    assert.equal((await rest().json('PATCH', '/v1/jobs', {})).status, 405);
    assert.equal((await rest().json('GET', '/v1/jobs', undefined, { headers: { 'zkgate-tenant': 'nope' } })).status, 404);
    assert.equal((await rest().json('PUT', `/v1/jobs/${job}`, {}, { headers: { 'zkgate-tenant': 'nope' } })).status, 404);
    const stale = await rest().json('PUT', `/v1/jobs/${job}`, { shardCount: 2, version: 99 });
    assert.equal((stale.body as Problem).code, 'BAD_VERSION');
    const staleDelete = await rest().json('DELETE', `/v1/jobs/${job}?version=99`);
    assert.equal((staleDelete.body as Problem).code, 'BAD_VERSION');
    assert.equal((await rest().json('DELETE', `/v1/jobs/${job}`)).status, 200); // jobs-delete.test.ts covers what it does
  });

  test('sharding › two gateway instances recomputing at once: one write per generation, both read the same assignment', async () => {
    const job = jobName('two-gw');
    await put(job, { shardCount: 8 });
    const other = await startTestGateway(env.zk.connectString, { tenants: [{ name: 'default', sessionTimeoutMs: 15_000 }] });
    try {
      const gws = [rest(), other.rest];
      const leases = await Promise.all([0, 1, 2, 3, 4, 5].map(async (i) => ((await gws[i % 2]!.json('POST', '/v1/leases', { ttlMs: 30_000 })).body as { id: string }).id));
      // Six members join at once, alternately through each instance: both recompute concurrently.
      const joins = await Promise.all(leases.map((l, i) => gws[i % 2]!.json('POST', `/v1/jobs/${job}/members`, { memberId: `m${i}`, leaseId: l })));
      assert.deepEqual(joins.map((j) => j.status), [200, 200, 200, 200, 200, 200]);
      const [a, b] = await Promise.all(gws.map(async (g) => (await g.json('GET', `/v1/jobs/${job}/assignment`)).body as Assignment));
      assert.deepEqual(a, b, 'every instance reads the same answer');
      assert.equal(a.members.length, 6);
      // The assignment node is written only by compare-and-set with generation + 1: its data
      // version (0 at the first generation) is generation - 1, so no two writers won one generation.
      const node = (await rest().json('GET', `/v1/nodes/zkgate/jobs/${job}/assignment`)).body as { stat: { version: number } };
      assert.equal(node.stat.version, a.generation - 1);
      for (let i = 0; i < 6; i++) await gws[i % 2]!.json('DELETE', `/v1/leases/${leases[i]}`);
    } finally {
      await other.close();
    }
  });

  test('coverage › every documented /v1/jobs response this file can produce was produced and checked', (t) => {
    const documented = contract().documented().filter((k) => /^\S+ \/v1\/jobs[/ ]/.test(k));
    // Auth, limits, transport and server failures are the security, fuzz and fault suites' to produce.
    const missing = documented.filter((k) => !rest().covered.has(k) && !/ (401|403|413|415|429|499|500|503)$/.test(k));
    t.diagnostic(`covered ${[...rest().covered].filter((k) => k.includes('/v1/jobs')).length} of ${documented.length} documented jobs responses`);
    assert.deepEqual(missing, []);
  });
});
