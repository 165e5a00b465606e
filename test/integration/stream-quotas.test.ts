/**
 * Every wait and stream on every transport takes a unit of the documented quota (issue 17
 * item 3): gRPC Watch, KeepAlive and Observe streams, SSE streams and WebSockets hold a unit of
 * `limits.maxConnectionsPerTenant`; gRPC and WebSocket election observes and election long-polls
 * a unit of `limits.maxSubscriptionsPerTenant`; a socket's observes count against
 * `watch.maxSubscriptionsPerConnection`. Each test measures the units in use through
 * `zkgate_tenant_quota_used` on /metrics, checks the refusal past the limit, and that the unit
 * comes back when the stream ends.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest, type ClientRequest } from 'node:http';
import type { ClientDuplexStream, ClientReadableStream, ServiceError } from '@grpc/grpc-js';
import { startGateway, type RunningGateway } from '../../src/main.js';
import { validateConfig } from '../../src/config/schema.js';
import { generateApiKey, hashApiKey, silentLogger } from '../../src/core/index.js';
import { startZkServer, type ZkStandalone } from '../support/zk-server.js';
import { errorCode, grpcClient, type GrpcTestClient } from '../support/grpc-client.js';
import { WsTestClient, type Json } from '../support/ws-client.js';
import { eventually } from '../support/test-gateway.js';
import { restClient } from '../support/openapi.js';

type Msg = Record<string, unknown>;

const READ = generateApiKey();
const WRITE = generateApiKey();
const MAX_CONNECTIONS = 3;
const MAX_SUBSCRIPTIONS = 4;
const PER_CONNECTION = 2;

let zk: ZkStandalone;
let gw: RunningGateway;
let base: string;
let reader: GrpcTestClient;
let writer: GrpcTestClient;

/** `zkgate_tenant_quota_used` of tenant q for `kind`, from /metrics. */
async function used(kind: 'connections' | 'subscriptions'): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const m = new RegExp(`^zkgate_tenant_quota_used\\{[^}]*kind="${kind}"[^}]*\\} (\\d+)$`, 'm').exec(text);
  assert.ok(m, `no zkgate_tenant_quota_used for ${kind}`);
  return Number(m[1]);
}

/** Waits until the quota in use is `n` (units are given back when the server sees a stream end). */
function usedBecomes(kind: 'connections' | 'subscriptions', n: number): Promise<unknown> {
  return eventually(async () => (await used(kind)) === n, 10_000, `${kind} in use = ${n}`);
}

/** The status and zkgate code a stream ended with. */
function streamError(stream: { on(e: 'error', f: (err: ServiceError) => void): unknown }): Promise<{ code: number; zkgate: string | undefined }> {
  return new Promise((resolve) => stream.on('error', (err) => resolve({ code: err.code, zkgate: errorCode(err) })));
}

function firstData(stream: { once(e: 'data', f: (m: Msg) => void): unknown }): Promise<Msg> {
  return new Promise((resolve) => stream.once('data', resolve));
}

const RESOURCE_EXHAUSTED = 8;

before(async () => {
  zk = await startZkServer();
  gw = await startGateway(
    validateConfig({
      zookeeper: { connect: zk.connectString },
      http: { port: 0, bind: '127.0.0.1' },
      log: { level: 'silent' },
      watch: { maxSubscriptionsPerConnection: PER_CONNECTION },
      tenants: [
        {
          name: 'q',
          chroot: '/tenants/q',
          apiKeys: [
            { sha256: hashApiKey(READ), role: 'read' },
            { sha256: hashApiKey(WRITE), role: 'write' },
          ],
          limits: { maxConnectionsPerTenant: MAX_CONNECTIONS, maxSubscriptionsPerTenant: MAX_SUBSCRIPTIONS },
        },
      ],
    }),
    silentLogger,
  );
  base = `http://127.0.0.1:${gw.httpPort}`;
  reader = grpcClient(gw.grpcPort, { apiKey: READ });
  writer = grpcClient(gw.grpcPort, { apiKey: WRITE });
});

after(async () => {
  reader?.close();
  writer?.close();
  await gw?.close();
  await zk?.close();
});

describe('stream quotas › gRPC', () => {

  test('gRPC KeepAlive streams each hold a connection unit until they end', async () => {
    const svc = writer.services.Leases as unknown as { KeepAlive(md: unknown): ClientDuplexStream<Msg, Msg> };
    const lease = await writer.unary<{ id: string }>('Leases', 'Grant', { ttlMs: 30_000 });
    const open: ClientDuplexStream<Msg, Msg>[] = [];
    for (let i = 0; i < MAX_CONNECTIONS; i++) {
      const s = svc.KeepAlive(writer.metadata());
      s.on('error', () => undefined);
      s.write({ id: lease.id });
      assert.equal((await firstData(s)).type, 'KEEPALIVE_TYPE_REFRESHED');
      open.push(s);
    }
    assert.equal(await used('connections'), MAX_CONNECTIONS);
    const refused = await streamError(svc.KeepAlive(writer.metadata()));
    assert.deepEqual(refused, { code: RESOURCE_EXHAUSTED, zkgate: 'LIMIT_EXCEEDED' });
    for (const s of open) s.end();
    await usedBecomes('connections', 0);
    await writer.unary('Leases', 'Revoke', { id: lease.id });
  });

  test('gRPC Observe holds a connection and a subscription unit; past the subscription limit it is refused', async () => {
    const svc = reader.services.Elections as unknown as { Observe(r: Msg, md: unknown): ClientReadableStream<Msg> };
    // Room for every observe's connection: subscriptions are the bound that is reached.
    const open: ClientReadableStream<Msg>[] = [];
    for (let i = 0; i < MAX_CONNECTIONS; i++) {
      const s = svc.Observe({ path: `/e/${i}` }, reader.metadata());
      s.on('error', () => undefined);
      assert.ok('electionPath' in (await firstData(s)));
      open.push(s);
    }
    assert.equal(await used('connections'), MAX_CONNECTIONS);
    assert.equal(await used('subscriptions'), MAX_CONNECTIONS);
    const refused = await streamError(svc.Observe({ path: '/e/x' }, reader.metadata()));
    assert.deepEqual(refused, { code: RESOURCE_EXHAUSTED, zkgate: 'LIMIT_EXCEEDED' });
    for (const s of open) s.cancel();
    await usedBecomes('connections', 0);
    await usedBecomes('subscriptions', 0);
  });
});

describe('stream quotas › WebSocket and REST', () => {
  const wsUrl = (): string => `ws://127.0.0.1:${gw.httpPort}/v1/ws`;

  test('WebSocket observe counts against watch.maxSubscriptionsPerConnection and the tenant subscriptions', async () => {
    const c = await WsTestClient.open(wsUrl(), { authorization: `Bearer ${READ}` });
    try {
      assert.equal(await used('connections'), 1);
      for (let i = 0; i < PER_CONNECTION; i++) {
        c.send({ op: 'observe', id: `o${i}`, path: `/e/${i}` });
        await c.take((m: Json) => m.type === 'leader' && m.id === `o${i}`);
      }
      assert.equal(await used('subscriptions'), PER_CONNECTION);
      c.send({ op: 'observe', id: 'over', path: '/e/over' });
      const err = await c.take((m: Json) => m.type === 'error' && m.id === 'over');
      assert.equal(err.code, 'LIMIT_EXCEEDED');
      assert.equal(err.details.limit, 'watch.maxSubscriptionsPerConnection');
      assert.equal(await used('subscriptions'), PER_CONNECTION);
      c.send({ op: 'unsubscribe', id: 'o0' });
      await c.take((m: Json) => m.type === 'unsubscribed' && m.id === 'o0');
      await usedBecomes('subscriptions', PER_CONNECTION - 1);
    } finally {
      c.close();
    }
    await usedBecomes('connections', 0);
    await usedBecomes('subscriptions', 0);
  });

  test('election long-polls each hold a subscription unit; one past the limit is 429', async () => {
    const now = (await (await fetch(`${base}/v1/elections/e/poll`, { headers: { authorization: `Bearer ${READ}` } })).json()) as { index: string };
    const pending: ClientRequest[] = [];
    for (let i = 0; i < MAX_SUBSCRIPTIONS; i++) {
      const req = httpRequest(`${base}/v1/elections/e/poll?wait=30000&after=${now.index}`, { headers: { authorization: `Bearer ${READ}` } });
      req.on('error', () => undefined);
      req.end();
      pending.push(req);
    }
    await usedBecomes('subscriptions', MAX_SUBSCRIPTIONS);
    // Through the client that validates the answer against openapi.yaml.
    const over = await restClient(base).json('GET', '/v1/elections/e/poll', undefined, {
      headers: { authorization: `Bearer ${READ}` },
      query: { wait: '30000', after: now.index },
    });
    assert.equal(over.status, 429);
    const body = over.body as { code: string; details: { limit: string } };
    assert.equal(body.code, 'LIMIT_EXCEEDED');
    assert.equal(body.details.limit, 'maxSubscriptionsPerTenant');
    for (const r of pending) r.destroy();
    await usedBecomes('subscriptions', 0);
  });
});
