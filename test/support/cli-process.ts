/**
 * The real `zkgate serve` as a child process, for tests where process behaviour is the point
 * (signals, exit codes, what it prints): a config file written from an object, the output
 * collected, the ports read from the "zkgate listening" line.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { projectFile } from '../../src/project-files.js';
import { spawnClean } from '../../src/zk/index.js';

export const CLI = projectFile('dist/src/cli/index.js');

export interface CliProcess {
  readonly proc: ChildProcess;
  /** Everything printed so far (stdout and stderr). */
  out(): string;
  /** Resolves with the exit code (or 128 + signal number) once the process has exited and its output was read. */
  readonly exited: Promise<number>;
  /** Resolves once the output matches `re`. @throws when the process exits first or after `timeoutMs` */
  waitFor(re: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
  /** SIGKILLs it if still running and removes its config dir. */
  kill(): Promise<void>;
}

export interface Listening extends CliProcess {
  readonly httpPort: number;
  readonly grpcPort: number;
  readonly base: string;
}

/** Starts `zkgate serve --http-port 0 --grpc-port 0 …args` with `config` (if given) as its config file. */
export function spawnServe(args: string[], config?: Record<string, unknown>, env: Record<string, string> = {}): CliProcess {
  const dir = mkdtempSync(join(tmpdir(), 'zkgate-cli-'));
  const configArgs: string[] = [];
  if (config) {
    writeFileSync(join(dir, 'zkgate.yaml'), stringify(config));
    configArgs.push('--config', join(dir, 'zkgate.yaml'));
  }
  const proc = spawnClean(process.execPath, [CLI, 'serve', '--http-port', '0', '--grpc-port', '0', ...configArgs, ...args], {
    env: { ...process.env, ZKGATE_CONFIG: '', ZKGATE_ZOOKEEPER: '', ZKGATE_LOG_LEVEL: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  const waiters = new Set<() => void>();
  const collect = (d: Buffer): void => {
    text += d.toString('utf8');
    for (const w of [...waiters]) w();
  };
  proc.stdout?.on('data', collect);
  proc.stderr?.on('data', collect);
  // 'close', not 'exit': the output must be read to the end before it is judged.
  const exited = new Promise<number>((resolve) => {
    proc.once('close', (code, signal) => {
      resolve(code ?? 128 + (signal === 'SIGKILL' ? 9 : signal === 'SIGINT' ? 2 : 15));
      for (const w of [...waiters]) w();
    });
  });
  let done = false;
  void exited.then(() => (done = true));
  const waitFor = (re: RegExp, timeoutMs = 30_000): Promise<RegExpExecArray> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        const m = re.exec(text);
        if (m) finish(() => resolve(m));
        else if (done || proc.exitCode !== null || proc.signalCode !== null) finish(() => reject(new Error(`zkgate exited before printing ${re}:\n${text}`)));
      };
      const t = setTimeout(() => finish(() => reject(new Error(`zkgate did not print ${re} within ${timeoutMs} ms:\n${text}`))), timeoutMs);
      const finish = (f: () => void): void => {
        clearTimeout(t);
        waiters.delete(check);
        f();
      };
      waiters.add(check);
      check();
    });
  const kill = async (): Promise<void> => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  };
  return { proc, out: () => text, exited, waitFor, kill };
}

/** Like `spawnServe`, resolving once the gateway listens. */
export async function serveListening(args: string[], config?: Record<string, unknown>, env?: Record<string, string>): Promise<Listening> {
  const p = spawnServe(args, config, env);
  try {
    // 60 s: with ZooKeeper down at boot the gateway waits 15 s for a session before it listens,
    // after building its transports, which took 10-15 s more at load 15 (CI beside benchmarks).
    const m = await p.waitFor(/"httpPort":(\d+),"grpcPort":(\d+)/, 60_000);
    const httpPort = Number(m[1]);
    return { ...p, httpPort, grpcPort: Number(m[2]), base: `http://127.0.0.1:${httpPort}` };
  } catch (err) {
    await p.kill();
    throw err;
  }
}

/** Resolves with the exit code, or with `null` when the process is still running after `ms`. */
export function exitWithin(p: CliProcess, ms: number): Promise<number | null> {
  return Promise.race([p.exited, new Promise<null>((r) => setTimeout(() => r(null), ms).unref())]);
}
