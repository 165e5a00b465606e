/**
 * Child process for test/integration/zk-connection-reset.test.ts (run alone: a broken binding
 * aborts the whole process, so the test watches it from outside). A native client reaches a
 * ZooKeeper server through a TCP proxy in this process. In each round, inside a request's
 * completion, the proxy resets the client's connection (RST); then, after the binding has re-armed
 * its poll on the socket but before the event loop polls again (setImmediate), three requests are
 * sent. The C client's send fails (ECONNRESET). Before the fix (patches/README.md, 5) it closed
 * the socket under the poll and libuv aborted the process on epoll_ctl(EBADF), silently.
 *
 * argv: ZooKeeper port, rounds. Prints one JSON line per round ({round, failed, connecting}) and
 * `done` at the end; exits 0.
 */
import { createServer, connect, type Socket } from 'node:net';
import { NativeZkClient, ZkError } from '../../src/zk/index.js';

const [zkPort, roundsArg] = process.argv.slice(2).map(Number) as [number, number];
const clientSide: Socket[] = [];
const proxy = createServer((c) => {
  const up = connect(zkPort, '127.0.0.1');
  c.pipe(up).pipe(c);
  for (const [a, b] of [[c, up], [up, c]] as const) {
    a.on('error', () => b.destroy());
    a.on('close', () => b.destroy());
  }
  clientSide.push(c);
});
await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
const { port } = proxy.address() as { port: number };

const zk = new NativeZkClient({ connect: `127.0.0.1:${port}`, sessionTimeoutMs: 10_000 });
let connecting = 0;
zk.on('connecting', () => connecting++);
await new Promise<void>((r) => zk.once('connect', () => r()));

for (let round = 0; round < roundsArg; round++) {
  const before = connecting;
  const outcomes = await new Promise<Promise<string>[]>((resolve) => {
    void zk.get('/').then(() => {
      for (const c of clientSide.splice(0)) c.resetAndDestroy();
      setImmediate(() => {
        const sent = [0, 1, 2].map(() =>
          zk.get('/').then(
            () => 'ok',
            (e: unknown) => (e instanceof ZkError ? e.code : String(e)),
          ),
        );
        resolve(sent);
      });
    });
  });
  const results = await Promise.all(outcomes);
  await zk.get('/'); // connected again (the client retries; a request waits for the reconnect)
  console.log(JSON.stringify({ round, results, connecting: connecting - before }));
}
zk.close();
proxy.close();
console.log('done');
