/**
 * A gateway (core + REST on a free loopback port) in front of a real ZooKeeper, for integration
 * tests, plus small timing helpers. One per test file.
 */
import { after, before } from 'node:test';
import { validateConfig } from '../../src/config/schema.js';
import { silentLogger } from '../../src/core/index.js';
import { startGateway, type RunningGateway } from '../../src/main.js';
import { contract, restClient, type RestClient } from './openapi.js';
import { startZkProxy, type ZkProxy } from './zk-proxy.js';
import { startZkServer, type ZkStandalone } from './zk-server.js';

export interface TestGateway {
  readonly running: RunningGateway;
  readonly base: string;
  /** REST client that checks every response against openapi.yaml. */
  readonly rest: RestClient;
  close(): Promise<void>;
}

/** Starts a gateway on `connect` with a short session timeout (and any config overrides). */
export async function startTestGateway(connect: string, overrides: Record<string, unknown> = {}): Promise<TestGateway> {
  const config = validateConfig({
    zookeeper: { connect },
    http: { port: 0, bind: '127.0.0.1' },
    tenants: [{ name: 'default', sessionTimeoutMs: 4000 }],
    log: { level: 'silent' },
    ...overrides,
  });
  // openapi.yaml is parsed (and its schemas added to Ajv) before the gateway's session exists:
  // done lazily at the first checked response it held the event loop for 2.4 s at load 12, and
  // the test's 4 s session was suspended before the first call (watch-http, contract suites).
  contract();
  const running = await startGateway(config, silentLogger);
  const base = `http://127.0.0.1:${running.httpPort}`;
  // Tests start once the sessions are up: on a loaded machine a first call would race the
  // connect and answer 503 "session connecting" (seen in watch-http at load 10).
  try {
    await untilReady(running);
  } catch (err) {
    await running.close();
    throw err;
  }
  return { running, base, rest: restClient(base), close: () => running.close() };
}

/**
 * Waits until the gateway's tenant sessions are connected: a loaded machine can take seconds to
 * connect a fresh session, and tests start once it is up rather than each racing it (a first call
 * would answer 503 "session connecting").
 */
export async function untilReady(gw: RunningGateway): Promise<void> {
  await eventually(() => gw.gateway.health().ready, 20_000, 'the gateway ready');
}

/** Polls `check` every 50 ms until it returns a truthy value; rejects after `timeoutMs`. */
export async function eventually<T>(check: () => Promise<T> | T, timeoutMs = 10_000, what = 'condition'): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A unique path prefix for one test (suites share one ZooKeeper). */
export function uniquePath(name: string): string {
  return `/t-${name}-${Math.random().toString(36).slice(2, 8)}`;
}

/** A problem+json body as the tests read it. */
export interface Problem {
  readonly code: string;
  readonly details?: Readonly<Record<string, string | number | boolean>>;
}

/**
 * Registers before/after hooks that start one ZooKeeper and one gateway for the enclosing suite
 * and stop them; the returned object's fields are set once `before` has run.
 */
export function zkAndGateway(overrides: Record<string, unknown> = {}): { zk: ZkStandalone; g: TestGateway } {
  const env = {} as { zk: ZkStandalone; g: TestGateway };
  before(async () => {
    env.zk = await startZkServer();
    env.g = await startTestGateway(env.zk.connectString, overrides);
    await untilReady(env.g.running);
  });
  after(async () => {
    await env.g?.close();
    await env.zk?.close();
  });
  return env;
}

/**
 * `zkAndGateway` with the gateway reaching ZooKeeper through a proxy that can cut its connection
 * (test/support/zk-proxy.ts); other clients (raw ones, Curator) connect to `zk` directly.
 */
export function zkProxyAndGateway(overrides: Record<string, unknown> = {}): { zk: ZkStandalone; proxy: ZkProxy; g: TestGateway } {
  const env = {} as { zk: ZkStandalone; proxy: ZkProxy; g: TestGateway };
  before(async () => {
    env.zk = await startZkServer();
    env.proxy = await startZkProxy(env.zk.clientPort);
    env.g = await startTestGateway(env.proxy.connectString, overrides);
    await untilReady(env.g.running);
  });
  after(async () => {
    await env.g?.close();
    await env.proxy?.close();
    await env.zk?.close();
  });
  return env;
}

/** Grants leases through `rest` and remembers them, so a test can revoke them all (newest first). */
export function leasePool(rest: RestClient): { grant(ttlMs?: number): Promise<string>; revokeAll(): Promise<void> } {
  const ids: string[] = [];
  return {
    async grant(ttlMs = 30_000) {
      const id = ((await rest.json('POST', '/v1/leases', { ttlMs })).body as { id: string }).id;
      ids.push(id);
      return id;
    },
    async revokeAll() {
      for (const id of ids.reverse()) await rest.json('DELETE', `/v1/leases/${id}`);
    },
  };
}

/**
 * Grants a lease of `ttlMs`, retrying while the gateway answers otherwise: right after a start a
 * loaded machine can leave the tenant's fresh session briefly suspended (503).
 */
export async function grantSettled(rest: RestClient, ttlMs = 30_000): Promise<string> {
  const r = await eventually(async () => {
    const g = await rest.json('POST', '/v1/leases', { ttlMs });
    return g.status === 201 ? g : null;
  }, 15_000, 'a lease grant');
  return (r.body as { id: string }).id;
}
