/**
 * A ZooKeeper session that cannot be rebuilt (here: the server refuses its authentication) is
 * retried with exponential backoff and jitter, not every 100 ms. A TCP proxy in front of the
 * server counts the connections each attempt opens.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { startZkServer, type ZkStandalone } from '../support/zk-server.js';
import { ZkSession, type RebuildFailure } from '../../src/zk/index.js';

let zk: ZkStandalone;
before(async () => {
  zk = await startZkServer();
});
after(async () => {
  await zk?.close();
});

/** A proxy to `port` that counts the connections it accepted. */
async function countingProxy(port: number): Promise<{ port: number; count: () => number; close: () => Promise<void> }> {
  let n = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    n += 1;
    const upstream = connect(port, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => s.destroy());
      s.on('close', () => sockets.delete(s));
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : 0,
    count: () => n,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

test('session › a session that cannot be rebuilt is retried with growing delays, reported once per attempt as an event', async () => {
  const proxy = await countingProxy(zk.clientPort);
  const session = new ZkSession({ connect: `127.0.0.1:${proxy.port}`, sessionTimeoutMs: 4000, auth: [{ scheme: 'no-such-scheme', credential: 'x' }] });
  const failures: RebuildFailure[] = [];
  session.on('rebuildFailed', (f: RebuildFailure) => failures.push(f));
  await session.start(4000).catch(() => undefined); // never connects: every handle is refused
  session.close();
  const connections = proxy.count();
  await proxy.close();
  assert.ok(connections >= 3, `it keeps retrying (${connections} connections in 4 s)`);
  // A fixed 100 ms delay makes ~30 connections in 4 s; doubling from 100 ms makes at most ~7.
  assert.ok(connections <= 10, `${connections} connections in 4 s: no backoff`);
  assert.ok(failures.length >= 2);
  for (const [i, f] of failures.entries()) {
    assert.equal(f.failures, i + 1);
    assert.match(f.reason, /auth/);
  }
  assert.ok(failures.at(-1)!.nextAttemptMs > failures[0]!.nextAttemptMs, 'the delay grows');
});
