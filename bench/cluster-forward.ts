/**
 * Forwarding overhead (issue 11, docs/cluster.md): two gateway instances in one cluster on one
 * ZooKeeper; a lease granted by alpha is kept alive through alpha (local) and through beta
 * (forwarded to alpha over the internal channel), one call at a time, interleaved in rounds so
 * both see the same machine load. Prints p50/p90 of each and p50 forwarded ÷ local.
 *
 *   npm run bench:cluster            (ROUNDS=10 CALLS=200 by default)
 */
import { validateConfig } from '../src/config/schema.js';
import { silentLogger } from '../src/core/index.js';
import { startGateway, type RunningGateway } from '../src/main.js';
import { startZkServer } from '../test/support/zk-server.js';

const ROUNDS = Number(process.env.ROUNDS ?? 10);
const CALLS = Number(process.env.CALLS ?? 200);

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] as number;
}

async function gateway(connect: string, id: string): Promise<RunningGateway> {
  return startGateway(
    validateConfig({
      zookeeper: { connect },
      http: { port: 0, bind: '127.0.0.1' },
      instanceId: id,
      cluster: { secret: 'bench-cluster-secret-0123456789abcdef' },
      instances: { path: `/zkgate-bench/${process.pid}` },
      log: { level: 'silent' },
    }),
    silentLogger,
  );
}

async function timeCalls(url: string, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    const r = await fetch(url, { method: 'POST' });
    await r.arrayBuffer();
    if (r.status !== 200) throw new Error(`keepalive answered ${r.status}`);
    out.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return out;
}

const zk = await startZkServer();
const a = await gateway(zk.connectString, 'alpha');
const b = await gateway(zk.connectString, 'beta');
try {
  const grant = await fetch(`http://127.0.0.1:${a.httpPort}/v1/leases`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ttlMs: 60_000 }) });
  const { id } = (await grant.json()) as { id: string };
  const local: number[] = [];
  const forwarded: number[] = [];
  await timeCalls(`http://127.0.0.1:${b.httpPort}/v1/leases/${id}/keepalive`, 50); // warm-up: channel sockets, JIT
  for (let r = 0; r < ROUNDS; r++) {
    local.push(...(await timeCalls(`http://127.0.0.1:${a.httpPort}/v1/leases/${id}/keepalive`, CALLS)));
    forwarded.push(...(await timeCalls(`http://127.0.0.1:${b.httpPort}/v1/leases/${id}/keepalive`, CALLS)));
  }
  const row = (name: string, xs: number[]): string => `${name.padEnd(10)} p50 ${quantile(xs, 0.5).toFixed(3)} ms   p90 ${quantile(xs, 0.9).toFixed(3)} ms   (${xs.length} calls)`;
  console.log(row('local', local));
  console.log(row('forwarded', forwarded));
  console.log(`forwarding overhead: p50 forwarded ÷ local = ${(quantile(forwarded, 0.5) / quantile(local, 0.5)).toFixed(2)}`);
} finally {
  await b.close();
  await a.close();
  await zk.close();
}
