/**
 * Answers that arrive together are handed over in the same event-loop turn (patches/README.md,
 * waiting-answers): the binding used to read one response per poll event, so a request
 * pipelined behind another (a lock's listing behind its create) had its answer a loop turn after
 * the first one's, although both were in the socket already. A TCP proxy between the client and
 * ZooKeeper holds ZooKeeper's answers to two requests sent back to back and passes them on in
 * one write; the first answer's callback schedules a `setImmediate`, which must not have run
 * when the second answer's callback runs. No timing: the proxy waits until it holds both.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { NativeZkClient } from '../../src/zk/index.js';
import { connectRaw } from '../support/zk-tree.js';
import { startZkServer, type ZkStandalone } from '../support/zk-server.js';

/** Pass-through, or holding the server's bytes until `release`. */
class HoldingProxy {
  readonly server: Server;
  private toClient: Socket | undefined;
  private held: Buffer[] | undefined;

  constructor(zkPort: number) {
    this.server = createServer((c) => {
      const up = connect(zkPort, '127.0.0.1');
      c.pipe(up);
      up.on('data', (d: Buffer) => (this.held ? this.held.push(d) : c.write(d)));
      for (const [a, b] of [[c, up], [up, c]] as const) {
        a.on('error', () => b.destroy());
        a.on('close', () => b.destroy());
      }
      this.toClient = c;
    });
  }

  hold(): void {
    this.held = [];
  }

  /** Answers (not pings or watch events: xid > 0) held so far, complete ones only. */
  answersHeld(): number {
    const all = Buffer.concat(this.held ?? []);
    let n = 0;
    for (let at = 0; at + 4 <= all.length; ) {
      const len = all.readInt32BE(at);
      if (at + 4 + len > all.length) break;
      if (len >= 4 && all.readInt32BE(at + 4) > 0) n++;
      at += 4 + len;
    }
    return n;
  }

  /** Passes on everything held in one write, and passes through from then on. */
  release(): void {
    const all = Buffer.concat(this.held ?? []);
    this.held = undefined;
    this.toClient?.write(all);
  }
}

let zk: ZkStandalone;
let proxy: HoldingProxy;
let client: NativeZkClient;
before(async () => {
  zk = await startZkServer();
  proxy = new HoldingProxy(zk.clientPort);
  await new Promise<void>((r) => proxy.server.listen(0, '127.0.0.1', r));
  client = await connectRaw(`127.0.0.1:${(proxy.server.address() as { port: number }).port}`);
});
after(async () => {
  client?.close();
  proxy?.server.close();
  await zk?.close();
});

test('two answers that arrive together reach their callbacks in one loop turn', async () => {
  for (let round = 0; round < 5; round++) {
    proxy.hold();
    let turnOver = false;
    const first = client.exists('/').then(() => setImmediate(() => (turnOver = true)));
    const second = client.exists('/').then(() => turnOver);
    while (proxy.answersHeld() < 2) await new Promise((r) => setTimeout(r, 10));
    proxy.release();
    await first;
    assert.equal(await second, false, `round ${round}: the second answer came a loop turn after the first`);
    await new Promise((r) => setImmediate(r));
  }
});
