/**
 * Cluster figures (issue 11, docs/cluster.md "Forwarding overhead"), on the deployment of the
 * topology test: a 3-node ensemble, three `zkgate serve` processes and haproxy round-robin.
 *
 * 1. Forwarding overhead: a lease granted by gw1 is kept alive through gw1 (local) and through
 *    gw2 (forwarded to gw1 over the internal channel), one call at a time, in interleaved rounds
 *    so both see the same machine load: p50/p90 of each and p50 forwarded ÷ local.
 * 2. Lock cycles per second of 3 contenders on one lock through the balancer ÷ through gw1
 *    alone, after a warm-up, in rounds alternating which goes first: each round's ratio and the median.
 *
 * Every figure is printed as soon as it is measured (a run cut short still shows what it got).
 *
 *   npm run bench:cluster     ROUNDS=10 CALLS=200 LOCK_ROUNDS=3 LOCK_MS=4000 by default;
 *                             HAPROXY_REUSE=1 keeps haproxy's server connections open
 */
import { loadavg } from 'node:os';
import { call, lockRate, startTopology } from '../test/support/cluster-topology.js';

const ROUNDS = Number(process.env.ROUNDS ?? 10);
const CALLS = Number(process.env.CALLS ?? 200);
const LOCK_ROUNDS = Number(process.env.LOCK_ROUNDS ?? 3);
const LOCK_MS = Number(process.env.LOCK_MS ?? 4000);

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] as number;
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

const load = (): string => loadavg().map((x) => x.toFixed(1)).join(' ');
const say = (line: string): void => void process.stdout.write(`${line}\n`);

say(`cluster bench: 3-node ensemble, 3 gateways, haproxy; load average ${load()} (${ROUNDS}×${CALLS} keepalives each way, ${LOCK_ROUNDS}×${LOCK_MS} ms of lock cycles each way)`);
// HAPROXY_REUSE=1: haproxy keeps server connections open (not the deployed setting) to measure
// what a new connection per request costs the balancer ratio.
const reuse = process.env.HAPROXY_REUSE === '1';
if (reuse) say('haproxy: http-reuse safe (server connections kept open), not the deployed option http-server-close');
const t = await startTopology(3, { serverKeepAlive: reuse });
try {
  const [gw1, gw2] = t.direct as [string, string];
  const grant = await call(gw1, 'POST', '/v1/leases', { ttlMs: 600_000 });
  const id = grant.body.id as string;
  if (grant.status !== 201) throw new Error(`grant answered ${grant.status}: ${JSON.stringify(grant.body)}`);
  await timeCalls(`${gw2}/v1/leases/${id}/keepalive`, 50); // warm-up: channel sockets, JIT
  await timeCalls(`${gw1}/v1/leases/${id}/keepalive`, 50);
  const local: number[] = [];
  const forwarded: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const l = await timeCalls(`${gw1}/v1/leases/${id}/keepalive`, CALLS);
    const f = await timeCalls(`${gw2}/v1/leases/${id}/keepalive`, CALLS);
    local.push(...l);
    forwarded.push(...f);
    say(`  round ${r + 1}/${ROUNDS}: keepalive p50 local ${quantile(l, 0.5).toFixed(3)} ms, forwarded ${quantile(f, 0.5).toFixed(3)} ms`);
  }
  const row = (name: string, xs: number[]): string => `${name.padEnd(10)} p50 ${quantile(xs, 0.5).toFixed(3)} ms   p90 ${quantile(xs, 0.9).toFixed(3)} ms   (${xs.length} calls)`;
  say(row('local', local));
  say(row('forwarded', forwarded));
  say(`forwarding overhead: p50 forwarded ÷ local = ${(quantile(forwarded, 0.5) / quantile(local, 0.5)).toFixed(2)}`);

  // Warm-up (JIT, channel and haproxy connections), then rounds in ABBA order so a drift of the
  // machine's load (or a late warm-up) does not favour one side.
  await lockRate(gw1, '/bench-warm-single', 3, 1500);
  await lockRate(t.lb, '/bench-warm-lb', 3, 1500);
  const ratios: number[] = [];
  for (let r = 0; r < LOCK_ROUNDS; r++) {
    const measure = (base: string, name: string): Promise<number> => lockRate(base, `/bench-${name}-${r}`, 3, LOCK_MS);
    let single: number;
    let balanced: number;
    if (r % 2 === 0) {
      single = await measure(gw1, 'single');
      balanced = await measure(t.lb, 'lb');
    } else {
      balanced = await measure(t.lb, 'lb');
      single = await measure(gw1, 'single');
    }
    ratios.push(balanced / single);
    say(`  round ${r + 1}/${LOCK_ROUNDS}: lock cycles/s through the balancer ${balanced.toFixed(1)}, through one instance ${single.toFixed(1)}, ratio ${(balanced / single).toFixed(2)}`);
  }
  say(`lock cycles/s balancer ÷ single: median ${quantile(ratios, 0.5).toFixed(2)} (rounds: ${ratios.map((x) => x.toFixed(2)).join(', ')}); load average ${load()}`);
} finally {
  await t.close();
}
