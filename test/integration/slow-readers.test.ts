/**
 * Issue 9: slow readers (TCP back-pressure). A client with a tiny receive window (SO_RCVBUF 4 KiB,
 * set by a Python client before it connects) subscribes or calls and then never reads while the
 * gateway keeps having things to send. The gateway must not buffer for it without bound: the
 * WebSocket, SSE and gRPC stream pumps wait for the socket (gRPC: HTTP/2 flow control), so events
 * pile up only in the subscriber's queue (watch.queueSize) and the subscriber is cut with
 * SLOW_CONSUMER; WebSocket replies, which
 * do not wait, are bounded by watch.maxSendBufferBytes. Meanwhile other clients are served, the
 * gateway's memory stays bounded, and every unit the reader held comes back.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { startGateway, type RunningGateway } from '../../src/main.js';
import { validateConfig } from '../../src/config/schema.js';
import { generateApiKey, hashApiKey, silentLogger } from '../../src/core/index.js';
import { startZkServer, type ZkStandalone } from '../support/zk-server.js';
import { eventually } from '../support/test-gateway.js';
import { loadContract } from '../../src/api/grpc/server.js';
import type { MethodDefinition } from '@grpc/proto-loader';

const KEY = generateApiKey();
const SEND_BUFFER = 2_097_152;

/** A client that sets SO_RCVBUF before connecting, sends its request(s), then never reads. */
const PY_READER = String.raw`
import json, socket, sys
port, key, path, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(('127.0.0.1', port))
def frame(obj):
    p = json.dumps(obj).encode()
    n = len(p)
    head = bytes([0x81, 0x80 | n]) if n < 126 else bytes([0x81, 0x80 | 126]) + n.to_bytes(2, 'big')
    return head + b'\0\0\0\0' + p  # masked with key 0
if mode == 'raw':
    s.sendall(bytes.fromhex(path))
elif mode == 'get':
    s.sendall(('GET %s HTTP/1.1\r\nhost: x\r\nauthorization: Bearer %s\r\n\r\n' % (path, key)).encode())
elif mode == 'sse':
    s.sendall(('GET /v1/watch%s?kind=data HTTP/1.1\r\nhost: x\r\nauthorization: Bearer %s\r\n\r\n' % (path, key)).encode())
else:
    s.sendall(('GET /v1/ws HTTP/1.1\r\nhost: x\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-version: 13\r\n'
               'sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nauthorization: Bearer %s\r\n\r\n' % key).encode())
    got = b''
    while b'\r\n\r\n' not in got:
        got += s.recv(1)  # the 101 head only, a byte at a time: nothing after it is read
    if mode == 'ws-subscribe':
        s.sendall(frame({'op': 'subscribe', 'id': 's', 'path': path, 'kind': 'data'}))
    else:
        for i in range(60):
            s.sendall(frame({'op': 'call', 'id': str(i), 'method': 'Znodes.Get', 'params': {'path': path}}))
print('sent', flush=True)
sys.stdin.read()  # hold the socket, unread, until the test ends us
`;

/** `path` is the node (`get`: the request path; `raw`: the hex of the bytes to send). */
function slowReader(port: number, path: string, mode: 'sse' | 'get' | 'ws-subscribe' | 'ws-calls' | 'raw'): Promise<ChildProcess> {
  const p = spawn('/usr/bin/python3', ['-c', PY_READER, String(port), KEY, path, mode], { stdio: ['pipe', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    p.stdout?.once('data', () => resolve(p));
    p.once('exit', (code) => reject(new Error(`slow reader exited ${code}`)));
  });
}

let zk: ZkStandalone;
let gw: RunningGateway;
const base = (): string => `http://127.0.0.1:${gw.httpPort}`;
const auth = { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' };
const BIG = Buffer.alloc(256 * 1024, 'z').toString('base64');

before(async () => {
  zk = await startZkServer();
  gw = await startGateway(
    validateConfig({
      zookeeper: { connect: zk.connectString },
      http: { port: 0 },
      grpc: { port: 0 },
      watch: { queueSize: 16, maxSendBufferBytes: SEND_BUFFER },
      log: { level: 'silent' },
      tenants: [{ name: 'slow', chroot: '/slow-readers', sessionTimeoutMs: 10_000, apiKeys: [{ sha256: hashApiKey(KEY), role: 'admin' }] }],
    }),
    silentLogger,
  );
  await eventually(async () => (await fetch(`${base()}/v1/nodes/big`, { method: 'POST', headers: auth, body: JSON.stringify({ data: BIG, encoding: 'base64' }) })).status === 201, 15_000, '/big created');
});
after(async () => {
  await gw?.close();
  await zk?.close();
});

function usage(): { connections: number; subscriptions: number } {
  const u = gw.gateway.quotaUsage().find((t) => t.tenant === 'slow')?.usage;
  return { connections: u?.connections.used ?? -1, subscriptions: u?.subscriptions.used ?? -1 };
}

/** Bytes of Buffers and ArrayBuffers this process (the gateway's) holds. */
const heldBytes = (): number => process.memoryUsage().arrayBuffers;

describe('slow readers', () => {
  for (const mode of ['ws-subscribe', 'sse'] as const) {
    test(`${mode === 'sse' ? 'SSE' : 'WebSocket'} subscriber that never reads is cut as SLOW_CONSUMER; memory bounded; others served`, async () => {
      const start = heldBytes();
      const reader = await slowReader(gw.httpPort, '/big', mode);
      try {
        await eventually(() => usage().subscriptions === 1, 10_000, 'the reader subscribed');
        // Keep changing the node (256 KiB each) until the reader is cut; other clients are served all along.
        let sets = 0;
        let peak = 0;
        while (usage().subscriptions !== 0) {
          assert.ok(sets < 400, `still subscribed after ${sets} changes of 256 KiB`);
          const res = await fetch(`${base()}/v1/nodes/big`, { method: 'PUT', headers: auth, body: JSON.stringify({ data: BIG, encoding: 'base64' }) });
          assert.equal(res.status, 200);
          sets++;
          peak = Math.max(peak, heldBytes() - start);
        }
        // SSE: the stream ends with the subscription. WebSocket: the subscription ends (an error
        // message for it waits in the unread socket), the socket stays until its heartbeat or close.
        if (mode === 'sse') await eventually(() => usage().connections === 0, 10_000, 'the connection unit back');
        const metrics = await (await fetch(`${base()}/metrics`)).text();
        assert.match(metrics, /zkgate_watch_slow_consumers\{tenant="slow"\} [1-9]/);
        // 'sets' changes of 256 KiB went out to a reader taking 4 KiB: what the gateway held stayed a
        // fraction (the kernel's socket buffer plus a queue of 16 events), not all of it.
        console.log(`# ${mode}: cut after ${sets} changes (${(sets / 4).toFixed(0)} MiB sent), peak held ${(peak / 1_048_576).toFixed(1)} MiB`);
        assert.ok(peak < 64 * 1_048_576, `held ${peak} bytes`);
      } finally {
        reader.kill();
      }
      await eventually(() => usage().connections === 0 && gw.connections().http === 0, 10_000, 'the reader gone, nothing held');
    });
  }

  test('gRPC Watch stream that never reads (HTTP/2 window and TCP window full) is cut as SLOW_CONSUMER; others served', async () => {
    // A raw HTTP/2 client (in Python, SO_RCVBUF 4 KiB): preface, SETTINGS, the call's HEADERS
    // (HPACK literals) and one DATA frame with the subscribe message; it never reads and never
    // sends WINDOW_UPDATE, so the gateway may send 64 KiB on the stream and no more.
    const header = (name: string, value: string): Buffer => Buffer.concat([Buffer.from([0, name.length]), Buffer.from(name), Buffer.from([value.length]), Buffer.from(value)]);
    const block = Buffer.concat([
      header(':method', 'POST'), header(':scheme', 'http'), header(':path', '/zkgate.v1.Watch/Watch'), header(':authority', 'localhost'),
      header('content-type', 'application/grpc'), header('te', 'trailers'), header('authorization', `Bearer ${KEY}`),
    ]);
    const def = (loadContract()['zkgate.v1.Watch'] as Record<string, MethodDefinition<object, object>>).Watch as MethodDefinition<object, object>;
    const body = def.requestSerialize({ subscribe: { id: 's', path: '/big', kind: 'WATCH_KIND_DATA' } });
    const msg = Buffer.concat([Buffer.from([0, 0, 0, 0, 0]), body]);
    msg.writeUInt32BE(body.length, 1);
    const frame = (type: number, flags: number, stream: number, payload: Buffer): Buffer => {
      const head = Buffer.alloc(9);
      head.writeUIntBE(payload.length, 0, 3);
      head.writeUInt8(type, 3);
      head.writeUInt8(flags, 4);
      head.writeUInt32BE(stream, 5);
      return Buffer.concat([head, payload]);
    };
    const bytes = Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), frame(4, 0, 0, Buffer.alloc(0)), frame(1, 4, 1, block), frame(0, 0, 1, msg)]);
    const reader = await slowReader(gw.grpcPort, bytes.toString('hex'), 'raw');
    try {
      await eventually(() => usage().subscriptions === 1, 10_000, 'the stream subscribed');
      let sets = 0;
      while (usage().subscriptions !== 0) {
        assert.ok(sets < 400, `still subscribed after ${sets} changes of 256 KiB`);
        const res = await fetch(`${base()}/v1/nodes/big`, { method: 'PUT', headers: auth, body: JSON.stringify({ data: BIG, encoding: 'base64' }) });
        assert.equal(res.status, 200, `after ${sets} changes: ${await res.text()}`);
        sets++;
      }
      console.log(`# gRPC Watch: cut after ${sets} changes (${(sets / 4).toFixed(0)} MiB sent)`);
    } finally {
      reader.kill();
    }
    await eventually(() => usage().connections === 0 && gw.connections().grpc === 0, 10_000, 'the reader gone, nothing held');
  });

  test('registry SSE reader that goes away while a write waits for drain: the stream lets go (heartbeat timer stopped)', async () => {
    // Ref'd timers of this process (the in-process gateway's): the stream's heartbeat is one of them.
    const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const lease = ((await (await fetch(`${base()}/v1/leases`, { method: 'POST', headers: auth, body: JSON.stringify({ ttlMs: 30_000 }) })).json()) as { id: string }).id;
    const blob = 'b'.repeat(600_000);
    const register = async (i: number, port: number): Promise<void> => {
      const res = await fetch(`${base()}/v1/services/fat/instances`, { method: 'POST', headers: auth, body: JSON.stringify({ leaseId: lease, id: `i${i}`, address: 'h', port, payload: { blob } }) });
      assert.equal(res.status, 201, await res.text());
    };
    for (let i = 0; i < 8; i++) await register(i, 1000 + i);
    const baseline = timers();
    const reader = await slowReader(gw.httpPort, '/v1/services/fat/watch', 'get');
    try {
      await eventually(() => usage().subscriptions === 1, 10_000, 'the reader subscribed');
      // Sets of ~5 MiB to a reader taking 4 KiB: the write waits for a drain that never comes.
      const put = await fetch(`${base()}/v1/services/fat/instances/i0`, { method: 'PUT', headers: auth, body: JSON.stringify({ leaseId: lease, port: 2000 }) });
      assert.equal(put.status, 200, await put.text());
      assert.ok(timers() > baseline, 'the stream holds a heartbeat timer');
    } finally {
      reader.kill('SIGKILL');
    }
    await eventually(() => usage().connections === 0 && gw.connections().http === 0, 10_000, 'the reader gone');
    await eventually(() => timers() <= baseline, 10_000, `the heartbeat timer stopped (ref'd timers back to ${baseline})`);
    await fetch(`${base()}/v1/leases/${lease}`, { method: 'DELETE', headers: auth });
  });

  test('WebSocket client that keeps calling and never reads the replies is dropped past watch.maxSendBufferBytes', async () => {
    const start = heldBytes();
    const reader = await slowReader(gw.httpPort, '/big', 'ws-calls');
    try {
      // 60 replies of 341 KiB (the node in base64) do not fit 2 MiB of send buffer plus the kernel's.
      await eventually(() => usage().connections === 0, 20_000, 'the WebSocket dropped');
      const metrics = await (await fetch(`${base()}/metrics`)).text();
      assert.match(metrics, /zkgate_limit_rejections_total\{limit="watch\.maxSendBufferBytes",transport="ws"\} 1/);
      const res = await fetch(`${base()}/v1/nodes/big`, { headers: auth });
      assert.equal(res.status, 200, 'others are served');
      assert.ok(heldBytes() - start < 64 * 1_048_576);
    } finally {
      reader.kill();
    }
  });
});
