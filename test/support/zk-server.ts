/**
 * Real-ZooKeeper test harness: starts Debian's ZooKeeper 3.8 (`/usr/share/java/zookeeper.jar`)
 * as child JVMs on loopback — a standalone server or an N-member ensemble — each in its own
 * temporary directory, and offers the knobs integration tests need (stop/start, SIGSTOP/SIGCONT,
 * four-letter words, forced session expiry).
 *
 * Every JVM started here is SIGKILLed when the test process exits, however it exits:
 * - normal exit / uncaught exception: a synchronous `process.on('exit')` hook;
 * - SIGINT / SIGTERM / SIGHUP: a handler that kills the JVMs, then re-raises the signal;
 * - the test process itself SIGKILLed: a tiny detached `sh` watchdog per JVM notices within
 *   about a second that the test process is gone and kills the JVM and removes its temp dir.
 *
 * The JVMs are tuned to start fast and small (`-Xmx256m -XX:+UseSerialGC
 * -XX:TieredStopAtLevel=1`, no fsync), since many test files run servers in parallel on a
 * 2-core machine. ZooKeeper's own log (log4j, INFO) goes to `zookeeper.log` next to the
 * data dir and is only shown — its tail — in the error thrown when a start fails.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serverMode, tryFourLetter, type ZkMode } from './four-letter.js';

import { spawnClean } from '../../src/zk/spawn-clean.js';
export { spawnClean };
export { fourLetter, serverMode, parseMntr, tryFourLetter, type ZkMode } from './four-letter.js';

// ---------------------------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------------------------

/** One ZooKeeper server process (standalone or ensemble member) under the harness's control. */
export interface ZkServerHandle {
  /** The client port, bound on 127.0.0.1. Stays the same across {@link ZkServerHandle.stop}/{@link ZkServerHandle.start}. */
  readonly clientPort: number;
  /** `"127.0.0.1:PORT"` for this one server. */
  readonly connectString: string;
  /** ZooKeeper's `dataDir` (snapshots, txn logs, `myid`); kept across stop/start. */
  readonly dataDir: string;
  /** The file ZooKeeper's stdout/stderr (its log4j console output) is appended to. */
  readonly logFile: string;
  /** The ensemble member id (`myid`, 1-based), or 0 for a standalone server. */
  readonly serverId: number;
  /** The JVM's pid while it runs, else `undefined`. */
  readonly pid: number | undefined;
  /** Whether the JVM process is alive (it may be paused). */
  readonly running: boolean;
  /** Whether the JVM is currently SIGSTOPped by {@link ZkServerHandle.pause}. */
  readonly paused: boolean;
  /**
   * Stops the server: SIGTERM (after a SIGCONT if paused), waits for the JVM to exit, and
   * SIGKILLs it if it is still alive after 5 s. Resolves at once when not running.
   */
  stop(): Promise<void>;
  /** Stops the server abruptly (SIGKILL, like a crash) and waits for the JVM to exit. */
  kill(): Promise<void>;
  /**
   * (Re)starts the server with the same config, data dir and ports, and resolves when it
   * serves: it answers `ruok` with `imok` and `srvr` shows `Mode: standalone` (standalone)
   * or `Mode: leader|follower` (ensemble member — so this waits for it to (re)join a quorum).
   * Resolves at once when already running.
   * @throws Error (with the tail of the server log) when the JVM exits or does not get ready in time.
   */
  start(): Promise<void>;
  /** Freezes the JVM with SIGSTOP and returns once all its threads are stopped (clients see a silent server: timeouts, no RST). */
  pause(): void;
  /** Unfreezes a paused JVM with SIGCONT. */
  resume(): void;
  /** The server's current `srvr` mode, or `undefined` when down / paused / not serving. */
  mode(): Promise<ZkMode | undefined>;
}

/** A standalone server; {@link ZkStandalone.close} kills it and removes its temp directory. */
export type ZkStandalone = ZkServerHandle & {
  /** The temp directory holding config, data dir and log (removed by `close`). */
  readonly rootDir: string;
  /** Kills the server (SIGKILL — the data is thrown away anyway) and removes the temp dir. Idempotent. */
  close(): Promise<void>;
};

/** An N-member ensemble on loopback. */
export interface ZkEnsemble {
  /** The members, `members[i]` has `serverId` `i + 1`. */
  readonly members: readonly ZkServerHandle[];
  /** `"127.0.0.1:a,127.0.0.1:b,127.0.0.1:c"` — every member's client address. */
  readonly connectString: string;
  /** The temp directory holding every member's config, data dir and log (removed by `close`). */
  readonly rootDir: string;
  /**
   * Asks every running member `srvr` and returns the index (into `members`) of the one in
   * `Mode: leader`, polling until one is found (e.g. during a re-election).
   * @throws Error when no leader shows up within `timeoutMs`.
   */
  leaderIndex(timeoutMs?: number): Promise<number>;
  /** Kills all members and removes the temp directory. Idempotent. */
  close(): Promise<void>;
}

/** Options for {@link startZkServer} and {@link startZkEnsemble}. */
export interface ZkServerOptions {
  /**
   * ZooKeeper's `tickTime` in ms. Session timeouts are clamped to [2, 20] ticks, so the
   * default 500 allows sessions of 1–10 s. @defaultValue 500
   */
  readonly tickTimeMs?: number;
  /** How long a (re)start may take before it fails. @defaultValue 30000 */
  readonly startTimeoutMs?: number;
  /** log4j level of the server log file. @defaultValue "INFO" */
  readonly logLevel?: 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';
  /** Extra `zoo.cfg` lines (`key=value`), appended after the harness's own. */
  readonly extraConfig?: Readonly<Record<string, string | number | boolean>>;
  /**
   * Java system properties (`-Dkey=value`) for settings zoo.cfg does not carry, such as
   * `znode.container.checkIntervalMs` (how often the server deletes empty containers and
   * expired TTL nodes; 60000 by default).
   */
  readonly systemProperties?: Readonly<Record<string, string | number>>;
}

// ---------------------------------------------------------------------------------------------
// Process bookkeeping and exit safety
// ---------------------------------------------------------------------------------------------

const JAR = '/usr/share/java/zookeeper.jar';
const CONF_DIR = '/etc/zookeeper/conf';
/** Debian's zookeeper.jar only has slf4j-api on its Class-Path (= no log output); add a binding. */
const LOG_JARS = ['/usr/share/java/slf4j-log4j12.jar', '/usr/share/java/log4j-1.2.jar'];
const STOP_GRACE_MS = 5000;

const liveChildren = new Set<ChildProcess>();
const liveDirs = new Set<string>();
let exitHooksInstalled = false;

function killAllSync(): void {
  for (const child of liveChildren) {
    try {
      child.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
  liveChildren.clear();
  for (const dir of liveDirs) {
    try {
      rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
    } catch {
      /* best effort; the watchdog retries */
    }
  }
  liveDirs.clear();
}

/**
 * Returns once every thread of `pid` is stopped (at most 2 s, then throws). kill() only queues
 * SIGSTOP: the threads stop as each is next scheduled and sees it, and on this 2-core machine
 * that took 3.4 ms (median; p99 7 ms, max 8 ms, 300 pauses of a 25-thread server at load 3).
 * Meanwhile a thread woken by a request could still answer it: rest-nodes' "write in flight"
 * once got 200 for a set sent right after pause(), applied 3 ms after the create before it.
 * Without /proc (not Linux) it returns at once.
 */
function untilStopped(pid: number): void {
  const deadline = Date.now() + 2000;
  for (;;) {
    let tids: string[];
    try {
      tids = readdirSync(`/proc/${pid}/task`);
    } catch {
      return;
    }
    const running = tids.some((tid) => {
      try {
        const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
        return !'TtZX'.includes(stat.charAt(stat.lastIndexOf(')') + 2));
      } catch {
        return false; // the thread ended meanwhile
      }
    });
    if (!running) return;
    if (Date.now() > deadline) throw new Error(`ZooKeeper (pid ${pid}) not stopped 2 s after SIGSTOP`);
  }
}

function installExitHooks(): void {
  if (exitHooksInstalled) return;
  exitHooksInstalled = true;
  process.on('exit', killAllSync);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      killAllSync();
      process.removeListener(sig, onSignal);
      // Keep the default "die by this signal" behaviour unless someone else handles it.
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    };
    process.on(sig, onSignal);
  }
}

/**
 * Covers the one case the hooks cannot: this process being SIGKILLed. Polls once a second;
 * exits quietly as soon as the JVM is gone, kills it (and removes its dir) if we are gone.
 */
const WATCHDOG = [
  'parent=$1; jvm=$2; dir=$3',
  'while kill -0 "$parent" 2>/dev/null; do',
  '  kill -0 "$jvm" 2>/dev/null || exit 0',
  '  sleep 1',
  'done',
  'kill -CONT "$jvm" 2>/dev/null; kill -KILL "$jvm" 2>/dev/null',
  'sleep 0.2; rm -rf "$dir"',
].join('\n');

function startWatchdog(jvmPid: number, dir: string): void {
  try {
    const w = spawnClean('/bin/sh', ['-c', WATCHDOG, 'zk-harness-watchdog', String(process.pid), String(jvmPid), dir], {
      detached: true,
      stdio: ['ignore', 'ignore', 'ignore'],
    });
    w.on('error', () => undefined);
    w.unref();
  } catch {
    /* no /bin/sh: the exit hooks still cover everything but SIGKILL */
  }
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Ports below the kernel's ephemeral range (net.ipv4.ip_local_port_range, 32768–60999 here):
 * a port the kernel picked for `listen(0)` and that we released could be taken again by any
 * outgoing connection (a ZooKeeper client, an HTTP agent) before the server meant for it binds
 * it, which made a test fail with EADDRINUSE now and then. Outgoing connections never take a
 * port in this range, and a port handed out once is not handed out again by this process.
 */
const PORT_RANGE = { from: 20_000, to: 32_000 } as const;
const handedOut = new Set<number>();

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** Picks `n` distinct free TCP ports on 127.0.0.1, outside the ephemeral range (see PORT_RANGE). */
export async function freePorts(n: number): Promise<number[]> {
  const ports: number[] = [];
  for (let tries = 0; ports.length < n; tries++) {
    if (tries > 10_000) throw new Error(`freePorts: no ${n} free ports in ${PORT_RANGE.from}-${PORT_RANGE.to}`);
    const port = PORT_RANGE.from + Math.floor(Math.random() * (PORT_RANGE.to - PORT_RANGE.from));
    if (handedOut.has(port) || !(await bindable(port))) continue;
    handedOut.add(port);
    ports.push(port);
  }
  return ports;
}

function logTail(file: string, lines = 40): string {
  try {
    const all = readFileSync(file, 'utf8').split('\n');
    return all.slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

function cfgText(lines: Record<string, string | number | boolean>): string {
  return (
    Object.entries(lines)
      .map(([k, v]) => `${k}=${String(v)}`)
      .join('\n') + '\n'
  );
}

function isPortClash(log: string): boolean {
  return /Address already in use|BindException/.test(log);
}

// ---------------------------------------------------------------------------------------------
// One server process
// ---------------------------------------------------------------------------------------------

interface NodeSpec {
  readonly serverId: number; // 0 = standalone
  readonly clientPort: number;
  readonly baseDir: string; // cfg + log + data live here
  readonly rootDir: string; // what the watchdog removes
  readonly cfg: Record<string, string | number | boolean>;
  readonly logLevel: string;
  readonly startTimeoutMs: number;
  readonly systemProperties: Readonly<Record<string, string | number>>;
}

class ZkNode implements ZkServerHandle {
  readonly clientPort: number;
  readonly connectString: string;
  readonly dataDir: string;
  readonly logFile: string;
  readonly serverId: number;
  private readonly cfgFile: string;
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private isPaused = false;
  private starting: Promise<void> | undefined;

  constructor(private readonly spec: NodeSpec) {
    this.clientPort = spec.clientPort;
    this.connectString = `127.0.0.1:${spec.clientPort}`;
    this.serverId = spec.serverId;
    this.dataDir = join(spec.baseDir, 'data');
    this.logFile = join(spec.baseDir, 'zookeeper.log');
    this.cfgFile = join(spec.baseDir, 'zoo.cfg');
  }

  get pid(): number | undefined {
    return this.running ? this.child?.pid : undefined;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  get paused(): boolean {
    return this.running && this.isPaused;
  }

  /** Writes cfg (and myid); called once before the first start. */
  async prepare(): Promise<void> {
    await mkdir(this.dataDir, { recursive: true });
    if (this.serverId > 0) await writeFile(join(this.dataDir, 'myid'), `${this.serverId}\n`);
    await writeFile(this.cfgFile, cfgText({ ...this.spec.cfg, dataDir: this.dataDir }));
  }

  start(): Promise<void> {
    if (this.starting) return this.starting;
    if (this.running) return Promise.resolve();
    this.starting = this.doStart().finally(() => {
      this.starting = undefined;
    });
    return this.starting;
  }

  private async doStart(): Promise<void> {
    installExitHooks();
    const logFd = openSync(this.logFile, 'a');
    const cp = [CONF_DIR, JAR, ...LOG_JARS.filter((j) => existsSync(j))].join(':');
    let child: ChildProcess;
    try {
      child = spawnClean(
        'java',
        [
          '-Xmx256m',
          '-Xms32m',
          '-XX:+UseSerialGC',
          '-XX:TieredStopAtLevel=1',
          '-XX:-UsePerfData',
          '-Djava.net.preferIPv4Stack=true',
          '-Dzookeeper.extendedTypesEnabled=true',
          '-Dzookeeper.admin.enableServer=false',
          '-Dzookeeper.forceSync=no',
          '-Dzookeeper.preAllocSize=1024',
          '-Dzookeeper.snapshot.trust.empty=true',
          '-Dzookeeper.jmx.log4j.disable=true',
          `-Dzookeeper.log.dir=${this.spec.baseDir}`,
          `-Dzookeeper.root.logger=${this.spec.logLevel},CONSOLE`,
          ...Object.entries(this.spec.systemProperties).map(([k, v]) => `-D${k}=${v}`),
          '-cp',
          cp,
          'org.apache.zookeeper.server.quorum.QuorumPeerMain',
          this.cfgFile,
        ],
        { stdio: ['ignore', logFd, logFd] },
      );
    } finally {
      closeSync(logFd);
    }
    this.child = child;
    this.isPaused = false;
    let spawnError: Error | undefined;
    this.exited = new Promise<void>((resolve) => {
      child.once('exit', () => {
        liveChildren.delete(child);
        resolve();
      });
      child.once('error', (e: Error) => {
        spawnError = e;
        liveChildren.delete(child);
        resolve();
      });
    });
    if (child.pid !== undefined) {
      liveChildren.add(child);
      startWatchdog(child.pid, this.spec.rootDir);
    }

    const want: readonly ZkMode[] = this.serverId > 0 ? ['leader', 'follower'] : ['standalone'];
    const deadline = Date.now() + this.spec.startTimeoutMs;
    for (;;) {
      if (spawnError || child.exitCode !== null || child.signalCode !== null) {
        await this.exited;
        throw this.startError(
          spawnError
            ? `could not run java: ${spawnError.message}`
            : `JVM exited during start (code ${String(child.exitCode)}, signal ${String(child.signalCode)})`,
        );
      }
      if ((await tryFourLetter(this.clientPort, 'ruok', 1000)) === 'imok') {
        const mode = await serverMode(this.clientPort, 1000);
        if (mode && want.includes(mode)) return;
      }
      if (Date.now() > deadline) {
        await this.kill();
        throw this.startError(`not serving within ${this.spec.startTimeoutMs} ms`);
      }
      await sleep(100);
    }
  }

  private startError(what: string): Error {
    const name = this.serverId > 0 ? `ensemble member ${this.serverId}` : 'standalone server';
    return new Error(
      `ZooKeeper ${name} on port ${this.clientPort}: ${what}\n--- tail of ${this.logFile} ---\n${logTail(this.logFile)}`,
    );
  }

  async stop(): Promise<void> {
    await this.terminate('SIGTERM');
  }

  async kill(): Promise<void> {
    await this.terminate('SIGKILL');
  }

  private async terminate(signal: 'SIGTERM' | 'SIGKILL'): Promise<void> {
    const child = this.child;
    if (!child || !this.running) {
      await this.exited;
      return;
    }
    if (this.isPaused) child.kill('SIGCONT');
    this.isPaused = false;
    child.kill(signal);
    if (signal !== 'SIGKILL') {
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([
        this.exited.then(() => false),
        new Promise<boolean>((r) => (timer = setTimeout(() => r(true), STOP_GRACE_MS))),
      ]);
      clearTimeout(timer);
      if (timedOut && this.running) child.kill('SIGKILL');
    }
    await this.exited;
  }

  pause(): void {
    if (!this.child || !this.running) throw new Error(`ZooKeeper on port ${this.clientPort} is not running`);
    this.child.kill('SIGSTOP');
    this.isPaused = true;
    if (this.child.pid !== undefined) untilStopped(this.child.pid);
  }

  resume(): void {
    if (!this.child || !this.running) throw new Error(`ZooKeeper on port ${this.clientPort} is not running`);
    this.child.kill('SIGCONT');
    this.isPaused = false;
  }

  mode(): Promise<ZkMode | undefined> {
    return this.running && !this.isPaused ? serverMode(this.clientPort, 1000) : Promise.resolve(undefined);
  }
}

// ---------------------------------------------------------------------------------------------
// Standalone and ensemble
// ---------------------------------------------------------------------------------------------

const BASE_CFG = {
  initLimit: 10,
  syncLimit: 5,
  clientPortAddress: '127.0.0.1',
  'admin.enableServer': false,
  '4lw.commands.whitelist': '*',
  maxClientCnxns: 0,
} as const;

function baseCfg(opts: ZkServerOptions, clientPort: number): Record<string, string | number | boolean> {
  return { tickTime: opts.tickTimeMs ?? 500, ...BASE_CFG, clientPort };
}

const START_ATTEMPTS = 3;

/**
 * Starts a standalone ZooKeeper server on a free port of 127.0.0.1 in a fresh temp directory,
 * and resolves once it serves (`ruok` → `imok`, `srvr` → `Mode: standalone`).
 * Retries with new ports if another process grabbed the chosen one meanwhile.
 *
 * @example
 * ```ts
 * const zk = await startZkServer();
 * after(() => zk.close());
 * // connect clients to zk.connectString
 * ```
 * @throws Error with the tail of the server log when the server does not come up.
 */
export async function startZkServer(opts: ZkServerOptions = {}): Promise<ZkStandalone> {
  for (let attempt = 1; ; attempt++) {
    const rootDir = await mkdtemp(join(tmpdir(), 'zkgate-zk-'));
    liveDirs.add(rootDir);
    const [clientPort] = await freePorts(1);
    const node = new ZkNode({
      serverId: 0,
      clientPort: clientPort as number,
      baseDir: rootDir,
      rootDir,
      cfg: { ...baseCfg(opts, clientPort as number), ...opts.extraConfig },
      logLevel: opts.logLevel ?? 'INFO',
      startTimeoutMs: opts.startTimeoutMs ?? 30_000,
      systemProperties: opts.systemProperties ?? {},
    });
    let closing: Promise<void> | undefined;
    const close = (): Promise<void> =>
      (closing ??= (async () => {
        await node.kill();
        await rm(rootDir, { recursive: true, force: true, maxRetries: 3 });
        liveDirs.delete(rootDir);
      })());
    try {
      await node.prepare();
      await node.start();
    } catch (e) {
      const clash = isPortClash(logTail(node.logFile, 200));
      await close();
      if (clash && attempt < START_ATTEMPTS) continue;
      throw e;
    }
    return Object.assign(node, { rootDir, close }) as ZkStandalone;
  }
}

/**
 * Starts an ensemble of `size` ZooKeeper servers on loopback (ids 1..size, every port picked
 * free up front), each with its own data dir under one temp directory, and resolves once every
 * member serves as leader or follower. Uses `standaloneEnabled=false`, so even `size = 1` runs
 * in quorum mode (as a leader).
 *
 * @throws Error with the tail of a failing member's log when the ensemble does not come up.
 */
export async function startZkEnsemble(size = 3, opts: ZkServerOptions = {}): Promise<ZkEnsemble> {
  if (!Number.isInteger(size) || size < 1) throw new Error(`startZkEnsemble: bad size ${size}`);
  for (let attempt = 1; ; attempt++) {
    const rootDir = await mkdtemp(join(tmpdir(), 'zkgate-zkens-'));
    liveDirs.add(rootDir);
    const ports = await freePorts(3 * size);
    const servers: Record<string, string> = {};
    for (let i = 0; i < size; i++) {
      servers[`server.${i + 1}`] = `127.0.0.1:${ports[3 * i + 1] as number}:${ports[3 * i + 2] as number}`;
    }
    const members = Array.from({ length: size }, (_, i) => {
      const clientPort = ports[3 * i] as number;
      return new ZkNode({
        serverId: i + 1,
        clientPort,
        baseDir: join(rootDir, `m${i + 1}`),
        rootDir,
        cfg: {
          ...baseCfg(opts, clientPort),
          standaloneEnabled: false,
          quorumListenOnAllIPs: false,
          reconfigEnabled: false,
          ...servers,
          ...opts.extraConfig,
        },
        logLevel: opts.logLevel ?? 'INFO',
        startTimeoutMs: opts.startTimeoutMs ?? 45_000,
        systemProperties: opts.systemProperties ?? {},
      });
    });
    let closing: Promise<void> | undefined;
    const close = (): Promise<void> =>
      (closing ??= (async () => {
        await Promise.all(members.map((m) => m.kill()));
        await rm(rootDir, { recursive: true, force: true, maxRetries: 3 });
        liveDirs.delete(rootDir);
      })());
    const ensemble: ZkEnsemble = {
      members,
      rootDir,
      connectString: members.map((m) => m.connectString).join(','),
      close,
      async leaderIndex(timeoutMs = 15_000): Promise<number> {
        const deadline = Date.now() + timeoutMs;
        for (;;) {
          const modes = await Promise.all(members.map((m) => m.mode()));
          const idx = modes.indexOf('leader');
          if (idx >= 0) return idx;
          if (Date.now() > deadline) {
            throw new Error(`no ZooKeeper leader within ${timeoutMs} ms (modes: ${modes.map(String).join(', ')})`);
          }
          await sleep(100);
        }
      },
    };
    try {
      await Promise.all(members.map((m) => m.prepare()));
      const results = await Promise.allSettled(members.map((m) => m.start()));
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
    } catch (e) {
      const clash = members.some((m) => isPortClash(logTail(m.logFile, 200)));
      await close();
      if (clash && attempt < START_ATTEMPTS) continue;
      throw e;
    }
    return ensemble;
  }
}

// ---------------------------------------------------------------------------------------------
// Sessions
// ---------------------------------------------------------------------------------------------

function parseConnectString(connectString: string): { host: string; port: number }[] {
  const hosts = connectString.split('/')[0] ?? '';
  return hosts
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map((s) => {
      const colon = s.lastIndexOf(':');
      const host = colon > 0 ? s.slice(0, colon) : s;
      const port = colon > 0 ? Number(s.slice(colon + 1)) : 2181;
      return { host: host === 'localhost' ? '127.0.0.1' : host, port };
    });
}

function toSessionId(hex: string): bigint {
  const clean = hex.trim().toLowerCase().replace(/^0x/, '');
  if (!/^[0-9a-f]{1,16}$/.test(clean)) throw new Error(`not a session id: "${hex}"`);
  return BigInt(`0x${clean}`);
}

/** The session ids of the `SessionTracker dump:` section of a `dump` answer. */
function trackedSessions(dump: string): Set<bigint> | undefined {
  const start = dump.indexOf('SessionTracker dump:');
  if (start < 0) return undefined;
  const end = dump.indexOf('ephemeral nodes dump:', start);
  const section = dump.slice(start, end < 0 ? undefined : end);
  const ids = new Set<bigint>();
  for (const m of section.matchAll(/\b0x([0-9a-f]{1,16})\b/gi)) ids.add(BigInt(`0x${m[1] as string}`));
  return ids;
}

/**
 * Whether ZooKeeper still knows the session `sessionIdHex` (the npm client's `client_id`:
 * lowercase hex without `0x`; a `0x` prefix is accepted too).
 *
 * Authoritative when a standalone server or the ensemble leader is reachable: its `dump`
 * lists every live session in the session tracker, connected or not. Otherwise falls back to
 * `cons` on every server, which only sees sessions that currently have a connection.
 *
 * A "false" can be wrong: it was seen for a live session (the gateway's, connected and busy)
 * in loaded contract runs, and twice in 19,254 calls on a connected session sending requests
 * back to back (load 9). Not pinned down; a candidate is that `dump` prints the sessions
 * without the tracker's lock from a copy of its expiry-bucket keys (ExpiryQueue.dump), so a
 * session touched into a new bucket meanwhile is left out. A "true" is dependable.
 */
export async function sessionExists(connectString: string, sessionIdHex: string): Promise<boolean> {
  const id = toSessionId(sessionIdHex);
  const servers = parseConnectString(connectString);
  const modes = await Promise.all(servers.map((s) => serverMode(s.port, 1000, s.host)));
  for (let i = 0; i < servers.length; i++) {
    const mode = modes[i];
    const s = servers[i];
    if (!s || (mode !== 'standalone' && mode !== 'leader')) continue;
    const tracked = trackedSessions(await tryFourLetter(s.port, 'dump', 3000, s.host));
    if (tracked) return tracked.has(id);
  }
  const answers = await Promise.all(servers.map((s) => tryFourLetter(s.port, 'cons', 3000, s.host)));
  return answers.some((a) => [...a.matchAll(/sid=0x([0-9a-f]+)/gi)].some((m) => BigInt(`0x${m[1] as string}`) === id));
}

/** The part of the `zookeeper` npm package's handle used here. */
interface NpmZkHandle {
  once(event: 'connect' | 'close', listener: () => void): this;
  init(config: object): NpmZkHandle;
  close(): void;
}
interface NpmZkConfig {
  connect: string;
  timeout: number;
  debug_level: number;
  host_order_deterministic?: boolean;
  client_id?: string;
  client_password?: string;
}
type NpmZkCtor = new (config: NpmZkConfig) => NpmZkHandle;

let npmZk: NpmZkCtor | undefined;
function loadNpmZk(): NpmZkCtor {
  npmZk ??= createRequire(import.meta.url)('zookeeper') as NpmZkCtor;
  return npmZk;
}

/**
 * Connects a second handle to the session and closes it. Resolves `true` when the handle
 * connected (and sent closeSession), `false` when the server already reported the session
 * expired.
 */
function hijackAndClose(connectString: string, sessionIdHex: string, passwordHex: string, timeoutMs: number): Promise<boolean> {
  const ZooKeeper = loadNpmZk();
  return new Promise<boolean>((resolve, reject) => {
    const zk = new ZooKeeper({
      connect: connectString,
      timeout: 4000,
      debug_level: 0,
      client_id: sessionIdHex.toLowerCase().replace(/^0x/, ''),
      client_password: passwordHex,
    });
    let done = false;
    const finish = (connected: boolean | Error): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      try {
        zk.close();
      } catch {
        /* already closed */
      }
      if (connected instanceof Error) reject(connected);
      else resolve(connected);
    };
    const timer = setTimeout(
      () => finish(new Error(`expireSession: second handle did not connect within ${timeoutMs} ms`)),
      timeoutMs,
    );
    zk.once('connect', () => finish(true));
    zk.once('close', () => finish(false));
    zk.init({});
  });
}

/**
 * Forces expiry of a live ZooKeeper session (the dependable way, not by waiting): connects a
 * second handle with the same session id and password — the server moves the session to it
 * and drops the original connection — then closes that handle, which ends the session. The
 * original handle, on reconnecting, is told the session expired (`'close'` event with the
 * npm client) and is dead.
 *
 * Race: if the original handle reconnects between the second handle's connect and close (the
 * patched C client reconnects within milliseconds), the session moves back and survives. So
 * this repeats until ZooKeeper itself answers a handle's connect with "session expired" — the
 * only authoritative proof. {@link sessionExists} is not: under load it answered "gone" for a
 * live session (see there); that returned here while the original handle held the session,
 * whose lease then rightly never ended (contract/zookeeper.test "session expiry").
 *
 * @param connectString - servers to connect to (e.g. `zk.connectString`).
 * @param sessionIdHex - the session id, as the npm client's `client_id` (hex, no `0x`).
 * @param passwordHex - the session password, as the npm client's `client_password` (hex).
 * @throws Error when the session was still accepted after all attempts.
 */
export async function expireSession(
  connectString: string,
  sessionIdHex: string,
  passwordHex: string,
  opts: { attempts?: number; connectTimeoutMs?: number } = {},
): Promise<void> {
  const attempts = opts.attempts ?? 10;
  for (let i = 0; i < attempts; i++) {
    // false: the server refused the session as expired.
    if (!(await hijackAndClose(connectString, sessionIdHex, passwordHex, opts.connectTimeoutMs ?? 10_000))) return;
    // Let the closeSession just sent commit before asking again (a connect that overtakes it
    // would move the session once more; harmless, the next round closes it).
    await sleep(100);
  }
  throw new Error(`expireSession: session 0x${sessionIdHex} still accepted after ${attempts} attempts`);
}

/** Sends `ruok` and tells whether the answer is `imok`. */
export async function isOk(port: number, timeoutMs = 1000): Promise<boolean> {
  return (await tryFourLetter(port, 'ruok', timeoutMs)) === 'imok';
}
