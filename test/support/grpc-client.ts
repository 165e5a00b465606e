/**
 * A grpc-js client for the gateway's gRPC API, built from the same proto files (nothing is
 * generated): one client per zkgate.v1 service plus grpc.health.v1, and a promise wrapper for
 * unary calls that keeps the status, the `zkgate-error-code` metadata and the details.
 */
import { Metadata, credentials, loadPackageDefinition, type Client, type GrpcObject, type ServiceClientConstructor, type ServiceError } from '@grpc/grpc-js';
import { loadContract } from '../../src/api/grpc/server.js';
import { validateConfig } from '../../src/config/schema.js';
import { silentLogger } from '../../src/core/index.js';
import { startGateway, type RunningGateway } from '../../src/main.js';
import { startZkServer, type ZkStandalone } from './zk-server.js';
import { untilReady } from './test-gateway.js';

export type ServiceName = 'Znodes' | 'Leases' | 'Locks' | 'Elections' | 'Watch' | 'Queues' | 'Semaphores' | 'Jobs' | 'Registry' | 'ReadWriteLocks' | 'Barriers';

/** A client's generic method signature (proto-loader clients are untyped). */
type Method = (req: unknown, md: Metadata, opts: { deadline?: number }, cb: (err: ServiceError | null, res: unknown) => void) => unknown;

export interface GrpcTestClient {
  readonly services: Readonly<Record<ServiceName, Client>>;
  readonly health: Client;
  /** Calls a unary RPC; rejects with the ServiceError. */
  unary<T = Record<string, unknown>>(service: ServiceName, method: string, req: unknown, opts?: CallOptions): Promise<T>;
  /** Metadata for a call (tenant when given). */
  metadata(tenant?: string): Metadata;
  close(): void;
}

export interface CallOptions {
  /** Relative deadline, ms. */
  readonly deadlineMs?: number;
  /** `zkgate-tenant` metadata. */
  readonly tenant?: string;
}

/** The stable error code a failed call carries in its trailing metadata. */
export function errorCode(err: unknown): string | undefined {
  const md = (err as ServiceError).metadata;
  const v = md?.get('zkgate-error-code')[0];
  return typeof v === 'string' ? v : undefined;
}

export interface ClientOptions {
  /** grpc channel options. */
  readonly channel?: Record<string, number>;
  /** Use TLS, trusting this CA certificate (PEM). */
  readonly ca?: Buffer;
  /** Send `authorization: Bearer <apiKey>` on every call. */
  readonly apiKey?: string;
}

/** Connects to `127.0.0.1:port`. */
export function grpcClient(port: number, opts: ClientOptions = {}): GrpcTestClient {
  const options = opts.channel ?? {};
  const root = loadPackageDefinition(loadContract());
  const v1 = (root.zkgate as GrpcObject).v1 as GrpcObject;
  const address = `127.0.0.1:${port}`;
  const creds = opts.ca ? credentials.createSsl(opts.ca) : credentials.createInsecure();
  const make = (ctor: unknown): Client => new (ctor as ServiceClientConstructor)(address, creds, options);
  const names: ServiceName[] = ['Znodes', 'Leases', 'Locks', 'Elections', 'Watch', 'Queues', 'Semaphores', 'Jobs', 'Registry', 'ReadWriteLocks', 'Barriers'];
  const services = Object.fromEntries(names.map((n) => [n, make(v1[n])])) as Record<ServiceName, Client>;
  const health = make((((root.grpc as GrpcObject).health as GrpcObject).v1 as GrpcObject).Health);
  const metadata = (tenant?: string): Metadata => {
    const md = new Metadata();
    if (tenant) md.set('zkgate-tenant', tenant);
    if (opts.apiKey) md.set('authorization', `Bearer ${opts.apiKey}`);
    return md;
  };
  return {
    services,
    health,
    metadata,
    unary<T>(service: ServiceName, method: string, req: unknown, opts: CallOptions = {}): Promise<T> {
      const client = services[service] as unknown as Record<string, Method>;
      const fn = client[method];
      if (!fn) throw new Error(`no method ${service}.${method}`);
      return new Promise<T>((resolve, reject) => {
        const callOpts = opts.deadlineMs === undefined ? {} : { deadline: Date.now() + opts.deadlineMs };
        fn.call(client, req, metadata(opts.tenant), callOpts, (err, res) => (err ? reject(err) : resolve(res as T)));
      });
    },
    close() {
      for (const c of Object.values(services)) c.close();
      health.close();
    },
  };
}

/** A real ZooKeeper, a gateway on free ports in front of it, and a gRPC client to the gateway. */
export interface GrpcFixture {
  readonly zk: ZkStandalone;
  readonly gw: RunningGateway;
  readonly client: GrpcTestClient;
  close(): Promise<void>;
}

/** Starts a {@link GrpcFixture}; `config` is merged over a silent, free-port configuration. */
export async function startGrpcFixture(config: Record<string, unknown> = {}): Promise<GrpcFixture> {
  const zk = await startZkServer();
  const gw = await startGateway(
    validateConfig({ zookeeper: { connect: zk.connectString }, http: { port: 0 }, log: { level: 'silent' }, ...config }),
    silentLogger,
  );
  await untilReady(gw);
  const client = grpcClient(gw.grpcPort);
  return {
    zk,
    gw,
    client,
    close: async () => {
      client.close();
      await gw.close();
      await zk.close();
    },
  };
}
