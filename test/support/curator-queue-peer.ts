/**
 * One Curator JVM per test file (test/peers/CuratorQueuePeer.java): commands on its stdin, each
 * run on its own thread, answered by `OK <tag> <result>` / `ERR <tag> <message>` lines.
 */
import { projectFile } from '../../src/project-files.js';
import { spawnClean } from '../../src/zk/index.js';
import { curatorClasspath } from './peers.js';

export interface CuratorQueuePeer {
  /** Runs `cmd args…` on the peer; resolves with its result, rejects with its error. */
  run(cmd: string, ...args: (string | number)[]): Promise<string>;
  /** Closes stdin (the peer closes its session and exits); kills it after 5 s. */
  close(): Promise<void>;
}

export function startCuratorQueuePeer(connect: string): Promise<CuratorQueuePeer> {
  const proc = spawnClean('java', ['-Xshare:auto', '-XX:TieredStopAtLevel=1', '-cp', curatorClasspath(), projectFile('test/peers/CuratorQueuePeer.java'), connect], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const pending = new Map<string, { resolve: (s: string) => void; reject: (e: Error) => void }>();
  let err = '';
  let out = '';
  let seq = 0;
  let ready: (() => void) | undefined;
  const exited = new Promise<void>((resolve) => proc.on('exit', () => resolve()));
  proc.stderr?.on('data', (b: Buffer) => (err += b.toString()));
  proc.stdout?.on('data', (b: Buffer) => {
    out += b.toString();
    let i: number;
    while ((i = out.indexOf('\n')) >= 0) {
      const line = out.slice(0, i);
      out = out.slice(i + 1);
      if (line === 'READY') ready?.();
      const m = /^(OK|ERR) (\S+) ?(.*)$/.exec(line);
      const p = m && pending.get(m[2] as string);
      if (!m || !p) continue;
      pending.delete(m[2] as string);
      if (m[1] === 'OK') p.resolve(m[3] as string);
      else p.reject(new Error(`curator ${m[2]}: ${m[3]}`));
    }
  });
  const peer: CuratorQueuePeer = {
    run(cmd, ...args) {
      const tag = `c${++seq}`;
      return new Promise((resolve, reject) => {
        pending.set(tag, { resolve, reject });
        proc.stdin?.write(`${[cmd, tag, ...args].join(' ')}\n`);
      });
    },
    async close() {
      proc.stdin?.end();
      const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    },
  };
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`curator peer: no READY within 60 s; stderr: ${err}`)), 60_000);
    ready = () => {
      clearTimeout(t);
      resolve(peer);
    };
    void exited.then(() => {
      clearTimeout(t);
      reject(new Error(`curator peer exited; stderr: ${err}`));
      for (const p of pending.values()) p.reject(new Error(`curator peer exited; stderr: ${err}`));
    });
  });
}
