/**
 * Benchmark: a 1 KiB znode GET through the gateway's REST API vs the same GET with the native
 * ZooKeeper client, measured in the same run against the same server, at 1 and 64 outstanding
 * requests. Prints ops/s and the ratio gateway/direct; absolute numbers mean little on a shared
 * 2-core machine, the ratio is the figure to compare.
 *
 *   npm run build && node dist/bench/rest-vs-direct.js [seconds-per-case]
 */
import { Agent, request } from 'node:http';
import { ZkSession } from '../src/zk/index.js';
import { silentLogger } from '../src/core/index.js';
import { validateConfig } from '../src/config/schema.js';
import { startGateway } from '../src/main.js';
import { startZkServer } from '../test/support/zk-server.js';

const seconds = Number(process.argv[2] ?? 3);

async function measure(concurrency: number, op: () => Promise<void>): Promise<number> {
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

function httpGet(agent: Agent, port: number, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`status ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end();
  });
}

const zk = await startZkServer();
try {
  const direct = new ZkSession({ connect: zk.connectString, sessionTimeoutMs: 10_000 });
  await direct.start();
  await direct.client().create('/bench', Buffer.alloc(1024, 'x'), 'persistent');
  const gw = await startGateway(validateConfig({ zookeeper: { connect: zk.connectString }, http: { port: 0 }, log: { level: 'silent' } }), silentLogger);
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  console.log(`# 1 KiB GET, ${seconds} s per case`);
  console.log('concurrency  direct-ops/s  gateway-ops/s  ratio');
  for (const c of [1, 64]) {
    const d = await measure(c, async () => void (await direct.client().get('/bench')));
    const g = await measure(c, () => httpGet(agent, gw.httpPort, '/v1/nodes/bench'));
    console.log(`${String(c).padStart(11)}  ${d.toFixed(0).padStart(12)}  ${g.toFixed(0).padStart(13)}  ${(g / d).toFixed(2)}`);
  }
  agent.destroy();
  direct.close();
  await gw.close();
} finally {
  await zk.close();
}
