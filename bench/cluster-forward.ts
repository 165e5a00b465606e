/**
 * Cluster figures (issue 11, docs/cluster.md "Forwarding overhead"), on the deployment of the
 * topology test: a 3-node ensemble, three `zkgate serve` processes and haproxy round-robin.
 *
 * 1. Forwarding overhead: a lease granted through gw1 (held by gw1, or with tenant placement by
 *    the tenant's home: the id says which) is kept alive through its holder (local) and through
 *    another instance (forwarded to the holder over the internal channel), one call at a time, in
 *    rounds alternating which goes first so both see the same machine load: each round's p50
 *    forwarded ÷ p50 local and the median of those ratios (with p50/p90 of all calls of each side).
 * 2. Lock cycles per second of 3 contenders on one lock through the balancer ÷ through one
 *    instance alone (the issue's figure) and ÷ through the same haproxy with that instance alone
 *    behind it, after a warm-up, in rounds rotating which goes first: each round's ratios, CPU and
 *    ZooKeeper requests per cycle, and the medians. The one instance is the bench tenant's home
 *    (docs/cluster.md "Lease placement"), so with tenant placement it is a single gateway too
 *    (its grants are not forwarded); with local placement every instance is alike.
 *
 * Every figure is printed as soon as it is measured (a run cut short still shows what it got).
 * With the keepalives it prints the gateways' CPU per call (from /proc), which a busy machine
 * moves less than latency.
 *
 *   npm run bench:cluster     ROUNDS=10 CALLS=200 LOCK_ROUNDS=3 LOCK_MS=4000 by default;
 *                             HAPROXY_SERVER_CLOSE=1 makes haproxy open a server connection
 *                             per request (the setting before http-reuse safe was deployed);
 *                             ONLY=keepalive or ONLY=locks runs one of the two;
 *                             WARM_CALLS=1000 keepalives each way first; LOCK_WARM_MS=20000 of lock
 *                             cycles through one instance and 3× that through the balancer first
 *                             (the same calls per gateway process: JIT warm-up, see lockRatio);
 *                             LOCK_PLACEMENT=tenant|local runs the gateways with that
 *                             cluster.leasePlacement (unset: as configured), LOCK_PLACEMENT=both
 *                             runs the lock part four times, tenant / local / tenant / local, the
 *                             gateways restarted with the setting (and warmed up) before each, and
 *                             prints each setting's rounds and medians at the end
 */
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { call, lockRate, startTopology, type LockRateCounts } from '../test/support/cluster-topology.js';
import { homeOf } from '../src/core/cluster/cluster.js';
import { fourLetter } from '../test/support/four-letter.js';

const ROUNDS = Number(process.env.ROUNDS ?? 10);
const CALLS = Number(process.env.CALLS ?? 200);
const LOCK_ROUNDS = Number(process.env.LOCK_ROUNDS ?? 3);
const LOCK_MS = Number(process.env.LOCK_MS ?? 4000);
const ONLY = process.env.ONLY ?? '';
// Warm-up before measuring: a gateway's JIT takes thousands of calls to settle on a busy 2-core
// machine (a local keepalive cost ~4× more CPU in the first 2,000 calls than later).
const WARM_CALLS = Number(process.env.WARM_CALLS ?? 1000);
const LOCK_WARM_MS = Number(process.env.LOCK_WARM_MS ?? 20_000);
// The lock part's cluster.leasePlacement: one setting, or both in alternating blocks (restarts between).
const PLACEMENT = process.env.LOCK_PLACEMENT ?? '';
if (!['', 'tenant', 'local', 'both'].includes(PLACEMENT)) throw new Error(`LOCK_PLACEMENT=${PLACEMENT}: tenant, local or both`);
const BLOCKS: (string | null)[] = PLACEMENT === 'both' ? ['tenant', 'local', 'tenant', 'local'] : [PLACEMENT || null];
const placementEnv = (p: string | null): Record<string, string> => (p ? { ZKGATE_CLUSTER_LEASE_PLACEMENT: p } : {});
/** The tenant every call of the bench uses (no API keys, no tenant header). */
const TENANT = 'default';

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

/**
 * CPU time (user + system, ms) a process has used, from /proc (Linux; USER_HZ = 100), or NaN.
 * Per call it is a figure the machine's load moves much less than latency: time spent waiting
 * for a core is not in it.
 */
function cpuMs(pid: number | undefined): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch {
    return Number.NaN;
  }
}

/** Context switches of a process's threads so far (voluntary: it slept and was woken), from /proc, or NaN. */
function wakeups(pid: number | undefined): number {
  try {
    return Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? Number.NaN);
  } catch {
    return Number.NaN;
  }
}

/** Calls forwarded by the gateways so far (every outcome), from their metrics. */
async function forwardedCalls(bases: readonly string[]): Promise<number> {
  const each = await Promise.all(
    bases.map(async (b) => {
      const text = await fetch(`${b}/metrics`).then((r) => r.text(), () => '');
      return [...text.matchAll(/^zkgate_cluster_forwarded_calls\{[^}]*\} (\d+)/gm)].reduce((a, m) => a + Number(m[1]), 0);
    }),
  );
  return each.reduce((a, b) => a + b, 0);
}

const load = (): string => loadavg().map((x) => x.toFixed(1)).join(' ');
const say = (line: string): void => void process.stdout.write(`${line}\n`);

say(`cluster bench: 3-node ensemble, 3 gateways, haproxy; load average ${load()} (${ROUNDS}×${CALLS} keepalives each way, ${LOCK_ROUNDS}×${LOCK_MS} ms of lock cycles each way)`);
// HAPROXY_SERVER_CLOSE=1: haproxy opens a server connection per request (the setting before
// http-reuse safe was deployed), to measure what that costs the balancer ratio.
const serverClose = process.env.HAPROXY_SERVER_CLOSE === '1';
if (serverClose) say('haproxy: option http-server-close (a server connection per request), not the deployed http-reuse safe');
const t = await startTopology(3, { serverClose, singleBackend: true, singleServer: (ids) => homeOf(TENANT, ids) as string, gatewayEnv: placementEnv(BLOCKS[0] ?? null) });
try {
  const home = t.ids.indexOf(homeOf(TENANT, t.ids) as string);
  if (ONLY !== 'locks') {
    const grant = await call(t.direct[0] as string, 'POST', '/v1/leases', { ttlMs: 600_000 });
    const id = grant.body.id as string;
    if (grant.status !== 201) throw new Error(`grant answered ${grant.status}: ${JSON.stringify(grant.body)}`);
    // gw1: the lease's holder (local calls); gw2: another instance (forwarded calls).
    const holder = t.ids.indexOf(id.slice(0, id.indexOf('.')));
    const gw1 = t.direct[holder] as string;
    const gw2 = t.direct[(holder + 1) % 3] as string;
    say(`keepalives: the lease is held by ${t.ids[holder]} (local), forwarded through ${t.ids[(holder + 1) % 3]}`);
    await timeCalls(`${gw2}/v1/leases/${id}/keepalive`, WARM_CALLS); // warm-up: channel sockets, JIT
    await timeCalls(`${gw1}/v1/leases/${id}/keepalive`, WARM_CALLS);
    const local: number[] = [];
    const forwarded: number[] = [];
    const ratios: number[] = [];
    // Gateway CPU spent on each side's calls, summed over the rounds: [gw1, gw2] while local, while forwarded.
    const pids = [t.process(holder)?.pid, t.process((holder + 1) % 3)?.pid];
    const cpu = { local: [0, 0], forwarded: [0, 0] };
    for (let r = 0; r < ROUNDS; r++) {
      const measure = async (base: string): Promise<number[]> => {
        const before = pids.map(cpuMs);
        const out = await timeCalls(`${base}/v1/leases/${id}/keepalive`, CALLS);
        const side = base === gw1 ? cpu.local : cpu.forwarded;
        pids.forEach((pid, i) => (side[i] = (side[i] as number) + cpuMs(pid) - (before[i] as number)));
        return out;
      };
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
    const perCall = (ms: number): string => `${Math.round((ms * 1000) / (ROUNDS * CALLS))} µs`;
    const [l1, l2] = cpu.local as [number, number];
    const [f1, f2] = cpu.forwarded as [number, number];
    say(`gateway CPU per keepalive (/proc, all rounds): local gw1 ${perCall(l1)} (gw2 idle ${perCall(l2)}); forwarded gw2 ${perCall(f2)} + gw1 ${perCall(f1)}; forwarded ÷ local ${((f1 + f2) / l1).toFixed(2)}`);
    say(`forwarding overhead, p50 forwarded ÷ local: median ${median(ratios).toFixed(2)} of ${ROUNDS} rounds (${ratios.map((x) => x.toFixed(2)).join(', ')}); load average ${load()}`);
    await call(gw1, 'DELETE', `/v1/leases/${id}`);
  }
  if (ONLY !== 'keepalive') {
    const bySetting = new Map<string, { ratios: number[]; ratios1: number[] }>();
    for (let b = 0; b < BLOCKS.length; b++) {
      const setting = BLOCKS[b] ?? null;
      if (b > 0) {
        // Fresh processes with the setting: each block warms its own up (see lockRatio).
        t.setGatewayEnv(placementEnv(setting));
        for (let i = 0; i < 3; i++) await t.restart(i);
        await new Promise((r) => setTimeout(r, 3000)); // haproxy's checks see each one up (rise 2, inter 500ms)
      }
      say(`lock part${BLOCKS.length > 1 ? ` ${b + 1}/${BLOCKS.length}` : ''}: cluster.leasePlacement ${setting ?? 'as configured'}; one instance = ${t.ids[home]} (the tenant's home); load average ${load()}`);
      const placed0 = await placements(t.direct);
      const out = await lockRatio(t.lb, t.lbSingle as string, t.direct[home] as string);
      const placed = await placements(t.direct);
      say(`  lease grants by placement outcome, all gateways: ${[...placed].map(([k, n]) => `${k} ${n - (placed0.get(k) ?? 0)}`).join(', ') || 'none'}`);
      const key = setting ?? 'as configured';
      const acc = bySetting.get(key) ?? { ratios: [], ratios1: [] };
      acc.ratios.push(...out.ratios);
      acc.ratios1.push(...out.ratios1);
      bySetting.set(key, acc);
    }
    if (BLOCKS.length > 1) {
      for (const [key, { ratios, ratios1 }] of bySetting) {
        say(`placement ${key}: balancer ÷ one instance median ${median(ratios).toFixed(2)} of ${ratios.length} rounds (${ratios.map((x) => x.toFixed(2)).join(', ')}); ÷ the same haproxy with one instance median ${median(ratios1).toFixed(2)}`);
      }
      say(`load average ${load()}`);
    }
  }
} finally {
  await t.close();
}

/** Lease grants by placement outcome so far, summed over the gateways (zkgate_cluster_lease_placements). */
async function placements(bases: readonly string[]): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const b of bases) {
    const text = await fetch(`${b}/metrics`).then((r) => r.text(), () => '');
    for (const m of text.matchAll(/^zkgate_cluster_lease_placements\{outcome="(\w+)"\} (\d+)/gm)) out.set(m[1] as string, (out.get(m[1] as string) ?? 0) + Number(m[2]));
  }
  return out;
}

/** Requests ZooKeeper's members received so far (`mntr` zk_packets_received, summed). */
async function zkPackets(): Promise<number> {
  const each = await Promise.all(t.zk.members.map(async (m) => Number(/zk_packets_received\s+(\d+)/.exec(await fourLetter(m.clientPort, 'mntr').catch(() => ''))?.[1] ?? Number.NaN)));
  return each.reduce((a, b) => a + b, 0);
}

/**
 * Lock cycles/s through the balancer (3 gateways) ÷ through gw1 alone, the issue's figure, and
 * ÷ through the same haproxy with gw1 alone behind it (what spreading the calls over instances
 * costs, apart from the balancer's own hop); rounds rotate which goes first. With each: CPU per
 * cycle of the gateways, haproxy and ZooKeeper (from /proc) and ZooKeeper requests per cycle —
 * on this 2-core machine the three settings are bound by CPU per cycle more than by latency.
 */
async function lockRatio(lb: string, lbSingle: string, gw1: string): Promise<{ ratios: number[]; ratios1: number[] }> {
  const sides: [string, string][] = [
    ['single', gw1],
    ['lb1', lbSingle],
    ['lb', lb],
  ];
  const pids = [0, 1, 2].map((i) => t.process(i)?.pid).concat(t.haproxyPid, ...t.zk.members.map((m) => m.pid));
  // Warm-up (JIT, channel and haproxy connections), then rounds in rotating order so a drift of
  // the machine's load does not favour one side. V8 optimizes a function after it ran enough
  // times in that process, so what counts is calls per gateway process: through the balancer each
  // gateway serves a third of the calls, so that side warms 3× as long. With 4 s each way (until
  // 2026-12-01) gw2 and gw3 had served about a ninth of gw1's calls when measuring began, and
  // the gateways' CPU per balanced cycle was still falling by half over the next minute
  // (docs/cluster.md "Forwarding overhead", 14:00): the ratio measured the JIT's warm-up.
  // Printed in slices, so the fall is seen.
  for (const [name, base] of sides) {
    const total = name === 'lb' ? 3 * LOCK_WARM_MS : LOCK_WARM_MS;
    const slices: string[] = [];
    for (let done = 0, k = 0; done < total; k++) {
      const ms = Math.min(10_000, total - done);
      const cpu0 = pids.slice(0, 3).map(cpuMs);
      const perS = await lockRate(base, `/bench-warm-${name}-${k}`, 3, ms);
      const gw = pids.slice(0, 3).reduce<number>((a, p, i) => a + cpuMs(p) - (cpu0[i] as number), 0);
      slices.push(`${perS.toFixed(0)}/s ${(gw / ((perS * ms) / 1000)).toFixed(1)} ms`);
      done += ms;
    }
    say(`  warm-up ${name} (${total / 1000} s): cycles/s and gateways' CPU per cycle by ${10} s slice: ${slices.join(', ')}`);
  }
  const ratios: number[] = [];
  const ratios1: number[] = [];
  for (let r = 0; r < LOCK_ROUNDS; r++) {
    const rate = new Map<string, number>();
    const notes: string[] = [];
    for (let k = 0; k < sides.length; k++) {
      const [name, base] = sides[(k + r) % sides.length] as [string, string];
      const fwd0 = await forwardedCalls(t.direct);
      const cpu0 = pids.map(cpuMs);
      const wake0 = pids.slice(0, 3).map(wakeups);
      const zk0 = await zkPackets();
      const counts: LockRateCounts = { acquires: new Map(), releases: new Map() };
      const perS = await lockRate(base, `/bench-${name}-${r}`, 3, LOCK_MS, counts);
      const cycles = (perS * LOCK_MS) / 1000;
      const cpu = pids.map((p, i) => cpuMs(p) - (cpu0[i] as number));
      const woke = pids.slice(0, 3).reduce<number>((a, p, i) => a + wakeups(p) - (wake0[i] as number), 0);
      const fwd = (await forwardedCalls(t.direct)) - fwd0;
      const acquires = [...counts.acquires.values()].reduce((a, b) => a + b, 0);
      const not200 = [...counts.acquires, ...counts.releases].filter(([s]) => s !== '200');
      const gw = (cpu[0] as number) + (cpu[1] as number) + (cpu[2] as number);
      const zk = cpu.slice(4).reduce((a, b) => a + b, 0);
      const per = (ms: number): string => `${((ms * 1000) / cycles / 1000).toFixed(1)}`;
      notes.push(`${name} ${perS.toFixed(1)}/s (CPU ms/cycle gateways ${per(gw)} = ${[0, 1, 2].map((i) => per(cpu[i] as number)).join(' + ')}, haproxy ${per(cpu[3] as number)}, ZooKeeper ${per(zk)}; ZooKeeper requests/cycle ${(((await zkPackets()) - zk0) / cycles).toFixed(1)}; acquires/cycle ${(acquires / cycles).toFixed(2)}${not200.length ? ` (not 200: ${not200.map(([st, n]) => `${st}×${n}`).join(' ')})` : ''}, forwarded calls/cycle ${(fwd / cycles).toFixed(2)}, gateway wake-ups/cycle ${(woke / cycles).toFixed(1)})`);
      rate.set(name, perS);
    }
    const single = rate.get('single') as number;
    const lb1 = rate.get('lb1') as number;
    const balanced = rate.get('lb') as number;
    ratios.push(balanced / single);
    ratios1.push(balanced / lb1);
    say(`  round ${r + 1}/${LOCK_ROUNDS}: ${notes.join('; ')}`);
    say(`    balancer (3 instances) ÷ one instance direct ${(balanced / single).toFixed(2)}; ÷ the same haproxy with one instance ${(balanced / lb1).toFixed(2)}`);
  }
  say(`lock cycles/s balancer (3 instances) ÷ one instance (direct), the issue's figure: median ${median(ratios).toFixed(2)} of ${LOCK_ROUNDS} rounds (${ratios.map((x) => x.toFixed(2)).join(', ')}); load average ${load()}`);
  say(`lock cycles/s balancer (3 instances) ÷ the same haproxy in front of one instance: median ${median(ratios1).toFixed(2)} (${ratios1.map((x) => x.toFixed(2)).join(', ')})`);
  return { ratios, ratios1 };
}
