/**
 * One ZooKeeper and one gateway per contract test file, with API keys of every role (and a
 * path-scoped one) on the tenant, and a client factory per transport (Curator's `makeLock()`).
 */
import { after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { validateConfig } from '../../src/config/schema.js';
import { generateApiKey, hashApiKey, silentLogger, type Logger } from '../../src/core/index.js';
import { startGateway, type RunningGateway } from '../../src/main.js';
import { startZkServer, type ZkServerOptions, type ZkStandalone } from '../support/zk-server.js';
import { startZkProxy, type ZkProxy } from '../support/zk-proxy.js';
import { untilReady } from '../support/test-gateway.js';
import { contract } from '../support/openapi.js';
import { CallError, TRANSPORTS, makeClient, quotaUsed, type ContractClient, type Transport } from './clients.js';

export const KEYS = {
  admin: generateApiKey(),
  write: generateApiKey(),
  write2: generateApiKey(),
  read: generateApiKey(),
  /** write role, limited to /scoped */
  scoped: generateApiKey(),
};
export type KeyName = keyof typeof KEYS;

export interface ContractEnv {
  readonly zk: ZkStandalone;
  readonly gw: RunningGateway;
  /** Between the gateway and ZooKeeper, when asked for (`GatewayOptions.proxy`). */
  readonly proxy?: ZkProxy;
}

export interface GatewayOptions {
  /** How the ZooKeeper server is started (e.g. without TTL support). */
  readonly zk?: ZkServerOptions;
  /** Config sections merged over the defaults (`watch`, `grpc`…). */
  readonly config?: Record<string, unknown>;
  /** The tenant's session timeout, ms. @defaultValue 10000 */
  readonly sessionTimeoutMs?: number;
  /** The gateway's logger (a test that asserts what is logged). @defaultValue silentLogger */
  readonly logger?: Logger;
  /** The gateway reaches ZooKeeper through a proxy that can cut its connection (test/support/zk-proxy.ts). */
  readonly proxy?: boolean;
}

/**
 * Registers before/after hooks for one ZooKeeper and one gateway; `limits` are the tenant's.
 * Returns the env (set once `before` ran) and `client(transport, key)`, which opens a client
 * closed after the file.
 */
export function contractGateway(limits: Record<string, number> = {}, opts: GatewayOptions = {}): {
  env: ContractEnv;
  /** A client presenting `key` (default admin); `null` presents none, a string that raw key; `tenant` names one. */
  client(t: Transport, key?: KeyName | null | { raw: string }, tenant?: string): Promise<ContractClient>;
  /** The gateway's `zkgate_errors_total` for `code` on transport `t` (from GET /metrics). */
  errorCount(code: string, t: Transport): Promise<number>;
  /** What the tenant holds of a quota kind (`connections`, `subscriptions`, `locks`, `leases`), from GET /metrics. */
  used(kind: string): Promise<number>;
} {
  const env = {} as { zk: ZkStandalone; gw: RunningGateway; proxy?: ZkProxy };
  const open: ContractClient[] = [];
  before(async () => {
    // The REST client checks responses against openapi.yaml, parsed on first use: about a second
    // of synchronous CPU, 5-15 s of wall time on a loaded machine. The gateway runs in this
    // process, so doing it inside a test froze the gateway's event loop and with it the ZooKeeper
    // client (no pings, no reconnect: the session timed out, or an expiry went unnoticed). Parse
    // it before the gateway has a session.
    contract();
    env.zk = await startZkServer(opts.zk);
    if (opts.proxy) env.proxy = await startZkProxy(env.zk.clientPort);
    const apiKeys = [
      { name: 'admin-key', sha256: hashApiKey(KEYS.admin), role: 'admin' },
      { name: 'writer', sha256: hashApiKey(KEYS.write), role: 'write' },
      { sha256: hashApiKey(KEYS.write2), role: 'write' },
      { name: 'reader', sha256: hashApiKey(KEYS.read), role: 'read' },
      { name: 'scoped', sha256: hashApiKey(KEYS.scoped), role: 'write', prefixes: ['/scoped'] },
    ];
    const config = validateConfig({
      zookeeper: { connect: env.proxy?.connectString ?? env.zk.connectString },
      http: { port: 0, bind: '127.0.0.1' },
      tenants: [{ name: 'default', sessionTimeoutMs: opts.sessionTimeoutMs ?? 10_000, apiKeys, limits }],
      log: { level: 'silent' },
      ...opts.config,
    });
    env.gw = await startGateway(config, opts.logger ?? silentLogger);
    await untilReady(env.gw);
  });
  after(async () => {
    for (const c of open) c.close();
    await env.gw?.close();
    await env.proxy?.close();
    await env.zk?.close();
  });
  return {
    env,
    async client(t, key = 'admin', tenant) {
      const apiKey = key === null ? undefined : typeof key === 'object' ? key.raw : KEYS[key];
      const c = await makeClient(t, { httpPort: env.gw.httpPort, grpcPort: env.gw.grpcPort, apiKey, tenant });
      open.push(c);
      return c;
    },
    used: (kind) => quotaUsed({ httpPort: env.gw.httpPort }, kind),
    async errorCount(code, t) {
      const text = await (await fetch(`http://127.0.0.1:${env.gw.httpPort}/metrics`)).text();
      const line = text.split('\n').find((l) => l.startsWith('zkgate_errors_total{') && l.includes(`code="${code}"`) && l.includes(`transport="${t}"`));
      return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
    },
  };
}

/** Runs `suite` once per transport, each in its own `describe`. */
export function forEachTransport(suite: (t: Transport) => void): void {
  for (const t of TRANSPORTS) describe(t, () => suite(t));
}

/** Asserts that `p` rejects with the stable `code`; returns the error for more checks. */
/**
 * `p`, marked as handled: a call that fails while the test awaits something else (the revoke or
 * delete that ends a wait, whose own answer may come after the wait's error on another stream)
 * is not an unhandled rejection; `rejectsWith(p, …)` later still sees its error.
 */
export function pending<T>(p: Promise<T>): Promise<T> {
  p.catch(() => undefined);
  return p;
}

export async function rejectsWith(p: Promise<unknown>, code: string): Promise<CallError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof CallError, `expected a CallError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return err;
  }
  assert.fail(`expected ${code}, but the call succeeded`);
}

/** A path unique to one test (the transports share one ZooKeeper). */
export function unique(t: Transport, name: string): string {
  return `/c-${t}-${name}-${Math.random().toString(36).slice(2, 8)}`;
}

/** Polls `check` every 50 ms until it holds; fails after `timeoutMs`. */
export async function waitFor(check: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}
