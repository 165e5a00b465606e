/**
 * Failover timing against a real ensemble: which member a session is connected to, and a Kazoo
 * session (test/peers/kazoo_peer.py `session`) whose connection states are timestamped, so a
 * test can compare how fast the gateway's native client and Kazoo get back to a healthy member
 * after the same fault.
 */
import type { ChildProcess } from 'node:child_process';
import { projectFile } from '../../src/project-files.js';
import { spawnClean } from '../../src/zk/index.js';
import { tryFourLetter, type ZkEnsemble } from './zk-server.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Index (into `members`) of the running member whose `cons` lists session `sessionIdHex`, or -1. */
export async function memberOfSession(ensemble: ZkEnsemble, sessionIdHex: string): Promise<number> {
  const id = BigInt(`0x${sessionIdHex.replace(/^0x/, '')}`);
  const answers = await Promise.all(
    ensemble.members.map((m) => (m.running && !m.paused ? tryFourLetter(m.clientPort, 'cons', 2000) : Promise.resolve(''))),
  );
  return answers.findIndex((a) => [...a.matchAll(/sid=0x([0-9a-f]+)/gi)].some((x) => BigInt(`0x${x[1] as string}`) === id));
}

/** One connection-state change of a Kazoo session. */
export interface KazooState {
  readonly state: 'CONNECTED' | 'SUSPENDED' | 'LOST';
  /** Epoch ms (the peer's clock, the same machine). */
  readonly atMs: number;
}

/** A Kazoo session held by a peer process. */
export interface KazooSession {
  readonly sessionId: string;
  readonly states: readonly KazooState[];
  /** Ms from `sinceMs` (epoch) to the first CONNECTED after a drop (SUSPENDED/LOST) after it, or undefined. */
  reconnectedAfter(sinceMs: number): number | undefined;
  /** Whether the session was reported LOST (expired) after `sinceMs`. */
  lostAfter(sinceMs: number): boolean;
  close(): Promise<void>;
}

/**
 * Starts a Kazoo session on `hosts`, tried in the given order (put the member to fault first),
 * and resolves once it is connected.
 */
export function startKazooSession(hosts: string, sessionTimeoutMs: number): Promise<KazooSession> {
  const proc: ChildProcess = spawnClean('/usr/bin/python3', [projectFile('test/peers/kazoo_peer.py'), 'session', hosts, String(sessionTimeoutMs)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const states: KazooState[] = [];
  let out = '';
  let err = '';
  proc.stderr?.on('data', (b: Buffer) => (err += b.toString()));
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      proc.kill('SIGKILL'); // nobody gets a handle to close it
      reject(new Error(`kazoo session: not connected within 30 s; stderr: ${err}`));
    }, 30_000);
    void exited.then(() => {
      clearTimeout(t);
      reject(new Error(`kazoo session: exited before READY; stderr: ${err}`));
    });
    proc.stdout?.on('data', (b: Buffer) => {
      out += b.toString();
      let nl: number;
      while ((nl = out.indexOf('\n')) >= 0) {
        const line = out.slice(0, nl).trim();
        out = out.slice(nl + 1);
        const [kind, a, b2] = line.split(' ');
        if (kind === 'STATE' && a && b2) states.push({ state: a as KazooState['state'], atMs: Number(b2) });
        if (kind === 'READY' && a) {
          clearTimeout(t);
          resolve({
            sessionId: a,
            states,
            reconnectedAfter: (since) => {
              const drop = states.findIndex((x) => x.state !== 'CONNECTED' && x.atMs >= since);
              const s = drop < 0 ? undefined : states.slice(drop).find((x) => x.state === 'CONNECTED');
              return s ? s.atMs - since : undefined;
            },
            lostAfter: (since) => states.some((x) => x.state === 'LOST' && x.atMs >= since),
            async close() {
              if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
              await Promise.race([exited, sleep(5000)]);
              if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
            },
          });
        }
      }
    });
  });
}

/** Polls `probe` every 25 ms until it returns a value other than undefined, or throws after `timeoutMs`. */
export async function waitFor<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(25);
  }
}
