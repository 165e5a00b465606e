/**
 * A placed lease grant whose answer is lost leaves no lease on the tenant's home (docs/cluster.md
 * "Lease placement", "A placed grant whose answer is lost"). Three real `zkgate serve` processes
 * with `tenant` placement; the home's internal address is a TCP proxy of the test, so the home's
 * answers can be dropped while its requests still arrive, or everything cut. Without the token,
 * deadline and abandon, each case left an active lease on the home holding a unit of the tenant's
 * lease quota for its whole TTL (60 s here): the listing, the home's quota figure and a grant at
 * the limit below all see it. The last case drains the home with SIGTERM before the abandon can
 * reach it: the lease, handed over, must be revoked on the successor.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { serveListening, type Listening } from '../support/cli-process.js';
import { eventually } from '../support/test-gateway.js';
import { startZkServer, type ZkStandalone } from '../support/zk-server.js';
import { homeOf } from '../../src/core/cluster/cluster.js';

const SECRET = 'placement-lost-secret-0123456789abcdef';
const IDS = ['m1', 'm2', 'm3'] as const;
/** The default tenant's home, its next home (the home's successor in a handoff), and the instance asked. */
const H = homeOf('default', IDS) as string;
const S = homeOf('default', IDS.filter((i) => i !== H)) as string;
const O = IDS.find((i) => i !== H && i !== S) as string;
const MAX_LEASES = 3;

const prefix = (id: string): string => id.slice(0, id.indexOf('.'));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function rest(base: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await fetch(`${base}${path}`, { method, headers: body === undefined ? {} : { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  return { status: r.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}
async function grant(base: string): Promise<string> {
  const r = await rest(base, 'POST', '/v1/leases', { ttlMs: 60_000 });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body.id as string;
}
async function metric(base: string, line: RegExp): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  return Number(line.exec(text)?.[1] ?? 0);
}
const quotaUsed = (base: string, where: '' | '_elsewhere'): Promise<number> => metric(base, new RegExp(`^zkgate_tenant_quota_used${where}\\{tenant="default",kind="leases"\\} (\\d+)$`, 'm'));
/** The leases `instance` holds or remembers (ended ones too), as it lists them itself. */
async function heldBy(base: string, instance: string): Promise<{ id: string; state: string }[]> {
  const r = await rest(base, 'GET', '/v1/leases?ended=true');
  assert.equal(r.status, 200);
  return (r.body.leases as { id: string; state: string; instance: string }[]).filter((l) => l.instance === instance);
}
const heldByHome = (home: string): Promise<{ id: string; state: string }[]> => heldBy(home, H);

/**
 * A TCP proxy to `port`; while `mute` is set, what the target sends back is dropped; while `cut`
 * is set nothing passes either way and new connections are held unanswered (a partition).
 */
class Proxy {
  mute = false;
  cut = false;
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  port = 0;
  constructor(private readonly target: () => number) {
    this.server = createServer((c) => {
      if (this.cut) return void (this.sockets.add(c), c.on('error', () => undefined), c.on('close', () => this.sockets.delete(c)));
      const up = connect(this.target(), '127.0.0.1');
      c.on('data', (d) => void (this.cut || up.write(d)));
      up.on('data', (d) => void (this.mute || this.cut || c.write(d)));
      for (const [a, b] of [[c, up], [up, c]] as const) {
        this.sockets.add(a);
        a.on('error', () => b.destroy());
        a.on('close', () => (this.sockets.delete(a), b.destroy()));
      }
    });
  }
  async listen(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as { port: number }).port;
  }
  close(): void {
    for (const s of this.sockets) s.destroy();
    this.server.close();
  }
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as { port: number };
  await new Promise((r) => s.close(r));
  return port;
}

describe('cluster › a placed grant whose answer is lost leaves no lease on the home', () => {
  let zk: ZkStandalone;
  const gw: Record<string, Listening> = {};
  let homePort = 0;
  const proxy = new Proxy(() => homePort);

  before(async () => {
    zk = await startZkServer();
    await proxy.listen();
    homePort = await freePort();
    const config = (id: string): Record<string, unknown> => ({
      zookeeper: { connect: zk.connectString },
      instanceId: id,
      cluster: { secret: SECRET, forwardTimeoutMs: 5000, leasePlacement: 'tenant', ...(id === H ? { port: homePort, advertise: `http://127.0.0.1:${proxy.port}` } : {}) },
      instances: { path: `/zkgate-placement-lost/${process.pid}` },
      limits: { maxLeasesPerTenant: MAX_LEASES },
    });
    await Promise.all(IDS.map(async (id) => (gw[id] = await serveListening([], config(id)))));
    for (const id of IDS) {
      await eventually(async () => ((await rest(gw[id]!.base, 'GET', '/readyz')).body as { cluster?: { members: unknown[] } }).cluster?.members.length === 3, 10_000, `${id} to see three members`);
    }
  });
  after(async () => {
    gw[H]?.proc.kill('SIGCONT');
    await Promise.all(Object.values(gw).map((g) => g.kill()));
    proxy.close();
    await zk?.close();
  });

  test('a home stopped past the deadline: the grant it reads on waking is refused, the quota stays free', async () => {
    const home = gw[H]!;
    const other = gw[O]!;
    // Opens the persistent connection to the home: the next grant's frame is then delivered
    // into the stopped process's socket, to be read when it wakes.
    const a = await grant(other.base);
    assert.equal(prefix(a), H);
    home.proc.kill('SIGSTOP');
    let b: string;
    try {
      b = await grant(other.base); // the home does not answer within 2 s: granted here
      assert.equal(prefix(b), O);
      await sleep(1000);
    } finally {
      home.proc.kill('SIGCONT');
    }
    await eventually(async () => (await quotaUsed(home.base, '_elsewhere')) === 1, 10_000, 'the home to see the fallback lease\'s unit');
    await sleep(1500); // the home reads the grant (and the abandon) it was sent while stopped
    assert.deepEqual((await heldByHome(home.base)).map((l) => l.id), [a], 'no lease granted on the home for the lost answer');
    assert.equal(await quotaUsed(home.base, ''), 1, 'the home counts only the lease it answered');
    // At the limit of 3: a, b and this one. An orphan on the home would make this 429.
    const c = await grant(other.base);
    assert.equal(prefix(c), H);
    for (const id of [a, b, c]) assert.equal((await rest(other.base, 'DELETE', `/v1/leases/${id}`)).status, 200);
  });

  test('a home that granted but whose answer was lost: the lease is revoked there, its unit given back', async () => {
    const home = gw[H]!;
    const other = gw[O]!;
    const known = new Set((await heldByHome(home.base)).map((l) => l.id));
    proxy.mute = true;
    let b: string;
    try {
      b = await grant(other.base); // granted on the home, its answer dropped: granted here too
      assert.equal(prefix(b), O);
      const orphan = await eventually(async () => (await heldByHome(home.base)).find((l) => !known.has(l.id)), 10_000, 'the home to have granted the lease');
      // Told (while its answers are still dropped) that the caller gave up: revoked.
      await eventually(async () => (await heldByHome(home.base)).find((l) => l.id === orphan.id)?.state === 'revoked', 10_000, `the home's lease ${orphan.id} to be revoked`);
      await eventually(async () => (await quotaUsed(home.base, '')) === 0, 5000, 'the home to give the unit back');
    } finally {
      proxy.mute = false;
    }
    assert.equal((await rest(other.base, 'DELETE', `/v1/leases/${b}`)).status, 200);
  });

  // Last: the home exits.
  test('the home hands its leases over before the abandon reaches it: the abandon goes to its successor, which revokes the lease', async () => {
    const home = gw[H]!;
    const other = gw[O]!;
    const successor = gw[S]!;
    const known = new Set((await heldByHome(home.base)).map((l) => l.id));
    proxy.mute = true;
    const granting = grant(other.base); // granted on the home, its answer dropped: granted here too
    granting.catch(() => undefined); // awaited below
    // Once the home has granted, the path from the instance asked to the home is cut, so that no
    // abandon reaches the home before it hands its leases over and exits.
    const orphan = (await eventually(async () => (await heldByHome(home.base)).find((l) => !known.has(l.id)), 10_000, 'the home to have granted the lease')).id;
    proxy.cut = true;
    const b = await granting;
    assert.equal(prefix(b), O);
    home.proc.kill('SIGTERM');
    assert.equal(await home.exited, 0);
    // The successor holds the orphan now, alive (the abandon has reached nobody yet) and counted.
    const adopted = (await heldBy(successor.base, S)).find((l) => l.id === orphan);
    assert.equal(adopted?.state, 'active', `the successor holds ${orphan}: ${JSON.stringify(adopted)}`);
    assert.equal(await quotaUsed(successor.base, ''), 1);
    // The home's address now refuses (it exited); the abandon, retried, must reach the successor.
    proxy.close();
    await eventually(async () => (await heldBy(successor.base, S)).find((l) => l.id === orphan)?.state === 'revoked', 15_000, `the successor to revoke ${orphan}`);
    await eventually(async () => (await quotaUsed(successor.base, '')) === 0, 5000, 'the successor to give the unit back');
    assert.equal((await rest(other.base, 'DELETE', `/v1/leases/${b}`)).status, 200);
  });
});
