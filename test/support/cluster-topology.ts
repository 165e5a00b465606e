/**
 * The deployment of docs/cluster.md without Docker: a 3-node ZooKeeper ensemble, three
 * `zkgate serve` processes in a cluster (fixed HTTP and internal ports, so they can be
 * restarted in place) and Debian's haproxy on loopback in front of them, round-robin, with
 * /readyz health checks, retries on connection failures and redispatch.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnServe, type CliProcess } from './cli-process.js';
import { freePorts, startZkEnsemble, type ZkEnsemble } from './zk-server.js';

export const CLUSTER_SECRET = 'topology-test-secret-0123456789abcdef';

export interface Topology {
  readonly zk: ZkEnsemble;
  /** The balancer's base URL. */
  readonly lb: string;
  /** Each gateway's own base URL (index = instance number - 1). */
  readonly direct: readonly string[];
  readonly ids: readonly string[];
  /** SIGTERM (graceful: hands its leases over) and start again on the same ports. */
  restart(i: number): Promise<void>;
  /** SIGKILL, not started again. */
  kill(i: number): Promise<void>;
  close(): Promise<void>;
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
 * @param opts.serverKeepAlive haproxy keeps its connections to the gateways open between
 * requests (`http-reuse safe`) instead of one per request (`option http-server-close`, the
 * deployed setting, see docs/cluster.md): for the bench's comparison only.
 */
export async function startTopology(size = 3, opts: { serverKeepAlive?: boolean } = {}): Promise<Topology> {
  const zk = await startZkEnsemble(3);
  const ports = await freePorts(2 * size + 1);
  const lbPort = ports[2 * size] as number;
  const ids = Array.from({ length: size }, (_, i) => `gw${i + 1}`);
  const config = (i: number): Record<string, unknown> => ({
    zookeeper: { connect: zk.connectString },
    http: { bind: '127.0.0.1' },
    instanceId: ids[i],
    cluster: { secret: CLUSTER_SECRET, port: ports[size + i] },
    tenants: [{ name: 'default', sessionTimeoutMs: 6000 }],
    shutdown: { drainTimeoutMs: 3000, exitTimeoutMs: 15_000 },
    log: { level: 'warn' },
  });
  const procs: (CliProcess | null)[] = [];
  const start = async (i: number): Promise<void> => {
    const p = spawnServe(['--http-port', String(ports[i])], config(i));
    procs[i] = p;
    let up = false;
    const died = p.exited.then((code) => {
      if (!up) throw new Error(`${ids[i]} exited with ${code} at start:\n${p.out()}`);
    });
    died.catch(() => undefined);
    await Promise.race([ready(`http://127.0.0.1:${ports[i]}`), died]);
    up = true;
  };
  await Promise.all(ids.map((_, i) => start(i)));
  const dir = mkdtempSync(join(tmpdir(), 'zkgate-haproxy-'));
  const cfg = join(dir, 'haproxy.cfg');
  writeFileSync(
    cfg,
    [
      'global',
      '  maxconn 2000',
      'defaults',
      '  mode http',
      '  timeout connect 1s',
      '  timeout client 60s',
      '  timeout server 60s',
      // A connection refused (an instance restarting) is tried again on another instance;
      // nothing reached a gateway, so it is safe for any method.
      '  retries 3',
      '  option redispatch 1',
      '  retry-on conn-failure empty-response',
      // A new connection per request: a draining instance's closed listener refuses it (retried
      // elsewhere) instead of a reused connection carrying a request into its 503.
      opts.serverKeepAlive ? '  http-reuse safe' : '  option http-server-close',
      'frontend fe',
      `  bind 127.0.0.1:${lbPort}`,
      '  default_backend gateways',
      'backend gateways',
      '  balance roundrobin',
      '  option httpchk GET /readyz',
      '  http-check expect status 200',
      // Without it a check's read timeout is `inter`: on a loaded machine a /readyz slower than
      // 250 ms took every gateway out (503 "no server is available"). A draining instance still
      // answers 503 (or refuses) at once, so it is taken out as fast as before.
      '  timeout check 2s',
      '  default-server inter 250ms fall 1 rise 2',
      ...ids.map((id, i) => `  server ${id} 127.0.0.1:${ports[i]} check`),
      '',
    ].join('\n'),
  );
  const haproxy: ChildProcess = spawn('haproxy', ['-db', '-f', cfg], { stdio: ['ignore', 'ignore', 'pipe'] });
  const lb = `http://127.0.0.1:${lbPort}`;
  await ready(lb);
  return {
    zk,
    lb,
    direct: ids.map((_, i) => `http://127.0.0.1:${ports[i]}`),
    ids,
    async restart(i) {
      const p = procs[i];
      p?.proc.kill('SIGTERM');
      await p?.exited;
      await p?.kill();
      await start(i);
    },
    async kill(i) {
      await procs[i]?.kill();
      procs[i] = null;
    },
    async close() {
      haproxy.kill('SIGKILL');
      await Promise.all(procs.map((p) => p?.kill()));
      await zk.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface Res {
  status: number;
  body: Record<string, unknown>;
  headers: Headers;
}
/** One JSON call; the body parsed (an unparsable one as `{raw}`). */
export const call = async (base: string, method: string, path: string, body?: unknown): Promise<Res> => {
  const r = await fetch(`${base}${path}`, { method, headers: body === undefined ? {} : { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  let parsed: Record<string, unknown> = {};
  try {
    parsed = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    parsed = { raw: text };
  }
  return { status: r.status, body: parsed, headers: r.headers };
};

/** Lock cycles per second of `workers` contenders on one lock through `base` for `ms`. */
export async function lockRate(base: string, path: string, workers: number, ms: number): Promise<number> {
  const leases = await Promise.all(Array.from({ length: workers }, async () => (await call(base, 'POST', '/v1/leases', { ttlMs: 10_000 })).body.id as string));
  let cycles = 0;
  const end = Date.now() + ms;
  await Promise.all(
    leases.map(async (leaseId) => {
      while (Date.now() < end) {
        const got = await call(base, 'POST', `/v1/locks${path}`, { leaseId, waitMs: 5000 });
        if (got.status !== 200) continue;
        await call(base, 'DELETE', `/v1/locks${path}?leaseId=${leaseId}&node=${encodeURIComponent(got.body.node as string)}`);
        cycles += 1;
      }
    }),
  );
  await Promise.all(leases.map((id) => call(base, 'DELETE', `/v1/leases/${id}`)));
  return cycles / (ms / 1000);
}
