/**
 * Benchmark: a 1 KiB znode Get through the gateway's gRPC API (zkgate.v1.Znodes/Get) vs the
 * same get with the native ZooKeeper client, in the same run against the same server, at 1 and
 * 64 outstanding calls. Prints ops/s and the ratio gateway/direct; on a shared 2-core machine
 * only the ratio means something.
 *
 *   npm run build && node dist/bench/grpc-vs-direct.js [seconds-per-case]
 */
import { grpcClient } from '../test/support/grpc-client.js';
import { measure, row, withBenchSetup } from './measure.js';

const seconds = Number(process.argv[2] ?? 3);

await withBenchSetup(`# 1 KiB Get over gRPC, ${seconds} s per case (one HTTP/2 connection)`, async (direct, gw) => {
  const client = grpcClient(gw.grpcPort);
  for (const c of [1, 64]) {
    const d = await measure(seconds, c, async () => void (await direct.client().get('/bench')));
    const g = await measure(seconds, c, async () => void (await client.unary('Znodes', 'Get', { path: '/bench' })));
    row(c, d, g);
  }
  client.close();
});
