/**
 * `npm run bench`: the benchmark that judges issue 12. ZooKeeper (the test harness's real
 * server), the gateway, W (a raw `ws` server) and the load generators each run in their own
 * process; Curator's InterProcessMutex runs in a JVM. Every measure alternates rounds (D,
 * gateway, D, gateway…) and reports the median of the per-round ratios, so a machine that gets
 * busier halfway through moves both sides of a ratio alike. Prints one Markdown table with
 * every measure and its goal. Nothing here asserts a speed; `--quick` is a short run that
 * only proves the benchmark works (CI runs it). Needs `h2load` (Debian's nghttp2-client) for
 * the gRPC section's h2load rows.
 *
 *   npm run bench            # ~4 min: 5 rounds of 2 s per side, 1,000 and 10,000 subscribers
 *   node dist/bench/run.js --quick
 *   node dist/bench/run.js --only=reads        # or writes, grpc, fanout, locks (comma-separated)
 *   node dist/bench/run.js --only=reads --cpu-prof=/tmp/prof   # profile the gateway process (and W's and the fan-out subscribers', named CPU.…<pid>…)
 *   node dist/bench/run.js --only=fanout --fan-client=ws      # fan-out subscribers on `ws`' client instead of the light one
 *   node dist/bench/run.js --only=reads,writes --no-fast-path  # REST through express only, to compare
 *   node dist/bench/run.js --only=locks --lock-client=node-http  # the lock loop on node:http's client instead of the light one
 */
import { spawn, execFileSync, type ChildProcessByStdio } from 'node:child_process';
import { rmSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { createInterface, type Interface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { startZkServer, fourLetter, parseMntr, type ZkStandalone } from '../test/support/zk-server.js';
import { BenchChild } from './ipc.js';
import type { RoundResult } from './load-proc.js';
import { checkGrpcGet, grpcGetBody, h2loadRound } from './h2load.js';
import { f2, formatTable, median, medianRatio, type ResultRow } from './stats.js';

const quick = process.argv.includes('--quick');
/** `--only reads,fanout,locks`: a subset while developing (the table then lacks the others). */
const onlyArg = process.argv.find((a) => a.startsWith('--only='));
const only = new Set(onlyArg ? onlyArg.slice('--only='.length).split(',') : ['reads', 'writes', 'grpc', 'fanout', 'locks']);
const P = quick
  ? { rounds: 2, ms: 300, fan: [50, 200], lockClients: [1, 8], readWarmMs: 300, lockWarmMs: 300 }
  : // Warm-ups long enough for V8's optimizing compiler to be done with the gateway's paths: with
    // 1 s, the first measured rounds ran half-optimized code (a fresh gateway needed ~10 s of lock
    // cycles at load 13 to reach its steady rate, its CPU per cycle 4.4 → 1.4 ms; REST GET ~3 s).
    // Both sides of each ratio get the same warm-up (D, Curator's JVM too).
    { rounds: 5, ms: 2000, fan: [1000, 10_000], lockClients: [1, 8], readWarmMs: 4000, lockWarmMs: 8000 };
/** `--no-fast-path`: the gateway with `http.fastPath: false` (every REST route through express), to compare. */
const fastPath = !process.argv.includes('--no-fast-path');
/** `--fan-client=ws`: the fan-out's subscribers use `ws`' client instead of the bench's light one (bench/load-proc.ts), to compare. */
const fanClient = process.argv.includes('--fan-client=ws') ? 'ws' : 'light';
/** `--lock-client=node-http`: the lock loop's REST calls on node:http's client instead of the light one (bench/load-proc.ts), to compare. */
const lockClient = process.argv.includes('--lock-client=node-http') ? 'node-http' : 'light';
/**
 * `--cpu-prof=DIR`: the gateway process and W write V8 CPU profiles there (open them in Chrome
 * DevTools); the file names carry the pid, which the bench logs.
 */
const profArg = process.argv.find((a) => a.startsWith('--cpu-prof='));
const root = fileURLToPath(new URL('../../', import.meta.url));
const children: BenchChild[] = [];
const fork = (name: string, file: string): BenchChild => {
  const prof = profArg && ['gateway', 'w', 'fan-gateway', 'fan-w'].includes(name) ? ['--cpu-prof', `--cpu-prof-dir=${profArg.slice('--cpu-prof='.length)}`] : [];
  const c = BenchChild.fork(name, new URL(file, import.meta.url), prof);
  if (prof.length) log(`${name} (pid ${c.pid}) writes its CPU profile to ${profArg?.slice('--cpu-prof='.length)}`);
  children.push(c);
  return c;
};
const log = (s: string): void => void process.stderr.write(`bench: ${s}\n`);

const ops = (rs: readonly { opsPerSec: number }[]): number[] => rs.map((x) => x.opsPerSec);

/** ZooKeeper's `mntr` figures, as numbers. */
async function mntr(zk: ZkStandalone): Promise<Map<string, number>> {
  const m = parseMntr(await fourLetter(zk.clientPort, 'mntr'));
  return new Map([...m].map(([k, v]) => [k, Number(v)]));
}
const WATCH_FIRED = ['created', 'deleted', 'changed', 'children'].map((k) => `zk_sum_node_${k}_watch_count`);
/** Watchers ZooKeeper has triggered so far (all event types). */
const watchersFired = (m: Map<string, number>): number => WATCH_FIRED.reduce((s, k) => s + (m.get(k) ?? 0), 0);
/** Read requests ZooKeeper has served so far. */
const readsServed = (m: Map<string, number>): number => m.get('zk_cnt_readlatency') ?? 0;

/** Curator's lock loop in a JVM, driven over stdin/stdout. */
class CuratorLocks {
  private readonly lines: Interface;
  private readonly queue: string[] = [];
  private waiter: ((line: string) => void) | undefined;
  private constructor(private readonly jvm: ChildProcessByStdio<Writable, Readable, null>) {
    this.lines = createInterface({ input: jvm.stdout });
    jvm.once('exit', (code) => this.waiter?.(`EXIT ${code}`));
    this.lines.on('line', (l) => {
      if (this.waiter) {
        const w = this.waiter;
        this.waiter = undefined;
        w(l);
      } else this.queue.push(l);
    });
  }
  static async start(connect: string, clients: number): Promise<CuratorLocks> {
    const cp = execFileSync('sh', [`${root}test/peers/classpath.sh`], { encoding: 'utf8' }).trim();
    const jvm = spawn('java', ['-cp', cp, `${root}bench/CuratorLockBench.java`, connect, '/bench-curator-lock', String(clients)], { stdio: ['pipe', 'pipe', 'inherit'] });
    const c = new CuratorLocks(jvm);
    const first = await c.line();
    if (first !== 'READY') throw new Error(`curator: ${first}`);
    return c;
  }
  private line(): Promise<string> {
    const q = this.queue.shift();
    if (q !== undefined) return Promise.resolve(q);
    if (this.jvm.exitCode !== null) return Promise.resolve(`EXIT ${this.jvm.exitCode}`);
    return new Promise((resolve) => (this.waiter = resolve));
  }
  async round(clients: number, ms: number): Promise<{ opsPerSec: number }> {
    this.jvm.stdin.write(`round ${clients} ${ms}\n`);
    const [word, n, elapsed] = (await this.line()).split(' ');
    if (word !== 'CYCLES') throw new Error(`curator: ${word}`);
    return { opsPerSec: (Number(n) * 1000) / Number(elapsed) };
  }
  close(): void {
    this.jvm.stdin.end('quit\n');
    setTimeout(() => this.jvm.kill('SIGKILL'), 5000).unref();
  }
}

function machine(): string {
  const c = cpus();
  return `${c.length} × ${c[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB, node ${process.version}, load ${loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')}`;
}

async function main(): Promise<void> {
  const started = new Date();
  const startMachine = machine();
  const rows: ResultRow[] = [];
  let failure: unknown;
  const zk = await startZkServer();
  let curator: CuratorLocks | undefined;
  try {
    const gateway = fork('gateway', './gateway-proc.js');
    const w = fork('w', './ws-peer.js');
    const perTenant = 4 * (P.fan[1] as number);
    const { httpPort, grpcPort } = await gateway.call<{ httpPort: number; grpcPort: number }>('start', {
      zookeeper: { connect: zk.connectString },
      // 10,000 WebSocket subscribers come from one loopback address.
      // A kept-alive connection idle through the other side's rounds must not be closed just as the
      // load generator reuses it (ECONNRESET): the idle timeout outlasts any pause of the bench.
      http: { port: 0, maxConnections: 4 * perTenant, maxConnectionsPerAddress: 0, idleTimeoutMs: 600_000, fastPath },
      log: { level: 'silent' },
      limits: { maxConnectionsPerTenant: perTenant, maxSubscriptionsPerTenant: perTenant, maxLocksPerTenant: 1000 },
      // The read-through cache is on, as deployed: the reads section measures both the defaults
      // (a node read again and again is answered from memory) and `?cache=false` / `noCache`.
    });
    const wPort = await w.call<number>('start');

    // ---- reads: D (raw npm client), REST, gRPC ----
    if (only.has('reads')) {
    const reads = fork('reads', './load-proc.js');
    await reads.call('init', { zk: zk.connectString, httpPort, grpcPort, create: true, lightGets: true });
    const read = (target: string, concurrency: number, ms = P.ms): Promise<RoundResult> => reads.call('reads', { target, concurrency, ms });
    // DEFAULT_PATH is read with the defaults: adopted by the read cache at its first read.
    await reads.call('waitForCache');
    type ByTarget = Record<'d' | 'rest' | 'restDefault' | 'restLib' | 'grpc', RoundResult[]>;
    const targets: [keyof ByTarget, string][] = [['d', 'direct'], ['restDefault', 'rest-default'], ['rest', 'rest'], ['restLib', 'rest-lib'], ['grpc', 'grpc']];
    for (const [, t] of targets) await read(t, 8, P.readWarmMs); // warm-up, not counted
    const byC = new Map<number, ByTarget>();
    for (const c of [1, 64]) {
      const r: ByTarget = { d: [], rest: [], restDefault: [], restLib: [], grpc: [] };
      for (let i = 0; i < P.rounds; i++) for (const [k, t] of targets) r[k].push(await read(t, c));
      byC.set(c, r);
      log(`reads at ${c}: D ${median(ops(r.d)).toFixed(0)}/s, REST ${median(ops(r.restDefault)).toFixed(0)}/s (cache=false ${median(ops(r.rest)).toFixed(0)}/s; with node:http's client ${median(ops(r.restLib)).toFixed(0)}/s), gRPC noCache ${median(ops(r.grpc)).toFixed(0)}/s`);
    }
    await reads.close();
    const r1 = byC.get(1) as ByTarget;
    const r64 = byC.get(64) as ByTarget;
    const pair = (k: keyof ByTarget, base: keyof ByTarget): [number, number] => [medianRatio(ops(r1[k]), ops(r1[base])), medianRatio(ops(r64[k]), ops(r64[base]))];
    const rates = (k: keyof ByTarget, unit: string): string => `${median(ops(r1[k])).toFixed(0)} / ${median(ops(r64[k])).toFixed(0)} ${unit}`;
    const latency = (k: keyof ByTarget, q: 'p50' | 'p99'): number => medianRatio(r1[k].map((x) => x[q]), r1.d.map((x) => x[q]));
    const restD = pair('restDefault', 'd');
    rows.push({
      measure: 'REST GET throughput ÷ D, 1 / 64 outstanding (defaults: the read-through cache answers a node read again and again)',
      value: `${f2(restD[0])} / ${f2(restD[1])} (${rates('restDefault', 'req/s')})`,
      goal: '≥ 0.6 / ≥ 0.6',
      met: restD.every((x) => x >= 0.6),
    });
    const p50 = latency('restDefault', 'p50');
    rows.push({
      measure: 'REST GET latency ÷ D at 1 outstanding, p50 / p99 (defaults)',
      value: `${f2(p50)} / ${f2(latency('restDefault', 'p99'))} (p50 ${median(r1.restDefault.map((x) => x.p50)).toFixed(2)} ms, p99 ${median(r1.restDefault.map((x) => x.p99)).toFixed(2)} ms)`,
      goal: 'p50 ≤ 1.4',
      met: p50 <= 1.4,
    });
    const uncached = pair('rest', 'd');
    rows.push({
      measure: 'REST GET with every read sent to ZooKeeper (`?cache=false`) ÷ D, 1 / 64 outstanding',
      value: `${f2(uncached[0])} / ${f2(uncached[1])} (${rates('rest', 'req/s')}; p50 / p99 ÷ D ${f2(latency('rest', 'p50'))} / ${f2(latency('rest', 'p99'))})`,
      goal: '–',
    });
    const grpcRest = pair('grpc', 'restLib');
    rows.push({
      measure: "gRPC Get ÷ REST GET, 1 / 64 outstanding, every read sent to ZooKeeper, each through its usual Node client (grpc-js, node:http)",
      value: `${f2(grpcRest[0])} / ${f2(grpcRest[1])} (${rates('grpc', 'calls/s')} vs ${rates('restLib', 'req/s')})`,
      goal: '≥ 1.0 / ≥ 1.0',
      met: grpcRest.every((x) => x >= 1),
    });

    }

    // ---- writes: D (raw npm client's set) vs REST PUT ----
    if (only.has('writes')) {
      const writes = fork('writes', './load-proc.js');
      await writes.call('init', { zk: zk.connectString, httpPort, create: true });
      const write = (target: string, concurrency: number, ms = P.ms): Promise<RoundResult> => writes.call('writes', { target, concurrency, ms });
      for (const t of ['direct', 'rest']) await write(t, 8, Math.min(P.ms, 1000)); // warm-up, not counted
      const ratios: number[] = [];
      const rates: number[] = [];
      for (const c of [1, 64]) {
        const r = { d: [] as RoundResult[], rest: [] as RoundResult[] };
        for (let i = 0; i < P.rounds; i++) {
          r.d.push(await write('direct', c));
          r.rest.push(await write('rest', c));
        }
        ratios.push(medianRatio(ops(r.rest), ops(r.d)));
        rates.push(median(ops(r.rest)));
        log(`writes at ${c}: D ${median(ops(r.d)).toFixed(0)}/s, REST ${median(ops(r.rest)).toFixed(0)}/s`);
      }
      await writes.close();
      rows.push({
        measure: 'REST PUT (set) throughput ÷ D, 1 / 64 outstanding',
        value: `${f2(ratios[0] as number)} / ${f2(ratios[1] as number)} (${(rates[0] as number).toFixed(0)} / ${(rates[1] as number).toFixed(0)} req/s)`,
        goal: '–',
      });
    }

    // ---- gRPC: the gateway's CPU per call, and the ceiling the clients allow ----
    if (only.has('grpc')) {
    const load = fork('grpc-load', './load-proc.js');
    await load.call('init', { zk: zk.connectString, httpPort, grpcPort, create: true });
    const echo = fork('echo', './echo-proc.js');
    const echoPorts = await echo.call<{ httpPort: number; grpcPort: number; bareGrpcPort: number }>('start');
    const ceilingLoad = fork('echo-load', './load-proc.js');
    await ceilingLoad.call('init', echoPorts);
    /** A round against `server` (the gateway or the minimal servers): ops/s and that server's CPU µs per call. */
    const round = async (proc: BenchChild, server: BenchChild, target: string, concurrency: number, ms = P.ms): Promise<{ opsPerSec: number; cpuUs: number }> => {
      const before = await server.call<number>('cpu');
      const r = await proc.call<RoundResult>('reads', { target, concurrency, ms });
      return { opsPerSec: r.opsPerSec, cpuUs: ((await server.call<number>('cpu')) - before) / r.ops };
    };
    for (const t of ['rest-lib', 'grpc']) {
      await round(load, gateway, t, 8, Math.min(P.ms, 1000)); // warm-up, not counted
      await round(ceilingLoad, echo, t, 8, Math.min(P.ms, 1000));
    }
    const ceiling: number[] = [];
    const cpu = { rest: [] as number[], grpc: [] as number[] };
    for (const c of [1, 64]) {
      const ratios: number[] = [];
      for (let i = 0; i < P.rounds; i++) {
        const rest = await round(ceilingLoad, echo, 'rest-lib', c);
        const grpc = await round(ceilingLoad, echo, 'grpc', c);
        ratios.push(grpc.opsPerSec / rest.opsPerSec);
        if (c === 64) {
          cpu.rest.push((await round(load, gateway, 'rest-lib', c)).cpuUs);
          cpu.grpc.push((await round(load, gateway, 'grpc', c)).cpuUs);
        }
      }
      ceiling.push(median(ratios));
    }
    // The same GET with h2load driving both transports (bench/h2load.ts): the gateway, then the
    // minimal servers (its ceiling), then Node's own (bare node:http2 vs node:http), alternating
    // REST and gRPC rounds.
    const getBody = grpcGetBody('/bench');
    const h2Targets = { gateway: { httpPort, grpcPort }, minimal: echoPorts, bare: { httpPort: echoPorts.httpPort, grpcPort: echoPorts.bareGrpcPort } };
    for (const t of Object.values(h2Targets)) {
      await checkGrpcGet(t.grpcPort, getBody.bytes, '/bench');
      for (const kind of ['rest', 'grpc'] as const) await h2loadRound(t, kind, 8, Math.min(P.ms, 1000), getBody.file); // warm-up
    }
    const h2 = { gateway: [] as number[], minimal: [] as number[], bare: [] as number[], rates: [] as string[] };
    for (const c of [1, 64]) {
      const ratios = { gateway: [] as number[], minimal: [] as number[], bare: [] as number[] };
      const rates = { rest: [] as number[], grpc: [] as number[] };
      for (let i = 0; i < P.rounds; i++) {
        for (const [name, t] of Object.entries(h2Targets) as [keyof typeof ratios, (typeof h2Targets)['gateway']][]) {
          const rest = await h2loadRound(t, 'rest', c, P.ms, getBody.file);
          const grpc = await h2loadRound(t, 'grpc', c, P.ms, getBody.file);
          ratios[name].push(grpc / rest);
          if (name === 'gateway') [rates.rest, rates.grpc].forEach((r, k) => r.push(k === 0 ? rest : grpc));
        }
      }
      h2.gateway.push(median(ratios.gateway));
      h2.minimal.push(median(ratios.minimal));
      h2.bare.push(median(ratios.bare));
      h2.rates.push(`${median(rates.grpc).toFixed(0)} vs ${median(rates.rest).toFixed(0)}`);
    }
    rmSync(getBody.file, { force: true });
    log(`h2load gRPC ÷ REST: gateway ${h2.gateway.map(f2).join(' / ')} (${h2.rates.join(', ')} per s), minimal servers ${h2.minimal.map(f2).join(' / ')}, bare node:http2 ÷ node:http ${h2.bare.map(f2).join(' / ')}`);
    await load.close();
    await ceilingLoad.close();
    await echo.close();
    log(`gRPC ceiling ${ceiling.map(f2).join(' / ')}; gateway CPU per call at 64: REST ${median(cpu.rest).toFixed(0)} µs, gRPC ${median(cpu.grpc).toFixed(0)} µs`);
    rows.push({
      measure: 'gRPC ÷ REST with minimal servers and the same clients (the ceiling of gRPC Get ÷ REST GET), 1 / 64 outstanding',
      value: ceiling.map(f2).join(' / '),
      goal: '',
    });
    rows.push({
      measure: 'gRPC Get ÷ REST GET with h2load driving both (gRPC over h2c, REST over HTTP/1.1 keep-alive), 1 / 64 outstanding',
      value: `${h2.gateway.map(f2).join(' / ')} (gRPC vs REST calls/s: ${h2.rates.join(', ')})`,
      goal: '≥ 1.0 / ≥ 1.0',
      met: h2.gateway.every((x) => x >= 1),
    });
    rows.push({
      measure: 'the same with minimal servers (h2load; the ceiling of the row above), 1 / 64 outstanding',
      value: h2.minimal.map(f2).join(' / '),
      goal: '',
    });
    rows.push({
      measure: "the same with a bare node:http2 handler (no gRPC library; respond, end, trailers) and the minimal node:http server (h2load; Node's own ceiling), 1 / 64 outstanding",
      value: h2.bare.map(f2).join(' / '),
      goal: '',
    });
    const cpuRatio = medianRatio(cpu.rest, cpu.grpc);
    rows.push({
      measure: 'gateway CPU per call, REST GET ÷ gRPC Get, 64 outstanding (above 1: a gRPC call costs the gateway less)',
      value: `${f2(cpuRatio)} (${median(cpu.rest).toFixed(0)} µs vs ${median(cpu.grpc).toFixed(0)} µs)`,
      goal: '≥ 1.0',
      met: cpuRatio >= 1,
    });
    }

    // ---- fan-out: gateway WebSocket subscribers vs W ----
    if (only.has('fanout')) {
    const fanG = fork('fan-gateway', './load-proc.js');
    const fanW = fork('fan-w', './load-proc.js');
    await fanG.call('init', { zk: zk.connectString, create: true });
    const fanRatios: number[] = [];
    const cpuRatios: number[] = [];
    const cpuUs: { g: number; w: number }[] = [];
    const p99s: { g: number; w: number } = { g: NaN, w: NaN };
    let p99Ratio = NaN;
    let memRatio = NaN;
    let memKiB = { g: NaN, w: NaN };
    let readsPerChange = NaN;
    let hubReadsPerChange = NaN;
    let connected = 0;
    for (const n of P.fan) {
      const memBefore = { g: await gateway.call<number>('mem'), w: await w.call<number>('mem') };
      await fanG.call('fanConnect', { kind: 'gateway', url: `ws://127.0.0.1:${httpPort}/v1/ws`, count: n, client: fanClient });
      await fanW.call('fanConnect', { kind: 'w', url: `ws://127.0.0.1:${wPort}/`, count: n, client: fanClient });
      // Idle sockets: connected, welcomed, nothing subscribed yet.
      const memAfter = { g: await gateway.call<number>('mem'), w: await w.call<number>('mem') };
      memKiB = { g: (memAfter.g - memBefore.g) / (n - connected) / 1024, w: (memAfter.w - memBefore.w) / (n - connected) / 1024 };
      memRatio = memKiB.g / memKiB.w;
      connected = n;
      await fanG.call('fanSubscribe');
      await fanW.call('fanSubscribe');
      await fanG.call('fanRound', { ms: Math.min(P.ms, 1000) }); // warm-up
      // W broadcasts the gateway's own event message (its sequence number changed): the same bytes.
      await fanW.call('fanTemplate', await fanG.call<string>('fanSample'));
      await fanW.call('fanRound', { ms: Math.min(P.ms, 1000) });
      const g: (RoundResult & { changes: number; messageBytes: number })[] = [];
      const wr: (RoundResult & { messageBytes: number })[] = [];
      let hubReads = 0;
      let reads = 0;
      // CPU time each server process spent per delivery (µs), round by round.
      // The subscribers' process (the receiving end) too: whether it or the server bounds a change's fan-out.
      const cpuPer = { g: [] as number[], w: [] as number[], gLoad: [] as number[], wLoad: [] as number[] };
      for (let i = 0; i < P.rounds; i++) {
        const before = readsServed(await mntr(zk));
        const hubBefore = await gateway.call<number>('watchReads');
        const gCpu = await gateway.call<number>('cpu');
        const gLoadCpu = await fanG.call<number>('cpu');
        g.push(await fanG.call('fanRound', { ms: P.ms }));
        cpuPer.g.push(((await gateway.call<number>('cpu')) - gCpu) / (g.at(-1) as RoundResult).ops);
        cpuPer.gLoad.push(((await fanG.call<number>('cpu')) - gLoadCpu) / (g.at(-1) as RoundResult).ops);
        hubReads += (await gateway.call<number>('watchReads')) - hubBefore;
        reads += readsServed(await mntr(zk)) - before;
        const wCpu = await w.call<number>('cpu');
        const wLoadCpu = await fanW.call<number>('cpu');
        wr.push(await fanW.call('fanRound', { ms: P.ms }));
        cpuPer.w.push(((await w.call<number>('cpu')) - wCpu) / (wr.at(-1) as RoundResult).ops);
        cpuPer.wLoad.push(((await fanW.call<number>('cpu')) - wLoadCpu) / (wr.at(-1) as RoundResult).ops);
      }
      cpuRatios.push(medianRatio(cpuPer.g, cpuPer.w));
      cpuUs.push({ g: median(cpuPer.g), w: median(cpuPer.w) });
      fanRatios.push(medianRatio(ops(g), ops(wr)));
      p99Ratio = medianRatio(g.map((x) => x.p99), wr.map((x) => x.p99));
      p99s.g = median(g.map((x) => x.p99));
      p99s.w = median(wr.map((x) => x.p99));
      const changes = g.reduce((s, x) => s + x.changes, 0);
      readsPerChange = reads / changes;
      hubReadsPerChange = hubReads / changes;
      log(
        `fan-out at ${n}: gateway ${median(ops(g)).toFixed(0)} events/s (p99 ${p99s.g.toFixed(0)} ms, ${(cpuUs.at(-1) as { g: number }).g.toFixed(1)} µs CPU each), ` +
          `W ${median(ops(wr)).toFixed(0)}/s (p99 ${p99s.w.toFixed(0)} ms, ${(cpuUs.at(-1) as { w: number }).w.toFixed(1)} µs CPU each); ` +
          `event message ${(g.at(-1) as { messageBytes: number }).messageBytes} vs ${(wr.at(-1) as { messageBytes: number }).messageBytes} bytes; ` +
          `subscribers' process CPU per delivery ${median(cpuPer.gLoad).toFixed(1)} µs (gateway's rounds) / ${median(cpuPer.wLoad).toFixed(1)} µs (W's)`,
      );
    }
    await fanG.close();
    await fanW.close();
    const [n1, n2] = P.fan.map((n) => n.toLocaleString('en-US'));
    rows.push({
      measure: `WebSocket fan-out events/s ÷ W, ${n1} / ${n2} subscribers`,
      value: `${f2(fanRatios[0] as number)} / ${f2(fanRatios[1] as number)}`,
      goal: '≥ 0.85 at the first',
      met: (fanRatios[0] as number) >= 0.85,
    });
    // The server's own cost, less moved by a busy machine than throughput: above 1 the gateway spends more per delivery than W.
    rows.push({
      measure: `server CPU per delivered event ÷ W, ${n1} / ${n2} subscribers`,
      value: `${f2(cpuRatios[0] as number)} / ${f2(cpuRatios[1] as number)} (${cpuUs.map((c) => `${c.g.toFixed(1)} vs ${c.w.toFixed(1)} µs`).join(' / ')})`,
      goal: '–',
      met: undefined,
    });
    rows.push({
      measure: `fan-out latency p99 at ${n2} subscribers (W)`,
      value: `${p99s.g.toFixed(0)} ms (W ${p99s.w.toFixed(0)} ms)`,
      goal: '≤ 250 ms',
      met: p99s.g <= 250,
    });
    // When W itself cannot reach 10,000 sockets in 250 ms on this machine, the ratio is the fair figure.
    rows.push({
      measure: `fan-out latency p99 ÷ W at ${n2} subscribers (median of per-round ratios)`,
      // The goal applies only when W misses 250 ms; otherwise the row above is the goal.
      value: p99s.w > 250 ? f2(p99Ratio) : `${f2(p99Ratio)} (W made 250 ms: the row above is the goal)`,
      goal: '≤ 1.0 when W misses 250 ms',
      ...(p99s.w > 250 ? { met: p99Ratio <= 1 } : {}),
    });
    rows.push({
      measure: 'idle WebSocket memory per socket ÷ W (RSS after GC)',
      value: `${f2(memRatio)} (${memKiB.g.toFixed(1)} KiB vs ${memKiB.w.toFixed(1)} KiB)`,
      goal: '≤ 1.5',
      met: memRatio <= 1.5,
    });
    // ZooKeeper's count also has the session heartbeat (`exists /` after 1/6 of the session timeout
    // without a request), which shows when a change takes seconds; the hub's own count does not.
    rows.push({
      measure: `ZooKeeper reads per change, ${n2} subscribers`,
      value: `${f2(readsPerChange)} (the watch hub's own: ${f2(hubReadsPerChange)})`,
      goal: '1',
      met: Math.abs(readsPerChange - 1) < 0.05,
    });

    }

    // ---- locks: gateway REST vs Curator InterProcessMutex ----
    if (only.has('locks')) {
    const maxClients = Math.max(...P.lockClients);
    const locks = fork('locks', './load-proc.js');
    await locks.call('init', { httpPort });
    await locks.call('lockSetup', { clients: maxClients });
    curator = await CuratorLocks.start(zk.connectString, maxClients);
    const lockRatios: number[] = [];
    const fired = { g: 0, gCycles: 0, c: 0, cCycles: 0 };
    for (const [i, c] of P.lockClients.entries()) {
      // Warm-up, not counted: long for the first client count, 1 s for the next (the code is hot by then).
      const warm = i === 0 ? P.lockWarmMs : Math.min(P.ms, 1000);
      await locks.call('lockRound', { clients: c, ms: warm, client: lockClient });
      await curator.round(c, warm);
      const g: RoundResult[] = [];
      const cu: { opsPerSec: number }[] = [];
      // The gateway's CPU and ZooKeeper's requests (reads, writes) per cycle, gateway rounds only.
      const per = { cpu: [] as number[], reads: 0, writes: 0, cycles: 0 };
      for (let i = 0; i < P.rounds; i++) {
        const m0 = await mntr(zk);
        let before = watchersFired(m0);
        const cpu0 = await gateway.call<number>('cpu');
        const gr = await locks.call<RoundResult>('lockRound', { clients: c, ms: P.ms, client: lockClient });
        per.cpu.push(((await gateway.call<number>('cpu')) - cpu0) / gr.ops);
        const m1 = await mntr(zk);
        per.reads += readsServed(m1) - readsServed(m0);
        per.writes += (m1.get('zk_cnt_updatelatency') ?? 0) - (m0.get('zk_cnt_updatelatency') ?? 0);
        per.cycles += gr.ops;
        g.push(gr);
        if (c === maxClients) {
          fired.g += watchersFired(await mntr(zk)) - before;
          fired.gCycles += gr.ops;
          before = watchersFired(await mntr(zk));
        }
        const cr = await curator.round(c, P.ms);
        cu.push(cr);
        if (c === maxClients) {
          fired.c += watchersFired(await mntr(zk)) - before;
          fired.cCycles += (cr.opsPerSec * P.ms) / 1000;
        }
      }
      lockRatios.push(medianRatio(ops(g), cu.map((x) => x.opsPerSec)));
      log(
        `locks at ${c} (${lockClient} HTTP client): gateway ${median(ops(g)).toFixed(0)} cycles/s, Curator ${median(cu.map((x) => x.opsPerSec)).toFixed(0)}/s; ` +
          `gateway CPU per cycle ${median(per.cpu).toFixed(0)} µs, ZooKeeper requests per cycle ${f2(per.reads / per.cycles)} reads + ${f2(per.writes / per.cycles)} writes`,
      );
    }
    await locks.close();
    rows.push({
      measure: `lock cycles/s ÷ Curator InterProcessMutex, ${P.lockClients.join(' / ')} clients`,
      value: lockRatios.map(f2).join(' / '),
      goal: '≥ 0.7',
      met: lockRatios.every((x) => x >= 0.7),
    });
    const wakeG = fired.g / fired.gCycles;
    const wakeC = fired.c / fired.cCycles;
    rows.push({
      measure: `ZooKeeper watchers triggered per lock release, ${maxClients} clients (Curator)`,
      value: `${f2(wakeG)} (Curator ${f2(wakeC)})`,
      goal: 'no more than Curator',
      met: wakeG <= wakeC + 0.05,
    });
    }
  } catch (err) {
    // Print what was measured before the failure, then fail.
    failure = err;
  } finally {
    curator?.close();
    for (const c of children) await c.close();
    await zk.close();
  }
  console.log(`zkgate benchmark${quick ? ' (--quick: too short to mean anything)' : ''}, ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC`);
  console.log(`machine: ${startMachine}; load at the end ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  console.log(`rounds: ${P.rounds} × ${P.ms} ms per side, alternating; figures are medians of per-round ratios${fastPath ? '' : '; REST through express only (--no-fast-path)'}\n`);
  console.log(formatTable(rows));
  if (failure !== undefined) {
    console.log(`\nbench: stopped early: ${(failure as Error).message ?? String(failure)}`);
    process.exitCode = 1;
  }
}

await main();
