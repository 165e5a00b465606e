/**
 * A draining `zkgate serve` closes its keep-alive connections (docs/cluster.md, "Deployment to
 * copy"): a balancer that keeps server connections open (haproxy `http-reuse`) must never get to
 * send another request on one of them, because that request would be refused 503 "shutting down"
 * instead of being retried on another instance. An idle connection is closed at SIGTERM; an answer
 * still to come says `Connection: close` and its connection is closed after it (Node itself would
 * answer `keep-alive` and keep it open).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, request, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { startZkServer, type ZkStandalone } from '../support/zk-server.js';
import { exitWithin, serveListening } from '../support/cli-process.js';

let zk: ZkStandalone;
before(async () => {
  zk = await startZkServer();
});
after(async () => {
  await zk?.close();
});

/** One request on `agent`; resolves with the answer, its body and the socket it came on. */
function send(agent: Agent, port: number, method: string, path: string, body?: unknown): Promise<{ res: IncomingMessage; body: string; socket: Socket }> {
  return new Promise((resolve, reject) => {
    const text = body === undefined ? '' : JSON.stringify(body);
    const req = request({ host: '127.0.0.1', port, method, path, agent, headers: text ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) } : {} }, (res) => {
      const socket = res.socket as Socket;
      let b = '';
      res.on('data', (c: Buffer) => (b += c.toString('utf8')));
      res.on('end', () => resolve({ res, body: b, socket }));
    });
    req.on('error', reject);
    req.end(text);
  });
}

const closed = (s: Socket): Promise<void> => (s.destroyed ? Promise.resolve() : new Promise((r) => s.once('close', () => r())));

test('SIGTERM › an idle keep-alive connection is closed at once; an answer given during the drain says Connection: close and its connection is closed', async () => {
  const gw = await serveListening(['--zookeeper', zk.connectString], { shutdown: { drainTimeoutMs: 10_000, exitTimeoutMs: 20_000 } });
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const waiting = new Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const holder = JSON.parse((await send(agent, gw.httpPort, 'POST', '/v1/leases', { ttlMs: 60_000 })).body).id as string;
    const waiter = JSON.parse((await send(agent, gw.httpPort, 'POST', '/v1/leases', { ttlMs: 60_000 })).body).id as string;
    const held = await send(agent, gw.httpPort, 'POST', '/v1/locks/drain-keepalive', { leaseId: holder });
    assert.equal(held.res.statusCode, 200, held.body);
    const idle = held.socket; // back in the agent's pool, open
    // The waiter's warm-up call opens its connection; the wait then runs on that same connection.
    const warm = await send(waiting, gw.httpPort, 'GET', '/healthz');
    assert.equal(warm.res.headers.connection, 'keep-alive');
    const wait = send(waiting, gw.httpPort, 'POST', '/v1/locks/drain-keepalive', { leaseId: waiter, waitMs: 2500 });
    for (let i = 0; i < 100; i++) {
      const q = JSON.parse((await send(agent, gw.httpPort, 'GET', '/v1/locks/drain-keepalive')).body) as { queue: unknown[] };
      if (q.queue.length === 2) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    gw.proc.kill('SIGTERM');
    await gw.waitFor(/shutting down/);
    await closed(idle);
    const answered = await wait;
    assert.equal(answered.res.statusCode, 409, answered.body); // the wait's own answer: not acquired in time
    assert.equal(answered.res.headers.connection, 'close');
    await closed(answered.socket);
    assert.equal(await exitWithin(gw, 20_000), 0, gw.out());
  } finally {
    agent.destroy();
    waiting.destroy();
    await gw.kill();
  }
});
