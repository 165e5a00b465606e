/**
 * A load generator, in its own process: reads (D = the raw npm `zookeeper` client, REST, gRPC),
 * WebSocket fan-out (against the gateway or W) and lock cycles through the gateway's REST API.
 * The orchestrator (`run.ts`) forks one per role so no two roles share an event loop.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Agent, request } from 'node:http';
import type { Socket } from 'node:net';
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import { LightHttpGets, LightHttpRequests } from './light-http.js';
import { grpcClient, type GrpcTestClient } from '../test/support/grpc-client.js';
import { serve } from './ipc.js';
import { percentile } from './stats.js';

/** The promise API of the npm `zookeeper` package, as far as D and the writers use it. */
interface RawZk {
  init(config: object): RawZk;
  on(event: 'connect', cb: () => void): void;
  get(path: string, watch: boolean): Promise<[object, Buffer]>;
  set(path: string, data: Buffer, version: number): Promise<object>;
  create(path: string, data: Buffer, flags: number): Promise<string>;
  close(): void;
}
const ZooKeeper = createRequire(import.meta.url)('zookeeper') as new (config: object) => RawZk;

/** One round's result: ops/s and, in ms, the latency percentiles. */
export interface RoundResult {
  readonly opsPerSec: number;
  readonly p50: number;
  readonly p99: number;
  readonly ops: number;
}

let zk: RawZk | undefined;
let agent: Agent | undefined;
let grpc: GrpcTestClient | undefined;
let httpPort = 0;

function rawZk(connect: string): Promise<RawZk> {
  const c = new ZooKeeper({ connect, timeout: 10_000, debug_level: 0, host_order_deterministic: false });
  return new Promise((resolve) => {
    c.on('connect', () => resolve(c));
    c.init({});
  });
}

/** An HTTP request on the keep-alive agent; resolves with status and body. */
function http(method: string, path: string, body?: unknown): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers: Record<string, string | number> = payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) };
    const req = request({ host: '127.0.0.1', port: httpPort, path, method, agent, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (b: Buffer) => chunks.push(b));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(payload);
  });
}

async function expectOk(method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
  const r = await http(method, path, body);
  if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${r.body.toString().slice(0, 200)}`);
  return r.body.length ? (JSON.parse(r.body.toString()) as Record<string, unknown>) : {};
}

/** Runs `op` from `concurrency` workers for `ms`; records every latency. */
async function closedLoop(concurrency: number, ms: number, op: (worker: number) => Promise<unknown>): Promise<RoundResult> {
  const lat: number[] = [];
  const start = performance.now();
  const end = start + ms;
  const worker = async (w: number): Promise<void> => {
    while (performance.now() < end) {
      const t = performance.now();
      await op(w);
      lat.push(performance.now() - t);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));
  const elapsed = performance.now() - start;
  lat.sort((a, b) => a - b);
  return { opsPerSec: (lat.length * 1000) / elapsed, p50: percentile(lat, 50), p99: percentile(lat, 99), ops: lat.length };
}

// ---- reads -------------------------------------------------------------------------------

type ReadTarget = 'direct' | 'rest' | 'rest-default' | 'rest-lib' | 'grpc';
/** Every read goes to ZooKeeper: `?cache=false` (REST), `noCache` (gRPC) skip the read-through cache. */
const restGet = async (path: string, query = '?cache=false'): Promise<void> => {
  const r = await http('GET', `/v1/nodes${path}${query}`);
  if (r.status !== 200) throw new Error(`GET ${path}: ${r.status}`);
};
/**
 * A 1 KiB node read with the gateway's defaults: the read-through cache adopts it at the first
 * read and answers the next ones from memory until ZooKeeper notifies a change (docs/watch.md).
 */
const DEFAULT_PATH = '/bench-default';
/** Light keep-alive GET clients (bench/light-http.ts), one connection per worker, opened by `init`. */
let light: { uncached: LightHttpGets; defaults: LightHttpGets } | undefined;
const lightGets = (): NonNullable<typeof light> => {
  if (!light) throw new Error('load-proc: init was not given an httpPort');
  return light;
};
const READS: Record<ReadTarget, (worker: number) => Promise<unknown>> = {
  direct: () => (zk as RawZk).get('/bench', false),
  // REST ÷ D: the light client, so that the load generator costs little next to the gateway.
  rest: (w) => lightGets().uncached.get(w),
  'rest-default': (w) => lightGets().defaults.get(w),
  // gRPC ÷ REST: both through their usual Node libraries (node:http, grpc-js), every read to ZooKeeper.
  'rest-lib': () => restGet('/bench'),
  grpc: () => (grpc as GrpcTestClient).unary('Znodes', 'Get', { path: '/bench', noCache: true }),
};

/** Reads DEFAULT_PATH until the gateway says it answered from its read cache (`X-Zkgate-Source: cache`). */
async function waitForCache(): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const source = await new Promise<string | undefined>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: httpPort, path: `/v1/nodes${DEFAULT_PATH}`, agent }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.headers['x-zkgate-source'] as string | undefined));
      });
      req.on('error', reject);
      req.end();
    });
    if (source === 'cache') return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`GET ${DEFAULT_PATH} is not answered from the read cache`);
}

// ---- writes ------------------------------------------------------------------------------

const SET_DATA = Buffer.alloc(1024, 'y');
const SET_BODY = { data: SET_DATA.toString('utf8') };
/** Sets of a 1 KiB node: D (the raw client's `set`, any version) and REST (`PUT` with a JSON body). */
const WRITES: Record<'direct' | 'rest', (path: string) => Promise<unknown>> = {
  direct: (path) => (zk as RawZk).set(path, SET_DATA, -1),
  rest: async (path) => {
    const r = await http('PUT', `/v1/nodes${path}`, SET_BODY);
    if (r.status !== 200) throw new Error(`PUT ${path}: ${r.status}`);
  },
};
const SET_PATH = '/bench-set';

// ---- fan-out -----------------------------------------------------------------------------

/** What the fan-out needs of a subscriber's socket: `ws`' WebSocket client or a `LightSubscriber`. */
interface Subscriber {
  send(text: string): void;
  terminate(): void;
}

/** Subscribers of one target (the gateway or W) and the writer that makes the changes. */
interface Fan {
  readonly kind: 'gateway' | 'w';
  readonly url: string;
  readonly sockets: Subscriber[];
  subscribed: number;
  /** Called with each delivery's sequence number and arrival time. */
  onDelivery: (seq: number, at: number) => void;
  publisher?: WebSocket;
}
let fan: Fan | undefined;
const FAN_PATH = '/bench-fan';
const SEQ_MARK = Buffer.from('seq:');

/** 1 KiB of node data carrying the change's sequence number, found in a frame without parsing it. */
function fanData(seq: number): Buffer {
  const head = `seq:${String(seq).padStart(9, '0')}:`;
  return Buffer.from(head + 'x'.repeat(1024 - head.length));
}

function seqOf(frame: Buffer): number {
  const i = frame.indexOf(SEQ_MARK);
  return i < 0 ? -1 : Number(frame.toString('latin1', i + 4, i + 13));
}

/**
 * What W broadcasts: the gateway's own event message for a change (`fanSample` of the gateway's
 * load process, handed over by the orchestrator), with this change's sequence number in its data,
 * so both servers write the same bytes. Before a template is set, a message of the same shape.
 */
let wTemplate: string | undefined;
function wMessage(seq: number): string {
  const data = fanData(seq).toString('utf8');
  if (wTemplate) return wTemplate.replace(/seq:\d{9}:x*/, data);
  const stat = { czxid: '4', mzxid: String(100 + seq), pzxid: '4', ctimeMs: 1, mtimeMs: Date.now(), version: seq, cversion: 0, aversion: 0, ephemeralOwner: '0', dataLength: 1024, numChildren: 0 };
  return JSON.stringify({ type: 'event', id: 's', event: { type: 'data_changed', path: FAN_PATH, zxid: stat.mzxid, stat, data, encoding: 'utf8' } });
}

/** The last event message a subscriber of this process received. */
let lastMessage: Buffer | undefined;

/** A frame's payload that may carry a change: finds its sequence number and reports the delivery. */
function onFanMessage(data: Buffer): void {
  const seq = seqOf(data);
  if (seq < 0) return;
  lastMessage = data;
  fan?.onDelivery(seq, performance.now());
}

/**
 * The subscribers' WebSocket client, light enough that 10,000 of them in one process do not bound
 * the fan-out (the `ws` client costs this process about what the server spends per frame; see
 * docs/benchmarks.md). The handshake is `node:http`'s upgrade, the accept key checked; frames
 * from the server are parsed here: unmasked, unfragmented (anything else fails the bench), text
 * or binary payloads handed over as they are, pings answered with a pong (the gateway cuts a
 * socket that misses one), a close frame answered by ending the socket. No UTF-8 validation, no
 * stream or event per message: per frame a header read and the sequence number's search, which
 * the `ws` client does too. Its own frames are masked, as RFC 6455 requires of a client.
 */
class LightSubscriber implements Subscriber {
  /** The start of a frame that has not wholly arrived. */
  private rest: Buffer | undefined;

  constructor(private readonly socket: Socket, head: Buffer) {
    socket.setNoDelay(true);
    socket.on('data', (b: Buffer) => this.onData(b));
    socket.on('error', () => socket.destroy());
    if (head.length > 0) this.onData(head);
  }

  static open(url: string): Promise<LightSubscriber> {
    const u = new URL(url);
    const key = randomBytes(16).toString('base64');
    const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
    return new Promise((resolve, reject) => {
      const req = request({
        host: u.hostname,
        port: u.port,
        path: u.pathname,
        agent: false,
        headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-key': key, 'sec-websocket-version': '13' },
      });
      req.on('upgrade', (res, socket: Socket, head: Buffer) => {
        if (res.headers['sec-websocket-accept'] !== accept) {
          socket.destroy();
          reject(new Error(`${url}: wrong Sec-WebSocket-Accept`));
        } else resolve(new LightSubscriber(socket, head));
      });
      req.on('response', (res) => reject(new Error(`${url}: upgrade refused with ${res.statusCode}`)));
      req.on('error', reject);
      req.end();
    });
  }

  send(text: string): void {
    this.frame(0x1, Buffer.from(text));
  }

  terminate(): void {
    this.socket.destroy();
  }

  /** A masked client frame (payloads under 64 KiB are all this client sends). */
  private frame(opcode: number, payload: Buffer): void {
    const n = payload.length;
    const head = n < 126 ? 6 : 8;
    const f = Buffer.allocUnsafe(head + n);
    f[0] = 0x80 | opcode;
    if (n < 126) f[1] = 0x80 | n;
    else {
      f[1] = 0x80 | 126;
      f.writeUInt16BE(n, 2);
    }
    const mask = randomBytes(4);
    mask.copy(f, head - 4);
    for (let i = 0; i < n; i++) f[head + i] = (payload[i] as number) ^ (mask[i & 3] as number);
    this.socket.write(f);
  }

  private onData(chunk: Buffer): void {
    const b = this.rest ? Buffer.concat([this.rest, chunk]) : chunk;
    let at = 0;
    for (;;) {
      if (b.length - at < 2) break;
      const b0 = b[at] as number;
      const b1 = b[at + 1] as number;
      if ((b0 & 0x80) === 0 || (b1 & 0x80) !== 0) throw new Error('fan-out: a fragmented or masked frame from the server');
      let len = b1 & 0x7f;
      let head = 2;
      if (len === 126) {
        if (b.length - at < 4) break;
        len = b.readUInt16BE(at + 2);
        head = 4;
      } else if (len === 127) {
        if (b.length - at < 10) break;
        len = Number(b.readBigUInt64BE(at + 2));
        head = 10;
      }
      if (b.length - at < head + len) break;
      const payload = b.subarray(at + head, at + head + len);
      at += head + len;
      const opcode = b0 & 0x0f;
      if (opcode === 0x1 || opcode === 0x2) onFanMessage(payload);
      else if (opcode === 0x9) this.frame(0xa, payload);
      else if (opcode === 0x8) this.socket.end();
    }
    this.rest = at < b.length ? b.subarray(at) : undefined;
  }
}

/**
 * `--fan-client=ws` (run.ts passes it on): the subscribers use `ws`' WebSocket client instead of
 * LightSubscriber, to compare.
 */
let fanClient: 'light' | 'ws' = 'light';

function openSocket(url: string): Promise<Subscriber> {
  if (fanClient === 'light') return LightSubscriber.open(url);
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
    ws.on('message', onFanMessage);
  });
}

/** Opens sockets until there are `count`, at most 200 handshakes in flight. */
async function fanConnect(arg: { kind: 'gateway' | 'w'; url: string; count: number; client?: 'light' | 'ws' }): Promise<number> {
  fanClient = arg.client ?? 'light';
  fan ??= { kind: arg.kind, url: arg.url, sockets: [], subscribed: 0, onDelivery: () => undefined };
  const f = fan;
  while (f.sockets.length < arg.count) {
    const n = Math.min(200, arg.count - f.sockets.length);
    f.sockets.push(...(await Promise.all(Array.from({ length: n }, () => openSocket(f.url)))));
  }
  return f.sockets.length;
}

/** Subscribes every socket not yet subscribed (gateway: a data watch on the node; W: nothing to do). */
async function fanSubscribe(): Promise<number> {
  const f = fan as Fan;
  if (f.kind === 'gateway') {
    // The first event of a subscription is the node's current state: wait for all of them.
    const fresh = f.sockets.slice(f.subscribed);
    let waiting = fresh.length;
    const done = new Promise<void>((resolve) => {
      f.onDelivery = () => void (--waiting === 0 && resolve());
      if (waiting === 0) resolve();
    });
    for (const ws of fresh) ws.send(JSON.stringify({ op: 'subscribe', id: 's', path: FAN_PATH, kind: 'data' }));
    await done;
  } else f.publisher ??= await openPublisher(f.url);
  f.subscribed = f.sockets.length;
  return f.subscribed;
}

function openPublisher(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url}publish`, { perMessageDeflate: false });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

let fanSeq = 0;

/**
 * Changes the node (gateway: a set with the raw client) or publishes (W) one message at a time,
 * each after every subscriber received the previous one, for `ms`. Deliveries/s and the
 * latency from the change to each delivery.
 */
async function fanRound(arg: { ms: number }): Promise<RoundResult & { changes: number; messageBytes: number }> {
  const f = fan as Fan;
  const n = f.subscribed;
  const lat: number[] = [];
  const start = performance.now();
  let changes = 0;
  while (performance.now() - start < arg.ms) {
    const seq = ++fanSeq;
    let got = 0;
    const sent = performance.now();
    const all = new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`fan-out: ${got}/${n} deliveries of change ${seq} after 60 s`)), 60_000);
      f.onDelivery = (s, at) => {
        if (s !== seq) return;
        lat.push(at - sent);
        if (++got === n) {
          clearTimeout(t);
          resolve();
        }
      };
    });
    if (f.kind === 'gateway') await (zk as RawZk).set(FAN_PATH, fanData(seq), -1);
    else (f.publisher as WebSocket).send(wMessage(seq));
    await all;
    changes++;
  }
  const elapsed = performance.now() - start;
  lat.sort((a, b) => a - b);
  return { opsPerSec: (lat.length * 1000) / elapsed, p50: percentile(lat, 50), p99: percentile(lat, 99), ops: lat.length, changes, messageBytes: lastMessage?.length ?? 0 };
}

// ---- locks -------------------------------------------------------------------------------

const LOCK_PATH = '/bench-lock';
let leases: string[] = [];
/**
 * The lock loop's HTTP client: the light one (bench/light-http.ts), one connection per client,
 * so that the load process's CPU on each cycle's critical path (two exchanges, one after the
 * other) is not node:http's ~200 µs per request — Curator's side has no HTTP client at all.
 * `lockRound`'s `client: 'node-http'` uses node:http instead, to compare (`--lock-client=node-http`).
 */
let lockConns: LightHttpRequests | undefined;

async function lockSetup(arg: { clients: number }): Promise<number> {
  const deadline = Date.now() + 60_000;
  while (leases.length < arg.clients) {
    // After 10,000 sockets on a busy machine the session may be reconnecting for a moment.
    // Long enough for the whole lock section (warm-ups and rounds of both sides; nothing keeps it alive).
    const lease = await expectOk('POST', '/v1/leases', { ttlMs: 600_000 }).catch(async (err: unknown) => {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 500));
      return undefined;
    });
    if (lease) leases.push(String(lease.id));
  }
  lockConns ??= await LightHttpRequests.open(httpPort, `/v1/locks${LOCK_PATH}`, arg.clients);
  return leases.length;
}

/** `clients` lease holders acquire and release the one lock in a loop for `ms`; cycles/s. */
async function lockRound(arg: { clients: number; ms: number; client?: 'light' | 'node-http' }): Promise<RoundResult> {
  const conns = lockConns;
  const light = arg.client !== 'node-http' && conns !== undefined;
  const send = async (w: number, method: string, path: string, body?: unknown): Promise<Record<string, unknown>> =>
    light ? (JSON.parse((await conns.request(w, method, path, body)).toString()) as Record<string, unknown>) : expectOk(method, path, body);
  // One lease per client: a lease holds the lock at most once at a time.
  return closedLoop(arg.clients, arg.ms, async (w) => {
    const leaseId = leases[w] as string;
    const hold = await send(w, 'POST', `/v1/locks${LOCK_PATH}`, { leaseId, waitMs: 30_000 });
    await send(w, 'DELETE', `/v1/locks${LOCK_PATH}?leaseId=${encodeURIComponent(leaseId)}&node=${encodeURIComponent(String(hold.node))}`);
  });
}

serve({
  /** Connects the clients this process needs; creates the benchmark nodes when asked. */
  init: async (arg: { zk?: string; httpPort?: number; grpcPort?: number; create?: boolean; lightGets?: boolean }) => {
    if (arg.zk) zk = await rawZk(arg.zk);
    if (arg.httpPort) {
      httpPort = arg.httpPort;
      agent = new Agent({ keepAlive: true, maxSockets: 64 });
    }
    if (arg.grpcPort) grpc = grpcClient(arg.grpcPort);
    if (arg.create && zk) {
      // Either of two processes may come first (with --only): an existing node is fine.
      const c = zk;
      await c.create('/bench', Buffer.alloc(1024, 'x'), 0).catch(() => undefined);
      await c.create(FAN_PATH, fanData(0), 0).catch(() => undefined);
      await c.create(SET_PATH, SET_DATA, 0).catch(() => undefined);
      await c.create(DEFAULT_PATH, Buffer.alloc(1024, 'x'), 0).catch(() => undefined);
    }
    // After the nodes exist: each connection makes a first GET as it opens.
    if (arg.lightGets) light = { uncached: await LightHttpGets.open(httpPort, '/v1/nodes/bench?cache=false', 64), defaults: await LightHttpGets.open(httpPort, `/v1/nodes${DEFAULT_PATH}`, 64) };
  },
  reads: (arg: { target: ReadTarget; concurrency: number; ms: number }) => closedLoop(arg.concurrency, arg.ms, READS[arg.target]),
  waitForCache,
  writes: (arg: { target: 'direct' | 'rest'; concurrency: number; ms: number }) => closedLoop(arg.concurrency, arg.ms, () => WRITES[arg.target](SET_PATH)),
  fanConnect,
  fanSubscribe,
  fanRound,
  /** The last event message received, as text (the gateway's: W's template). */
  fanSample: () => lastMessage?.toString('utf8'),
  fanTemplate: (text: string) => void (wTemplate = text),
  lockSetup,
  lockRound,
  close: () => {
    for (const ws of fan?.sockets ?? []) ws.terminate();
    light?.uncached.close();
    light?.defaults.close();
    lockConns?.close();
    fan?.publisher?.terminate();
    grpc?.close();
    agent?.destroy();
    zk?.close();
  },
});
