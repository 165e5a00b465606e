/**
 * Interop runs: Curator and Kazoo peer processes (test/peers) and gateway clients taking turns
 * on one lock or election path, all appending ENTER/EXIT (LEAD/UNLEAD) lines to one O_APPEND
 * log, and the checker that finds overlapping holds in that log.
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { spawnClean } from '../../src/zk/index.js';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectFile } from '../../src/project-files.js';
import type { RestClient } from './openapi.js';

/** A started peer process. */
export interface Peer {
  readonly id: string;
  readonly proc: ChildProcess;
  /** Resolves with the exit code (or the signal name). */
  readonly exited: Promise<number | string>;
  readonly stderr: () => string;
}

let classpath: string | undefined;

/** The Curator peers' Java classpath (test/peers/classpath.sh), computed once. */
export function curatorClasspath(): string {
  return (classpath ??= execFileSync('sh', [projectFile('test/peers/classpath.sh')], { encoding: 'utf8' }).trim());
}

/** Starts a peer and resolves once it printed READY. */
export function startPeer(kind: 'curator' | 'kazoo', args: readonly string[], env: Record<string, string>, id: string): Promise<Peer> {
  const [cmd, argv] =
    kind === 'curator'
      ? ['java', ['-Xshare:auto', '-XX:TieredStopAtLevel=1', '-cp', curatorClasspath(), projectFile('test/peers/CuratorPeer.java'), ...args]]
      : ['/usr/bin/python3', [projectFile('test/peers/kazoo_peer.py'), ...args]];
  // spawnClean: a long-lived JVM must not inherit the gateway's ZooKeeper sockets.
  const proc = spawnClean(cmd, argv as string[], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  proc.stderr?.on('data', (b: Buffer) => (err += b.toString()));
  const exited = new Promise<number | string>((resolve) => proc.on('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  return new Promise((resolve, reject) => {
    let out = '';
    const t = setTimeout(() => reject(new Error(`${id}: no READY within 40 s; stderr: ${err}`)), 40_000);
    proc.stdout?.on('data', (b: Buffer) => {
      out += b.toString();
      if (out.includes('READY')) {
        clearTimeout(t);
        resolve({ id, proc, exited, stderr: () => err });
      }
    });
    void exited.then((code) => {
      clearTimeout(t);
      reject(new Error(`${id}: exited ${code} before READY; stderr: ${err}`));
    });
  });
}

/** Appends one line with one write(2) on an O_APPEND descriptor, as the peers do. */
export function appendLine(file: string, line: string): void {
  const fd = openSync(file, 'a');
  try {
    writeSync(fd, `${line}\n`);
  } finally {
    closeSync(fd);
  }
}

/** What the log shows: rounds per party, and every place where two held at once (or out of order). */
export interface OverlapReport {
  readonly rounds: Readonly<Record<string, number>>;
  readonly overlaps: number;
  readonly problems: readonly string[];
}

/**
 * Checks a log of `<enter> id round` / `<exit> id round` lines: a correct run is a strict
 * alternation, each exit by the party that entered last.
 */
export function checkOverlaps(log: string, enter = 'ENTER', exit = 'EXIT'): OverlapReport {
  const rounds: Record<string, number> = {};
  const problems: string[] = [];
  let holder: string | null = null;
  for (const [i, line] of log.split('\n').filter(Boolean).entries()) {
    const [what, id, round] = line.split(' ') as [string, string, string];
    if (what === enter) {
      if (holder !== null) problems.push(`line ${i + 1}: ${id} entered round ${round} while ${holder} held`);
      holder = id;
    } else if (what === exit) {
      if (holder !== id) problems.push(`line ${i + 1}: ${id} exited round ${round} but the holder was ${holder}`);
      else rounds[id] = (rounds[id] ?? 0) + 1;
      holder = null;
    } else {
      problems.push(`line ${i + 1}: unexpected ${JSON.stringify(line)}`);
    }
  }
  return { rounds, overlaps: problems.length, problems };
}

/** Kills a peer that is still running (SIGTERM closes its session). */
export function stopPeer(p: Peer): void {
  if (p.proc.exitCode === null && p.proc.signalCode === null) p.proc.kill('SIGTERM');
}

/** One gateway client taking `rounds` turns on a lock (`lock`) or in an election (`latch`), logging like the peers. */
export async function gatewayRounds(
  rest: RestClient,
  opts: { kind: 'lock' | 'latch'; path: string; rounds: number; holdMs: number; log: string; id: string; flavour?: 'curator' | 'kazoo' },
): Promise<void> {
  const lease = ((await rest.json('POST', '/v1/leases', { ttlMs: 30_000 })).body as { id: string }).id;
  const route = opts.kind === 'lock' ? 'locks' : 'elections';
  const [enter, exit] = opts.kind === 'lock' ? ['ENTER', 'EXIT'] : ['LEAD', 'UNLEAD'];
  for (let round = 1; round <= opts.rounds; round++) {
    const body = opts.kind === 'lock' ? { leaseId: lease, waitMs: 30_000, flavour: opts.flavour, data: opts.id } : { leaseId: lease, waitMs: 30_000, value: opts.id };
    const got = await rest.json('POST', `/v1/${route}${opts.path}`, body);
    if (got.status !== 200) throw new Error(`${opts.id} round ${round}: ${got.status} ${JSON.stringify(got.body)}`);
    const node = (got.body as { node: string }).node;
    appendLine(opts.log, `${enter} ${opts.id} ${round}`);
    await new Promise((r) => setTimeout(r, opts.holdMs));
    appendLine(opts.log, `${exit} ${opts.id} ${round}`);
    const left = await rest.json('DELETE', `/v1/${route}${opts.path}`, undefined, { query: { leaseId: lease, node } });
    if (left.status !== 200) throw new Error(`${opts.id} round ${round}: release ${left.status}`);
    await rest.json('POST', `/v1/leases/${lease}/keepalive`);
    await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 6)));
  }
  await rest.json('DELETE', `/v1/leases/${lease}`);
}

/**
 * One contention run: starts the peers (each gets the shared log's path), opens the start gate
 * once all are READY, runs the gateway parties, waits for every peer to finish, and returns the
 * log. Peers still running on failure are stopped; the temp dir is removed.
 */
export async function contend(opts: {
  readonly peers: readonly { readonly kind: 'curator' | 'kazoo'; readonly id: string; readonly args: (log: string) => string[] }[];
  readonly gateway: (log: string) => Promise<void>[];
}): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'zkgate-interop-'));
  const log = join(dir, 'log');
  const gate = join(dir, 'start');
  writeFileSync(log, '');
  const started: Peer[] = [];
  try {
    const env = { PEER_START_FILE: gate, PEER_WAIT_MS: '60000' };
    started.push(...(await Promise.all(opts.peers.map((p) => startPeer(p.kind, p.args(log), env, p.id)))));
    writeFileSync(gate, 'go');
    await Promise.all(opts.gateway(log));
    const codes = await Promise.all(started.map((p) => p.exited));
    if (codes.some((c) => c !== 0)) throw new Error(`peers exited ${codes.join(', ')}: ${started.map((p) => p.stderr()).join('\n')}`);
    return readFileSync(log, 'utf8');
  } finally {
    started.forEach(stopPeer);
    rmSync(dir, { recursive: true, force: true });
  }
}
