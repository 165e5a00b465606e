/**
 * The internal channel inside TLS (issue 11, docs/cluster.md "TLS on the internal channel"): each
 * instance's internal listener is fronted by a TLS terminator on loopback (a `node:tls` server
 * piping to the plain cluster port, as haproxy `mode tcp` with `ssl crt` or a mesh sidecar would)
 * and advertised as `https://127.0.0.1:<tls port>`; the certificate is made at test time and the
 * calling gateways trust it through NODE_EXTRA_CA_CERTS (real `zkgate serve` processes: Node reads
 * it at start). Forwarded calls travel as frames on the persistent `wss://` connection — the
 * terminator sees the decrypted upgrade and no POST — a forwarded wait is cancelled across it, and
 * an instance that does not trust the certificate answers 503 owner_unreachable at once, naming the
 * certificate error, instead of hanging, and its lease listing names the others `untrusted`.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createNetServer, connect as netConnect, type AddressInfo, type Socket } from 'node:net';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import { readFileSync, rmSync } from 'node:fs';
import { serveListening, type Listening } from '../support/cli-process.js';
import { eventually, startTestGateway, uniquePath, type TestGateway } from '../support/test-gateway.js';
import { makeTestCert, type TestCert } from '../support/tls.js';
import { grpcClient } from '../support/grpc-client.js';
import { WsTestClient } from '../support/ws-client.js';
import { startZkServer, type ZkStandalone } from '../support/zk-server.js';

const SECRET = 'cluster-tls-secret-0123456789abcdef01';
const INSTANCES = `/zkgate-tls/${process.pid}`;

/** A TLS terminator in front of one plain port, keeping what it decrypted (the client's side). */
interface Terminator {
  readonly port: number;
  /** TLS handshakes completed. */
  handshakes: number;
  /** Connections it holds open to the plain port now. */
  open: number;
  /** Everything the TLS clients sent, decrypted, one string per connection (latin1). */
  readonly seen: string[];
  readonly server: TlsServer;
}

async function freePort(): Promise<number> {
  const s = createNetServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

async function terminator(cert: TestCert, upstreamPort: number): Promise<Terminator> {
  const t: Terminator = { port: 0, handshakes: 0, open: 0, seen: [], server: null as unknown as TlsServer };
  const sockets = new Set<Socket>();
  const server = createTlsServer({ cert: cert.cert, key: readFileSync(cert.keyFile) }, (tls) => {
    t.handshakes++;
    const i = t.seen.push('') - 1;
    const up = netConnect(upstreamPort, '127.0.0.1');
    t.open++;
    sockets.add(tls).add(up);
    up.once('close', () => void t.open--);
    tls.on('data', (d: Buffer) => void (t.seen[i] += d.toString('latin1')));
    tls.pipe(up).pipe(tls);
    const end = (): void => {
      tls.destroy();
      up.destroy();
    };
    tls.on('error', end).on('close', end);
    up.on('error', end).on('close', end);
  });
  server.on('close', () => sockets.forEach((s) => s.destroy()));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return Object.assign(t, { port: (server.address() as AddressInfo).port, server });
}

describe('cluster › the internal channel behind TLS terminators, with an https advertise address', () => {
  let zk: ZkStandalone;
  let cert: TestCert;
  let gw1: Listening;
  let gw2: Listening;
  let gw3: TestGateway;
  let gw4: TestGateway;
  let t1: Terminator;
  let t2: Terminator;

  const rest = async (base: string, method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<{ status: number; body: Record<string, unknown> }> => {
    const r = await fetch(`${base}${path}`, { method, headers: body === undefined ? {} : { 'content-type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }), ...(signal ? { signal } : {}) });
    return { status: r.status, body: (await r.json()) as Record<string, unknown> };
  };
  const grant = async (base: string): Promise<string> => {
    const r = await rest(base, 'POST', '/v1/leases', { ttlMs: 60_000 });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return r.body.id as string;
  };
  const clusterConnections = async (base: string): Promise<number> =>
    Number(/^zkgate_listener_connections\{listener="cluster"\} (\d+)$/m.exec(await (await fetch(`${base}/metrics`)).text())?.[1] ?? NaN);

  before(async () => {
    zk = await startZkServer();
    cert = makeTestCert();
    const [p1, p2] = [await freePort(), await freePort()];
    [t1, t2] = [await terminator(cert, p1), await terminator(cert, p2)];
    const config = (id: string, port: number, t: Terminator): Record<string, unknown> => ({
      zookeeper: { connect: zk.connectString },
      http: { bind: '127.0.0.1' },
      tenants: [{ name: 'default', sessionTimeoutMs: 6000 }],
      instanceId: id,
      cluster: { secret: SECRET, port, bind: '127.0.0.1', advertise: `https://127.0.0.1:${t.port}`, forwardTimeoutMs: 5000, leasePlacement: 'local' },
      instances: { path: INSTANCES },
    });
    // The callers trust the private CA the standard Node way; the CLI needs nothing of its own.
    const trust = { NODE_EXTRA_CA_CERTS: cert.certFile };
    [gw1, gw2] = await Promise.all([serveListening([], config('tls-a', p1, t1), trust), serveListening([], config('tls-b', p2, t2), trust)]);
    // A member that does not trust the certificate (this test process has no NODE_EXTRA_CA_CERTS).
    gw3 = await startTestGateway(zk.connectString, { instanceId: 'tls-c', cluster: { secret: SECRET, forwardTimeoutMs: 5000, leasePlacement: 'local' }, instances: { path: INSTANCES } });
    // A member without TLS on its internal address: every member reaches it.
    gw4 = await startTestGateway(zk.connectString, { instanceId: 'tls-d', cluster: { secret: SECRET, forwardTimeoutMs: 5000, leasePlacement: 'local' }, instances: { path: INSTANCES } });
    for (const base of [gw1.base, gw2.base, gw3.base, gw4.base])
      await eventually(async () => ((await rest(base, 'GET', '/readyz')).body.cluster as { members: unknown[] } | undefined)?.members.length === 4, 20_000, `${base} to see four members`);
  });
  after(async () => {
    await gw4?.close();
    await gw3?.close();
    await Promise.all([gw2?.kill(), gw1?.kill()]);
    for (const t of [t1, t2]) t?.server.close();
    await zk?.close();
    if (cert) rmSync(cert.dir, { recursive: true, force: true });
  });

  test('a lease of gw1 kept alive, locked and released through gw2: frames on one wss:// connection, nothing on the plain port but the terminator', async () => {
    const members = (await rest(gw2.base, 'GET', '/readyz')).body.cluster as { members: { id: string; address: string }[] };
    assert.equal(members.members.find((m) => m.id === 'tls-a')?.address, `https://127.0.0.1:${t1.port}`);
    const id = await grant(gw1.base);
    assert.match(id, /^tls-a\./);
    const path = uniquePath('tls');
    const kept = await rest(gw2.base, 'POST', `/v1/leases/${id}/keepalive`);
    assert.equal(kept.status, 200, JSON.stringify(kept.body));
    const hold = await rest(gw2.base, 'POST', `/v1/locks${path}`, { leaseId: id });
    assert.equal(hold.status, 200, JSON.stringify(hold.body));
    assert.equal(hold.body.leaseId, id);
    const rel = await rest(gw2.base, 'DELETE', `/v1/locks${path}?leaseId=${encodeURIComponent(id)}&node=${encodeURIComponent(hold.body.node as string)}`);
    assert.equal(rel.status, 200, JSON.stringify(rel.body));
    assert.equal((await rest(gw1.base, 'GET', `/v1/locks${path}`)).body.holder, null);

    // The terminator decrypted a signed WebSocket upgrade and no POSTed call: the calls went as
    // frames inside TLS, on one connection (a POST fallback would show `POST /cluster/v1/call`).
    const all = t1.seen.join('\n');
    assert.equal(t1.seen.filter((s) => s.startsWith('GET /cluster/v1/frames HTTP/1.1\r\n')).length, 1, all.slice(0, 2000));
    assert.match(all, /\r\nupgrade: websocket\r\n/i);
    assert.doesNotMatch(all, /POST \/cluster\/v1\/call/);
    assert.ok(t1.handshakes >= 1);
    // Every connection gw1's internal listener holds came through its terminator: the peer never
    // reached the plain port itself (it does not know it).
    await eventually(async () => (await clusterConnections(gw1.base)) === t1.open, 5000, `gw1's cluster connections (${await clusterConnections(gw1.base)}) to be the terminator's (${t1.open})`);
    assert.ok(t1.open >= 1);
  });

  test('the other way: a lease of gw2 used through gw1, over gw2\'s terminator', async () => {
    const id = await grant(gw2.base);
    const kept = await rest(gw1.base, 'POST', `/v1/leases/${id}/keepalive`);
    assert.equal(kept.status, 200, JSON.stringify(kept.body));
    assert.equal(t2.seen.filter((s) => s.startsWith('GET /cluster/v1/frames HTTP/1.1\r\n')).length, 1);
    assert.doesNotMatch(t2.seen.join('\n'), /POST \/cluster\/v1\/call/);
  });

  test('a lock wait forwarded over TLS is cancelled on the holder when the client goes away', async () => {
    const path = uniquePath('tls-cancel');
    const holder = await grant(gw1.base);
    const waiter = await grant(gw1.base);
    const held = await rest(gw1.base, 'POST', `/v1/locks${path}`, { leaseId: holder });
    assert.equal(held.status, 200);
    const ac = new AbortController();
    const pending = rest(gw2.base, 'POST', `/v1/locks${path}`, { leaseId: waiter, waitMs: 30_000 }, ac.signal).catch((e: Error) => e);
    const queue = async (): Promise<string[]> => ((await rest(gw1.base, 'GET', `/v1/locks${path}`)).body.queue as { node: string }[]).map((q) => q.node);
    await eventually(async () => (await queue()).length === 2, 10_000, 'the forwarded waiter queued on gw1');
    ac.abort();
    assert.ok((await pending) instanceof Error);
    await eventually(async () => (await queue()).length === 1, 10_000, 'the waiter node to go');
    assert.deepEqual(await queue(), [held.body.node]);
    const info = (await rest(gw1.base, 'GET', `/v1/leases/${waiter}`)).body;
    assert.deepEqual([info.state, info.owned], ['active', []]);
    // Still one upgrade, still no POSTed call: the wait and its cancel frame went on the same connection.
    assert.equal(t1.seen.filter((s) => s.startsWith('GET /cluster/v1/frames')).length, 1);
    assert.doesNotMatch(t1.seen.join('\n'), /POST \/cluster\/v1\/call/);
  });

  test('a member that does not trust the certificate: 503 owner_unreachable naming the certificate error, at once, nothing done', async () => {
    const id = await grant(gw1.base);
    const handshakes = t1.handshakes;
    const started = Date.now();
    const r = await rest(gw3.base, 'POST', `/v1/leases/${id}/keepalive`);
    assert.equal(r.status, 503, JSON.stringify(r.body));
    const details = r.body.details as Record<string, unknown>;
    assert.equal(r.body.code, 'UNAVAILABLE');
    assert.equal(details.reason, 'owner_unreachable');
    assert.equal(details.instance, 'tls-a');
    assert.match(r.body.detail as string, /TLS certificate .* not trusted/, r.body.detail as string);
    assert.equal(details.outcome, 'not_applied');
    // Refused by the certificate check, not by waiting out forwardTimeoutMs (5 s).
    assert.ok(Date.now() - started < 4000, `took ${Date.now() - started} ms`);
    // The terminator saw handshakes begin and no request get through.
    assert.equal(t1.handshakes, handshakes);
    // gw3 is still up and serves its own calls.
    assert.equal((await rest(gw3.base, 'GET', '/readyz')).status, 200);
  });

  test('a lease listing through a member that does not trust the certificate names the others as untrusted, on every transport', async () => {
    const id = await grant(gw3.base);
    interface Listed {
      leases: { id: string }[];
      incomplete?: boolean;
      unanswered?: { instance: string; reason: string }[];
    }
    const rest3 = (await gw3.rest.json('GET', '/v1/leases')).body as Listed; // checked against openapi.yaml
    const grpc = grpcClient(gw3.running.grpcPort);
    const ws = await WsTestClient.open(`${gw3.base.replace('http', 'ws')}/v1/ws`);
    try {
      const g = await grpc.unary<Listed>('Leases', 'List', {});
      ws.send({ op: 'call', id: 'list', method: 'Leases.List', params: {} });
      const w = (await ws.take((m) => m.id === 'list')).result as Listed;
      const untrusted = [
        { instance: 'tls-a', reason: 'untrusted' },
        { instance: 'tls-b', reason: 'untrusted' },
      ];
      for (const [transport, l] of [['rest', rest3], ['grpc', g], ['ws', w]] as const) {
        assert.deepEqual([l.leases.map((x) => x.id), l.incomplete, l.unanswered], [[id], true, untrusted], transport);
      }
    } finally {
      ws.ws.close();
      grpc.close();
    }
    assert.equal((await rest(gw3.base, 'DELETE', `/v1/leases/${id}`)).status, 200);
  });

  // Last: tls-c shuts down.
  test('a member that does not trust the others hands its leases over to one it can reach, passing over the untrusted ones', async () => {
    const quota = async (base: string, where: '' | '_elsewhere'): Promise<number> =>
      Number(new RegExp(`^zkgate_tenant_quota_used${where}\\{tenant="default",kind="leases"\\} (\\d+)$`, 'm').exec(await (await fetch(`${base}/metrics`)).text())?.[1] ?? 0);
    // The successor is the member holding the fewest leases: tls-d holds the most, so tls-a and
    // tls-b (whose certificate tls-c does not trust) come first.
    const extra: string[] = [];
    const most = Math.max(await quota(gw1.base, ''), await quota(gw2.base, ''));
    while (extra.length <= most) extra.push(await grant(gw4.base));
    const id = await grant(gw3.base);
    const others = [gw1.base, gw2.base, gw4.base];
    await eventually(async () => (await quota(gw3.base, '_elsewhere')) === (await Promise.all(others.map((b) => quota(b, '')))).reduce((a, b) => a + b), 10_000, 'tls-c to see the others\' leases');
    await gw3.running.shutdown();
    // The lease lives on tls-d: kept alive, listed there.
    const kept = await rest(gw4.base, 'POST', `/v1/leases/${id}/keepalive`);
    assert.equal(kept.status, 200, JSON.stringify(kept.body));
    const listed = ((await rest(gw4.base, 'GET', '/v1/leases')).body.leases as { id: string; instance: string }[]).find((l) => l.id === id);
    assert.equal(listed?.instance, 'tls-d');
    for (const l of [...extra, id]) assert.equal((await rest(gw4.base, 'DELETE', `/v1/leases/${l}`)).status, 200);
  });
});
