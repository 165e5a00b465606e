/**
 * A cluster-wide listing says when it is incomplete (docs/cluster.md "Listing leases"): GET
 * /v1/leases, gRPC Leases.List and WebSocket Leases.List through one instance name every
 * registered instance that did not answer (`incomplete`, `unanswered` with a reason) instead of
 * silently leaving its leases out. Two in-process gateways and a third, real `zkgate serve`
 * process that is SIGSTOPped (hung: no answer), resumed, then SIGKILLed (not listening, while its
 * registration has not expired).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { serveListening, type Listening } from '../support/cli-process.js';
import { grpcClient, type GrpcTestClient } from '../support/grpc-client.js';
import { startTestGateway, type TestGateway } from '../support/test-gateway.js';
import { WsTestClient } from '../support/ws-client.js';
import { startZkServer, type ZkStandalone } from '../support/zk-server.js';

const SECRET = 'cluster-listing-secret-0123456789abcdef';
const INSTANCES = `/zkgate-listing/${process.pid}`;

interface Unanswered {
  instance: string;
  reason: string;
}
interface Listing {
  ids: string[];
  incomplete: boolean | undefined;
  unanswered: Unanswered[] | undefined;
}

describe('cluster › a lease listing names the instances that did not answer', () => {
  let zk: ZkStandalone;
  let alpha: TestGateway;
  let beta: TestGateway;
  let gamma: Listening;
  let grpc: GrpcTestClient;
  let ws: WsTestClient;
  const leases: Record<string, string> = {};

  before(async () => {
    zk = await startZkServer();
    // Grants stay where they arrive (lease placement is cluster-placement.test's): one lease per instance.
    const cluster = { secret: SECRET, forwardTimeoutMs: 1000, leasePlacement: 'local' };
    alpha = await startTestGateway(zk.connectString, { instanceId: 'alpha', cluster, instances: { path: INSTANCES } });
    beta = await startTestGateway(zk.connectString, { instanceId: 'beta', cluster, instances: { path: INSTANCES } });
    gamma = await serveListening([], { zookeeper: { connect: zk.connectString }, instanceId: 'gamma', cluster, instances: { path: INSTANCES } });
    for (const [name, base] of [['alpha', alpha.base], ['beta', beta.base], ['gamma', gamma.base]] as const) {
      const r = await fetch(`${base}/v1/leases`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ttlMs: 60_000 }) });
      assert.equal(r.status, 201);
      leases[name] = ((await r.json()) as { id: string }).id;
    }
    grpc = grpcClient(alpha.running.grpcPort);
    ws = await WsTestClient.open(`${alpha.base.replace('http', 'ws')}/v1/ws`);
  });
  after(async () => {
    ws?.ws.close();
    grpc?.close();
    await gamma?.kill();
    await beta?.close();
    await alpha?.close();
    await zk?.close();
  });

  /** Alpha's listing over each transport (REST responses are checked against openapi.yaml). */
  const listings = async (): Promise<Record<'rest' | 'grpc' | 'ws', Listing>> => {
    const rest = (await alpha.rest.json('GET', '/v1/leases')).body as { leases: { id: string }[]; incomplete?: boolean; unanswered?: Unanswered[] };
    const g = await grpc.unary<{ leases: { id: string }[]; incomplete: boolean; unanswered: Unanswered[] }>('Leases', 'List', {});
    ws.send({ op: 'call', id: 'list', method: 'Leases.List', params: {} });
    const w = (await ws.take((m) => m.id === 'list')).result as { leases: { id: string }[]; incomplete?: boolean; unanswered?: Unanswered[] };
    const of = (l: { leases: { id: string }[]; incomplete?: boolean; unanswered?: Unanswered[] }): Listing => ({ ids: l.leases.map((x) => x.id).sort(), incomplete: l.incomplete, unanswered: l.unanswered });
    // gRPC has no absent fields: false and [] say "complete".
    return { rest: of(rest), grpc: { ...of(g), incomplete: g.incomplete || undefined, unanswered: g.unanswered.length > 0 ? g.unanswered : undefined }, ws: of(w) };
  };
  const ids = (...names: string[]): string[] => names.map((n) => leases[n] as string).sort();

  test('every instance answers: all leases, no marker', async () => {
    for (const [transport, l] of Object.entries(await listings())) {
      assert.deepEqual(l, { ids: ids('alpha', 'beta', 'gamma'), incomplete: undefined, unanswered: undefined }, transport);
    }
  });

  test('a hung instance (SIGSTOP): incomplete, named with no_answer; complete again once it runs (SIGCONT)', async () => {
    gamma.proc.kill('SIGSTOP');
    try {
      for (const [transport, l] of Object.entries(await listings())) {
        assert.deepEqual(l, { ids: ids('alpha', 'beta'), incomplete: true, unanswered: [{ instance: 'gamma', reason: 'no_answer' }] }, transport);
      }
    } finally {
      gamma.proc.kill('SIGCONT');
    }
    for (const [transport, l] of Object.entries(await listings())) {
      assert.deepEqual(l, { ids: ids('alpha', 'beta', 'gamma'), incomplete: undefined, unanswered: undefined }, transport);
    }
  });

  test('a killed instance still registered (SIGKILL): incomplete, named with not_listening', async () => {
    gamma.proc.kill('SIGKILL');
    await gamma.exited;
    for (const [transport, l] of Object.entries(await listings())) {
      assert.deepEqual(l, { ids: ids('alpha', 'beta'), incomplete: true, unanswered: [{ instance: 'gamma', reason: 'not_listening' }] }, transport);
    }
  });
});
