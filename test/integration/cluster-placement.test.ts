/**
 * Tenant-home lease placement (docs/cluster.md "Lease placement"): with `cluster.leasePlacement:
 * tenant` a grant reaching any instance is carried out on the tenant's home — the rendezvous hash
 * of tenant and instance id over the live members — on REST, gRPC and WebSocket (a call and a
 * lease-bound socket, kept alive across the hop). A shutting-down home stops being the home at
 * once and hands its leases to the tenant's next home; a home that does not answer makes the
 * instance grant the lease itself (counted). With `local` a grant stays where it arrived. Real
 * `zkgate serve` processes on one ZooKeeper.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { serveListening, type Listening } from '../support/cli-process.js';
import { grpcClient } from '../support/grpc-client.js';
import { eventually } from '../support/test-gateway.js';
import { WsTestClient } from '../support/ws-client.js';
import { startZkServer, type ZkStandalone } from '../support/zk-server.js';
import { homeOf } from '../../src/core/cluster/cluster.js';

const SECRET = 'placement-test-secret-0123456789abcdef';
const IDS = ['p1', 'p2', 'p3'] as const;
/** The default tenant's home, its next home without it, and the third instance. */
const H = homeOf('default', IDS) as string;
const N = homeOf('default', IDS.filter((i) => i !== H)) as string;
const O = IDS.find((i) => i !== H && i !== N) as string;
/** A second tenant homed on N (its leases make N the busier of the two others). */
const T2 = Array.from({ length: 50 }, (_, i) => `team-${i}`).find((t) => homeOf(t, IDS) === N) as string;

interface Lease {
  id: string;
  state: string;
}
const prefix = (id: string): string => id.slice(0, id.indexOf('.'));

async function rest(base: string, method: string, path: string, body?: unknown, tenant?: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const headers: Record<string, string> = body === undefined ? {} : { 'content-type': 'application/json' };
  if (tenant) headers['zkgate-tenant'] = tenant;
  const r = await fetch(`${base}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  return { status: r.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}
async function grant(base: string, tenant?: string, ttlMs = 60_000): Promise<string> {
  const r = await rest(base, 'POST', '/v1/leases', { ttlMs }, tenant);
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body.id as string;
}
/** A cumulative figure of `/metrics`, 0 when absent. */
async function metric(base: string, line: RegExp): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  return Number(line.exec(text)?.[1] ?? 0);
}
const placed = (base: string, outcome: string): Promise<number> => metric(base, new RegExp(`^zkgate_cluster_lease_placements\\{outcome="${outcome}"\\} (\\d+)$`, 'm'));

describe('cluster › tenant placement: a grant is carried out on the tenant\'s home', () => {
  let zk: ZkStandalone;
  const gw: Record<string, Listening> = {};
  const INSTANCES = `/zkgate-placement/${process.pid}`;
  const start = (id: string): Promise<Listening> =>
    serveListening([], {
      zookeeper: { connect: zk.connectString },
      instanceId: id,
      cluster: { secret: SECRET, forwardTimeoutMs: 5000, leasePlacement: 'tenant' },
      instances: { path: INSTANCES },
      tenants: [{ name: 'default' }, { name: T2 }],
      // A long unready window: the test grants while the home is shutting down but still serving.
      shutdown: { unreadyDelayMs: 4000, drainTimeoutMs: 1000, exitTimeoutMs: 15_000 },
    });
  /** Members p1..p3 as `base` sees them (id → incarnation). */
  const members = async (base: string): Promise<Map<string, string>> => {
    const r = (await rest(base, 'GET', '/readyz')).body as { cluster?: { members: { id: string; incarnation: string }[] } };
    return new Map((r.cluster?.members ?? []).map((m) => [m.id, m.incarnation]));
  };

  before(async () => {
    assert.ok(T2, 'a tenant name homed on the next home');
    zk = await startZkServer();
    await Promise.all(IDS.map(async (id) => (gw[id] = await start(id))));
    for (const id of IDS) await eventually(async () => (await members(gw[id]!.base)).size === 3, 10_000, `${id} to see three members`);
  });
  after(async () => {
    await Promise.all(Object.values(gw).map((g) => g.kill()));
    await zk?.close();
  });

  test('REST grants through every instance land on the home; the listing and the metrics say so', async () => {
    const ids = [];
    for (const id of IDS) ids.push(await grant(gw[id]!.base));
    assert.deepEqual(ids.map(prefix), [H, H, H]);
    const listing = (await rest(gw[O]!.base, 'GET', '/v1/leases')).body as { leases: { id: string; instance: string }[] };
    for (const id of ids) assert.equal(listing.leases.find((l) => l.id === id)?.instance, H);
    // Calls naming them are forwarded to the home as for any lease.
    assert.equal((await rest(gw[N]!.base, 'POST', `/v1/leases/${ids[0]}/keepalive`)).status, 200);
    assert.equal(await placed(gw[O]!.base, 'home'), 1);
    assert.equal(await placed(gw[H]!.base, 'local'), 1);
    for (const id of ids) await rest(gw[O]!.base, 'DELETE', `/v1/leases/${id}`);
  });

  test('gRPC Leases.Grant and WebSocket grants (a call, a lease-bound socket) land on the home', async () => {
    const g = grpcClient(gw[O]!.grpcPort);
    try {
      const l = await g.unary<{ id: string }>('Leases', 'Grant', { ttlMs: 60_000 });
      assert.equal(prefix(l.id), H);
      await rest(gw[O]!.base, 'DELETE', `/v1/leases/${l.id}`);
    } finally {
      g.close();
    }
    const ws = await WsTestClient.open(`${gw[N]!.base.replace('http', 'ws')}/v1/ws`);
    try {
      ws.send({ op: 'call', id: 'g', method: 'Leases.Grant', params: { ttlMs: 60_000 } });
      const called = await ws.take((m) => m.type === 'result' && m.id === 'g');
      assert.equal(prefix(called.result.id as string), H);
      await rest(gw[N]!.base, 'DELETE', `/v1/leases/${called.result.id}`);
      // A socket-bound lease of 1.5 s, granted on the home, stays alive while the socket is open.
      ws.send({ op: 'lease_grant', ttlMs: 1500 });
      const bound = (await ws.take((m) => m.type === 'lease')).lease as Lease;
      assert.equal(prefix(bound.id), H);
      await new Promise((r) => setTimeout(r, 3000));
      assert.equal(((await rest(gw[H]!.base, 'GET', `/v1/leases/${bound.id}`)).body as unknown as Lease).state, 'active');
      await rest(gw[N]!.base, 'DELETE', `/v1/leases/${bound.id}`);
    } finally {
      ws.ws.close();
    }
  });

  test('a second lease_grant on a socket while its first grant travels to the home is refused, as once bound', async () => {
    const ws = await WsTestClient.open(`${gw[O]!.base.replace('http', 'ws')}/v1/ws`);
    try {
      ws.send({ op: 'lease_grant', ttlMs: 60_000 });
      ws.send({ op: 'lease_grant', ttlMs: 60_000 });
      const first = (await ws.take((m) => m.type === 'lease')).lease as Lease;
      const second = await ws.take((m) => m.type === 'lease' || m.type === 'error');
      assert.equal(second.type, 'error', `one lease per socket: ${JSON.stringify(second)}`);
      assert.equal(second.code, 'INVALID_ARGUMENT');
      await rest(gw[O]!.base, 'DELETE', `/v1/leases/${first.id}`);
    } finally {
      ws.ws.close();
    }
  });

  test('a shutting-down home is no home: new leases go to the next home, and so do its own', async () => {
    // The home holds one lease of the tenant; the next home holds two of another tenant, so the
    // handoff's usual choice (the instance holding fewest leases) would be the third instance.
    const held = await grant(gw[O]!.base);
    assert.equal(prefix(held), H);
    for (let i = 0; i < 2; i++) assert.equal(prefix(await grant(gw[O]!.base, T2)), N);
    await eventually(async () => (await metric(gw[H]!.base, new RegExp(`^zkgate_tenant_quota_used_elsewhere\\{tenant="${T2}",kind="leases"\\} (\\d+)$`, 'm'))) === 2, 10_000, 'the home to see the next home\'s leases');
    const home = gw[H]!;
    home.proc.kill('SIGTERM');
    await eventually(async () => (await fetch(`${home.base}/readyz`)).status === 503, 5000, 'the home to announce its shutdown');
    // Still serving, still registered: but not the home any more.
    assert.equal((await members(gw[O]!.base)).has(H), true);
    const during = await grant(gw[O]!.base);
    assert.equal(prefix(during), N);
    assert.equal(await home.exited, 0);
    delete gw[H];
    const listing = (await rest(gw[O]!.base, 'GET', '/v1/leases')).body as { leases: { id: string; instance: string }[] };
    assert.equal(listing.leases.find((l) => l.id === held)?.instance, N, 'the handoff chose the tenant\'s next home');
    // Back with the same id, it is the tenant's home again (homes follow ids, not starts).
    gw[H] = await start(H);
    await eventually(async () => (await members(gw[O]!.base)).size === 3, 10_000, 'the restarted home to be seen');
    assert.equal(prefix(await grant(gw[O]!.base)), H);
  });

  test('a home that does not answer: the grant is carried out here and counted, then the next home is used', async () => {
    const before = await placed(gw[O]!.base, 'fallback');
    await gw[H]!.kill(); // SIGKILL: still registered until its session expires
    assert.equal((await members(gw[O]!.base)).has(H), true);
    assert.equal(prefix(await grant(gw[O]!.base)), O);
    assert.equal(await placed(gw[O]!.base, 'fallback'), before + 1);
    // Found not listening: no longer anyone's home, without waiting for its session to expire.
    assert.equal(prefix(await grant(gw[O]!.base)), N);
    delete gw[H];
  });
});

describe('cluster › local placement: a grant stays where it arrived', () => {
  let zk: ZkStandalone;
  const gw: Record<string, Listening> = {};
  const LOCAL = ['q1', 'q2'] as const;
  const home = homeOf('default', LOCAL) as string;
  const other = LOCAL.find((i) => i !== home) as string;

  before(async () => {
    zk = await startZkServer();
    const INSTANCES = `/zkgate-placement-local/${process.pid}`;
    await Promise.all(
      LOCAL.map(async (id) => {
        gw[id] = await serveListening([], { zookeeper: { connect: zk.connectString }, instanceId: id, cluster: { secret: SECRET, leasePlacement: 'local' }, instances: { path: INSTANCES } });
      }),
    );
    await eventually(async () => ((await rest(gw[other]!.base, 'GET', '/readyz')).body as { cluster?: { members: unknown[] } }).cluster?.members.length === 2, 10_000, 'two members');
  });
  after(async () => {
    await Promise.all(Object.values(gw).map((g) => g.kill()));
    await zk?.close();
  });

  test('a grant through the instance that is not the tenant\'s home is granted there', async () => {
    assert.equal(prefix(await grant(gw[other]!.base)), other);
    assert.equal(prefix(await grant(gw[home]!.base)), home);
    assert.equal(await placed(gw[other]!.base, 'local'), 1);
    assert.equal(await placed(gw[other]!.base, 'home'), 0);
  });
});
