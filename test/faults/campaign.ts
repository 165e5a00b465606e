/**
 * The fault campaign: a 3-node ensemble, a gateway as its own process, gateway clients plus
 * Curator and Kazoo peers on locks and an election, CAS writers and a watch subscriber through
 * the gateway, and a schedule of faults (kill a follower, kill the leader, SIGSTOP the gateway's
 * member past the session timeout, SIGSTOP the gateway, kill and restart all). After each fault
 * the gateway's and a Kazoo session's time to reconnect (both on the member that was hit) are
 * measured. `runCampaign` returns the checker's figures; test/faults/run.ts prints them.
 */
import { spawnClean } from '../../src/zk/index.js';
import { projectFile } from '../../src/project-files.js';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startZkEnsemble, type ZkEnsemble, type ZkServerHandle } from '../support/zk-server.js';
import { memberOfSession, startKazooSession, type KazooSession } from '../support/failover.js';
import { checkHolds, checkWrites, silentGap, type HoldReport, type WriteReport } from './checker.js';
import { casWriter, electionClient, lockClient, sseSubscriber, supervisedPeer, type Worker, type WriteLog } from './workload.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The faults, in the order of one round of the schedule. */
export const FAULTS = ['kill-follower', 'kill-leader', 'stop-member', 'stop-gateway', 'restart-all'] as const;
export type Fault = (typeof FAULTS)[number];

export interface CampaignOptions {
  /** Rounds of the whole fault schedule. @defaultValue 1 */
  readonly rounds?: number;
  /** Load settle time before the first fault and after each recovery, ms. @defaultValue 3000 */
  readonly settleMs?: number;
  /** Gateway session timeout, ms (the gateway's default is 10 000). @defaultValue 10000 */
  readonly sessionTimeoutMs?: number;
  /** Progress lines (one per fault). */
  readonly progress?: (line: string) => void;
  /** The faults of one round, in order (a subset of FAULTS, e.g. to repeat one scenario). @defaultValue FAULTS */
  readonly faults?: readonly Fault[];
}

/** One fault's measurements. */
export interface FaultResult {
  readonly fault: Fault;
  /** Index of the member the fault hit (-1: the gateway process / all members). */
  readonly member: number;
  /** Whether the gateway's session was on the member that was hit. */
  readonly gatewayHit: boolean;
  /** Ms from the fault to the gateway's session being connected again (undefined: not disconnected). */
  readonly gatewayReconnectMs: number | undefined;
  /** Same for a Kazoo session on the same member (undefined when not measured). */
  readonly kazooReconnectMs: number | undefined;
  /** Gateway session expiries during the fault. */
  readonly expiries: number;
  /** restart-all: ms from the kill until every member served again. */
  readonly ensembleBackMs?: number;
  /** Whether a quorum stayed up and the gateway kept running (expiries then count against the target). */
  readonly quorumUp: boolean;
}

export interface CampaignReport {
  readonly faults: readonly FaultResult[];
  readonly locks: HoldReport;
  readonly kazooLocks: HoldReport;
  readonly elections: HoldReport;
  readonly writes: WriteReport;
  readonly subscribers: number;
  readonly silentGaps: readonly string[];
  /** Session expiries of the gateway while a quorum was up and the gateway ran. */
  readonly expiriesWithQuorum: number;
}

/** A gateway process and the session states it logged (its JSON log lines, `time` ISO or epoch ms). */
interface GatewayProc {
  readonly proc: ChildProcess;
  readonly base: string;
  readonly states: { state: string; atMs: number }[];
  /** Whether the process has exited (crashed: the campaign never stops it before the end). */
  dead(): boolean;
  /** Resolves once the process has exited and its stdout and stderr are read to the end. */
  readonly closed: Promise<void>;
  /** Exit code or signal once exited, and the last few KB of its stderr and of all its output. */
  describe(): string;
  stop(): Promise<void>;
}

async function startGatewayProcess(connect: string, sessionTimeoutMs: number, dir: string): Promise<GatewayProc> {
  const cfg = join(dir, 'zkgate.yaml');
  writeFileSync(cfg, `tenants:\n  - name: default\n    sessionTimeoutMs: ${sessionTimeoutMs}\n`);
  const proc = spawnClean(
    process.execPath,
    [projectFile('dist/src/cli/index.js'), 'serve', '--zookeeper', connect, '--http-port', '0', '--grpc-port', '0'],
    { env: { ...process.env, ZKGATE_CONFIG: cfg, ZKGATE_ZOOKEEPER: '' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const states: { state: string; atMs: number }[] = [];
  let out = '';
  let port = 0;
  let tail = '';
  // stderr on its own too: a dying process's last words (the C client's log, a V8 or libuv
  // message) must not be pushed out of the tail by request log lines.
  let errTail = '';
  const keep = (b: Buffer): void => {
    tail = (tail + b.toString('utf8')).slice(-4000);
  };
  proc.stderr?.on('data', (b: Buffer) => {
    errTail = (errTail + b.toString('utf8')).slice(-4000);
  });
  proc.stderr?.on('data', keep);
  proc.stdout?.on('data', keep);
  // 'close', not 'exit': 'exit' can come before the pipes are drained, and the last lines
  // written before a crash are the ones that matter.
  let ended = '';
  const closed = new Promise<void>((resolve) =>
    proc.once('close', (code, signal) => {
      ended = `exit ${String(code ?? signal)}`;
      resolve();
    }),
  );
  const dead = (): boolean => proc.exitCode !== null || proc.signalCode !== null;
  const describe = (): string => `${ended || (dead() ? `exit ${String(proc.exitCode ?? proc.signalCode)} (output not yet read to the end)` : 'running')}; stderr tail:\n${errTail}\noutput tail:\n${tail}`;
  proc.stdout?.on('data', (b: Buffer) => {
    out += b.toString('utf8');
    let nl: number;
    while ((nl = out.indexOf('\n')) >= 0) {
      const line = out.slice(0, nl);
      out = out.slice(nl + 1);
      try {
        const rec = JSON.parse(line) as { time?: string | number; zkState?: string; msg?: string; httpPort?: number };
        const atMs = typeof rec.time === 'string' ? Date.parse(rec.time) : rec.time;
        if (rec.msg === 'zookeeper session state' && rec.zkState && atMs) states.push({ state: rec.zkState, atMs });
        if (typeof rec.httpPort === 'number') port = rec.httpPort;
      } catch {
        /* not a log record */
      }
    }
  });
  const deadline = Date.now() + 60_000;
  while (!port) {
    if (dead()) {
      await closed;
      throw new Error(`fault campaign: the gateway did not start (${describe()})`);
    }
    if (Date.now() > deadline) throw new Error(`fault campaign: the gateway did not start in 60 s (${describe()})`);
    await sleep(50);
  }
  const base = `http://127.0.0.1:${port}`;
  while ((await fetch(`${base}/readyz`).catch(() => undefined))?.status !== 200) await sleep(100);
  return {
    proc,
    base,
    states,
    dead,
    closed,
    describe,
    async stop() {
      if (dead()) return;
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGCONT');
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 8000);
      await exited;
      clearTimeout(t);
    },
  };
}

/** The gateway's session id once it is ready (waits up to 90 s: restarts are slow on a loaded machine). */
async function gatewaySession(gw: GatewayProc): Promise<string> {
  const deadline = Date.now() + 90_000;
  let last = '';
  while (Date.now() < deadline) {
    if (gw.dead()) {
      await gw.closed;
      throw new Error(`fault campaign: the gateway died (${gw.describe()})`);
    }
    const r = await fetch(`${gw.base}/readyz`, { signal: AbortSignal.timeout(2000) }).catch(() => undefined);
    last = r ? `${r.status} ${await r.text()}` : 'no answer';
    if (r?.status === 200) {
      const id = (JSON.parse(last.slice(4)) as { tenants: { sessionId: string }[] }).tenants[0]?.sessionId;
      if (id) return id.replace(/^0x/, '');
    }
    await sleep(100);
  }
  const states = gw.states.slice(-5).map((s) => `${s.state}@${new Date(s.atMs).toISOString()}`).join(' ');
  throw new Error(`fault campaign: the gateway is not ready after 90 s (readyz: ${last}; last states: ${states}; ${gw.describe()})`);
}

function hostsWithFirst(ens: ZkEnsemble, first: number): string {
  const order = [first, ...[0, 1, 2].filter((i) => i !== first)];
  return order.map((i) => (ens.members[i] as { connectString: string }).connectString).join(',');
}

/** Runs the campaign; everything it started is stopped and removed before it resolves. */
export async function runCampaign(opts: CampaignOptions = {}): Promise<CampaignReport> {
  const rounds = opts.rounds ?? 1;
  const settleMs = opts.settleMs ?? 3000;
  const sessionTimeoutMs = opts.sessionTimeoutMs ?? 10_000;
  const say = opts.progress ?? (() => undefined);
  const dir = mkdtempSync(join(tmpdir(), 'zkgate-faults-'));
  const logs = { locks: join(dir, 'locks.log'), klocks: join(dir, 'kazoo-locks.log'), elections: join(dir, 'elections.log') };
  for (const f of Object.values(logs)) writeFileSync(f, '');
  const ens = await startZkEnsemble(3, { tickTimeMs: 500 });
  const workers: Worker[] = [];
  let gw: GatewayProc | undefined;
  try {
    gw = await startGatewayProcess(ens.connectString, sessionTimeoutMs, dir);
    const base = gw.base;
    const create = (path: string, data: string): Promise<Response> =>
      fetch(`${base}/v1/nodes${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ data }) });
    await create('/faults', '');
    if ((await create('/faults/cas', '[]')).status !== 201) throw new Error('fault campaign: could not create /faults/cas');
    const writes: WriteLog = { acked: new Set(), failed: new Set(), unknown: new Set() };
    const seen: { type: string; version: number }[][] = [[], []];
    const c = ens.connectString;
    workers.push(
      lockClient({ base, id: 'gw1', logFile: logs.locks, holdMs: 30, lockPath: '/faults/lock', flavour: 'curator' }),
      lockClient({ base, id: 'gw2', logFile: logs.locks, holdMs: 30, lockPath: '/faults/lock', flavour: 'curator' }),
      supervisedPeer('curator', 'cur', (id) => ['lock', c, '/faults/lock', '100000', '30', logs.locks, id]),
      lockClient({ base, id: 'gwk', logFile: logs.klocks, holdMs: 30, lockPath: '/faults/klock', flavour: 'kazoo' }),
      supervisedPeer('kazoo', 'kz', (id) => ['lock', c, '/faults/klock', '100000', '30', logs.klocks, id]),
      electionClient({ base, id: 'gwe1', logFile: logs.elections, holdMs: 50, path: '/faults/election' }),
      electionClient({ base, id: 'gwe2', logFile: logs.elections, holdMs: 50, path: '/faults/election' }),
      supervisedPeer('curator', 'latch', (id) => ['latch', c, '/faults/election', '50', '100000', logs.elections, id]),
      casWriter(base, '/faults/cas', 'w1', writes),
      casWriter(base, '/faults/cas', 'w2', writes),
      ...seen.map((s) => sseSubscriber(base, '/faults/cas', s)),
    );
    await sleep(settleMs + 4000); // the JVM peers take a few seconds to start

    const results: FaultResult[] = [];
    for (let round = 0; round < rounds; round++) {
      for (const fault of opts.faults ?? FAULTS) {
        const r = await runFault(fault, ens, gw, sessionTimeoutMs);
        results.push(r);
        say(formatFault(r));
        await sleep(settleMs);
      }
    }

    // Quiesce: stop the load, let the subscribers catch up, then read the final state.
    const [subs, rest] = [workers.slice(-seen.length), workers.slice(0, -seen.length)];
    await Promise.all(rest.map((w) => w.stop()));
    await sleep(3000);
    await Promise.all(subs.map((w) => w.stop()));
    workers.length = 0;
    const fin = (await (await fetch(`${base}/v1/nodes/faults/cas`)).json()) as { data: string; stat: { version: number } };
    const gaps = seen.map((s, i) => silentGap(s, fin.stat.version) && `subscriber ${i + 1}: ${silentGap(s, fin.stat.version)}`).filter((g): g is string => !!g);
    return {
      faults: results,
      locks: checkHolds(readFileSync(logs.locks, 'utf8')),
      kazooLocks: checkHolds(readFileSync(logs.klocks, 'utf8')),
      elections: checkHolds(readFileSync(logs.elections, 'utf8'), 'LEAD', 'UNLEAD'),
      writes: checkWrites(JSON.parse(fin.data) as string[], writes.acked, writes.failed, writes.unknown),
      subscribers: seen.length,
      silentGaps: gaps,
      expiriesWithQuorum: results.filter((r) => r.quorumUp).reduce((n, r) => n + r.expiries, 0),
    };
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
    await gw?.stop();
    await ens.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function runFault(fault: Fault, ens: ZkEnsemble, gw: GatewayProc, sessionTimeoutMs: number): Promise<FaultResult> {
  const sid = await gatewaySession(gw);
  const gwMember = await memberOfSession(ens, sid);
  const leader = await ens.leaderIndex();
  let member = -1;
  if (fault === 'kill-follower') member = gwMember >= 0 && gwMember !== leader ? gwMember : (leader + 1) % 3;
  if (fault === 'kill-leader') member = leader;
  if (fault === 'stop-member') member = gwMember;
  // A Kazoo session on the member the gateway uses, to compare reconnect times on the same fault.
  let kazoo: KazooSession | undefined;
  if (fault !== 'stop-gateway' && gwMember >= 0) kazoo = await startKazooSession(hostsWithFirst(ens, gwMember), sessionTimeoutMs);
  // Closed however the fault ends: a thrown fault must not leave its kazoo_peer.py running.
  try {
    const gatewayHit = fault === 'restart-all' || fault === 'kill-leader' || (member >= 0 && member === gwMember);
    let ensembleBackMs: number | undefined;
    const t0 = Date.now();
    const m = member >= 0 ? ens.members[member] : undefined;
    switch (fault) {
      case 'kill-follower':
      case 'kill-leader':
        await m?.kill();
        break;
      case 'stop-member':
        m?.pause();
        await sleep(sessionTimeoutMs + 2000);
        m?.resume();
        break;
      case 'stop-gateway':
        gw.proc.kill('SIGSTOP');
        await sleep(sessionTimeoutMs + 2000);
        gw.proc.kill('SIGCONT');
        break;
      case 'restart-all':
        await Promise.all(ens.members.map((x) => x.kill()));
        await Promise.all(ens.members.map((x) => startPatiently(x)));
        ensembleBackMs = Date.now() - t0;
        break;
    }
    await gatewaySession(gw); // ready again (a new session after the gateway's own freeze)
    await sleep(1000);
    const after = gw.states.filter((s) => s.atMs >= t0);
    const back = after.find((s) => s.state === 'reconnected' || s.state === 'connected');
    const expiries = after.filter((s) => s.state === 'expired').length;
    // Kazoo may still be backing off: give it time to come back before reading its figure.
    for (let i = 0; kazoo && kazoo.states.some((x) => x.atMs >= t0) && kazoo.reconnectedAfter(t0) === undefined && i < 300; i++) await sleep(100);
    const kazooMs = kazoo?.reconnectedAfter(t0);
    if (m && !m.running) await startPatiently(m);
    return {
      fault,
      member,
      gatewayHit,
      gatewayReconnectMs: after.some((s) => s.state === 'suspended') && back ? back.atMs - t0 : undefined,
      kazooReconnectMs: kazoo && after.some((s) => s.state === 'suspended') ? kazooMs : undefined,
      expiries,
      ...(ensembleBackMs === undefined ? {} : { ensembleBackMs }),
      quorumUp: fault !== 'restart-all' && fault !== 'stop-gateway',
    };
  } finally {
    await kazoo?.close();
  }
}

/** Starts a member, trying again when a loaded machine makes a start time out. */
async function startPatiently(m: ZkServerHandle): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await m.start();
      return;
    } catch (e) {
      if (attempt >= 3) throw e;
    }
  }
}

/** One line per fault, as the runner prints it. */
export function formatFault(r: FaultResult): string {
  const ms = (v: number | undefined): string => (v === undefined ? '-' : `${(v / 1000).toFixed(2)} s`);
  const ratio = r.gatewayReconnectMs !== undefined && r.kazooReconnectMs ? ` (${(r.gatewayReconnectMs / r.kazooReconnectMs).toFixed(2)}x)` : '';
  const where = r.member >= 0 ? ` member ${r.member + 1}` : '';
  const back = r.ensembleBackMs === undefined ? '' : ` (all members serving again after ${ms(r.ensembleBackMs)})`;
  return `${r.fault.padEnd(13)}${where.padEnd(10)} reconnect gateway ${ms(r.gatewayReconnectMs)}, kazoo ${ms(r.kazooReconnectMs)}${ratio}${back}; gateway session expiries ${r.expiries}${r.quorumUp ? '' : ' (no quorum or gateway frozen: not counted)'}`;
}

/** The report as printed lines. */
export function formatReport(rep: CampaignReport): string[] {
  const holds = (name: string, h: HoldReport): string =>
    `${name}: acquisitions ${h.acquisitions}, overlapping holds ${h.overlaps}, overlaps without prior loss report ${h.overlapsWithoutLossReport}, fencing order violations ${h.fencingViolations}`;
  const w = rep.writes;
  return [
    ...rep.faults.map(formatFault),
    holds('locks (gateway + Curator)', rep.locks),
    holds('locks (gateway kazoo flavour + Kazoo)', rep.kazooLocks),
    holds('elections (gateway + Curator LeaderLatch)', rep.elections),
    `CAS writes: acknowledged ${w.acknowledged}, reported failed ${w.reportedFailed}, no answer ${w.unknown}; acknowledged writes lost ${w.lostAcknowledged}, reported failed but applied ${w.failedButApplied}`,
    `watch subscribers: ${rep.subscribers}, with a silent gap: ${rep.silentGaps.length}${rep.silentGaps.map((g) => `\n  ${g}`).join('')}`,
    `gateway session expiries with a quorum up: ${rep.expiriesWithQuorum}`,
  ];
}

/** The issue's targets that a report misses (empty = all met). */
export function missedTargets(rep: CampaignReport): string[] {
  const missed: string[] = [];
  for (const [name, h] of [['locks', rep.locks], ['kazoo locks', rep.kazooLocks], ['elections', rep.elections]] as const) {
    if (h.overlapsWithoutLossReport > 0) missed.push(`${name}: ${h.overlapsWithoutLossReport} overlaps without a prior loss report\n${h.problems.join('\n')}`);
    if (h.fencingViolations > 0) missed.push(`${name}: ${h.fencingViolations} fencing order violations`);
  }
  if (rep.writes.lostAcknowledged > 0) missed.push(`${rep.writes.lostAcknowledged} acknowledged writes lost`);
  if (rep.silentGaps.length > 0) missed.push(`silent gaps: ${rep.silentGaps.join('; ')}`);
  if (rep.expiriesWithQuorum > 0) missed.push(`${rep.expiriesWithQuorum} gateway session expiries with a quorum up`);
  for (const f of rep.faults) {
    if (f.gatewayReconnectMs !== undefined && f.kazooReconnectMs !== undefined && f.gatewayReconnectMs > 1.5 * f.kazooReconnectMs && f.gatewayReconnectMs - f.kazooReconnectMs > 500) {
      missed.push(`${f.fault}: gateway reconnected after ${f.gatewayReconnectMs} ms, more than 1.5x Kazoo's ${f.kazooReconnectMs} ms`);
    }
  }
  return missed;
}
