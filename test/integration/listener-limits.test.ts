/**
 * Issue 17 item 5: listener limits, measured as open connections on the server side.
 * - bounds: per listener and per client address (127.0.0.2, .3… are other clients on loopback),
 *   with a clear refusal (plaintext HTTP: 429 LIMIT_EXCEEDED naming the bound; gRPC: closed);
 * - deadlines that really close slow or silent HTTP connections (slowloris headers, a silent
 *   socket, a trickled body, an idle keep-alive) while answers may take longer (long-poll,
 *   WebSocket); gRPC connections that never send the HTTP/2 preface, stop answering pings or sit
 *   idle are closed, calls and streams in use are not;
 * - with TLS: a handshake never finished is cut; a connection past its maximum age gets GOAWAY;
 * - a client that never closes its side cannot keep a socket the gateway has ended (an HTTP/2
 *   session closed gracefully only ends its socket), and closing the gateway destroys every
 *   connection it accepted, whatever the clients do.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as h2connect } from 'node:http2';
import type { ClientDuplexStream } from '@grpc/grpc-js';
import { startGateway, type RunningGateway } from '../../src/main.js';
import { validateConfig } from '../../src/config/schema.js';
import { silentLogger } from '../../src/core/index.js';
import { startZkServer, type ZkStandalone } from '../support/zk-server.js';
import { makeTestCert, type TestCert } from '../support/tls.js';
import { eventually } from '../support/test-gateway.js';
import { grpcClient } from '../support/grpc-client.js';
import { readStream, type Msg } from '../support/grpc-streams.js';
import { WsTestClient } from '../support/ws-client.js';
import { H2, h2Frames, idleH2Client, rawConnect, sleep, upgradeRequest, type RawConn, type RawOptions } from '../support/raw-conn.js';

let zk: ZkStandalone;
let cert: TestCert;
before(async () => {
  zk = await startZkServer();
  cert = makeTestCert();
});
after(async () => {
  await zk?.close();
});

async function gateway(http: Record<string, unknown>, grpc: Record<string, unknown>, tls = false): Promise<RunningGateway> {
  return startGateway(
    validateConfig({
      zookeeper: { connect: zk.connectString },
      http: { port: 0, ...http },
      grpc,
      log: { level: 'silent' },
      tenants: [{ name: 'default', sessionTimeoutMs: 10_000 }],
      ...(tls ? { tls: { certFile: cert.certFile, keyFile: cert.keyFile } } : {}),
    }),
    silentLogger,
  );
}

/** GET `path` over a fresh raw connection; resolves with the answer. */
async function rawGet(opts: RawOptions, path: string): Promise<{ status: number; body: string }> {
  const c = await rawConnect(opts);
  c.socket.write(`GET ${path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n`);
  const res = await c.response();
  c.reset();
  return res;
}

/** The value of one series in a /metrics scrape (0 when absent). */
async function metric(port: number, series: string): Promise<number> {
  const body = (await rawGet({ port }, '/metrics')).body;
  const line = body.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.split(' ')[1]) : 0;
}

function resetAll(conns: RawConn[]): void {
  for (const c of conns) c.reset();
}

describe('connection bounds per listener and per client address', () => {
  let gw: RunningGateway;
  before(async () => {
    gw = await gateway({ maxConnections: 24, maxConnectionsPerAddress: 8 }, { maxConnections: 24, maxConnectionsPerAddress: 8 });
  });
  after(async () => {
    await gw?.close();
  });

  test('HTTP: past the per-address bound a client gets 429 naming it; other addresses are served', async () => {
    const held = await Promise.all(Array.from({ length: 8 }, () => rawConnect({ port: gw.httpPort, localAddress: '127.0.0.2' })));
    await eventually(() => gw.connections().http === 8, 5000, 'eight connections held');
    const refused = await rawConnect({ port: gw.httpPort, localAddress: '127.0.0.2' });
    const res = await refused.response();
    assert.equal(res.status, 429);
    const p = JSON.parse(res.body) as { code: string; details: { limit: string; max: number } };
    assert.deepEqual([p.code, p.details.limit, p.details.max], ['LIMIT_EXCEEDED', 'http.maxConnectionsPerAddress', 8]);
    await refused.closed;
    assert.equal((await rawGet({ port: gw.httpPort, localAddress: '127.0.0.3' }, '/healthz')).status, 200);
    assert.equal(gw.connections().http <= 9, true);
    resetAll(held);
    await eventually(() => gw.connections().http === 0, 5000, 'every connection closed');
    assert.ok((await metric(gw.httpPort, 'zkgate_listener_refused_connections_total{listener="http",limit="maxConnectionsPerAddress"}')) >= 1);
  });

  test('HTTP: 200 connections from 25 addresses never hold more than maxConnections', async () => {
    const conns = await Promise.all(Array.from({ length: 200 }, (_, i) => rawConnect({ port: gw.httpPort, localAddress: `127.0.1.${1 + (i % 25)}` })));
    await eventually(() => conns.filter((c) => c.isClosed()).length === 176, 10_000, '176 refusals');
    assert.equal(gw.connections().http, 24);
    const answers = conns.filter((c) => c.isClosed()).map((c) => c.received().toString('latin1'));
    assert.ok(answers.every((a) => a.startsWith('HTTP/1.1 429 ') && a.includes('http.maxConnections')), answers[0]);
    resetAll(conns);
    await eventually(() => gw.connections().http === 0, 5000, 'every connection closed');
    const busiest = await metric(gw.httpPort, 'zkgate_listener_busiest_address_connections{listener="http"}');
    assert.equal(busiest, 1, 'the scrape itself is the only connection');
  });

  test('gRPC: connections past the bounds are closed at once; other clients are served', async () => {
    const held = await Promise.all(Array.from({ length: 8 }, () => rawConnect({ port: gw.grpcPort, localAddress: '127.0.0.2' })));
    await eventually(() => gw.connections().grpc === 8, 5000, 'eight connections held');
    const refused = await rawConnect({ port: gw.grpcPort, localAddress: '127.0.0.2' });
    await refused.closed;
    assert.equal(refused.received().length, 0);
    const c = grpcClient(gw.grpcPort);
    try {
      await c.unary('Znodes', 'Exists', { path: '/' });
      const more = await Promise.all(Array.from({ length: 40 }, (_, i) => rawConnect({ port: gw.grpcPort, localAddress: `127.0.2.${1 + (i % 8)}` })));
      await sleep(300);
      assert.ok(gw.connections().grpc <= 24, `${gw.connections().grpc} connections held`);
      await c.unary('Znodes', 'Exists', { path: '/' }); // its connection is still there
      resetAll([...held, ...more]);
    } finally {
      c.close();
    }
    await eventually(() => gw.connections().grpc === 0, 5000, 'every connection closed');
  });
});

describe('deadlines close slow and silent connections (plaintext)', () => {
  let gw: RunningGateway;
  const http = { headersTimeoutMs: 1000, requestTimeoutMs: 2000, idleTimeoutMs: 1000 };
  const grpc = { handshakeTimeoutMs: 1000, maxConnectionIdleMs: 2000, keepaliveTimeMs: 1000, keepaliveTimeoutMs: 1000 };
  before(async () => {
    gw = await gateway(http, grpc);
  });
  after(async () => {
    await gw?.close();
  });

  test('slowloris: 40 connections trickling header bytes are all answered 408 and closed', async () => {
    const conns = await Promise.all(Array.from({ length: 40 }, () => rawConnect({ port: gw.httpPort })));
    const head = 'GET /healthz HTTP/1.1\r\nhost: localhost\r\nx-slow: ' + 'a'.repeat(200);
    let i = 0;
    const drip = setInterval(() => {
      for (const c of conns) if (!c.isClosed()) c.socket.write(head[i % head.length] as string);
      i++;
    }, 200);
    try {
      await eventually(() => conns.every((c) => c.isClosed()), 15_000, 'every trickling connection closed');
    } finally {
      clearInterval(drip);
    }
    assert.ok(conns.every((c) => c.received().toString('latin1').startsWith('HTTP/1.1 408 ')));
    await eventually(() => gw.connections().http === 0, 5000, 'no connection left');
  });

  test('silent connections, a trickled body and an idle keep-alive connection are closed', async () => {
    const silent = await Promise.all(Array.from({ length: 20 }, () => rawConnect({ port: gw.httpPort })));
    const body = await rawConnect({ port: gw.httpPort });
    body.socket.write('POST /v1/nodes/slow-body HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{');
    const drip = setInterval(() => body.isClosed() || body.socket.write(' '), 200);
    const idle = await rawConnect({ port: gw.httpPort });
    idle.socket.write('GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n');
    assert.equal((await idle.response()).status, 200);
    try {
      await eventually(() => [...silent, body, idle].every((c) => c.isClosed()), 15_000, 'every slow or silent connection closed');
    } finally {
      clearInterval(drip);
    }
    assert.match(body.received().toString('latin1'), /^HTTP\/1.1 408 /);
    assert.ok((await metric(gw.httpPort, 'zkgate_listener_timeouts_total{listener="http",phase="request"}')) >= 21);
  });

  test('answers may take longer than the request deadline: a long-poll and a WebSocket stay up', async () => {
    const base = `http://127.0.0.1:${gw.httpPort}`;
    assert.equal((await fetch(`${base}/v1/nodes/lp`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"data":"x"}' })).status, 201);
    const index = (await fetch(`${base}/v1/nodes/lp`)).headers.get('x-zkgate-index') ?? '';
    const ws = await WsTestClient.open(`ws://127.0.0.1:${gw.httpPort}/v1/ws`);
    const poll = await fetch(`${base}/v1/nodes/lp?wait=3000&index=${index}`);
    assert.equal(poll.status, 200);
    assert.equal(poll.headers.get('x-zkgate-unchanged'), 'true');
    ws.send({ op: 'ping', data: 'still here' });
    assert.equal((await ws.take((m) => m.type === 'pong')).data, 'still here');
    ws.close();
  });

  test('gRPC: no preface, a partial preface, or unanswered pings: closed; a busy stream outlives maxConnectionIdleMs', async () => {
    const silent = await rawConnect({ port: gw.grpcPort });
    const partial = await rawConnect({ port: gw.grpcPort });
    partial.socket.write('PRI * HTTP/2.0\r\n');
    const deaf = await rawConnect({ port: gw.grpcPort });
    // The preface and an empty SETTINGS frame, then nothing: pings and the idle bound go unanswered.
    deaf.socket.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1'), Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])]));
    const c = grpcClient(gw.grpcPort);
    try {
      const stream = (c.services.Watch as unknown as { Watch(md: unknown): ClientDuplexStream<Msg, Msg> }).Watch(c.metadata());
      const reader = readStream(stream);
      stream.write({ subscribe: { id: 'w', path: '/busy', kind: 'WATCH_KIND_DATA' } });
      await reader.next((m) => m.type === 'WATCH_RESPONSE_TYPE_SUBSCRIBED');
      await eventually(() => silent.isClosed() && partial.isClosed() && deaf.isClosed(), 15_000, 'the three connections closed');
      await sleep(2500); // past maxConnectionIdleMs with the stream open
      await c.unary('Znodes', 'Create', { path: '/busy', data: Buffer.from('x') });
      await reader.next((m) => m.type === 'WATCH_RESPONSE_TYPE_EVENT' && (m.event as Msg).type === 'created');
      stream.cancel();
      await c.unary('Znodes', 'Exists', { path: '/busy' });
    } finally {
      c.close();
    }
    assert.ok((await metric(gw.httpPort, 'zkgate_listener_timeouts_total{listener="grpc",phase="preface"}')) >= 2);
  });
});

test('gRPC: an idle connection gets GOAWAY after maxConnectionIdleMs; a client that never closes its side is cut', async () => {
  const gw = await gateway({}, { maxConnectionIdleMs: 2500, keepaliveTimeMs: 1000, keepaliveTimeoutMs: 5000 });
  try {
    const started = Date.now();
    const idle = await rawConnect({ port: gw.grpcPort });
    idleH2Client(idle); // answers the keepalive pings, so only the idle bound can end it
    // and pings itself every 200 ms: grpc-js has no ping strikes, but pings are not calls.
    const ping = setInterval(() => idle.isClosed() || idle.socket.write(Buffer.from([0, 0, 8, H2.PING, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8])), 200);
    ping.unref();
    const frames = h2Frames(await idle.until((b) => h2Frames(b).some((f) => f.type === H2.GOAWAY), 15_000));
    assert.ok(Date.now() - started >= 2400, `GOAWAY after ${Date.now() - started} ms, before maxConnectionIdleMs`);
    assert.ok(frames.some((f) => f.type === H2.PING), 'keepalive pings were sent (and answered)');
    clearInterval(ping);
    assert.ok(frames.filter((f) => f.type === H2.PING && f.flags & 0x1).length >= 5, 'the client pings were acknowledged');
    assert.equal(frames.find((f) => f.type === H2.GOAWAY)?.payload.readUInt32BE(4), 0, 'NO_ERROR: please reconnect');
    await idle.closed; // the gateway's FIN; this client never sends its own
    await eventually(() => gw.connections().grpc === 0, 15_000, 'the half-closed connection dropped by the gateway');
  } finally {
    await gw.close();
  }
});

for (const tls of [false, true]) {
  test(`closing the gateway destroys every connection it accepted, whatever the clients do (${tls ? 'TLS' : 'plain'})`, async () => {
    const gw = await gateway({}, {}, tls);
    const at = (port: number, alpn?: string[]): RawOptions => (tls ? { port, ca: cert.cert, ...(alpn ? { alpn } : {}) } : { port });
    const h2 = await rawConnect(at(gw.grpcPort, ['h2']));
    idleH2Client(h2); // a live HTTP/2 session that will never send its FIN
    const noPreface = await rawConnect(at(gw.grpcPort, ['h2']));
    const ws = await rawConnect(at(gw.httpPort));
    ws.socket.write(upgradeRequest('/v1/ws')); // upgraded, then deaf to the close frame
    const refused = await rawConnect(at(gw.httpPort));
    refused.socket.write(upgradeRequest('/v1/elsewhere'));
    const headers = await rawConnect(at(gw.httpPort));
    headers.socket.write('GET /healthz HTTP/1.1\r\n'); // headers never finished
    assert.match((await ws.until((b) => b.includes('\r\n\r\n'))).toString('latin1'), /^HTTP\/1.1 101 /);
    assert.equal((await refused.response()).status, 404);
    await h2.until((b) => h2Frames(b).some((f) => f.type === H2.SETTINGS));
    assert.deepEqual(gw.connections(), { http: 3, grpc: 2, cluster: 0 }); // no cluster listener when alone
    await gw.close();
    await eventually(() => gw.connections().http === 0 && gw.connections().grpc === 0, 4000, 'no accepted connection left after close');
    await eventually(() => [h2, noPreface, ws, refused, headers].every((c) => c.isClosed()), 4000, 'every client saw its connection end');
    resetAll([h2, noPreface, ws, refused, headers]);
  });
}

describe('deadlines and connection age with TLS', () => {
  let gw: RunningGateway;
  before(async () => {
    gw = await gateway({ headersTimeoutMs: 1000, requestTimeoutMs: 2000 }, { handshakeTimeoutMs: 1000, maxConnectionAgeMs: 1500, maxConnectionAgeGraceMs: 500 }, true);
  });
  after(async () => {
    await gw?.close();
  });

  test('a TLS handshake never started or never finished is cut on both listeners', async () => {
    const conns = await Promise.all([gw.httpPort, gw.grpcPort, gw.httpPort, gw.grpcPort].map((port) => rawConnect({ port })));
    conns[2]?.socket.write(Buffer.from([0x16, 0x03, 0x01])); // the start of a ClientHello, no more
    conns[3]?.socket.write(Buffer.from([0x16, 0x03, 0x01]));
    await eventually(() => conns.every((c) => c.isClosed()), 15_000, 'every unfinished handshake cut');
    await eventually(() => gw.connections().http === 0 && gw.connections().grpc === 0, 5000, 'no connection left');
  });

  test('after the handshake: slow headers (HTTPS) and a missing preface (gRPC) are cut', async () => {
    const https = await rawConnect({ port: gw.httpPort, ca: cert.cert });
    https.socket.write('GET /healthz HTTP/1.1\r\n');
    const grpc = await rawConnect({ port: gw.grpcPort, ca: cert.cert, alpn: ['h2'] });
    await eventually(() => https.isClosed() && grpc.isClosed(), 15_000, 'both cut');
  });

  test('a connection past maxConnectionAgeMs gets GOAWAY and is closed; calls on a new one work', async () => {
    const session = h2connect(`https://localhost:${gw.grpcPort}`, { ca: cert.cert });
    session.on('error', () => undefined);
    const goaway = new Promise<number>((resolve) => session.once('goaway', (code: number) => resolve(code)));
    const closed = new Promise<void>((resolve) => session.once('close', () => resolve()));
    assert.equal(await goaway, 0); // NO_ERROR: "please reconnect"
    await closed;
    const c = grpcClient(gw.grpcPort, { ca: cert.cert });
    try {
      await c.unary('Znodes', 'Exists', { path: '/' });
    } finally {
      c.close();
    }
  });
});
