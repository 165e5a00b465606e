/**
 * Issue 17 items 1, 4 and 6, measured on the resource rather than the status code: /metrics
 * label sets are fixed (thousands of distinct unauthenticated paths add no series), WebSocket
 * messages over the limit are cut from their frame header (bytes accepted before the 1009 close,
 * RSS), and no request body is read before its caller is authenticated, on any route (the answer
 * arrives while most of the body is still unsent, and the connection is closed, not drained).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, request as httpRequest } from 'node:http';
import { startGateway, type RunningGateway } from '../../src/main.js';
import { validateConfig } from '../../src/config/schema.js';
import { generateApiKey, hashApiKey, silentLogger } from '../../src/core/index.js';
import { startZkServer, type ZkStandalone } from '../support/zk-server.js';
import { eventually } from '../support/test-gateway.js';
import { WsTestClient } from '../support/ws-client.js';
import { rawConnect, upgradeRequest, wsCloseCode, wsFrameHead, wsFrames, type RawConn } from '../support/raw-conn.js';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { projectFile } from '../../src/project-files.js';

const KEY = generateApiKey();
const SMALL_KEY = generateApiKey();
const WS_LIMIT = 65_536;
const SMALL_WS_LIMIT = 4096;
let zk: ZkStandalone;
let gw: RunningGateway;

before(async () => {
  zk = await startZkServer();
  gw = await startGateway(
    validateConfig({
      zookeeper: { connect: zk.connectString },
      http: { port: 0 },
      log: { level: 'silent' },
      limits: { wsMaxMessageBytes: WS_LIMIT, wsMessagesPerSecond: 1000 },
      tenants: [
        { name: 'main', chroot: '/main', apiKeys: [{ sha256: hashApiKey(KEY), role: 'admin' }] },
        { name: 'small', chroot: '/small', apiKeys: [{ sha256: hashApiKey(SMALL_KEY), role: 'admin' }], limits: { wsMaxMessageBytes: SMALL_WS_LIMIT } },
      ],
    }),
    silentLogger,
  );
});
after(async () => {
  await gw?.close();
  await zk?.close();
});

const agent = new Agent({ keepAlive: true, maxSockets: 16 });
after(() => agent.destroy());

function get(path: string, method = 'GET'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: gw.httpPort, path, method, agent }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The series of the request-latency histogram in a /metrics scrape, by their label sets. */
async function requestSeries(): Promise<{ series: string[]; bytes: number }> {
  const { body } = await get('/metrics');
  const series = body.split('\n').filter((l) => l.startsWith('zkgate_http_request_duration_seconds_count{'));
  return { series, bytes: body.length };
}

describe('/metrics label sets are fixed at build time', () => {
  test('3000 unauthenticated requests to distinct paths add no request series', async () => {
    await get('/healthz');
    await get('/nope');
    const before = await requestSeries();
    const paths = Array.from({ length: 3000 }, (_, i) => {
      const r = Math.random().toString(36).slice(2, 8);
      return [`/${r}-${i}`, `/v1/${r}${i}/x`, `/v1/nodes/${r}/${i}`, `/docs/x${i}`, `/v1/leases/${r}${i}/keepalive/extra`][i % 5] as string;
    });
    for (let i = 0; i < paths.length; i += 64) {
      await Promise.all(paths.slice(i, i + 64).map((p, j) => get(p, j % 3 === 0 ? 'POST' : 'GET')));
    }
    const afterScrape = await requestSeries();
    const added = afterScrape.series.filter((s) => !before.series.includes(s));
    // At most: the templates hit (other, /v1/nodes/{path}, /v1/leases/{id}) × two methods × a few statuses.
    assert.ok(added.length <= 12, `added series:\n${added.join('\n')}`);
    assert.ok(afterScrape.bytes - before.bytes < 20_000, `/metrics grew from ${before.bytes} to ${afterScrape.bytes} bytes`);
    const openapi = parse(readFileSync(projectFile('openapi.yaml'), 'utf8')) as { paths: Record<string, unknown> };
    const templates = new Set([...Object.keys(openapi.paths), 'other']);
    for (const s of afterScrape.series) {
      const route = /route="([^"]*)"/.exec(s)?.[1] ?? '';
      assert.ok(templates.has(route), `route label ${route} is a template of openapi.yaml or other`);
    }
    console.log(`request series: ${before.series.length} before, ${afterScrape.series.length} after 3000 distinct paths; /metrics ${before.bytes} → ${afterScrape.bytes} bytes`);
  });
});

describe('WebSocket message size is enforced at the protocol level', () => {
  /**
   * Upgrades with `key`, then sends `count` frames of `frameBytes` in 16 KiB pieces, stopping
   * once the server's close frame arrives. Returns the payload bytes handed to the socket before
   * that and what the server sent.
   */
  async function sendLargeFrames(key: string, frameBytes: number, count: number): Promise<{ sent: number; closeCode: number | null; errorReplies: number }> {
    const c: RawConn = await rawConnect({ port: gw.httpPort });
    c.socket.write(upgradeRequest('/v1/ws', { authorization: `Bearer ${key}` }));
    assert.equal((await c.response()).status, 101);
    const start = c.received().indexOf('\r\n\r\n') + 4;
    const frames = (): ReturnType<typeof wsFrames> => wsFrames(c.received().subarray(start));
    const piece = Buffer.alloc(16_384, 0x61);
    let sent = 0;
    outer: for (let f = 0; f < count; f++) {
      c.socket.write(wsFrameHead(frameBytes));
      for (let off = 0; off < frameBytes; off += piece.length) {
        if (c.isClosed() || wsCloseCode(frames()) !== null) break outer;
        const chunk = piece.subarray(0, Math.min(piece.length, frameBytes - off));
        if (!c.socket.write(chunk)) await Promise.race([new Promise((r) => c.socket.once('drain', r)), c.closed]);
        sent += chunk.length;
        await new Promise((r) => setImmediate(r));
      }
    }
    await c.until(() => wsCloseCode(frames()) !== null, 10_000).catch(() => undefined);
    const errorReplies = frames().filter((fr) => fr.opcode === 0x1 && (JSON.parse(fr.payload.toString()) as { type: string }).type === 'error').length;
    const closeCode = wsCloseCode(frames());
    c.reset();
    return { sent, closeCode, errorReplies };
  }

  test('frames over the limit are cut from their header: 1009, no payload read, RSS bounded', async () => {
    const rssBefore = process.memoryUsage().rss;
    // Kept-alive connections of earlier tests may still be open (until the idle timeout): they are the baseline.
    const connsBefore = gw.connections().http;
    // 4 senders of 20 frames of 1 MB each (80 MB) against a 64 KiB limit.
    const results = await Promise.all(Array.from({ length: 4 }, () => sendLargeFrames(KEY, 1_000_000, 20)));
    const rssGrowth = process.memoryUsage().rss - rssBefore;
    for (const r of results) {
      assert.equal(r.closeCode, 1009, JSON.stringify(r));
      assert.equal(r.errorReplies, 0, 'the message was never read to be answered');
      assert.ok(r.sent < 1_000_000, `the first frame's payload was not read to its end before the close (${r.sent} bytes sent)`);
    }
    assert.ok(rssGrowth < 64 * 1_048_576, `RSS grew by ${rssGrowth} bytes`);
    await eventually(() => gw.connections().http <= connsBefore, 5000, 'the cut sockets to close');
    console.log(`payload bytes sent before the 1009 close: ${results.map((r) => r.sent).join(', ')}; RSS growth ${Math.round(rssGrowth / 1_048_576)} MB`);
  });

  test("each tenant's own limit is the protocol limit; messages within it are answered", async () => {
    const big = await WsTestClient.open(`ws://127.0.0.1:${gw.httpPort}/v1/ws`, { authorization: `Bearer ${KEY}` });
    big.send({ op: 'ping', data: 'x'.repeat(10_000) });
    assert.equal((await big.take((m) => m.type === 'pong')).data.length, 10_000);
    big.close();
    const small = await WsTestClient.open(`ws://127.0.0.1:${gw.httpPort}/v1/ws`, { authorization: `Bearer ${SMALL_KEY}` });
    small.send({ op: 'ping', data: 'x'.repeat(3000) });
    await small.take((m) => m.type === 'pong');
    small.send({ op: 'ping', data: 'x'.repeat(10_000) });
    assert.equal((await small.closed).code, 1009);
  });
});

describe('no request body is read before the caller is authenticated, on any route', () => {
  /**
   * Sends a request head announcing a 1.4 MB body and 1 KiB of it, then waits for the answer:
   * it can only come before the rest if the body was not being read. Resolves with the answer
   * and whether the server then closed the connection (rather than draining the rest).
   */
  async function partialBody(path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string; closed: boolean }> {
    const c = await rawConnect({ port: gw.httpPort });
    const head = Object.entries({ host: 'localhost', 'content-type': 'application/json', 'content-length': '1400000', ...headers })
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('');
    c.socket.write(`POST ${path} HTTP/1.1\r\n${head}\r\n{bad${'x'.repeat(1020)}`);
    const res = await c.response(10_000);
    const closed = await Promise.race([c.closed.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 5000))]);
    c.reset();
    return { ...res, closed };
  }

  for (const path of ['/nope', '/healthz', '/metrics', '/docs', '/v1/nodes/x', '/v1/leases', '/v1/nope']) {
    test(`POST ${path} without a key: answered before the body arrives, connection closed`, async () => {
      const r = await partialBody(path);
      assert.ok([401, 404, 405].includes(r.status), `${r.status} ${r.body}`);
      assert.notEqual((JSON.parse(r.body) as { code: string }).code, 'INVALID_ARGUMENT', 'the body was not parsed');
      assert.ok(r.closed, 'the server closed the connection instead of reading the rest of the body');
    });
  }

  test('a complete malformed body outside /v1 is not parsed', async () => {
    const c = await rawConnect({ port: gw.httpPort });
    c.socket.write('POST /nope HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 4\r\nconnection: close\r\n\r\n{bad');
    const res = await c.response();
    assert.equal(res.status, 404);
    assert.equal((JSON.parse(res.body) as { code: string }).code, 'NOT_FOUND');
    c.reset();
  });

  test('with a key, the same body is read (and refused as malformed JSON)', async () => {
    const c = await rawConnect({ port: gw.httpPort });
    c.socket.write(`POST /v1/nodes/x HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${KEY}\r\ncontent-type: application/json\r\ncontent-length: 4\r\nconnection: close\r\n\r\n{bad`);
    const res = await c.response();
    assert.equal(res.status, 400);
    assert.equal((JSON.parse(res.body) as { code: string }).code, 'INVALID_ARGUMENT');
    c.reset();
  });
});
