/**
 * The embedded default: with no ensemble configured, zkgate starts a standalone ZooKeeper server
 * from Debian's `zookeeper` package as a child process on loopback and stops it on shutdown.
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { spawnClean } from './spawn-clean.js';
import { existsSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import { createServer, connect as tcpConnect } from 'node:net';
import { join, resolve } from 'node:path';

export interface EmbeddedOptions {
  /** Folder for ZooKeeper's data and log. */
  readonly dataDir: string;
  /** Client port; 0 picks a free one. */
  readonly port: number;
  /** ZooKeeper's tickTime, ms (sessions may last 2–20 ticks). @defaultValue 1000 */
  readonly tickTimeMs?: number;
  /** Where Debian puts the server jar. @defaultValue /usr/share/java/zookeeper.jar */
  readonly jar?: string;
}

export interface EmbeddedZooKeeper {
  readonly connectString: string;
  readonly port: number;
  readonly pid: number;
  stop(): Promise<void>;
}

/** Thrown when Java or the ZooKeeper package is missing; its message is the one line to print. */
export class EmbeddedUnavailableError extends Error {
  override readonly name = 'EmbeddedUnavailableError';
}

/** Picks a free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => res(port));
    });
  });
}

/** Sends a four-letter word and resolves with the whole answer. */
export function fourLetterWord(port: number, word: string, timeoutMs = 2000): Promise<string> {
  return new Promise((res, rej) => {
    const sock = tcpConnect({ host: '127.0.0.1', port });
    let out = '';
    const timer = setTimeout(() => sock.destroy(new Error(`${word}: no answer in ${timeoutMs} ms`)), timeoutMs);
    sock.on('connect', () => sock.write(word));
    sock.on('data', (d) => (out += d.toString('utf8')));
    sock.on('close', () => {
      clearTimeout(timer);
      res(out);
    });
    sock.on('error', (e) => {
      clearTimeout(timer);
      rej(e);
    });
  });
}

async function waitReady(port: number, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`embedded zookeeper exited with code ${child.exitCode}`);
    const answer = await fourLetterWord(port, 'ruok', 500).catch(() => '');
    if (answer === 'imok') return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`embedded zookeeper not ready on port ${port} after ${timeoutMs} ms`);
}

/**
 * Starts the server and resolves once it answers `ruok`.
 * @throws EmbeddedUnavailableError when `java` or the zookeeper jar is missing.
 */
export async function startEmbeddedZooKeeper(opts: EmbeddedOptions): Promise<EmbeddedZooKeeper> {
  const jar = opts.jar ?? '/usr/share/java/zookeeper.jar';
  const java = spawnSync('java', ['-version'], { stdio: 'ignore' });
  if (java.error || java.status !== 0 || !existsSync(jar)) {
    throw new EmbeddedUnavailableError(
      'zkgate: no ZooKeeper configured and the embedded one needs Java and Debian\'s zookeeper package: ' +
        'run `apt-get install -y zookeeper` (or set ZKGATE_ZOOKEEPER=host:port)',
    );
  }
  const dataDir = resolve(opts.dataDir);
  mkdirSync(join(dataDir, 'data'), { recursive: true });
  const port = opts.port || (await freePort());
  const cfg = join(dataDir, 'zoo.cfg');
  writeFileSync(
    cfg,
    [
      `tickTime=${opts.tickTimeMs ?? 1000}`,
      `dataDir=${join(dataDir, 'data')}`,
      `clientPort=${port}`,
      'clientPortAddress=127.0.0.1',
      'admin.enableServer=false',
      '4lw.commands.whitelist=ruok,srvr,mntr,wchs,wchc,cons',
      'maxClientCnxns=0',
      '',
    ].join('\n'),
  );
  const log = openSync(join(dataDir, 'zookeeper.log'), 'a');
  const child = spawnClean(
    'java',
    [
      '-Xmx256m',
      '-Dzookeeper.extendedTypesEnabled=true',
      '-cp',
      `/etc/zookeeper/conf:${jar}`,
      'org.apache.zookeeper.server.quorum.QuorumPeerMain',
      cfg,
    ],
    { stdio: ['ignore', log, log] },
  );
  const kill = (): void => {
    if (child.exitCode === null) child.kill('SIGKILL');
  };
  process.once('exit', kill);
  try {
    await waitReady(port, child, 30_000);
  } catch (err) {
    kill();
    throw err;
  }
  return {
    connectString: `127.0.0.1:${port}`,
    port,
    pid: child.pid ?? 0,
    stop: () =>
      new Promise<void>((res) => {
        process.off('exit', kill);
        if (child.exitCode !== null) return res();
        const t = setTimeout(kill, 5000);
        child.once('exit', () => {
          clearTimeout(t);
          res();
        });
        child.kill('SIGTERM');
      }),
  };
}
