import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { credentials, loadPackageDefinition, status, type ClientDuplexStream, type ClientReadableStream, type GrpcObject, type ServiceClientConstructor, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { generateApiKey, hashApiKey, silentLogger } from '../../src/core/index.js';
import { validateConfig } from '../../src/config/schema.js';
import { startGateway, type RunningGateway } from '../../src/main.js';
import type { ZkStandalone } from '../support/zk-server.js';
import { makeTestCert } from '../support/tls.js';
import { errorCode, grpcClient, startGrpcFixture, type GrpcFixture, type GrpcTestClient } from '../support/grpc-client.js';

type Msg = Record<string, unknown>;
const require = createRequire(import.meta.url);

let fx: GrpcFixture;
let zk: ZkStandalone;
let gw: RunningGateway;
let c: GrpcTestClient;

before(async () => {
  fx = await startGrpcFixture({ grpc: { maxConcurrentStreams: 2 }, tenants: [{ name: 'default', sessionTimeoutMs: 10_000 }] });
  ({ zk, gw, client: c } = fx);
});

after(() => fx?.close());

function reflectionClient(): { ServerReflectionInfo(): ClientDuplexStream<Msg, Msg>; close(): void } {
  const dir = join(dirname(require.resolve('@grpc/reflection/package.json')), 'build', 'proto');
  const def = loadSync('grpc/reflection/v1/reflection.proto', { includeDirs: [dir], keepCase: false, longs: String, defaults: true, oneofs: true });
  const ctor = (((loadPackageDefinition(def).grpc as GrpcObject).reflection as GrpcObject).v1 as GrpcObject).ServerReflection as ServiceClientConstructor;
  return new ctor(`127.0.0.1:${gw.grpcPort}`, credentials.createInsecure()) as never;
}

function reflect(req: Msg): Promise<Msg> {
  const client = reflectionClient();
  const stream = client.ServerReflectionInfo();
  return new Promise((resolve, reject) => {
    stream.once('data', (m: Msg) => {
      stream.end();
      client.close();
      resolve(m);
    });
    stream.once('error', reject);
    stream.write(req);
  });
}

describe('grpc auth and TLS', () => {
  const keys = { read: generateApiKey(), write: generateApiKey(), other: generateApiKey(), beta: generateApiKey() };
  let secured: RunningGateway;
  const cert = makeTestCert();
  const as = (key?: string): GrpcTestClient => grpcClient(secured.grpcPort, { ca: cert.cert, apiKey: key });

  before(async () => {
    secured = await startGateway(
      validateConfig({
        zookeeper: { connect: zk.connectString },
        http: { port: 0 },
        log: { level: 'silent' },
        tls: { certFile: cert.certFile, keyFile: cert.keyFile },
        tenants: [
          {
            name: 'alpha',
            chroot: '/alpha',
            apiKeys: [
              { sha256: hashApiKey(keys.read), role: 'read' },
              { sha256: hashApiKey(keys.write), role: 'write' },
              { sha256: hashApiKey(keys.other), role: 'write' },
            ],
          },
          { name: 'beta', chroot: '/beta', apiKeys: [{ sha256: hashApiKey(keys.beta), role: 'admin' }] },
        ],
      }),
      silentLogger,
    );
  });
  after(() => secured?.close());

  test('over TLS: no key is UNAUTHENTICATED, a read key may not write, a key cannot name another tenant or use another key\'s lease', async () => {
    const anon = as();
    const reader = as(keys.read);
    const writer = as(keys.write);
    const other = as(keys.other);
    try {
      const noKey = await anon.unary('Znodes', 'Get', { path: '/' }).catch((e: ServiceError) => e);
      assert.deepEqual([(noKey as ServiceError).code, errorCode(noKey)], [status.UNAUTHENTICATED, 'UNAUTHENTICATED']);
      assert.equal((await writer.unary<{ path: string }>('Znodes', 'Create', { path: '/w', data: Buffer.from('x') })).path, '/w');
      assert.equal(Buffer.from((await reader.unary<{ data: Buffer }>('Znodes', 'Get', { path: '/w' })).data).toString(), 'x');
      const denied = await reader.unary('Znodes', 'Set', { path: '/w', data: Buffer.from('y') }).catch((e: ServiceError) => e);
      assert.deepEqual([(denied as ServiceError).code, errorCode(denied)], [status.PERMISSION_DENIED, 'PERMISSION_DENIED']);
      const cross = await writer.unary('Znodes', 'Get', { path: '/' }, { tenant: 'beta' }).catch((e: ServiceError) => e);
      assert.equal((cross as ServiceError).code, status.PERMISSION_DENIED);
      const lease = await writer.unary<{ id: string }>('Leases', 'Grant', { ttlMs: 5000 });
      const theirs = await other.unary('Leases', 'Revoke', { id: lease.id }).catch((e: ServiceError) => e);
      assert.equal((theirs as ServiceError).code, status.PERMISSION_DENIED);
      const ka = (anon.services.Leases as unknown as { KeepAlive(md: unknown): ClientDuplexStream<Msg, Msg> }).KeepAlive(anon.metadata());
      const ended = await new Promise<ServiceError>((resolve) => ka.on('error', resolve));
      assert.equal(ended.code, status.UNAUTHENTICATED);
      await writer.unary('Leases', 'Revoke', { id: lease.id });
    } finally {
      for (const cl of [anon, reader, writer, other]) cl.close();
    }
  });
});

describe('grpc server plumbing', () => {
  test('reflection lists every zkgate service and health, and serves their descriptors', async () => {
    const listed = await reflect({ listServices: '' });
    const names = ((listed.listServicesResponse as Msg).service as { name: string }[]).map((s) => s.name).sort();
    for (const n of ['zkgate.v1.Znodes', 'zkgate.v1.Leases', 'zkgate.v1.Locks', 'zkgate.v1.Elections', 'zkgate.v1.Watch', 'grpc.health.v1.Health']) {
      assert.ok(names.includes(n), `${n} in ${names.join(', ')}`);
    }
    const file = await reflect({ fileContainingSymbol: 'zkgate.v1.Locks' });
    const protos = (file.fileDescriptorResponse as Msg).fileDescriptorProto as Buffer[];
    assert.ok(protos.length >= 1);
    // proto-loader serves one synthesized file per package (zkgate_v1.proto) holding every message and service.
    const zkgate = protos.map((p) => Buffer.from(p)).find((p) => p.includes('zkgate_v1.proto'));
    assert.ok(zkgate, 'the zkgate.v1 descriptor');
    for (const symbol of ['Locks', 'Acquire', 'AcquireRequest', 'fencing_token', 'Watch', 'KeepAlive']) assert.ok(zkgate.includes(symbol), symbol);
  });

  test('streams per connection are limited by grpc.maxConcurrentStreams', async () => {
    const leases = c.services.Leases as unknown as { KeepAlive(md: unknown): ClientDuplexStream<Msg, Msg> };
    const open = [leases.KeepAlive(c.metadata()), leases.KeepAlive(c.metadata())];
    for (const s of open) s.on('error', () => undefined);
    await new Promise((r) => setTimeout(r, 200));
    // A third call on the same connection waits for a free stream and runs out of time.
    await assert.rejects(c.unary('Znodes', 'Exists', { path: '/' }, { deadlineMs: 500 }), (e: ServiceError) => e.code === status.DEADLINE_EXCEEDED);
    open[0]?.end();
    const ok = await c.unary<{ exists: boolean }>('Znodes', 'Exists', { path: '/' }, { deadlineMs: 5000 });
    assert.equal(ok.exists, true);
    open[1]?.end();
  });

  test('health is SERVING while the session is connected; Watch reports NOT_SERVING and UNAVAILABLE answers while ZooKeeper is away', async () => {
    const check = (service: string): Promise<Msg> =>
      new Promise((resolve, reject) =>
        (c.health as unknown as { Check(r: Msg, cb: (e: ServiceError | null, r: Msg) => void): void }).Check({ service }, (e, r) => (e ? reject(e) : resolve(r))),
      );
    assert.equal((await check('')).status, 'SERVING');
    assert.equal((await check('zkgate.v1.Locks')).status, 'SERVING');
    const watch = (c.health as unknown as { Watch(r: Msg): ClientReadableStream<Msg> }).Watch({ service: '' });
    const seen: string[] = [];
    watch.on('data', (m: Msg) => seen.push(String(m.status)));
    watch.on('error', () => undefined);
    const until = async (want: string, ms = 15_000): Promise<void> => {
      const end = Date.now() + ms;
      while (seen.at(-1) !== want) {
        if (Date.now() > end) assert.fail(`health watch saw ${seen.join(',')}, wanted ${want}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    await until('SERVING');
    await zk.stop();
    await until('NOT_SERVING');
    await assert.rejects(c.unary('Znodes', 'Get', { path: '/' }), (e: ServiceError) => e.code === status.UNAVAILABLE && errorCode(e) === 'UNAVAILABLE');
    await assert.rejects(c.unary('Leases', 'Grant', { ttlMs: 5000 }), (e: ServiceError) => e.code === status.UNAVAILABLE);
    await zk.start();
    await until('SERVING');
    assert.equal((await c.unary<{ exists: boolean }>('Znodes', 'Exists', { path: '/' })).exists, true);
    watch.cancel();
  });
});
