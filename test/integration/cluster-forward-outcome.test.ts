/**
 * What a forwarded call that failed says of its outcome (docs/cluster.md "Loss is honest"): two
 * real `zkgate serve` processes on one ZooKeeper, the lease on one (the holder), every call
 * through the other. A call whose connection to the holder never opened was never written: it
 * answers `outcome: not_applied` (the client may retry it safely); one whose frame went out on an
 * open connection to a holder that then stops answering stays `unknown` (the holder may carry it
 * out when it wakes). Until 2026-12-02 both answered `unknown`, after a ping probe.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { serveListening, type Listening } from '../support/cli-process.js';
import { eventually } from '../support/test-gateway.js';
import { startZkServer, type ZkStandalone } from '../support/zk-server.js';

const SECRET = 'forward-outcome-secret-0123456789abcdef';

async function rest(base: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await fetch(`${base}${path}`, { method, headers: body === undefined ? {} : { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  return { status: r.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

/** SIGSTOP, returning once the process is stopped (the signal is delivered asynchronously). */
async function stop(g: Listening): Promise<void> {
  g.proc.kill('SIGSTOP');
  await eventually(async () => /^\d+ \(.*\) T/.test(readFileSync(`/proc/${g.proc.pid}/stat`, 'utf8')), 2000, 'the holder to be stopped');
}

describe('cluster › the outcome of a forwarded call the holder did not answer', () => {
  let zk: ZkStandalone;
  let holder: Listening;
  let caller: Listening;
  let lease = '';

  before(async () => {
    zk = await startZkServer();
    // `local`: grants stay where they arrive, so the caller opens no connection to the holder
    // before the first forwarded call below. The registration's session (10 s) outlives each stop.
    const config = (id: string): Record<string, unknown> => ({
      zookeeper: { connect: zk.connectString },
      instanceId: id,
      cluster: { secret: SECRET, forwardTimeoutMs: 1500, leasePlacement: 'local' },
      instances: { path: `/zkgate-forward-outcome/${process.pid}` },
    });
    [holder, caller] = await Promise.all([serveListening([], config('holder')), serveListening([], config('caller'))]);
    await eventually(async () => ((await rest(caller.base, 'GET', '/readyz')).body as { cluster?: { members: unknown[] } }).cluster?.members.length === 2, 10_000, 'the caller to see two members');
    const g = await rest(holder.base, 'POST', '/v1/leases', { ttlMs: 60_000 });
    assert.equal(g.status, 201, JSON.stringify(g.body));
    lease = g.body.id as string;
  });
  after(async () => {
    holder?.proc.kill('SIGCONT');
    await Promise.all([holder?.kill(), caller?.kill()]);
    await zk?.close();
  });

  /** A keepalive through the caller while the holder is stopped: 503 owner_unreachable with `outcome`. */
  async function keepAliveWhileStopped(outcome: string): Promise<Awaited<ReturnType<typeof rest>>> {
    await stop(holder);
    let r: Awaited<ReturnType<typeof rest>>;
    try {
      r = await rest(caller.base, 'POST', `/v1/leases/${lease}/keepalive`);
    } finally {
      holder.proc.kill('SIGCONT');
    }
    const details = r.body.details as Record<string, unknown> | undefined;
    assert.deepEqual([r.status, r.body.code, details?.reason, details?.outcome], [503, 'UNAVAILABLE', 'owner_unreachable', outcome], JSON.stringify(r.body));
    return r;
  }

  test('the holder stopped before the connection for calls opened: 503 owner_unreachable, outcome not_applied; the lease lives on', async () => {
    // Its listen backlog takes the TCP connection; the upgrade is never answered.
    const r = await keepAliveWhileStopped('not_applied');
    assert.match(String(r.body.detail ?? r.body.message), /nothing was sent/);
    // Retrying is safe, and reaches the holder once it answers.
    await eventually(async () => (await rest(caller.base, 'POST', `/v1/leases/${lease}/keepalive`)).status === 200, 15_000, 'a retried keepalive to succeed');
  });

  test('a call written on the open connection, the holder stopped: 503 owner_unreachable, outcome unknown', async () => {
    assert.equal((await rest(caller.base, 'POST', `/v1/leases/${lease}/keepalive`)).status, 200, 'the connection for calls is open');
    await keepAliveWhileStopped('unknown');
    assert.equal((await rest(caller.base, 'POST', `/v1/leases/${lease}/keepalive`)).status, 200, 'the lease lives on');
  });
});
