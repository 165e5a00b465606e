/**
 * A job deleted through one instance while its members' and claimers' leases live on others
 * (docs/jobs.md "Deleting a job", "Live parties"): three real `zkgate serve` processes on one
 * ZooKeeper, with `tenant` placement (every lease is the tenant home's, and the delete goes
 * through an instance holding none of them) and with `local` placement (one lease on each
 * instance, the deleting one included). What the docs promise: the leases stay active (the
 * deletion of their member and claim nodes does not end them as lost: the home disowns the job's
 * nodes when its follow of the job node sees the tombstone), each party's next call about the
 * job answers 404 JOB_NOT_FOUND wherever it is sent, a long-poll on the assignment waiting on a
 * third instance is answered 404 at once, and nothing of the job is left in ZooKeeper.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { serveListening, type Listening } from '../support/cli-process.js';
import { eventually } from '../support/test-gateway.js';
import { startZkServer, type ZkStandalone } from '../support/zk-server.js';
import { homeOf } from '../../src/core/cluster/cluster.js';

const SECRET = 'jobs-delete-cluster-secret-0123456789ab';
const IDS = ['j1', 'j2', 'j3'] as const;
/** The default tenant's home (holds every lease), the instance the delete goes through, the third. */
const H = homeOf('default', IDS) as string;
const D = IDS.find((i) => i !== H) as string;
const T = IDS.find((i) => i !== H && i !== D) as string;

async function rest(base: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await fetch(`${base}${path}`, { method, headers: body === undefined ? {} : { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  return { status: r.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

for (const placement of ['tenant', 'local'] as const) describe(`cluster › a job deleted through one instance, its parties' leases elsewhere (${placement} placement)`, () => {
  let zk: ZkStandalone;
  const gw: Record<string, Listening> = {};

  before(async () => {
    zk = await startZkServer();
    await Promise.all(
      IDS.map(async (id) => {
        gw[id] = await serveListening([], {
          zookeeper: { connect: zk.connectString },
          instanceId: id,
          cluster: { secret: SECRET, forwardTimeoutMs: 5000, leasePlacement: placement },
          instances: { path: `/zkgate-jobs-delete/${process.pid}/${placement}` },
        });
      }),
    );
    for (const id of IDS) {
      await eventually(async () => ((await rest(gw[id]!.base, 'GET', '/readyz')).body as { cluster?: { members: unknown[] } }).cluster?.members.length === 3, 10_000, `${id} to see three members`);
    }
  });
  after(async () => {
    await Promise.all(Object.values(gw).map((g) => g.kill()));
    await zk?.close();
  });

  for (let round = 1; round <= 2; round++) {
    test(`round ${round}: members and claimers keep their leases, learn JOB_NOT_FOUND everywhere, nothing is left`, async () => {
      const [h, d, t] = [gw[H]!.base, gw[D]!.base, gw[T]!.base];
      const job = `report-${process.pid}-${round}`;
      assert.equal((await rest(d, 'PUT', `/v1/jobs/${job}`, { shardCount: 4 })).status, 201);
      // tenant: every lease on the home, which the delete does not go through; local: one on
      // each instance, the deleting one included.
      const lease = async (via: string, expected: string): Promise<string> => {
        const r = await rest(via, 'POST', '/v1/leases', { ttlMs: 30_000 });
        assert.equal(r.status, 201);
        const id = r.body.id as string;
        assert.equal(id.slice(0, id.indexOf('.')), placement === 'tenant' ? H : expected, 'granted where the placement says');
        return id;
      };
      const members = [await lease(t, T), await lease(d, D)];
      const runner = await lease(h, H);
      for (const [i, m] of members.entries()) {
        const joined = await rest(i === 0 ? t : d, 'POST', `/v1/jobs/${job}/members`, { memberId: `m${i}`, leaseId: m });
        assert.equal(joined.status, 200, JSON.stringify(joined.body));
      }
      assert.equal((await rest(t, 'POST', `/v1/jobs/${job}/runs`, { trigger: 't1', leaseId: runner })).status, 201);
      const gen = ((await rest(t, 'GET', `/v1/jobs/${job}/assignment`)).body as { generation: number }).generation;
      const poll = rest(t, 'GET', `/v1/jobs/${job}/assignment?after=${gen}&wait=60000`);
      await new Promise((r) => setTimeout(r, 300));
      const started = Date.now();

      const del = await rest(d, 'DELETE', `/v1/jobs/${job}`);
      assert.equal(del.status, 200, JSON.stringify(del.body));
      assert.deepEqual({ ...del.body, version: 0 }, { name: job, version: 0, runs: 1, runningRuns: 1, members: 2, resumed: false });

      const polled = await poll;
      assert.equal(polled.status, 404, JSON.stringify(polled.body));
      assert.equal(polled.body.code, 'JOB_NOT_FOUND');
      assert.ok(Date.now() - started < 30_000, 'answered by the delete');
      // Every party's next call, through each instance, says the job is gone; its lease lives on.
      for (const via of [h, d, t]) {
        for (const [what, call] of [
          ['sync', () => rest(via, 'POST', `/v1/jobs/${job}/members/m0/sync`, { leaseId: members[0] })],
          ['leave', () => rest(via, 'DELETE', `/v1/jobs/${job}/members/m1?leaseId=${members[1]}`)],
          ['complete', () => rest(via, 'POST', `/v1/jobs/${job}/runs/t1/complete`, { leaseId: runner, outcome: 'succeeded' })],
        ] as const) {
          const a = await call();
          assert.equal(a.status, 404, `${what} through ${via}: ${JSON.stringify(a.body)}`);
          assert.equal(a.body.code, 'JOB_NOT_FOUND', what);
        }
      }
      for (const id of [...members, runner]) {
        const info = (await rest(d, 'GET', `/v1/leases/${id}`)).body as { state: string; reason: string; owned: { path: string }[] };
        assert.equal(info.state, 'active', `lease ${id} was not ended by the deletion: ${JSON.stringify(info)}`);
        assert.deepEqual(info.owned.filter((o) => o.path.startsWith(`/zkgate/jobs/${job}`)), [], 'owns nothing of the deleted job');
      }
      assert.equal((await rest(t, 'GET', `/v1/nodes/zkgate/jobs/${job}`)).status, 404, 'nothing of the job left in ZooKeeper');
      for (const id of [...members, runner]) assert.equal((await rest(t, 'DELETE', `/v1/leases/${id}`)).status, 200);
    });
  }
});
