/**
 * The gRPC fast path (src/api/grpc/fast-path.ts) answers exactly as grpc-js does: two gateways
 * on one ZooKeeper, one with `grpc.fastPath` off, get the same HTTP/2 requests — hits, misses,
 * bad paths, no key, a wrong key, a key scoped elsewhere, malformed, empty, doubled and oversized
 * messages, an answer over the size bound, a deadline, a compressed body — and must give the same
 * response headers, message bytes, trailers and access-log line. A grpc-js client reads the fast
 * answers like any other. Calls with a deadline (`grpc-timeout`, sent by nearly every real
 * client) take the fast path, from grpc-js and from Python's grpcio alike, and one whose deadline
 * passes while ZooKeeper is frozen ends DEADLINE_EXCEEDED on both paths.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { connect, type IncomingHttpHeaders } from 'node:http2';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { fastCallsTaken } from '../../src/api/grpc/fast-path.js';
import { loadContract } from '../../src/api/grpc/server.js';
import { validateConfig } from '../../src/config/schema.js';
import { generateApiKey, hashApiKey, type Logger } from '../../src/core/index.js';
import { startGateway, type RunningGateway } from '../../src/main.js';
import type { NativeZkClient } from '../../src/zk/native-client.js';
import { errorCode, grpcClient } from '../support/grpc-client.js';
import { connectRaw } from '../support/zk-tree.js';
import { startZkServer, type ZkStandalone } from '../support/zk-server.js';

const ADMIN = generateApiKey();
const SCOPED = generateApiKey();
const MAX = 1024;
let zk: ZkStandalone;
let raw: NativeZkClient;
const gws: { fast: RunningGateway; grpcJs: RunningGateway; logs: { fast: string[]; grpcJs: string[] } } = {
  logs: { fast: [], grpcJs: [] },
} as never;

function logger(into: string[]): Logger {
  return pino({ level: 'debug' }, new Writable({ write: (chunk: Buffer, _e, cb) => void (into.push(chunk.toString('utf8')), cb()) }));
}

before(async () => {
  zk = await startZkServer();
  raw = await connectRaw(zk.connectString);
  await raw.create('/gfp', Buffer.alloc(0), 'persistent');
  await raw.create('/gfp/a', Buffer.from('hello ünïcode'), 'persistent');
  await raw.create('/gfp/bin', Buffer.from([0xff, 0x00, 0xfe]), 'persistent');
  await raw.create('/gfp/big', Buffer.alloc(MAX + 10, 'b'), 'persistent');
  const config = (fastPath: boolean) =>
    validateConfig({
      zookeeper: { connect: zk.connectString },
      http: { port: 0 },
      grpc: { fastPath, maxMessageBytes: MAX },
      tenants: [
        {
          name: 'default',
          sessionTimeoutMs: 6000,
          apiKeys: [
            { sha256: hashApiKey(ADMIN), role: 'admin', name: 'ops' },
            { sha256: hashApiKey(SCOPED), role: 'read', prefixes: ['/elsewhere'] },
          ],
        },
      ],
    });
  gws.fast = await startGateway(config(true), logger(gws.logs.fast));
  gws.grpcJs = await startGateway(config(false), logger(gws.logs.grpcJs));
  // Both tenant sessions connected before answers are compared (a loaded machine may be slow).
  for (const gw of [gws.fast, gws.grpcJs]) {
    for (let i = 0; ; i++) {
      const a = await ask(gw, 'Get', get('/gfp/a'), bearer(ADMIN));
      if (a.trailers['grpc-status'] === '0') break;
      if (i > 200) throw new Error(`gateway not ready: ${JSON.stringify(a.headers)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
});

after(async () => {
  raw?.close();
  await gws.fast?.close();
  await gws.grpcJs?.close();
  await zk?.close();
});

const contract = loadContract();
const codec = (method: string) => (contract['zkgate.v1.Znodes'] as unknown as Record<string, { requestSerialize(v: unknown): Buffer }>)[method] as { requestSerialize(v: unknown): Buffer };

/** One length-prefixed gRPC message (`flag` 1 = compressed). */
function frame(message: Buffer, flag = 0, length = message.length): Buffer {
  const head = Buffer.alloc(5);
  head[0] = flag;
  head.writeUInt32BE(length, 1);
  return Buffer.concat([head, message]);
}

interface Answer {
  headers: Record<string, unknown>;
  data: string;
  trailers: Record<string, unknown>;
}

const VOLATILE = new Set(['date']);
const clean = (h: IncomingHttpHeaders): Record<string, unknown> => Object.fromEntries(Object.entries(h).filter(([k]) => !VOLATILE.has(k)));

/** One raw HTTP/2 call: the response headers, the bytes of the body and the trailers. */
function ask(gw: RunningGateway, method: string, body: Buffer, headers: Record<string, string>): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const session = connect(`http://127.0.0.1:${gw.grpcPort}`);
    session.on('error', reject);
    const req = session.request({ ':method': 'POST', ':path': `/zkgate.v1.Znodes/${method}`, 'content-type': 'application/grpc', te: 'trailers', ...headers });
    const out: Answer = { headers: {}, data: '', trailers: {} };
    const chunks: Buffer[] = [];
    req.on('response', (h) => (out.headers = clean(h)));
    req.on('trailers', (t) => (out.trailers = clean(t)));
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', reject);
    req.on('close', () => {
      out.data = Buffer.concat(chunks).toString('hex');
      session.close();
      resolve(out);
    });
    req.end(body);
  });
}

async function accessLine(which: 'fast' | 'grpcJs', reqId: string): Promise<Record<string, unknown>> {
  for (let i = 0; i < 100; i++) {
    const line = gws.logs[which].map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'grpc call' && l.reqId === reqId);
    if (line) {
      const { time: _t, pid: _p, hostname: _h, durationMs, reqId: _r, ...rest } = line;
      assert.equal(typeof durationMs, 'number');
      return rest;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`no access line for ${reqId} (${which})`);
}

const bearer = (k: string): Record<string, string> => ({ authorization: `Bearer ${k}` });
const get = (path: string, extra: Record<string, unknown> = {}): Buffer => frame(codec('Get').requestSerialize({ path, ...extra }));

test('gRPC fast path › the gateway runs it (and not the other)', () => {
  assert.equal(gws.fast.grpcFastPath, true, 'fast path not installed: did grpc-js move its internals? (src/api/grpc/listener.ts)');
  assert.equal(gws.grpcJs.grpcFastPath, false);
});

/** A read whose answer is over grpc.maxMessageBytes, and a request over it. */
const OVERSIZED_ANSWER = get('/gfp/big');
const OVERSIZED_REQUEST = frame(Buffer.alloc(MAX + 1, 1));
const OVER_THE_BOUND = new Set([OVERSIZED_ANSWER, OVERSIZED_REQUEST]);
/** A `grpc-timeout` grpc-js refuses (INTERNAL, below its interceptors: no request id, no access line), on both. */
const BAD_TIMEOUT = { ...bearer(ADMIN), 'grpc-timeout': 'soon' };

test('gRPC fast path › every answer equals grpc-js\'s: headers, message bytes, trailers and the access-log line', async () => {
  const cases: [string, Buffer, Record<string, string>][] = [
    ['Get', get('/gfp/a'), bearer(ADMIN)],
    ['Get', get('/gfp/bin'), bearer(ADMIN)],
    ['Get', get('/gfp/a', { sync: true }), bearer(ADMIN)],
    ['Get', get('/gfp/a'), { ...bearer(ADMIN), 'content-type': 'application/grpc+proto' }],
    ['Get', get('/gfp/missing'), bearer(ADMIN)],
    ['Get', get('/gfp/a'), {}],
    ['Get', get('/gfp/a'), bearer(`${ADMIN}x`)],
    ['Get', get('/gfp/a'), { authorization: 'Basic abc' }],
    ['Get', get('/gfp/a'), bearer(SCOPED)],
    ['Get', get('/gfp/a'), { ...bearer(ADMIN), 'zkgate-tenant': 'nope' }],
    ['Get', get('gfp/a'), bearer(ADMIN)],
    ['Get', get('/gfp//a'), bearer(ADMIN)],
    ['Get', get('/gfp/ü'), bearer(ADMIN)],
    ['Get', OVERSIZED_ANSWER, bearer(ADMIN)],
    ['Get', frame(Buffer.from([0xff, 0xff, 0xff])), bearer(ADMIN)], // not protobuf
    ['Get', Buffer.alloc(0), bearer(ADMIN)], // no message
    ['Get', frame(Buffer.alloc(3), 0, 9), bearer(ADMIN)], // a message cut short
    ['Get', Buffer.concat([get('/gfp/a'), get('/gfp/a')]), bearer(ADMIN)], // two messages
    ['Get', OVERSIZED_REQUEST, bearer(ADMIN)],
    ['Get', get('/gfp/a'), { ...bearer(ADMIN), 'grpc-timeout': '5S' }], // a deadline
    ['Get', get('/gfp/missing'), { ...bearer(ADMIN), 'grpc-timeout': '99999999u' }],
    ['Get', get('/gfp/a'), BAD_TIMEOUT],
    ['Get', get('/gfp/a'), { ...bearer(ADMIN), 'grpc-encoding': 'gzip' }], // grpc-js on both
    ['Exists', frame(codec('Exists').requestSerialize({ path: '/gfp/a' })), bearer(ADMIN)],
    ['Exists', frame(codec('Exists').requestSerialize({ path: '/gfp/missing' })), bearer(ADMIN)],
    ['Exists', frame(codec('Exists').requestSerialize({ path: '/gfp/a' })), {}],
    ['Children', frame(codec('Children').requestSerialize({ path: '/gfp', withStats: true })), bearer(ADMIN)],
    ['Children', frame(codec('Children').requestSerialize({ path: '/gfp', limit: 1 })), bearer(ADMIN)],
    ['Children', frame(codec('Children').requestSerialize({ path: '/gfp/missing' })), bearer(ADMIN)],
    ['Children', frame(codec('Children').requestSerialize({ path: '/gfp', limit: -1 })), bearer(ADMIN)],
  ];
  for (const [i, [method, body, headers]] of cases.entries()) {
    const what = `${method} #${i} ${JSON.stringify(headers).slice(0, 60)}`;
    const fast = await ask(gws.fast, method, body, { ...headers, 'x-request-id': `gfp-${i}` });
    const slow = await ask(gws.grpcJs, method, body, { ...headers, 'x-request-id': `gfp-${i}` });
    if (headers === BAD_TIMEOUT) {
      assert.equal(fast.headers['grpc-status'], '13', what);
      assert.deepEqual(fast, slow, what);
      continue;
    }
    assert.equal(fast.trailers['x-request-id'] ?? fast.headers['x-request-id'], `gfp-${i}`, what);
    if (OVER_THE_BOUND.has(body)) {
      // grpc-js ends these calls beneath its interceptors: no request id, no access line. The
      // fast path echoes the id and logs the call; the rest of the answer is the same.
      for (const part of [fast.headers, fast.trailers, slow.headers, slow.trailers]) delete part['x-request-id'];
      assert.deepEqual(fast, slow, what);
      assert.equal((await accessLine('fast', `gfp-${i}`)).status, 'RESOURCE_EXHAUSTED', what);
      continue;
    }
    assert.deepEqual(fast, slow, what);
    assert.deepEqual(await accessLine('fast', `gfp-${i}`), await accessLine('grpcJs', `gfp-${i}`), what);
  }
});

test('gRPC fast path › a request id that is not plain is replaced by a UUID on both paths', async () => {
  for (const gw of [gws.fast, gws.grpcJs]) {
    const a = await ask(gw, 'Get', get('/gfp/a'), { ...bearer(ADMIN), 'x-request-id': 'bad id with spaces' });
    assert.match(String(a.headers['x-request-id']), /^[0-9a-f-]{36}$/);
    assert.equal(a.trailers['x-request-id'], a.headers['x-request-id']);
  }
});

test('gRPC fast path › a grpc-js client reads fast answers and errors as usual', async () => {
  const client = grpcClient(gws.fast.grpcPort, { apiKey: ADMIN });
  try {
    const node = await client.unary<{ path: string; data: Buffer; stat: { dataLength: number }; source: string }>('Znodes', 'Get', { path: '/gfp/a' });
    assert.equal(node.path, '/gfp/a');
    assert.equal(node.data.toString('utf8'), 'hello ünïcode');
    assert.equal(node.stat.dataLength, Buffer.byteLength('hello ünïcode'));
    await assert.rejects(client.unary('Znodes', 'Get', { path: '/gfp/missing' }), (err) => errorCode(err) === 'NO_NODE');
    const exists = await client.unary<{ exists: boolean }>('Znodes', 'Exists', { path: '/gfp/bin' });
    assert.equal(exists.exists, true);
    // 64 at once on one connection: every answer to its own call.
    const many = await Promise.all(Array.from({ length: 64 }, (_, i) => client.unary<{ path: string }>('Znodes', 'Get', { path: i % 2 ? '/gfp/a' : '/gfp/bin' })));
    many.forEach((n, i) => assert.equal(n.path, i % 2 ? '/gfp/a' : '/gfp/bin'));
  } finally {
    client.close();
  }
});

const DEADLINE_EXCEEDED = 4;

/** A grpc-js call with a deadline: its status code and the answer's path. */
async function grpcJsCall(gw: RunningGateway, path: string, deadlineMs: number): Promise<{ code: number; path?: string }> {
  const client = grpcClient(gw.grpcPort, { apiKey: ADMIN });
  // Connected first: on a loaded machine the connection alone can outlast a short deadline, and
  // the call then ends in the client without reaching the gateway.
  await new Promise<void>((resolve, reject) => client.services.Znodes.waitForReady(Date.now() + 20_000, (err) => (err ? reject(err) : resolve())));
  try {
    const node = await client.unary<{ path: string }>('Znodes', 'Get', { path }, { deadlineMs });
    return { code: 0, path: node.path };
  } catch (err) {
    return { code: (err as { code: number }).code };
  } finally {
    client.close();
  }
}

/** Python's grpcio (Debian's, /usr/bin/python3) calling Get with `timeout=`: one JSON line per call. */
const PYTHON = `
import grpc, json, sys
port, key, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
with grpc.insecure_channel("127.0.0.1:" + port) as channel:
    grpc.channel_ready_future(channel).result(timeout=20)  # connected before any deadline starts
    get = channel.unary_unary("/zkgate.v1.Znodes/Get")  # raw bytes both ways: no stubs needed
    for request in sys.argv[4:]:
        try:
            answer = get(bytes.fromhex(request), timeout=timeout, metadata=[("authorization", "Bearer " + key)])
            print(json.dumps({"code": 0, "answer": answer.hex()}), flush=True)
        except grpc.RpcError as e:
            print(json.dumps({"code": e.code().value[0], "details": e.details()}), flush=True)
`;
const run = promisify(execFile);

async function pythonCalls(gw: RunningGateway, timeoutS: number, paths: string[]): Promise<{ code: number; answer?: string; details?: string }[]> {
  const requests = paths.map((p) => codec('Get').requestSerialize({ path: p }).toString('hex'));
  const { stdout } = await run('/usr/bin/python3', ['-c', PYTHON, String(gw.grpcPort), ADMIN, String(timeoutS), ...requests], { timeout: 30_000 });
  return stdout.trim().split('\n').map((l) => JSON.parse(l) as { code: number; answer?: string });
}

test('gRPC fast path › calls with a deadline take it, from grpc-js and from Python grpcio, and answer as grpc-js does', async () => {
  const taken = fastCallsTaken();
  const fast = await grpcJsCall(gws.fast, '/gfp/a', 10_000);
  assert.equal(fastCallsTaken(), taken + 1, 'the grpc-js call with a deadline did not take the fast path');
  assert.deepEqual(fast, await grpcJsCall(gws.grpcJs, '/gfp/a', 10_000));
  assert.deepEqual(fast, { code: 0, path: '/gfp/a' });

  const paths = ['/gfp/a', '/gfp/bin', '/gfp/missing'];
  const before = fastCallsTaken();
  const py = await pythonCalls(gws.fast, 10, paths);
  assert.equal(fastCallsTaken(), before + paths.length, 'the grpcio calls (timeout=) did not take the fast path');
  assert.deepEqual(py, await pythonCalls(gws.grpcJs, 10, paths));
  assert.deepEqual(py.map((a) => a.code), [0, 0, 5]); // NOT_FOUND for the missing node
});

test('gRPC fast path › a deadline that passes while ZooKeeper is silent ends DEADLINE_EXCEEDED on both paths; the late answer is dropped', async () => {
  const taken = fastCallsTaken();
  // Nodes no call read before: a read of /gfp/a would be answered from the read cache
  // (docs/watch.md) without waiting for ZooKeeper.
  const fresh = (n: string): string => `/gfp/unread-${n}`;
  zk.pause();
  let raws: [Answer, Answer];
  let jsCodes: number[];
  let pyCodes: number[];
  try {
    [raws, jsCodes, pyCodes] = await Promise.all([
      Promise.all([
        ask(gws.fast, 'Get', get(fresh('raw')), { ...bearer(ADMIN), 'grpc-timeout': '300m', 'x-request-id': 'gfp-deadline' }),
        ask(gws.grpcJs, 'Get', get(fresh('raw')), { ...bearer(ADMIN), 'grpc-timeout': '300m', 'x-request-id': 'gfp-deadline' }),
      ]),
      Promise.all([grpcJsCall(gws.fast, fresh('js'), 300), grpcJsCall(gws.grpcJs, fresh('js'), 300)]).then((r) => r.map((a) => a.code)),
      Promise.all([pythonCalls(gws.fast, 0.3, [fresh('py')]), pythonCalls(gws.grpcJs, 0.3, [fresh('py')])]).then((r) => r.map((a) => (a[0] as { code: number }).code)),
    ]);
  } finally {
    zk.resume();
  }
  assert.equal(fastCallsTaken(), taken + 3);
  assert.deepEqual(jsCodes, [DEADLINE_EXCEEDED, DEADLINE_EXCEEDED]);
  assert.deepEqual(pyCodes, [DEADLINE_EXCEEDED, DEADLINE_EXCEEDED]);
  const [fast, slow] = raws;
  // A trailers-only answer (the status in the headers). grpc-js ends the call below its
  // interceptors (no request id, no access line); the fast path echoes the id and logs the call.
  assert.equal(fast.headers['grpc-status'], String(DEADLINE_EXCEEDED));
  assert.equal(fast.headers['x-request-id'], 'gfp-deadline');
  delete fast.headers['x-request-id'];
  assert.deepEqual(fast, slow);
  assert.equal((await accessLine('fast', 'gfp-deadline')).status, 'DEADLINE_EXCEEDED');
  // ZooKeeper's late answers were dropped: no second answer, no crash; the next call is served.
  for (const gw of [gws.fast, gws.grpcJs]) {
    for (let i = 0; ; i++) {
      const a = await ask(gw, 'Get', get('/gfp/a'), { ...bearer(ADMIN), 'grpc-timeout': '10S' });
      if (a.trailers['grpc-status'] === '0') break;
      if (i > 100) throw new Error(`gateway not serving after ZooKeeper resumed: ${JSON.stringify(a.trailers)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  assert.equal(gws.logs.fast.filter((l) => l.includes('"reqId":"gfp-deadline"')).length, 1, 'one access line for the expired call');
});
