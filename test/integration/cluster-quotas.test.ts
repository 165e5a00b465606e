/**
 * Quotas per tenant across a cluster (issue 11 item 5, docs/cluster.md "Quotas across the
 * cluster"): three `zkgate serve` processes on one ZooKeeper, a tenant limit of N leases, M
 * locks and K streaming connections reached through different instances refuses the next one on every instance with 429 and
 * creates nothing; units come back when they are released, when a lease expires, and when the
 * instance holding them dies (its registration's session expires). GET /v1/leases on any
 * instance lists the tenant's leases of every instance, each naming its holder.
 *
 * The counts are published behind each take (bounded staleness, no ZooKeeper round trip on the
 * call), so between two takes through different instances the test waits until the next
 * instance's view (`zkgate_tenant_quota_used` + `zkgate_tenant_quota_used_elsewhere`) shows the
 * previous one, as a client pausing between calls would.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { serveListening, type Listening } from '../support/cli-process.js';
import { restClient, type RestClient } from '../support/openapi.js';
import { eventually, uniquePath, type Problem } from '../support/test-gateway.js';
import { startZkServer, type ZkStandalone } from '../support/zk-server.js';
import { WsTestClient } from '../support/ws-client.js';
import WebSocket from 'ws';

const SECRET = 'quota-test-secret-0123456789abcdef';
const MAX_LEASES = 4;
const MAX_LOCKS = 2;
const MAX_CONNECTIONS = 2;

interface Node {
  readonly p: Listening;
  readonly rest: RestClient;
}

/** The tenant's usage of `kind` as `g` sees it: its own units plus the others' last published ones. */
type Kind = 'leases' | 'locks' | 'connections';

async function seen(g: Node, kind: Kind): Promise<number> {
  const text = (await g.rest.request('GET', '/metrics')).body as string;
  const figure = (name: string): number => {
    const m = new RegExp(`^${name}\\{[^}]*kind="${kind}"[^}]*\\} (\\d+)$`, 'm').exec(text);
    return m ? Number(m[1]) : 0;
  };
  return figure('zkgate_tenant_quota_used') + figure('zkgate_tenant_quota_used_elsewhere');
}

const sees = (g: Node, kind: Kind, n: number, timeoutMs = 20_000): Promise<boolean> =>
  eventually(async () => (await seen(g, kind)) === n, timeoutMs, `instance to see ${n} ${kind}`);

describe('cluster › quotas per tenant across three instances', () => {
  let zk: ZkStandalone;
  const gws: Node[] = [];
  const INSTANCES = `/zkgate-quota-test/${process.pid}/instances`;

  before(async () => {
    zk = await startZkServer();
    for (const id of ['q1', 'q2', 'q3']) {
      const p = await serveListening([], {
        zookeeper: { connect: zk.connectString },
        http: { bind: '127.0.0.1' },
        instanceId: id,
        cluster: { secret: SECRET, leasePlacement: 'local' }, // each instance grants its own leases here
        instances: { path: INSTANCES },
        tenants: [{ name: 'default', sessionTimeoutMs: 4000 }],
        limits: { maxLeasesPerTenant: MAX_LEASES, maxLocksPerTenant: MAX_LOCKS, maxConnectionsPerTenant: MAX_CONNECTIONS },
        log: { level: 'info' },
      });
      gws.push({ p, rest: restClient(p.base) });
    }
  });
  after(async () => {
    for (const g of gws) await g.p.kill();
    await zk?.close();
  });

  const grant = async (g: Node, ttlMs = 60_000): Promise<string> => {
    const r = await g.rest.json('POST', '/v1/leases', { ttlMs });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return (r.body as { id: string }).id;
  };
  const refused = (r: { status: number; body: unknown }, limit: string): void => {
    assert.equal(r.status, 429, JSON.stringify(r.body));
    const p = r.body as Problem;
    assert.equal(p.code, 'LIMIT_EXCEEDED');
    assert.equal(p.details?.limit, limit);
  };
  const listed = async (g: Node): Promise<{ id: string; instance: string }[]> => ((await g.rest.json('GET', '/v1/leases')).body as { leases: { id: string; instance: string }[] }).leases;
  const queue = async (g: Node, path: string): Promise<number> => {
    const r = (await g.rest.json('GET', `/v1/locks${path}`)).body as { holder: unknown; queue: unknown[] };
    return r.queue.length;
  };

  test('connections: two WebSockets through two instances; a third on the third instance is refused at the upgrade with 429 until one closes', async () => {
    const [q1, q2, q3] = gws as [Node, Node, Node];
    const ws = (g: Node): string => `${g.p.base.replace('http', 'ws')}/v1/ws`;
    const upgrade = (g: Node): Promise<number> =>
      new Promise((resolve, reject) => {
        const s = new WebSocket(ws(g));
        s.once('unexpected-response', (_req, res) => (res.resume(), resolve(res.statusCode ?? 0)));
        s.once('open', () => (s.close(), resolve(101)));
        s.once('error', reject);
      });
    const first = await WsTestClient.open(ws(q1));
    await sees(q2, 'connections', 1);
    const second = await WsTestClient.open(ws(q2));
    await sees(q3, 'connections', MAX_CONNECTIONS);
    assert.equal(await upgrade(q3), 429);
    assert.equal(await upgrade(q1), 429);
    first.ws.close();
    await sees(q3, 'connections', 1);
    assert.equal(await upgrade(q3), 101);
    second.ws.close();
    for (const g of gws) await sees(g, 'connections', 0);
  });

  test('leases and locks: the limit reached through different instances refuses the next on every instance; units come back on release, expiry and instance death', async () => {
    const [q1, q2, q3] = gws as [Node, Node, Node];
    // Four leases through three instances: each instance sees the previous ones before it grants.
    const l1 = await grant(q1);
    await sees(q2, 'leases', 1);
    const l2 = await grant(q2);
    await sees(q3, 'leases', 2);
    const l3 = await grant(q3);
    await sees(q1, 'leases', 3);
    const l4 = await grant(q1);
    for (const g of gws) await sees(g, 'leases', MAX_LEASES);
    for (const g of gws) refused(await g.rest.json('POST', '/v1/leases', { ttlMs: 60_000 }), 'maxLeasesPerTenant');
    // Nothing was granted by the refusals: every instance lists the tenant's four leases (the
    // listing covers the cluster), each with the instance holding it.
    for (const g of gws) {
      const list = await listed(g);
      assert.deepEqual(list.map((l) => l.id).sort(), [l1, l2, l3, l4].sort());
      assert.deepEqual(list.map((l) => l.instance).sort(), ['q1', 'q1', 'q2', 'q3']);
    }

    // Two locks through two instances; a third is refused on the third instance, locally and
    // when forwarded to the lease's holder, and no contender node is created.
    const [x, y, z] = [uniquePath('qx'), uniquePath('qy'), uniquePath('qz')];
    const hx = (await q2.rest.json('POST', `/v1/locks${x}`, { leaseId: l2 })).body as { node: string };
    await sees(q3, 'locks', 1);
    assert.equal((await q3.rest.json('POST', `/v1/locks${y}`, { leaseId: l3 })).status, 200);
    for (const g of gws) await sees(g, 'locks', MAX_LOCKS);
    refused(await q1.rest.json('POST', `/v1/locks${z}`, { leaseId: l1 }), 'maxLocksPerTenant');
    refused(await q3.rest.json('POST', `/v1/locks${z}`, { leaseId: l1 }), 'maxLocksPerTenant');
    assert.equal(await queue(q1, z), 0);

    // Release: a lock released on q2 lets q1 take one.
    assert.equal((await q2.rest.json('DELETE', `/v1/locks${x}`, undefined, { query: { leaseId: l2, node: hx.node } })).status, 200);
    await sees(q1, 'locks', 1);
    assert.equal((await q1.rest.json('POST', `/v1/locks${z}`, { leaseId: l1 })).status, 200);

    // Release: a lease revoked on q1 lets q2 grant one, which expires and lets q3 grant one.
    assert.equal((await q1.rest.json('DELETE', `/v1/leases/${l4}`)).status, 200);
    await sees(q2, 'leases', MAX_LEASES - 1);
    await grant(q2, 6000);
    await sees(q3, 'leases', MAX_LEASES);
    refused(await q3.rest.json('POST', '/v1/leases', { ttlMs: 60_000 }), 'maxLeasesPerTenant');
    await sees(q3, 'leases', MAX_LEASES - 1); // the 6 s lease expired on q2
    await grant(q3);
    for (const g of gws) await sees(g, 'leases', MAX_LEASES);

    // Death: q3 (two leases, one lock) is SIGKILLed; once ZooKeeper expires its registration's
    // session (10 s) its units come back, as its lock node goes with its tenant session.
    await q3.p.kill();
    await sees(q1, 'leases', 2, 30_000);
    await sees(q1, 'locks', 1);
    await grant(q1);
    await sees(q2, 'leases', 3);
    await grant(q2);
    await sees(q1, 'leases', MAX_LEASES);
    refused(await q1.rest.json('POST', '/v1/leases', { ttlMs: 60_000 }), 'maxLeasesPerTenant');
    assert.equal(await queue(q1, y), 0, 'the dead instance\'s lock node went with its session');
  });
});
