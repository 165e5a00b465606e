/**
 * Cluster figures (issue 11, docs/cluster.md "Forwarding overhead"), on the deployment of the
 * topology test: a 3-node ensemble, three `zkgate serve` processes and haproxy round-robin.
 *
 * 1. Forwarding overhead: a lease granted by gw1 is kept alive through gw1 (local) and through
 *    gw2 (forwarded to gw1 over the internal channel), one call at a time, in rounds alternating
 *    which goes first so both see the same machine load: each round's p50 forwarded ÷ p50 local
 *    and the median of those ratios (with p50/p90 of all calls of each side).
 * 2. Lock cycles per second of 3 contenders on one lock through the balancer ÷ through gw1
 *    alone, after a warm-up, in rounds alternating which goes first: each round's ratio and the median.
 *
 * Every figure is printed as soon as it is measured (a run cut short still shows what it got).
 *
 *   npm run bench:cluster     ROUNDS=10 CALLS=200 LOCK_ROUNDS=3 LOCK_MS=4000 by default;
 *                             HAPROXY_REUSE=1 keeps haproxy's server connections open;
 *                             ONLY=keepalive or ONLY=locks runs one of the two
 */
import { loadavg } from 'node:os';
import { call, lockRate, startTopology } from '../test/support/cluster-topology.js';

const ROUNDS = Number(process.env.ROUNDS ?? 10);
const CALLS = Number(process.env.CALLS ?? 200);
const LOCK_ROUNDS = Number(process.env.LOCK_ROUNDS ?? 3);
const LOCK_MS = Number(process.env.LOCK_MS ?? 4000);
const ONLY = process.env.ONLY ?? '';

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] as number;
}

/** The middle value (the mean of the two middle ones for an even count). */
function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
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
  if (ONLY !== 'locks') {
    await timeCalls(`${gw2}/v1/leases/${id}/keepalive`, 50); // warm-up: channel sockets, JIT
    await timeCalls(`${gw1}/v1/leases/${id}/keepalive`, 50);
    const local: number[] = [];
    const forwarded: number[] = [];
    const ratios: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const measure = (base: string): Promise<number[]> => timeCalls(`${base}/v1/leases/${id}/keepalive`, CALLS);
      let l: number[];
      let f: number[];
      if (r % 2 === 0) {
        l = await measure(gw1);
        f = await measure(gw2);
      } else {
        f = await measure(gw2);
        l = await measure(gw1);
      }
      local.push(...l);
      forwarded.push(...f);
      ratios.push(quantile(f, 0.5) / quantile(l, 0.5));
      say(`  round ${r + 1}/${ROUNDS}: keepalive p50 local ${quantile(l, 0.5).toFixed(3)} ms, forwarded ${quantile(f, 0.5).toFixed(3)} ms, ratio ${(ratios[r] as number).toFixed(2)}`);
    }
    const row = (name: string, xs: number[]): string => `${name.padEnd(10)} p50 ${quantile(xs, 0.5).toFixed(3)} ms   p90 ${quantile(xs, 0.9).toFixed(3)} ms   (${xs.length} calls)`;
    say(row('local', local));
    say(row('forwarded', forwarded));
    say(`forwarding overhead, p50 forwarded ÷ local: median ${median(ratios).toFixed(2)} of ${ROUNDS} rounds (${ratios.map((x) => x.toFixed(2)).join(', ')}); load average ${load()}`);
  }
  if (ONLY !== 'keepalive') await lockRatio(t.lb, gw1);
} finally {
  await t.close();
}

/** Lock cycles/s through the balancer ÷ through gw1 alone, rounds alternating which goes first. */
async function lockRatio(lb: string, gw1: string): Promise<void> {
  // Warm-up (JIT, channel and haproxy connections), then rounds in ABBA order so a drift of the
  // machine's load (or a late warm-up) does not favour one side.
  await lockRate(gw1, '/bench-warm-single', 3, 1500);
  await lockRate(lb, '/bench-warm-lb', 3, 1500);
  const ratios: number[] = [];
  for (let r = 0; r < LOCK_ROUNDS; r++) {
    const measure = (base: string, name: string): Promise<number> => lockRate(base, `/bench-${name}-${r}`, 3, LOCK_MS);
    let single: number;
    let balanced: number;
    if (r % 2 === 0) {
      single = await measure(gw1, 'single');
      balanced = await measure(lb, 'lb');
    } else {
      balanced = await measure(lb, 'lb');
      single = await measure(gw1, 'single');
    }
    ratios.push(balanced / single);
    say(`  round ${r + 1}/${LOCK_ROUNDS}: lock cycles/s through the balancer ${balanced.toFixed(1)}, through one instance ${single.toFixed(1)}, ratio ${(balanced / single).toFixed(2)}`);
  }
  say(`lock cycles/s balancer ÷ single: median ${median(ratios).toFixed(2)} of ${LOCK_ROUNDS} rounds (${ratios.map((x) => x.toFixed(2)).join(', ')}); load average ${load()}`);
}
