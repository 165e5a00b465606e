/**
 * The deployment users copy (docs/cluster.md "Deployment to copy"), started without Docker from
 * the shipped files themselves: each gateway's command and environment come from
 * compose.cluster.yaml's services and the balancer's config is deploy/haproxy.cfg, so a change to
 * either file changes what the topology test and the cluster bench run. Only what must differ on
 * one machine's loopback is rewritten:
 *
 * - every `service:port` address of the compose network (zkgate1:7070, zk1:2181, …) becomes
 *   127.0.0.1 and a free port (the ZooKeeper services are the test ensemble's members, by ZOO_MY_ID);
 * - a gateway's own ports (HTTP 8080, gRPC 9090, ZKGATE_CLUSTER_PORT) become free ports and its
 *   `--bind 0.0.0.0` becomes 127.0.0.1 (the containers each had an address of their own);
 * - haproxy's `bind :PORT` lines listen on 127.0.0.1 and free ports, its `server` addresses and
 *   `check port`s are the gateways' mapped ports;
 * - `${ZKGATE_CLUSTER_SECRET:?…}` is interpolated from a test value, as `docker compose` would
 *   from the shell; a file the service mounts from the repository (deploy/zkgate.yaml, named by
 *   ZKGATE_CONFIG) is read where it is.
 *
 * Added for tests only: `ZKGATE_LOG_LEVEL=warn` unless the compose file sets it (nothing reads
 * the access log here). A graceful restart waits the service's `stop_grace_period` for the exit,
 * then SIGKILLs as Docker does (counted in `graceKills`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { execFile } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { validateConfig } from '../../src/config/schema.js';
import { projectFile } from '../../src/project-files.js';
import { spawnServe, type CliProcess } from './cli-process.js';
import { freePorts, startZkEnsemble, type ZkEnsemble } from './zk-server.js';

export const CLUSTER_SECRET = 'topology-test-secret-0123456789abcdef';
/**
 * TOPOLOGY_LOG_DIR=<dir>: to look into a failure, every gateway process's output (at log level
 * info) and haproxy's log of every request (termination state, retries, timings) are kept there.
 */
const LOG_DIR = process.env.TOPOLOGY_LOG_DIR || '';
/** The shell environment `docker compose` interpolates the compose file from. */
const COMPOSE_SHELL: Readonly<Record<string, string>> = { ZKGATE_CLUSTER_SECRET: CLUSTER_SECRET };

export interface Topology {
  readonly zk: ZkEnsemble;
  /** The balancer's REST/WebSocket base URL (haproxy's plain HTTP frontend). */
  readonly lb: string;
  /** With `singleBackend`: the same haproxy and backend settings with the first gateway (or `singleServer`'s) alone. */
  readonly lbSingle: string | null;
  /** The balancer's gRPC port (haproxy's `proto h2` frontend), on 127.0.0.1. */
  readonly lbGrpcPort: number;
  /** Each gateway's own base URL (index = instance number - 1). */
  readonly direct: readonly string[];
  /** Each gateway's own gRPC port. */
  readonly directGrpcPorts: readonly number[];
  /** The gateways' instance ids (ZKGATE_INSTANCE_ID of each compose service). */
  readonly ids: readonly string[];
  /** Restarts that outlasted the service's `stop_grace_period` and were SIGKILLed, as Docker does. */
  readonly graceKills: number;
  /** SIGTERM (graceful: hands its leases over) and start again on the same ports. */
  restart(i: number): Promise<void>;
  /** SIGKILL, not started again. */
  kill(i: number): Promise<void>;
  /** Environment added to every gateway's own from its next start on (a setting to compare: the bench restarts them). */
  setGatewayEnv(env: Readonly<Record<string, string>>): void;
  /** haproxy's process id (the bench reads its CPU time). */
  readonly haproxyPid: number | undefined;
  /** The end of what haproxy printed (server state changes, alerts). */
  haproxyLog(): string;
  /** The gateway's process (to SIGSTOP / SIGCONT it), while it runs. */
  process(i: number): ChildProcess | undefined;
  close(): Promise<void>;
}

interface ComposeService {
  hostname?: string;
  command?: string[];
  environment?: Record<string, string | number>;
  healthcheck?: { test: string[]; retries?: number };
  stop_grace_period?: string;
  ports?: string[];
  volumes?: string[];
}

/** Compose's `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`, `${VAR?error}` and `$$`. */
export function interpolate(text: string, shell: Readonly<Record<string, string>>): string {
  return text.replace(/\$\$|\$\{(\w+)(?:(:?)([-?])((?:[^}])*))?\}/g, (all, name: string | undefined, colon: string, op: string, arg: string) => {
    if (all === '$$') return '$';
    const v = shell[name as string];
    const unset = v === undefined || (colon === ':' && v === '');
    if (!unset) return v as string;
    if (op === '-') return arg;
    if (op === '?') throw new Error(`compose: ${name}: ${arg}`);
    throw new Error(`compose: ${name} is not set (the test gives no value for it)`);
  });
}

/** `30s`, `1m30s`, `500ms` → ms (compose durations). */
function durationMs(d: string | undefined, fallback: number): number {
  if (d === undefined) return fallback;
  const unit: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 0.001 };
  let ms = 0;
  for (const m of d.matchAll(/(\d+(?:\.\d+)?)(ms|us|h|m|s)/g)) ms += Number(m[1]) * (unit[m[2] as string] as number);
  if (ms === 0) throw new Error(`compose: cannot read the duration ${d}`);
  return ms;
}

/** What a `zkgate serve` service of compose.cluster.yaml runs, mapped to loopback. */
interface Gateway {
  readonly service: string;
  readonly id: string;
  readonly args: string[];
  readonly env: Record<string, string>;
  readonly httpPort: number;
  readonly grpcPort: number;
  readonly healthcheck: string[] | undefined;
  /** How many failed checks in a row make the service unhealthy (compose's `retries`, Docker's default 3). */
  readonly healthcheckRetries: number;
  readonly graceMs: number;
}

export interface TopologyOptions {
  /** haproxy opens a server connection per request (`option http-server-close`, the setting before 2026-12-01) instead of the deployed `http-reuse safe`. */
  readonly serverClose?: boolean;
  /** Also a frontend whose backend is the HTTP one with the first gateway alone (`lbSingle`). */
  readonly singleBackend?: boolean;
  /** With `singleBackend`: which gateway is alone behind it, by instance id (default the first server). */
  readonly singleServer?: (ids: readonly string[]) => string;
  /** Environment added to every gateway's own (see `setGatewayEnv`). */
  readonly gatewayEnv?: Readonly<Record<string, string>>;
}

/** Reads compose.cluster.yaml and deploy/haproxy.cfg and maps them to loopback (see the module comment). */
async function plan(zk: ZkEnsemble, opts: TopologyOptions): Promise<{ gateways: Gateway[]; haproxyCfg: string; lbPort: number; lbGrpcPort: number; lbSinglePort: number }> {
  // Compose interpolates the values (not comments or keys) from the shell's environment.
  const values = (v: unknown): unknown =>
    typeof v === 'string' ? interpolate(v, COMPOSE_SHELL) : Array.isArray(v) ? v.map(values) : v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, values(x)])) : v;
  const compose = parseYaml(readFileSync(projectFile('compose.cluster.yaml'), 'utf8'), { merge: true }) as unknown;
  const services = (values(compose) as { services: Record<string, ComposeService> }).services;
  const env = (s: ComposeService): Record<string, string> => Object.fromEntries(Object.entries(s.environment ?? {}).map(([k, v]) => [k, String(v)]));
  const defaults = validateConfig({});
  /** `host:port` on the compose network → `127.0.0.1:port` here; a service answers to its name and its hostname. */
  const address = new Map<string, string>();
  const names = (name: string, s: ComposeService): string[] => [name, ...(s.hostname && s.hostname !== name ? [s.hostname] : [])];

  // ZooKeeper: `server.N=host:peer:election;clientPort` in ZOO_SERVERS names each member's client address.
  const zkNames = Object.entries(services).filter(([, s]) => env(s).ZOO_MY_ID !== undefined);
  if (zkNames.length !== zk.members.length) throw new Error(`compose: ${zkNames.length} ZooKeeper services, the test ensemble has ${zk.members.length}`);
  for (const [name, s] of zkNames) {
    const e = env(s);
    const me = Number(e.ZOO_MY_ID);
    const entry = new RegExp(`server\\.${me}=[^:]+:\\d+:\\d+;(?:[^:\\s]+:)?(\\d+)`).exec(e.ZOO_SERVERS ?? '');
    const member = zk.members[me - 1];
    if (!entry || !member) throw new Error(`compose: ${name}: no client port for server.${me} in ZOO_SERVERS`);
    for (const n of names(name, s)) address.set(`${n}:${entry[1]}`, member.connectString);
  }

  // Gateways: the services that run `zkgate serve`.
  const gwNames = Object.entries(services).filter(([, s]) => s.command?.[0] === 'serve');
  const hostPorts = await freePorts(3 * gwNames.length + 3);
  const own = new Map<string, Map<number, number>>();
  const drafts = gwNames.map(([name, s], i) => {
    const e = env(s);
    const flag = (f: string): string | undefined => {
      const k = s.command?.indexOf(f) ?? -1;
      return k >= 0 ? s.command?.[k + 1] : undefined;
    };
    const http = Number(flag('--http-port') ?? e.ZKGATE_HTTP_PORT ?? defaults.http.port);
    const grpc = Number(flag('--grpc-port') ?? e.ZKGATE_GRPC_PORT ?? defaults.grpc.port);
    const cluster = Number(e.ZKGATE_CLUSTER_PORT);
    if (!cluster) throw new Error(`compose: ${name} sets no ZKGATE_CLUSTER_PORT: its advertised address could not name a fixed port`);
    const ports = new Map([
      [http, hostPorts[3 * i] as number],
      [grpc, hostPorts[3 * i + 1] as number],
      [cluster, hostPorts[3 * i + 2] as number],
    ]);
    own.set(name, ports);
    for (const n of names(name, s)) for (const [c, h] of ports) address.set(`${n}:${c}`, `127.0.0.1:${h}`);
    return { name, s, e, ports, http, grpc };
  });
  const hostNames = new Set(Object.entries(services).flatMap(([n, s]) => names(n, s)));
  /** Rewrites every compose-network address in `v`; a service name left over is an address this mapping does not know. */
  const rewrite = (v: string, where: string): string => {
    const out = v.replace(/([A-Za-z0-9_.-]+):(\d+)/g, (m, h: string, p: string) => address.get(`${h}:${p}`) ?? m);
    // A service name left in host position (`name:port`, `//name`) is an address not mapped here.
    const left = [...out.matchAll(/([\w.-]+):\d/g), ...out.matchAll(/\/\/([\w.-]+)/g)].map((m) => m[1] as string).find((h) => hostNames.has(h));
    if (left) throw new Error(`${where}: ${v}: no loopback mapping for the address of ${left}`);
    return out;
  };

  const gateways: Gateway[] = drafts.map(({ name, s, e, ports, http, grpc }) => {
    const mapped: Record<string, string> = { ZKGATE_LOG_LEVEL: LOG_DIR ? 'info' : 'warn' };
    // Files the service mounts (`./deploy/zkgate.yaml:/etc/zkgate/zkgate.yaml:ro`): the container path is the repository's file here.
    const mounts = new Map((s.volumes ?? []).map((v) => v.split(':')).filter((p) => (p[0] as string).startsWith('./')).map((p): [string, string] => [p[1] as string, projectFile(p[0] as string)]));
    for (const [k, v] of Object.entries(e)) {
      if (mounts.has(v)) mapped[k] = mounts.get(v) as string;
      else if (k === 'ZKGATE_HTTP_PORT' || k === 'ZKGATE_GRPC_PORT' || k === 'ZKGATE_CLUSTER_PORT') mapped[k] = String(ports.get(Number(v)));
      else if (k === 'ZKGATE_BIND') mapped[k] = '127.0.0.1';
      else mapped[k] = rewrite(v, `compose ${name} ${k}`);
    }
    const args: string[] = [];
    const cmd = (s.command ?? []).slice(1);
    for (let k = 0; k < cmd.length; k++) {
      const a = cmd[k] as string;
      if (a === '--bind') args.push(a, '127.0.0.1');
      else if (a === '--http-port' || a === '--grpc-port') continue; // given below
      else {
        args.push(rewrite(a, `compose ${name} command`));
        continue;
      }
      k += 1;
    }
    // Flags, because `spawnServe` passes `--http-port 0 --grpc-port 0`, which win over the environment.
    args.push('--http-port', String(ports.get(http)), '--grpc-port', String(ports.get(grpc)));
    const id = e.ZKGATE_INSTANCE_ID;
    if (!id) throw new Error(`compose: ${name} sets no ZKGATE_INSTANCE_ID`);
    // Inside its container 127.0.0.1:<port> is the gateway itself.
    const self = (v: string): string => v.replace(/127\.0\.0\.1:(\d+)/g, (m, p: string) => (ports.has(Number(p)) ? `127.0.0.1:${ports.get(Number(p))}` : m));
    return {
      service: name,
      id,
      args,
      env: mapped,
      httpPort: ports.get(http) as number,
      grpcPort: ports.get(grpc) as number,
      healthcheck: s.healthcheck?.test[0] === 'CMD' ? s.healthcheck.test.slice(1).map(self) : undefined,
      healthcheckRetries: s.healthcheck?.retries ?? 3,
      graceMs: durationMs(s.stop_grace_period, 10_000),
    };
  });

  // haproxy: the service that mounts deploy/haproxy.cfg; its published ports are the frontends' binds.
  const lbService = Object.values(services).find((s) => s.volumes?.some((v) => v.startsWith('./deploy/haproxy.cfg:')));
  if (!lbService) throw new Error('compose: no service mounts ./deploy/haproxy.cfg');
  const published = new Set((lbService.ports ?? []).map((p) => Number(p.split(':').at(-1))));
  const lbPorts = new Map<number, number>();
  let lbPort = 0;
  let lbGrpcPort = 0;
  let reuse = false;
  const cfg = readFileSync(projectFile('deploy/haproxy.cfg'), 'utf8')
    .split('\n')
    .map((line) => {
      const bind = /^(\s*bind\s+)\S*:(\d+)(.*)$/.exec(line);
      if (bind) {
        const port = Number(bind[2]);
        if (!published.has(port)) throw new Error(`deploy/haproxy.cfg binds ${port}, which compose.cluster.yaml does not publish`);
        const here = lbPorts.get(port) ?? (hostPorts[3 * gateways.length + lbPorts.size] as number);
        lbPorts.set(port, here);
        if (/\bproto h2\b/.test(bind[3] as string)) lbGrpcPort = here;
        else lbPort = here;
        return `${bind[1]}127.0.0.1:${here}${bind[3]}`;
      }
      const server = /^(\s*server\s+\S+\s+)(\S+):(\d+)(.*)$/.exec(line);
      if (server) {
        const host = server[2] as string;
        const ports = own.get(gwNames.find(([n, s]) => names(n, s).includes(host))?.[0] ?? '');
        if (!ports) throw new Error(`deploy/haproxy.cfg: server ${host} is not a gateway service of compose.cluster.yaml`);
        const rest = (server[4] as string).replace(/\bport (\d+)/, (m, p: string) => {
          const h = ports.get(Number(p));
          if (!h) throw new Error(`deploy/haproxy.cfg: ${line.trim()}: ${host} has no port ${p}`);
          return `port ${h}`;
        });
        return `${server[1]}${rewrite(`${host}:${server[3]}`, 'deploy/haproxy.cfg')}${rest}`;
      }
      // The bench's comparison only: a server connection per request instead of kept ones.
      if (opts.serverClose && /^\s*http-reuse safe\s*$/.test(line)) {
        reuse = true;
        return '  option http-server-close';
      }
      return line;
    })
    .join('\n');
  if (!lbPort || !lbGrpcPort) throw new Error('deploy/haproxy.cfg: expected a plain HTTP frontend and a `proto h2` (gRPC) one');
  if (opts.serverClose && !reuse) throw new Error('deploy/haproxy.cfg: no `http-reuse safe` line for serverClose to replace');
  // The bench's baseline only: the same HTTP backend with its first server alone, on a frontend
  // of its own, to tell what the balancer's hop costs from what spreading over instances costs.
  let lbSinglePort = 0;
  let single = '';
  if (opts.singleBackend) {
    const lines = cfg.split('\n');
    const start = lines.findIndex((l) => /^backend zkgate\s*$/.test(l));
    if (start < 0) throw new Error('deploy/haproxy.cfg: no `backend zkgate` for singleBackend to copy');
    const block: string[] = [];
    let servers = 0;
    // The chosen gateway's `server` line: the servers are named after the gateways' services or host names.
    const alone = opts.singleServer ? gateways.find((g) => g.id === opts.singleServer?.(gateways.map((x) => x.id))) : undefined;
    const keep = (l: string): boolean => (alone ? new RegExp(`^\\s*server\\s+${alone.service}\\s`).test(l) : servers++ === 0);
    for (const l of lines.slice(start + 1)) {
      if (/^\S/.test(l)) break;
      if (/^\s*server\s/.test(l) && !keep(l)) continue;
      block.push(l);
    }
    if (alone && !block.some((l) => /^\s*server\s/.test(l))) throw new Error(`deploy/haproxy.cfg: no server line named ${alone.service} for singleServer`);
    lbSinglePort = hostPorts[3 * gateways.length + 2] as number;
    single = `\nfrontend rest-single\n  bind 127.0.0.1:${lbSinglePort}\n  default_backend zkgate-single\n\nbackend zkgate-single\n${block.join('\n')}\n`;
  }
  const logged = LOG_DIR ? cfg.replace(/^global\n/m, 'global\n  log stderr format raw local0 info\n').replace(/^defaults\n/m, 'defaults\n  log global\n  option httplog\n  option log-health-checks\n') : cfg;
  return { gateways, haproxyCfg: logged + single, lbPort, lbGrpcPort, lbSinglePort };
}

async function ready(base: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await fetch(`${base}/readyz`).then((r) => r.ok, () => false);
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${base} not ready within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * @param size the number of gateways the caller expects compose.cluster.yaml to run.
 * @param opts.serverClose haproxy opens a connection to a gateway per request (`option
 * http-server-close`) instead of keeping them open (`http-reuse safe`, the deployed setting, see
 * docs/cluster.md): for the bench's comparison only.
 */
export async function startTopology(size = 3, opts: TopologyOptions = {}): Promise<Topology> {
  if (LOG_DIR) mkdirSync(LOG_DIR, { recursive: true });
  const zk = await startZkEnsemble(3);
  const dir = mkdtempSync(join(tmpdir(), 'zkgate-haproxy-'));
  const procs: (CliProcess | null)[] = [];
  let haproxy: ChildProcess | undefined;
  let graceKills = 0;
  let extraEnv: Readonly<Record<string, string>> = opts.gatewayEnv ?? {};
  const close = async (): Promise<void> => {
    haproxy?.kill('SIGKILL');
    await Promise.all(procs.map((p) => p?.kill()));
    await zk.close();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const { gateways, haproxyCfg, lbPort, lbGrpcPort, lbSinglePort } = await plan(zk, opts);
    if (gateways.length !== size) throw new Error(`compose.cluster.yaml runs ${gateways.length} gateways, the caller expects ${size}`);
    const start = async (i: number): Promise<void> => {
      const g = gateways[i] as Gateway;
      const p = spawnServe(g.args, undefined, { ...g.env, ...extraEnv });
      procs[i] = p;
      if (LOG_DIR) void p.exited.then(() => appendFileSync(join(LOG_DIR, `${g.service}.log`), p.out()));
      let up = false;
      const died = p.exited.then((code) => {
        if (!up) throw new Error(`${g.service} exited with ${code} at start:\n${p.out()}`);
      });
      died.catch(() => undefined);
      await Promise.race([ready(`http://127.0.0.1:${g.httpPort}`), died]);
      up = true;
    };
    await Promise.all(gateways.map((_, i) => start(i)));
    // The compose health check (the one Docker would run in the container) passes as well.
    await Promise.all(
      gateways.map(async (g) => {
        if (!g.healthcheck) return;
        const [exe, ...args] = g.healthcheck;
        if (exe !== 'node') throw new Error(`compose ${g.service}: health check runs ${exe}; the test runs node checks only`);
        // As Docker runs it: a failed check is tried again (compose's `retries`), since a gateway
        // whose ZooKeeper session is reconnecting on a loaded machine says 503 for a moment.
        for (let attempt = 1; ; attempt++) {
          try {
            await promisify(execFile)(process.execPath, args, { timeout: 5000 });
            return;
          } catch (err) {
            if (attempt >= g.healthcheckRetries) throw err;
            await new Promise((r) => setTimeout(r, 1000));
          }
        }
      }),
    );
    const cfg = join(dir, 'haproxy.cfg');
    writeFileSync(cfg, haproxyCfg);
    haproxy = spawn('haproxy', ['-db', '-f', cfg], { stdio: ['ignore', 'ignore', 'pipe'] });
    let haproxyOut = '';
    haproxy.stderr?.on('data', (d: Buffer) => (haproxyOut = (haproxyOut + d.toString()).slice(-4000)));
    if (LOG_DIR) haproxy.stderr?.on('data', (d: Buffer) => appendFileSync(join(LOG_DIR, 'haproxy.log'), d));
    const lb = `http://127.0.0.1:${lbPort}`;
    await ready(lb, 30_000).catch((err: Error) => {
      throw new Error(`${err.message}; haproxy said:\n${haproxyOut}`);
    });
    return {
      zk,
      lb,
      lbSingle: lbSinglePort ? `http://127.0.0.1:${lbSinglePort}` : null,
      lbGrpcPort,
      direct: gateways.map((g) => `http://127.0.0.1:${g.httpPort}`),
      directGrpcPorts: gateways.map((g) => g.grpcPort),
      ids: gateways.map((g) => g.id),
      get graceKills() {
        return graceKills;
      },
      async restart(i) {
        const p = procs[i];
        if (p) {
          p.proc.kill('SIGTERM');
          const t = setTimeout(() => {
            graceKills += 1;
            p.proc.kill('SIGKILL');
          }, (gateways[i] as Gateway).graceMs);
          await p.exited;
          clearTimeout(t);
          await p.kill();
        }
        await start(i);
      },
      async kill(i) {
        await procs[i]?.kill();
        procs[i] = null;
      },
      setGatewayEnv(env) {
        extraEnv = env;
      },
      haproxyPid: haproxy.pid,
      haproxyLog: () => haproxyOut,
      process: (i) => procs[i]?.proc,
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

export interface Res {
  status: number;
  body: Record<string, unknown>;
  headers: Headers;
}
/** One JSON call; the body parsed (an unparsable one as `{raw}`). */
export const call = async (base: string, method: string, path: string, body?: unknown): Promise<Res> => {
  const r = await fetch(`${base}${path}`, { method, headers: body === undefined ? {} : { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) }).catch((err: Error) => {
    // undici says only "fetch failed"; what failed (a reset, a refusal, a close before the answer) is its cause.
    const cause = err.cause as (Error & { code?: string }) | undefined;
    throw new Error(`${method} ${base}${path}: ${err.message}${cause ? `: ${cause.code ?? ''} ${cause.message}` : ''}`, { cause: err });
  });
  const text = await r.text();
  let parsed: Record<string, unknown> = {};
  try {
    parsed = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    parsed = { raw: text };
  }
  return { status: r.status, body: parsed, headers: r.headers };
};

/** What `lockRate` counted: answers to the acquires and releases by status (`"200"`, `"409"`…). */
export interface LockRateCounts {
  readonly acquires: Map<string, number>;
  readonly releases: Map<string, number>;
}

/**
 * Lock cycles per second of `workers` contenders on one lock through `base` for `ms`; `counts`,
 * when given, gets every acquire's and release's status (an acquire not answered 200 is tried
 * again and makes the cycle cost more calls).
 */
export async function lockRate(base: string, path: string, workers: number, ms: number, counts?: LockRateCounts): Promise<number> {
  const note = (m: Map<string, number> | undefined, status: number): void => void m?.set(String(status), (m.get(String(status)) ?? 0) + 1);
  const leases = await Promise.all(Array.from({ length: workers }, async () => (await call(base, 'POST', '/v1/leases', { ttlMs: 10_000 })).body.id as string));
  let cycles = 0;
  const end = Date.now() + ms;
  await Promise.all(
    leases.map(async (leaseId) => {
      while (Date.now() < end) {
        const got = await call(base, 'POST', `/v1/locks${path}`, { leaseId, waitMs: 5000 });
        note(counts?.acquires, got.status);
        if (got.status !== 200) continue;
        const released = await call(base, 'DELETE', `/v1/locks${path}?leaseId=${leaseId}&node=${encodeURIComponent(got.body.node as string)}`);
        note(counts?.releases, released.status);
        cycles += 1;
      }
    }),
  );
  await Promise.all(leases.map((id) => call(base, 'DELETE', `/v1/leases/${id}`)));
  return cycles / (ms / 1000);
}
