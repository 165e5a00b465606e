/**
 * Issue 9: hostile networks, as a matrix over listeners × stages × endings, plain and TLS.
 * Listeners and transports: REST, WebSocket, SSE, long-poll, gRPC (unary and streams) and the
 * cluster's internal listener (HMAC-signed HTTP between instances, docs/cluster.md). Stages:
 * during the request head (or the TLS / HTTP/2 preface), during a body, right after a refusal,
 * mid-stream (with a lease, a lock node and a subscription held), and a trickling sender. Each is
 * ended by a TCP reset (SO_LINGER 0) and by a half-close (FIN, then the client keeps its socket);
 * garbage after a valid WebSocket upgrade and inside an HTTP/2 connection are cases of their own.
 * After every case the gateway must still be up and answering, with nothing left behind: no
 * accepted connection (`zkgate_listener_*`), no quota unit, no lease, no ZooKeeper node (mntr
 * `zk_znode_count`), and at the end no timer more than before the cases.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as h2connect, type ClientHttp2Session, type ClientHttp2Stream } from 'node:http2';
import type { PackageDefinition, MethodDefinition } from '@grpc/proto-loader';
import { startGateway, type RunningGateway } from '../../src/main.js';
import { validateConfig } from '../../src/config/schema.js';
import { randomBytes } from 'node:crypto';
import { generateApiKey, hashApiKey, silentLogger } from '../../src/core/index.js';
import { secretKey, sign } from '../../src/core/cluster/channel.js';
import { connectionKey, FRAMES_PATH, seal } from '../../src/core/cluster/frames.js';
import { keyIdOf } from '../../src/core/auth/api-key.js';
import { encode } from '../../src/core/cluster/codec.js';
import { loadContract } from '../../src/api/grpc/server.js';
import { fourLetter, parseMntr, startZkServer, type ZkStandalone } from '../support/zk-server.js';
import { makeTestCert, type TestCert } from '../support/tls.js';
import { eventually } from '../support/test-gateway.js';
import { rawConnect, sleep, upgradeRequest, wsFrameHead, type RawConn, type RawOptions } from '../support/raw-conn.js';

const KEY = generateApiKey();
const AUTH = `authorization: Bearer ${KEY}\r\n`;
const CLUSTER_SECRET = randomBytes(24).toString('hex');
const CONTRACT: PackageDefinition = loadContract();
/** What would have ended a real gateway process (the runner survives them; the gateway would not). */
const crashes: unknown[] = [];
process.on('uncaughtException', (err) => crashes.push(err));

let zk: ZkStandalone;
let cert: TestCert;
before(async () => {
  zk = await startZkServer();
  cert = makeTestCert();
});
after(async () => {
  await zk?.close();
});

/** One running gateway and how to reach it. */
interface Env {
  readonly gw: RunningGateway;
  /** Raw connection options for a listener (TLS when the gateway serves it; the cluster's is plain). */
  at(listener: 'http' | 'grpc' | 'cluster'): RawOptions;
}

/** Drives a connection to a stage; resolves with the connection, ready to be ended. */
type Stage = (env: Env) => Promise<RawConn>;

let seq = 0;
const unique = (name: string): string => `/hn/${name}-${++seq}`;

/** The head of an authenticated REST request. */
const head = (method: string, path: string, extra = ''): string => `${method} ${path} HTTP/1.1\r\nhost: localhost\r\n${AUTH}${extra}`;

/** Sends `text` a byte every 50 ms for `ms`, then stops (the connection stays open). */
async function trickle(c: RawConn, text: string, ms: number): Promise<void> {
  const end = Date.now() + ms;
  for (let i = 0; Date.now() < end && !c.isClosed(); i++) {
    c.socket.write(text[i % text.length] as string);
    await sleep(50);
  }
}

async function upgraded(env: Env, headers: Record<string, string>): Promise<RawConn> {
  const c = await rawConnect(env.at('http'));
  c.socket.write(upgradeRequest('/v1/ws', headers));
  await c.until((b) => b.includes('\r\n\r\n'));
  assert.match(c.received().toString('latin1'), /^HTTP\/1.1 101 /);
  return c;
}

/** A masked client text frame (mask key 0). */
const wsText = (msg: unknown): Buffer => {
  const payload = Buffer.from(JSON.stringify(msg));
  return Buffer.concat([wsFrameHead(payload.length), payload]);
};

/** A REST request over a raw connection; resolves with the answer. */
async function rest(env: Env, method: string, path: string, body?: unknown): Promise<{ status: number; head: string; body: string }> {
  const c = await rawConnect(env.at('http'));
  const text = body === undefined ? '' : JSON.stringify(body);
  c.socket.write(`${head(method, path, `connection: close\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(text)}\r\n`)}\r\n${text}`);
  const res = await c.response();
  c.reset();
  return res;
}

/** gRPC over Node's HTTP/2 client on a raw connection we can reset or half-close ourselves. */
function h2session(c: RawConn, tls: boolean): ClientHttp2Session {
  const s = h2connect(`${tls ? 'https' : 'http'}://localhost`, { createConnection: () => c.socket });
  s.on('error', () => undefined);
  return s;
}

function method(name: string): MethodDefinition<object, object> {
  const [service, rpc] = name.split('/') as [string, string];
  return (CONTRACT[`zkgate.v1.${service}`] as Record<string, MethodDefinition<object, object>>)[rpc] as MethodDefinition<object, object>;
}

/** One length-prefixed gRPC message. */
function grpcMessage(name: string, req: object): Buffer {
  const body = method(name).requestSerialize(req);
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(body.length, 1);
  return Buffer.concat([prefix, body]);
}

/** Opens a call; `key` false sends no credentials. */
function grpcCall(s: ClientHttp2Session, name: string, key = true): ClientHttp2Stream {
  const st = s.request({ ':method': 'POST', ':path': `/zkgate.v1.${name}`, 'content-type': 'application/grpc', te: 'trailers', ...(key ? { authorization: `Bearer ${KEY}` } : {}) });
  st.on('error', () => undefined);
  return st;
}

/** The first response message of a call, decoded. */
function firstMessage(st: ClientHttp2Stream, name: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    let got = Buffer.alloc(0);
    st.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (got.length >= 5 && got.length >= 5 + got.readUInt32BE(1)) resolve(method(name).responseDeserialize(got.subarray(5, 5 + got.readUInt32BE(1))) as Record<string, unknown>);
    });
    st.on('close', () => reject(new Error(`${name}: closed without a message`)));
  });
}


/**
 * The head of a request to the cluster's internal listener, signed with the cluster secret as
 * a peer would (`sign: false` sends none, a string sends that as the signature).
 */
function clusterHead(path: string, body: string, opts: { sign?: boolean | string; length?: number } = {}): string {
  const time = String(Date.now());
  const nonce = randomBytes(12).toString('hex');
  const from = 'hostile-peer';
  const signature = typeof opts.sign === 'string' ? opts.sign : sign(CLUSTER_SECRET, time, nonce, from, path, body);
  const auth = opts.sign === false ? '' : `x-zkgate-cluster-from: ${from}\r\nx-zkgate-cluster-time: ${time}\r\nx-zkgate-cluster-nonce: ${nonce}\r\nx-zkgate-cluster-signature: ${signature}\r\n`;
  return `POST ${path} HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: ${opts.length ?? Buffer.byteLength(body)}\r\n${auth}\r\n`;
}

/** A forwarded call's body as a peer sends it (src/core/cluster/cluster.ts). */
const clusterCall = (op: string, args: unknown[]): string => JSON.stringify({ tenant: 'hostile', keyId: keyIdOf(hashApiKey(KEY)), op, args: encode(args) });

/**
 * A peer's persistent connection (src/core/cluster/frames.ts), opened by a signed upgrade on a
 * raw socket; `frame(counter, payload)` seals a frame of this connection as the peer would.
 */
async function framedConnection(env: Env): Promise<{ c: RawConn; frame(counter: number, payload: string): Buffer }> {
  const c = await rawConnect(env.at('cluster'));
  const time = String(Date.now());
  const nonce = randomBytes(12).toString('hex');
  const from = 'hostile-peer';
  c.socket.write(
    upgradeRequest(FRAMES_PATH, { 'x-zkgate-cluster-from': from, 'x-zkgate-cluster-time': time, 'x-zkgate-cluster-nonce': nonce, 'x-zkgate-cluster-signature': sign(CLUSTER_SECRET, time, nonce, from, FRAMES_PATH, '') }),
  );
  const head = (await c.until((b) => b.includes('\r\n\r\n'))).toString('latin1');
  assert.match(head, /^HTTP\/1.1 101 /);
  const key = connectionKey(secretKey(CLUSTER_SECRET), from, nonce, /x-zkgate-cluster-nonce: ([0-9a-f]+)/i.exec(head)?.[1] ?? '');
  return {
    c,
    frame: (counter, payload) => {
      const sealed = seal(key, 0, counter, payload);
      return Buffer.concat([wsFrameHead(sealed.length, 0x2), sealed]);
    },
  };
}

/** A forwarded create without a valid signature, answered 401 (nothing created); the connection stays open. */
async function refusedClusterCall(env: Env, signature: false | string): Promise<RawConn> {
  const c = await rawConnect(env.at('cluster'));
  const body = clusterCall('znodes.create', [unique('cluster-refused'), Buffer.alloc(0), {}]);
  c.socket.write(`${clusterHead('/cluster/v1/call', body, { sign: signature })}${body}`);
  assert.equal((await c.response()).status, 401);
  return c;
}

/** A lease granted over REST (it expires on its own after `ttlMs`). */
async function restLease(env: Env, ttlMs: number): Promise<string> {
  const got = await rest(env, 'POST', '/v1/leases', { ttlMs });
  assert.equal(got.status, 201, got.body);
  return (JSON.parse(got.body) as { id: string }).id;
}

const STAGES: Record<string, Stage> = {
  // REST
  'REST: during the request head': async (env) => {
    const c = await rawConnect(env.at('http'));
    c.socket.write(`POST /v1/nodes${unique('head')} HTTP/1.1\r\nhost: localhost\r\nauthoriz`);
    return c;
  },
  'REST: during a body': async (env) => {
    const c = await rawConnect(env.at('http'));
    c.socket.write(`${head('POST', `/v1/nodes${unique('body')}`, 'content-type: application/json\r\ncontent-length: 1000\r\n')}\r\n{"data":"half`);
    await sleep(100);
    return c;
  },
  'REST: right after a refusal': async (env) => {
    const c = await rawConnect(env.at('http'));
    c.socket.write(`POST /v1/nodes${unique('refused')} HTTP/1.1\r\nhost: localhost\r\nauthorization: Bearer zkg_wrong\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}`);
    assert.equal((await c.response()).status, 401);
    return c;
  },
  'REST: a trickling sender': async (env) => {
    const c = await rawConnect(env.at('http'));
    await trickle(c, `GET /v1/nodes/hn HTTP/1.1\r\nhost: localhost\r\nx-slow: ${'a'.repeat(50)}`, 600);
    return c;
  },
  // WebSocket
  'WebSocket: during the upgrade head': async (env) => {
    const c = await rawConnect(env.at('http'));
    c.socket.write(upgradeRequest('/v1/ws', { authorization: `Bearer ${KEY}` }).slice(0, 60));
    return c;
  },
  'WebSocket: right after a refused upgrade': async (env) => {
    const c = await rawConnect(env.at('http'));
    c.socket.write(upgradeRequest('/v1/ws', { authorization: 'Bearer zkg_wrong' }));
    assert.equal((await c.response()).status, 401);
    return c;
  },
  'WebSocket: during a frame': async (env) => {
    const c = await upgraded(env, { authorization: `Bearer ${KEY}` });
    c.socket.write(Buffer.concat([wsFrameHead(500), Buffer.from('{"op":"sub')]));
    return c;
  },
  'WebSocket: mid-stream with a lease, a lock and a subscription': async (env) => {
    const c = await upgraded(env, { authorization: `Bearer ${KEY}` });
    c.socket.write(wsText({ op: 'lease_grant', ttlMs: 1000 }));
    const lease = await c.until((b) => /"type":"lease".*?"id":"([^"]+)"/.test(b.toString('latin1')));
    const leaseId = /"type":"lease".*?"id":"([^"]+)"/.exec(lease.toString('latin1'))?.[1] as string;
    c.socket.write(wsText({ op: 'subscribe', id: 's', path: '/hn', kind: 'children' }));
    c.socket.write(wsText({ op: 'call', id: 'l', method: 'Locks.Acquire', params: { path: '/hn/lock', leaseId, waitMs: 0 } }));
    await c.until((b) => b.includes('"id":"l","method":"Locks.Acquire"') && b.includes('"subscribed"'));
    return c;
  },
  // SSE and long-poll
  'SSE: mid-stream': async (env) => {
    const c = await rawConnect(env.at('http'));
    c.socket.write(`${head('GET', '/v1/watch/hn?kind=children')}\r\n`);
    await c.until((b) => b.includes('\r\n\r\n') && b.includes('event:'));
    return c;
  },
  'long-poll: while waiting': async (env) => {
    const got = await rest(env, 'GET', '/v1/nodes/hn');
    const index = /x-zkgate-index: *(\d+)/i.exec(got.head)?.[1];
    const c = await rawConnect(env.at('http'));
    c.socket.write(`${head('GET', `/v1/nodes/hn?wait=30000${index ? `&index=${index}` : ''}`)}\r\n`);
    await sleep(300);
    return c;
  },
  // gRPC
  'gRPC: during the HTTP/2 preface': async (env) => {
    const c = await rawConnect({ ...env.at('grpc'), ...(env.at('grpc').ca ? { alpn: ['h2'] } : {}) });
    c.socket.write('PRI * HTTP/2.0\r\n');
    return c;
  },
  'gRPC: during a request message': async (env) => {
    const c = await rawConnect({ ...env.at('grpc'), ...(env.at('grpc').ca ? { alpn: ['h2'] } : {}) });
    const st = grpcCall(h2session(c, Boolean(env.at('grpc').ca)), 'Znodes/Create');
    const msg = grpcMessage('Znodes/Create', { path: unique('grpc-body'), data: Buffer.alloc(200, 'x') });
    st.write(msg.subarray(0, 60));
    await sleep(200);
    return c;
  },
  'gRPC: right after a refused call': async (env) => {
    const c = await rawConnect({ ...env.at('grpc'), ...(env.at('grpc').ca ? { alpn: ['h2'] } : {}) });
    const st = grpcCall(h2session(c, Boolean(env.at('grpc').ca)), 'Znodes/Create', false);
    const trailers = new Promise<Record<string, unknown>>((r) => st.once('trailers', (t) => r(t)).once('response', (h) => h['grpc-status'] && r(h)));
    st.end(grpcMessage('Znodes/Create', { path: unique('grpc-refused') }));
    assert.equal((await trailers)['grpc-status'], '16'); // UNAUTHENTICATED
    return c;
  },
  'gRPC: mid-stream with a lease, a lock wait and a watch': async (env) => {
    const c = await rawConnect({ ...env.at('grpc'), ...(env.at('grpc').ca ? { alpn: ['h2'] } : {}) });
    const s = h2session(c, Boolean(env.at('grpc').ca));
    const grant = grpcCall(s, 'Leases/Grant');
    const granted = firstMessage(grant, 'Leases/Grant');
    grant.end(grpcMessage('Leases/Grant', { ttlMs: 1000 }));
    const leaseId = (await granted).id as string;
    const watch = grpcCall(s, 'Watch/Watch');
    const subscribed = firstMessage(watch, 'Watch/Watch');
    watch.write(grpcMessage('Watch/Watch', { subscribe: { id: 'w', path: '/hn', kind: 'WATCH_KIND_CHILDREN' } }));
    await subscribed;
    const lock = grpcCall(s, 'Locks/Acquire');
    lock.end(grpcMessage('Locks/Acquire', { path: '/hn/held', leaseId, waitMs: { value: 30_000 } }));
    await eventually(async () => (await rest(env, 'GET', '/v1/nodes/hn/held')).body.includes('"numChildren":2'), 5000, 'the lock wait queued');
    return c;
  },
};

/** Cases that end on their own terms: garbage the gateway must refuse by closing. */
const GARBAGE: Record<string, Stage> = {
  'WebSocket: garbage after a valid upgrade': async (env) => {
    const c = await upgraded(env, { authorization: `Bearer ${KEY}` });
    c.socket.write(Buffer.from([0x0f, 0xff, 0x13, 0x37, 0x00, 0x42, 0xde, 0xad, 0xbe, 0xef, 0x99, 0x98])); // reserved opcode, unmasked
    return c;
  },
  'gRPC: garbage after the preface': async (env) => {
    const c = await rawConnect({ ...env.at('grpc'), ...(env.at('grpc').ca ? { alpn: ['h2'] } : {}) });
    c.socket.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1'), Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]), Buffer.alloc(64, 0xee)]));
    return c;
  },
};


/** The cluster's internal listener (plain HTTP in both runs; it has no TLS of its own). */
const CLUSTER_STAGES: Record<string, Stage> = {
  'cluster: during the request head': async (env) => {
    const c = await rawConnect(env.at('cluster'));
    c.socket.write('POST /cluster/v1/call HTTP/1.1\r\nhost: localhost\r\nx-zkgate-clus');
    return c;
  },
  'cluster: during a signed body': async (env) => {
    const c = await rawConnect(env.at('cluster'));
    const body = clusterCall('znodes.create', [unique('cluster-body'), Buffer.alloc(0), {}]);
    c.socket.write(`${clusterHead('/cluster/v1/call', body, { length: body.length + 500 })}${body}`);
    await sleep(100);
    return c;
  },
  'cluster: right after a refusal (no signature)': (env) => refusedClusterCall(env, false),
  'cluster: right after a refusal (bad signature)': (env) => refusedClusterCall(env, 'ab'.repeat(32)),
  'cluster: a trickling sender': async (env) => {
    const c = await rawConnect(env.at('cluster'));
    await trickle(c, `POST /cluster/v1/call HTTP/1.1\r\nhost: localhost\r\nx-slow: ${'a'.repeat(50)}`, 600);
    return c;
  },
  'cluster: mid-stream in a forwarded lock wait': async (env) => {
    const leaseId = await restLease(env, 1000);
    const c = await rawConnect(env.at('cluster'));
    const body = clusterCall('locks.acquire', ['/hn/held', leaseId, { waitMs: 30_000, signal: new AbortController().signal }]);
    c.socket.write(`${clusterHead('/cluster/v1/call', body)}${body}`);
    await eventually(async () => (await rest(env, 'GET', '/v1/nodes/hn/held')).body.includes('"numChildren":2'), 5000, 'the forwarded lock wait queued');
    return c;
  },
  'cluster: mid-stream in a forwarded lock wait on a persistent connection': async (env) => {
    const leaseId = await restLease(env, 1000);
    const { c, frame } = await framedConnection(env);
    c.socket.write(frame(0, `C1 ${clusterCall('locks.acquire', ['/hn/held', leaseId, { waitMs: 30_000, signal: new AbortController().signal }])}`));
    await eventually(async () => (await rest(env, 'GET', '/v1/nodes/hn/held')).body.includes('"numChildren":2'), 5000, 'the framed lock wait queued');
    return c;
  },
  'cluster: mid-stream in a lease state stream': async (env) => {
    const leaseId = await restLease(env, 1000);
    const c = await rawConnect(env.at('cluster'));
    const body = JSON.stringify({ tenant: 'hostile', keyId: keyIdOf(hashApiKey(KEY)), leaseId });
    c.socket.write(`${clusterHead('/cluster/v1/changes', body)}${body}`);
    await c.until((b) => b.includes('\r\n\r\n'));
    assert.match(c.received().toString('latin1'), /^HTTP\/1.1 200 /);
    return c;
  },
};

const CLUSTER_GARBAGE: Record<string, Stage> = {
  'cluster: an unsigned upgrade (401)': async (env) => {
    const c = await rawConnect(env.at('cluster'));
    c.socket.write(upgradeRequest(FRAMES_PATH));
    assert.equal((await c.response()).status, 401);
    return c;
  },
  'cluster: a forged frame on a persistent connection (nothing runs)': async (env) => {
    const { c, frame } = await framedConnection(env);
    const forged = frame(0, `C1 ${clusterCall('znodes.create', [unique('cluster-forged'), Buffer.alloc(0), {}])}`);
    forged[forged.length - 3] ^= 1; // one bit of the payload changed after sealing
    c.socket.write(forged);
    return c;
  },
  'cluster: a frame over the size cap on a persistent connection': async (env) => {
    const { c } = await framedConnection(env);
    c.socket.write(wsFrameHead(64 * 1_048_576, 0x2)); // announces 64 MiB, sends none
    return c;
  },
  'cluster: garbage instead of a request': async (env) => {
    const c = await rawConnect(env.at('cluster'));
    c.socket.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03, 0xde, 0xad, 0x0d, 0x0a, 0x0d, 0x0a])); // a TLS hello, and worse
    return c;
  },
};

for (const tls of [false, true]) {
  describe(`hostile network (${tls ? 'TLS' : 'plain'})`, () => {
    let env: Env;
    let znodes = 0;
    let timers = 0;
    before(async () => {
      const gw = await startGateway(
        validateConfig({
          zookeeper: { connect: zk.connectString },
          http: { port: 0, headersTimeoutMs: 1500, requestTimeoutMs: 3000 },
          // A session that hit an HTTP/2 protocol error stops reading and is only cut by the next
          // unanswered keepalive ping (Node's http2 keeps the socket; see docs/security.md › Limits).
          grpc: { handshakeTimeoutMs: 1500, keepaliveTimeMs: 1000, keepaliveTimeoutMs: 1000 },
          instanceId: `hn-${tls ? 'tls' : 'plain'}`,
          instances: { path: `/hn-instances-${tls ? 'tls' : 'plain'}` },
          cluster: { secret: CLUSTER_SECRET, headersTimeoutMs: 1500, requestTimeoutMs: 3000, idleTimeoutMs: 1000, maxConnectionsPerAddress: 8 },
          log: { level: 'silent' },
          tenants: [{ name: 'hostile', chroot: `/hostile-${tls ? 'tls' : 'plain'}`, sessionTimeoutMs: 10_000, apiKeys: [{ sha256: hashApiKey(KEY), role: 'admin' }] }],
          ...(tls ? { tls: { certFile: cert.certFile, keyFile: cert.keyFile } } : {}),
        }),
        silentLogger,
      );
      // The membership is read from ZooKeeper a moment after start.
      const self = await eventually(() => gw.gateway.health().cluster?.members.find((m) => m.self), 15_000, 'this instance registered');
      const clusterPort = Number(new URL(self.address).port);
      env = {
        gw,
        at: (l) => (l === 'cluster' ? { port: clusterPort } : { port: l === 'http' ? gw.httpPort : gw.grpcPort, ...(tls ? { ca: cert.cert } : {}) }),
      };
      // Until the tenant's session is up a create answers 503 (whose outcome may be a node: 409 next).
      for (const p of ['/hn', '/hn/lock', '/hn/held']) {
        await eventually(async () => [201, 409].includes((await rest(env, 'POST', `/v1/nodes${p}`, { data: '' })).status), 15_000, `${p} created`);
      }
      // Someone else holds /hn/held for the whole suite, so lock waits there stay waits.
      const holder = await upgraded(env, { authorization: `Bearer ${KEY}` });
      holder.socket.write(wsText({ op: 'lease_grant', ttlMs: 60_000 }));
      const leaseId = /"type":"lease".*?"id":"([^"]+)"/.exec((await holder.until((b) => /"type":"lease".*?"id":"/.test(b.toString('latin1')))).toString('latin1'))?.[1];
      holder.socket.write(wsText({ op: 'call', id: 'h', method: 'Locks.Acquire', params: { path: '/hn/held', leaseId, waitMs: 0 } }));
      await holder.until((b) => b.includes('"id":"h","method":"Locks.Acquire"'));
      baselineHolder = holder;
      await settled(env, null);
      znodes = await znodeCount();
      timers = timerCount();
    });
    let baselineHolder: RawConn | undefined;
    after(async () => {
      baselineHolder?.reset();
      await env?.gw.close();
    });

    const cases: (readonly [string, Stage, 'reset' | 'half-close' | 'gateway closes'])[] = [
      ...Object.entries(STAGES).flatMap(([name, stage]) => [[name, stage, 'reset'] as const, [name, stage, 'half-close'] as const]),
      ...Object.entries(GARBAGE).map(([name, stage]) => [name, stage, 'gateway closes'] as const),
      // The internal listener is plain HTTP whatever the public ones serve: once is enough.
      ...(tls ? [] : Object.entries(CLUSTER_STAGES).flatMap(([name, stage]) => [[name, stage, 'reset'] as const, [name, stage, 'half-close'] as const])),
      ...(tls ? [] : Object.entries(CLUSTER_GARBAGE).map(([name, stage]) => [name, stage, 'gateway closes'] as const)),
    ];
    for (const [name, stage, ending] of cases) {
      test(`${name} · ${ending}`, async () => {
        const c = await stage(env);
        if (ending === 'reset') c.reset();
        else if (ending === 'half-close') c.socket.end(); // FIN; the client keeps reading
        else await c.closed; // the gateway must refuse the garbage by closing
        await settled(env, c);
        // A lease's nodes are deleted as it ends, a moment after its quota unit is given back.
        await eventually(async () => (await znodeCount()) === znodes, 10_000, 'ZooKeeper nodes back to the baseline');
      });
    }

    if (!tls) {
      test('cluster: a sender slower than cluster.headersTimeoutMs is answered 408 and cut', async () => {
        const before = await timeoutsCounted(env, 'cluster');
        const c = await rawConnect(env.at('cluster'));
        // A byte every 100 ms, for up to 20 s: the 1.5 s header deadline must end it long before.
        await trickle(c, `POST /cluster/v1/call HTTP/1.1\r\nhost: localhost\r\nx-slow: ${'a'.repeat(400)}`, 20_000);
        assert.ok(c.isClosed(), 'the gateway closed the connection');
        assert.match(c.received().toString('latin1'), /^HTTP\/1.1 408 /);
        assert.equal(await timeoutsCounted(env, 'cluster'), before + 1);
        await settled(env, c);
      });

      test('cluster: a kept-alive connection without a request is closed at cluster.idleTimeoutMs', async () => {
        const c = await refusedClusterCall(env, false);
        await c.closed; // 1 s idle timeout; the client never closes
        await settled(env, c);
      });

      test('cluster: a request without a well-formed signature is refused before its body is read', async () => {
        const c = await rawConnect(env.at('cluster'));
        c.socket.write(clusterHead('/cluster/v1/call', '', { sign: false, length: 30_000_000 })); // announces 30 MB, sends none
        assert.equal((await c.response()).status, 401);
        await c.closed;
        await settled(env, c);
      });

      test('cluster: connections from one address beyond cluster.maxConnectionsPerAddress are refused with 429', async () => {
        const held = await Promise.all(Array.from({ length: 8 }, () => rawConnect(env.at('cluster'))));
        const refused = await rawConnect(env.at('cluster'));
        const answer = await refused.response();
        assert.equal(answer.status, 429);
        assert.equal((JSON.parse(answer.body) as { details: { limit: string } }).details.limit, 'cluster.maxConnectionsPerAddress');
        // Another address is still served, and the public listener never noticed.
        const other = await rawConnect({ ...env.at('cluster'), localAddress: '127.0.0.2' });
        other.socket.write(`${clusterHead('/cluster/v1/ping', '{}', { sign: false })}{}`);
        assert.equal((await other.response()).status, 401);
        for (const c of [...held, refused, other]) c.reset();
        await settled(env, null);
      });
    }

    test('no timer is left behind by the cases', async () => {
      await eventually(() => timerCount() <= timers, 10_000, `at most ${timers} timers`);
    });
  });
}

/**
 * Waits until nothing of a case is left: the gateway closed its side of `c`, holds no connection
 * but the holder's, no quota unit but the holder's, and answers /healthz; no crash happened.
 */
async function settled(env: Env, c: RawConn | null): Promise<void> {
  if (c) {
    await eventually(() => c.isClosed(), 15_000, 'the gateway to close its side');
    c.reset();
  }
  await eventually(() => env.gw.connections().http === 1 && env.gw.connections().grpc === 0 && env.gw.connections().cluster === 0, 15_000, "only the holder's connection");
  await eventually(() => quotasAtBaseline(env), 15_000, "quota units back to the holder's");
  const health = await rest(env, 'GET', '/healthz');
  assert.equal(health.status, 200);
  await eventually(() => env.gw.connections().http === 1, 5000, 'the health check connection closed');
  assert.deepEqual(crashes, []);
}

/** The holder's units only: one lease, one lock, one connection (its WebSocket), no subscription. */
function quotasAtBaseline(env: Env): boolean {
  const u = env.gw.gateway.quotaUsage().find((t) => t.tenant === 'hostile')?.usage;
  return Boolean(u && u.leases.used === 1 && u.locks.used === 1 && u.connections.used === 1 && u.subscriptions.used === 0);
}

/** zkgate_listener_timeouts_total of `listener`, all phases, from /metrics. */
async function timeoutsCounted(env: Env, listener: string): Promise<number> {
  const text = (await rest(env, 'GET', '/metrics')).body;
  const lines = text.split('\n').filter((l) => l.startsWith('zkgate_listener_timeouts_total{') && l.includes(`listener="${listener}"`));
  return lines.reduce((n, l) => n + Number(l.split(' ').pop()), 0);
}

async function znodeCount(): Promise<number> {
  return Number(parseMntr(await fourLetter(zk.clientPort, 'mntr')).get('zk_znode_count'));
}

function timerCount(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
}
