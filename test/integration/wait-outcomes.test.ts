/**
 * A wait that ends because its client went away is an expected outcome: core answers CANCELLED
 * (never INTERNAL), nothing is logged as an error, and `zkgate_errors_total` counts it under
 * CANCELLED; the waiter's node is deleted. Over REST (client disconnects) and gRPC (call cancelled).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { Writable } from 'node:stream';
import { status, type ClientUnaryCall, type ServiceError } from '@grpc/grpc-js';
import { pino } from 'pino';
import { startGateway, type RunningGateway } from '../../src/main.js';
import { validateConfig } from '../../src/config/schema.js';
import { startZkServer, type ZkStandalone } from '../support/zk-server.js';
import { grpcClient, type GrpcTestClient } from '../support/grpc-client.js';
import { restClient, type RestClient } from '../support/openapi.js';
import { eventually } from '../support/test-gateway.js';

const logLines: { level: number; msg: string }[] = [];
let zk: ZkStandalone;
let gw: RunningGateway;
let rest: RestClient;
let grpc: GrpcTestClient;

before(async () => {
  zk = await startZkServer();
  const logger = pino(
    { level: 'debug' },
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        logLines.push(JSON.parse(chunk.toString('utf8')) as { level: number; msg: string });
        cb();
      },
    }),
  );
  gw = await startGateway(
    validateConfig({ zookeeper: { connect: zk.connectString }, http: { port: 0, bind: '127.0.0.1' }, tenants: [{ name: 'default', sessionTimeoutMs: 10_000 }] }),
    logger,
  );
  rest = restClient(`http://127.0.0.1:${gw.httpPort}`);
  grpc = grpcClient(gw.grpcPort);
});

after(async () => {
  grpc?.close();
  await gw?.close();
  await zk?.close();
});

const lease = async (): Promise<string> => ((await rest.json('POST', '/v1/leases', { ttlMs: 30_000 })).body as { id: string }).id;
const queueLength = async (path: string): Promise<number> => ((await rest.json('GET', `/v1/locks${path}`)).body as { queue: unknown[] }).queue.length;

/** `zkgate_errors_total` for `code` and `transport` (0 when absent). */
async function errorsTotal(code: string, transport: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${gw.httpPort}/metrics`)).text();
  const m = new RegExp(`^zkgate_errors_total\\{code="${code}",transport="${transport}"\\} (\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

const errorLogs = (): string[] => logLines.filter((l) => l.level >= 50).map((l) => l.msg);

describe('a wait whose client went away', () => {
  test('REST: a lock acquire whose client disconnects is CANCELLED, not INTERNAL, and is not logged as an error', async () => {
    const [a, b] = [await lease(), await lease()];
    assert.equal((await rest.json('POST', '/v1/locks/gone', { leaseId: a })).status, 200);
    const body = JSON.stringify({ leaseId: b, waitMs: 60_000 });
    const req = httpRequest(`http://127.0.0.1:${gw.httpPort}/v1/locks/gone`, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } });
    req.on('error', () => undefined);
    req.end(body);
    await eventually(async () => (await queueLength('/gone')) === 2, 10_000, 'the waiter is queued');
    req.destroy();
    await eventually(async () => (await queueLength('/gone')) === 1, 10_000, 'the waiter node is deleted');
    await eventually(async () => (await errorsTotal('CANCELLED', 'rest')) === 1, 10_000, 'CANCELLED counted');
    assert.equal(await errorsTotal('INTERNAL', 'rest'), 0);
    assert.deepEqual(errorLogs(), []);
  });

  test('gRPC: a cancelled acquire is CANCELLED with the zkgate code, not INTERNAL, and is not logged as an error', async () => {
    const [a, b] = [await lease(), await lease()];
    await grpc.unary('Locks', 'Acquire', { path: '/cancelled', leaseId: a }, { deadlineMs: 10_000 });
    const client = grpc.services.Locks as unknown as { Acquire(r: unknown, md: unknown, cb: (e: ServiceError | null) => void): ClientUnaryCall };
    let ended!: (e: ServiceError | null) => void;
    const result = new Promise<ServiceError | null>((r) => (ended = r));
    const call = client.Acquire({ path: '/cancelled', leaseId: b }, grpc.metadata(), ended);
    await eventually(async () => (await queueLength('/cancelled')) === 2, 10_000, 'the waiter is queued');
    call.cancel();
    assert.equal((await result)?.code, status.CANCELLED);
    await eventually(async () => (await queueLength('/cancelled')) === 1, 10_000, 'the waiter node is deleted');
    await eventually(async () => (await errorsTotal('CANCELLED', 'grpc')) === 1, 10_000, 'CANCELLED counted');
    assert.equal(await errorsTotal('INTERNAL', 'grpc'), 0);
    assert.deepEqual(errorLogs(), []);
  });
});
