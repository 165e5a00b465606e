/** Shared by the benchmarks: the setup (a real ZooKeeper, a direct client, a gateway) and the timing loop. */
import { ZkSession } from '../src/zk/index.js';
import { silentLogger } from '../src/core/index.js';
import { validateConfig } from '../src/config/schema.js';
import { startGateway, type RunningGateway } from '../src/main.js';
import { startZkServer } from '../test/support/zk-server.js';

/** ops/s of `op` run by `concurrency` workers for `seconds`. */
export async function measure(seconds: number, concurrency: number, op: () => Promise<void>): Promise<number> {
  const end = Date.now() + seconds * 1000;
  let done = 0;
  const worker = async (): Promise<void> => {
    while (Date.now() < end) {
      await op();
      done++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return done / seconds;
}

/**
 * Runs `body` with a ZooKeeper holding a 1 KiB `/bench` node, a direct session to it and a
 * gateway in front of it; prints the table rows `body` measures; cleans up.
 */
export async function withBenchSetup(title: string, body: (direct: ZkSession, gw: RunningGateway) => Promise<void>): Promise<void> {
  const zk = await startZkServer();
  try {
    const direct = new ZkSession({ connect: zk.connectString, sessionTimeoutMs: 10_000 });
    await direct.start();
    await direct.client().create('/bench', Buffer.alloc(1024, 'x'), 'persistent');
    const gw = await startGateway(validateConfig({ zookeeper: { connect: zk.connectString }, http: { port: 0 }, log: { level: 'silent' } }), silentLogger);
    console.log(title);
    console.log('concurrency  direct-ops/s  gateway-ops/s  ratio');
    await body(direct, gw);
    direct.close();
    await gw.close();
  } finally {
    await zk.close();
  }
}

/** One table row. */
export function row(concurrency: number, direct: number, gateway: number): void {
  console.log(`${String(concurrency).padStart(11)}  ${direct.toFixed(0).padStart(12)}  ${gateway.toFixed(0).padStart(13)}  ${(gateway / direct).toFixed(2)}`);
}
