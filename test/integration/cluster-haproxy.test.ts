/**
 * Issue 11's acceptance campaign, short CI version (docs/cluster.md "The topology test"): the
 * shipped compose.cluster.yaml + deploy/haproxy.cfg started on loopback (a 3-node ensemble, three
 * gateway processes, haproxy round-robin; test/support/cluster-topology.ts). gRPC and a WebSocket
 * go through the balancer's two frontends. Lock workers,
 * an elected leader, idle leases kept alive and a long-poll watcher go through the balancer
 * while each instance is restarted gracefully in turn and one is then SIGKILLed. Prints the
 * issue's figures and asserts them.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { call, lockRate, startTopology, type Res, type Topology } from '../support/cluster-topology.js';
import { grpcClient } from '../support/grpc-client.js';
import { WsTestClient } from '../support/ws-client.js';
import { homeOf } from '../../src/core/cluster/cluster.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const code = (r: Res): string => String(r.body.code ?? r.status);
/** Lease grants each gateway received so far, wherever they were carried out (zkgate_cluster_lease_placements). */
async function grantsReceived(bases: readonly string[]): Promise<number[]> {
  return Promise.all(bases.map(async (b) => [...(await (await fetch(`${b}/metrics`)).text()).matchAll(/^zkgate_cluster_lease_placements\{outcome="\w+"\} (\d+)$/gm)].reduce((n, m) => n + Number(m[1]), 0)));
}

describe('cluster › three gateways behind haproxy', { timeout: 240_000 }, () => {
  let t: Topology;
  before(async () => {
    t = await startTopology(3);
  });
  after(async () => {
    await t?.close();
  });

  test("gRPC through haproxy's h2 frontend, round-robin per call, and a WebSocket through its HTTP frontend", async () => {
    const g = grpcClient(t.lbGrpcPort);
    try {
      // Servers start UP; a failing health check takes them out after one `inter` (500 ms). Let
      // the checks run first, so a gRPC backend whose checks fail answers 503 here.
      await sleep(1500);
      // Three grants in a row reach three instances (each counts the grants it received, wherever
      // lease placement carried them out): the gRPC backend's health checks pass and calls are
      // balanced one by one.
      const received0 = await grantsReceived(t.direct);
      const granted = [];
      for (let k = 0; k < 3; k++) {
        const lease = await g.unary<{ id: string }>('Leases', 'Grant', { ttlMs: 20_000 }).catch((err: Error) => {
          throw new Error(`gRPC Grant through haproxy: ${err.message}; haproxy said:\n${t.haproxyLog()}`);
        });
        granted.push(lease.id);
      }
      const received = (await grantsReceived(t.direct)).map((n, i) => n - (received0[i] as number));
      const instances = new Set(t.ids.filter((_, i) => (received[i] as number) > 0));
      // A lock cycle with each lease, each call routed anew: most are forwarded to the lease's instance.
      for (const leaseId of granted) {
        const hold = await g.unary<{ node: string; fencingToken: string }>('Locks', 'Acquire', { path: '/haproxy-grpc', leaseId, waitMs: { value: 5000 } });
        assert.ok(hold.node);
        await g.unary('Locks', 'Release', { path: '/haproxy-grpc', leaseId, node: hold.node });
      }
      const ws = await WsTestClient.open(`${t.lb.replace('http', 'ws')}/v1/ws`);
      let wsListed: string[];
      try {
        ws.send({ op: 'call', id: 'l', method: 'Leases.List', params: {} });
        const r = await ws.take((m) => m.id === 'l');
        assert.equal(r.type, 'result', JSON.stringify(r));
        wsListed = (r.result.leases as { id: string }[]).map((l) => l.id);
      } finally {
        ws.ws.close();
      }
      for (const id of granted) await g.unary('Leases', 'Revoke', { id });
      console.log(JSON.stringify({ 'gRPC grants through the balancer reached instances': [...instances].sort(), 'held by': [...new Set(granted.map((id) => id.split('.')[0]))].sort(), 'gRPC lock cycles through the balancer': granted.length }));
      assert.ok(instances.size >= 2, `gRPC calls are balanced: ${[...instances].join(', ')}`);
      for (const id of granted) assert.ok(wsListed.includes(id), `the WebSocket listing through the balancer has ${id}`);
    } finally {
      g.close();
    }
  });

  test('the balancer holds more than 256 connections per instance (deploy/zkgate.yaml: no per-address bound behind it)', async () => {
    // Every client connection reaches a gateway from haproxy's address: with the default
    // http.maxConnectionsPerAddress (256) the 257th long-poll on an instance was refused 429.
    const n = 3 * 256 + 30;
    await call(t.lb, 'POST', '/v1/nodes/haproxy-many', { data: '0' });
    const index = (await call(t.lb, 'GET', '/v1/nodes/haproxy-many')).headers.get('x-zkgate-index') as string;
    const statuses: number[] = [];
    const polls = Array.from({ length: n }, () => call(t.lb, 'GET', `/v1/nodes/haproxy-many?wait=60000&index=${index}`).then((r) => void statuses.push(r.status)));
    const open = async (): Promise<number> => {
      const texts = await Promise.all(t.direct.map(async (d) => (await fetch(`${d}/metrics`)).text()));
      return texts.reduce((sum, text) => sum + Number(/^zkgate_listener_connections\{listener="http"\} (\d+)$/m.exec(text)?.[1] ?? 0), 0);
    };
    // Until every long-poll is held by a gateway; a refused one ends the wait at once.
    for (;;) {
      if (statuses.length > 0) break;
      if ((await open()) >= n) break;
      await sleep(200);
    }
    await call(t.lb, 'PUT', '/v1/nodes/haproxy-many', { data: '1' });
    await Promise.all(polls);
    const counts = statuses.reduce<Record<number, number>>((c, s) => ((c[s] = (c[s] ?? 0) + 1), c), {});
    console.log(JSON.stringify({ 'long-polls held through the balancer at once': n, 'answers by status': counts }));
    assert.deepEqual(counts, { 200: n });
  });

  test('round-robin through restarts and a SIGKILL: no routing failure, no lease lost by a graceful restart, no double holder, every lease of the killed instance reported lost', async () => {
    // One instance: the tenant's home, whose grants are not forwarded with tenant placement.
    const single = await lockRate(t.direct[t.ids.indexOf(homeOf('default', t.ids) as string)] as string, '/rate-single', 3, 4000);
    const balanced = await lockRate(t.lb, '/rate-lb', 3, 4000);

    const failures: string[] = [];
    // When each call failed against what happened to the instances (ms since the campaign began).
    const t0 = Date.now();
    const since = (at: number): string => `+${at - t0} ms`;
    const events: string[] = [];
    let inFlightAtKill = 0;
    let unknownBeforeExpiry = 0;
    let killedAt = Infinity;
    let killedId = '';
    let stop = false;
    const killedLeases = new Set<string>();
    const lostReported = new Set<string>();
    /** A call's failure counts against routing unless it names a lease of the killed instance after the kill. */
    const judge = (what: string, leaseId: string, r: Res, startedAt: number): 'ok' | 'lost' | 'fail' => {
      // A lock wait that timed out is the lock's answer, not a failure (the killed instance's hold lasts its session timeout).
      if (r.status < 300 || code(r) === 'LOCK_NOT_ACQUIRED') return 'ok';
      if (killedLeases.has(leaseId) && startedAt >= killedAt) {
        if (code(r) === 'LEASE_LOST' && (r.body.details as Record<string, unknown> | undefined)?.reason === 'instance_gone') lostReported.add(leaseId);
        // Until ZooKeeper expires the killed instance's registration it is registered but silent:
        // 503 (outcome unknown, retry) is the documented answer then, not a routing failure.
        else if (code(r) === 'UNAVAILABLE') unknownBeforeExpiry += 1;
        else failures.push(`${what} on a killed lease (${since(startedAt)}): ${r.status} ${code(r)}`);
        return 'lost';
      }
      if (startedAt < killedAt && Date.now() >= killedAt && startedAt >= killedAt - 15_000) {
        inFlightAtKill += 1;
        return 'lost';
      }
      failures.push(`${what} (${since(startedAt)} → ${since(Date.now())}): ${r.status} ${code(r)} ${JSON.stringify(r.body).slice(0, 300)}`);
      return 'fail';
    };

    // Lock workers: a shared "inside" count finds double holders; fencing tokens must rise.
    let inside = 0;
    let doubles = 0;
    let cycles = 0;
    let lastToken = 0n;
    let tokenDrops = 0;
    const worker = async (): Promise<void> => {
      let leaseId = (await call(t.lb, 'POST', '/v1/leases', { ttlMs: 6000 })).body.id as string;
      while (!stop) {
        const at = Date.now();
        const got = await call(t.lb, 'POST', '/v1/locks/campaign-lock', { leaseId, waitMs: 4000 });
        const v = judge('acquire', leaseId, got, at);
        if (v === 'lost') {
          leaseId = (await call(t.lb, 'POST', '/v1/leases', { ttlMs: 6000 })).body.id as string;
          continue;
        }
        if (v === 'fail' || got.status !== 200) {
          if (code(got) === 'LOCK_NOT_ACQUIRED') {
            // A wait does not keep the lease alive (docs/recipes.md): two 4 s waits in a row, e.g.
            // behind the killed instance's hold until its session expires, outlast the 6 s TTL.
            judge('keepalive', leaseId, await call(t.lb, 'POST', `/v1/leases/${leaseId}/keepalive`), Date.now());
            continue;
          }
          await sleep(100);
          continue;
        }
        inside += 1;
        if (inside > 1) doubles += 1;
        const token = BigInt(got.body.fencingToken as string);
        if (token <= lastToken) tokenDrops += 1;
        lastToken = token;
        await sleep(20);
        inside -= 1;
        const rel = await call(t.lb, 'DELETE', `/v1/locks/campaign-lock?leaseId=${leaseId}&node=${encodeURIComponent(got.body.node as string)}`);
        judge('release', leaseId, rel, Date.now());
        const ka = await call(t.lb, 'POST', `/v1/leases/${leaseId}/keepalive`);
        judge('keepalive', leaseId, ka, Date.now());
        cycles += 1;
      }
    };
    // Idle leases kept alive through the balancer, one owning an ephemeral, one leading an election.
    const idle = await Promise.all(Array.from({ length: 6 }, async () => (await call(t.lb, 'POST', '/v1/leases', { ttlMs: 6000 })).body.id as string));
    await call(t.lb, 'POST', '/v1/nodes/campaign-eph', { data: 'x', mode: 'ephemeral', leaseId: idle[0] });
    const led = await call(t.lb, 'POST', '/v1/elections/campaign-election', { leaseId: idle[1], value: 'L', waitMs: 0 });
    assert.equal(led.status, 200);
    const gracefulLost: string[] = [];
    const keeper = async (): Promise<void> => {
      while (!stop) {
        for (const id of idle) {
          const at = Date.now();
          const r = await call(t.lb, 'POST', `/v1/leases/${id}/keepalive`);
          if (judge('idle keepalive', id, r, at) === 'fail' && at < killedAt) gracefulLost.push(id);
        }
        await sleep(700);
      }
    };
    // A writer and a long-poll watcher: the watcher must end on the last value written.
    await call(t.lb, 'POST', '/v1/nodes/campaign-cfg', { data: '0' });
    let written = 0;
    let seen = -1;
    const writer = async (): Promise<void> => {
      while (!stop) {
        const r = await call(t.lb, 'PUT', '/v1/nodes/campaign-cfg', { data: String(written + 1) });
        if (judge('write', '', r, Date.now()) === 'ok') written += 1;
        await sleep(150);
      }
    };
    const watcher = async (): Promise<void> => {
      let index = '0';
      while (!stop || seen < written) {
        const r = await call(t.lb, 'GET', `/v1/nodes/campaign-cfg?wait=2000&index=${index}`);
        if (judge('long-poll', '', r, Date.now()) !== 'ok') continue;
        index = r.headers.get('x-zkgate-index') ?? index;
        seen = Number(r.body.data);
        if (stop && seen >= written) return;
      }
    };

    const running = [worker(), worker(), worker(), keeper(), writer(), watcher()];
    await sleep(2000);
    for (let i = 0; i < 3; i++) {
      events.push(`${since(Date.now())} SIGTERM ${t.ids[i]}`);
      await t.restart(i);
      events.push(`${since(Date.now())} ${t.ids[i]} ready again`);
      await sleep(1500);
    }
    // A fresh lease granted through every instance (the restarts gathered the others on one
    // successor; with tenant placement they all land on the tenant's home, which is no longer the
    // successor it handed them to), kept alive through the balancer like the rest: the kill must
    // take only the victim's.
    for (const d of t.direct) idle.push((await call(d, 'POST', '/v1/leases', { ttlMs: 6000 })).body.id as string);
    // SIGKILL the instance holding the election's lease (it holds adopted leases too). The listing
    // is cluster-wide: each entry names the instance holding it.
    const listing = await call(t.lb, 'GET', '/v1/leases');
    assert.equal(listing.status, 200);
    assert.equal(listing.body.incomplete, undefined, `every instance answered the listing: ${JSON.stringify(listing.body.unanswered)}`);
    const listed = listing.body.leases as { id: string; instance: string }[];
    killedId = listed.find((l) => l.id === idle[1])?.instance ?? '';
    const victim = t.ids.indexOf(killedId);
    assert.ok(victim >= 0, `the election's lease is listed with its instance: ${JSON.stringify(listed)}`);
    for (const l of listed) if (l.instance === killedId) killedLeases.add(l.id);
    const survivors = idle.filter((id) => !killedLeases.has(id));
    assert.ok(survivors.length > 0, 'leases on the surviving instances too');
    killedAt = Date.now();
    events.push(`${since(killedAt)} SIGKILL ${killedId}`);
    await t.kill(victim);
    await sleep(4000);
    stop = true;
    await Promise.all(running);
    // Every killed lease's next call: idle ones are called by the keeper; call the rest now.
    for (const id of killedLeases) {
      if (!lostReported.has(id)) judge('after kill', id, await call(t.lb, 'POST', `/v1/leases/${id}/keepalive`), Date.now());
    }

    // The survivors' leases were kept alive through the kill (a failure there counts against routing).
    const survivorsAlive = (await Promise.all(survivors.map((id) => call(t.lb, 'GET', `/v1/leases/${id}`)))).filter((r) => r.body.state === 'active').length;
    const figures = {
      'lock cycles': cycles,
      'calls failed by routing': failures.length,
      'calls in flight at the SIGKILL': inFlightAtKill,
      "503 on a killed lease before its instance's session expired": unknownBeforeExpiry,
      'leases lost through graceful restarts': gracefulLost.length,
      'double lock holders': doubles,
      'fencing token drops': tokenDrops,
      [`leases of the killed instance (${killedId}) reported LEASE_LOST instance_gone on the next call`]: `${lostReported.size}/${killedLeases.size} (${((100 * lostReported.size) / Math.max(1, killedLeases.size)).toFixed(0)}%)`,
      'idle leases of the surviving instances still active after the kill': `${survivorsAlive}/${survivors.length}`,
      'graceful restarts that outlasted stop_grace_period (Docker would SIGKILL)': t.graceKills,
      'lock cycles/s through the balancer ÷ through a single instance': `${balanced.toFixed(1)} / ${single.toFixed(1)} = ${(balanced / single).toFixed(2)}`,
      'watch: last written / last seen': `${written} / ${seen}`,
    };
    console.log(JSON.stringify(failures.length > 0 ? { ...figures, failures, events } : figures, null, 2));
    assert.deepEqual(failures, []);
    assert.deepEqual(gracefulLost, []);
    assert.equal(doubles, 0);
    assert.equal(tokenDrops, 0);
    assert.ok(cycles > 0);
    assert.equal(lostReported.size, killedLeases.size);
    assert.equal(survivorsAlive, survivors.length);
    assert.equal(t.graceKills, 0);
    assert.ok(killedLeases.size > 0);
    assert.equal(seen, written);
  });
});
