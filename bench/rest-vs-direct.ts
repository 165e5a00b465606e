/**
 * Benchmark: a 1 KiB znode GET through the gateway's REST API vs the same GET with the native
 * ZooKeeper client, measured in the same run against the same server, at 1 and 64 outstanding
 * requests. Prints ops/s and the ratio gateway/direct; absolute numbers mean little on a shared
 * 2-core machine, the ratio is the figure to compare.
 *
 *   npm run build && node dist/bench/rest-vs-direct.js [seconds-per-case]
 */
import { Agent, request } from 'node:http';
import { measure, row, withBenchSetup } from './measure.js';

const seconds = Number(process.argv[2] ?? 3);

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

await withBenchSetup(`# 1 KiB GET, ${seconds} s per case`, async (direct, gw) => {
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  for (const c of [1, 64]) {
    const d = await measure(seconds, c, async () => void (await direct.client().get('/bench')));
    const g = await measure(seconds, c, () => httpGet(agent, gw.httpPort, '/v1/nodes/bench'));
    row(c, d, g);
  }
  agent.destroy();
});
