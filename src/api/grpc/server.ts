/**
 * The gRPC transport: loads the contract from proto/ with proto-loader, registers one adapter
 * per service plus grpc.health.v1 and server reflection, and binds the configured port.
 */
import { Server, loadPackageDefinition, type GrpcObject, type ServiceClientConstructor, type ServiceDefinition, type UntypedServiceImplementation } from '@grpc/grpc-js';
import { loadSync, type Options, type PackageDefinition } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { Gateway } from '../../core/index.js';
import { projectFile } from '../../project-files.js';
import { electionsService } from './elections.js';
import { gatewayHealth } from './health.js';
import { leasesService } from './leases.js';
import { locksService } from './locks.js';
import { ZNODES_FAST, znodesService } from './nodes.js';
import { semaphoresService } from './semaphores.js';
import { rwLocksService } from './rw-locks.js';
import { watchService } from './watch.js';
import { registryService } from './registry.js';
import { queuesService } from './queues.js';
import { barriersService } from './barriers.js';
import { lenientDecoding } from './malformed.js';
import { accessLogInterceptor } from './access-log.js';
import { listenGrpc, type GrpcListenerOptions } from './listener.js';
import { grpcFastPath, type FastMethod, type FastStreams } from './fast-path.js';
import type { ConnectionGuard } from '../listener-guard.js';
import { jobsService } from './jobs.js';

const require = createRequire(import.meta.url);

/** The zkgate.v1 proto files, relative to proto/. */
export const PROTO_FILES = ['common', 'znodes', 'leases', 'locks', 'elections', 'watch', 'queue', 'semaphore', 'jobs', 'registry', 'rwlock', 'barrier'].map((f) => `zkgate/v1/${f}.proto`);

/** How proto-loader maps messages to objects: camelCase fields (the core's names), enum names, int64 as numbers. */
export const LOADER_OPTIONS: Options = { keepCase: false, longs: Number, enums: String, defaults: true, oneofs: true };

/**
 * The zkgate.v1 contract plus grpc.health.v1, as one package definition (reflection serves both).
 * @param options proto-loader options; `keepCase: true` keeps the .proto field names, as reflection must
 */
export function loadContract(options: Options = LOADER_OPTIONS): PackageDefinition {
  const healthDir = join(dirname(require.resolve('grpc-health-check/package.json')), 'proto');
  return loadSync([...PROTO_FILES, 'health/v1/health.proto'], { ...options, includeDirs: [projectFile('proto'), healthDir] });
}

const SERVICES: Record<string, (gw: Gateway) => UntypedServiceImplementation> = {
  Znodes: znodesService,
  Leases: leasesService,
  Locks: locksService,
  Elections: electionsService,
  Watch: watchService,
  Queues: queuesService,
  Semaphores: semaphoresService,
  Jobs: jobsService,
  Registry: registryService,
  ReadWriteLocks: rwLocksService,
  Barriers: barriersService,
};

/** The `grpc` config plus the listen address and the TLS files' contents (absent = plaintext). */
export interface GrpcOptions extends GrpcListenerOptions {
  /** Answer the hot reads without grpc-js' per-call machinery (fast-path.ts); off only to compare. */
  readonly fastPath: boolean;
}

export interface RunningGrpc {
  /** The bound port. */
  readonly port: number;
  /** The listener's connection count and bounds. */
  readonly guard: ConnectionGuard;
  /** Whether the fast path answers the hot reads. */
  readonly fastPath: boolean;
  /** Stops accepting calls, waits up to `graceMs` (default 2 s) for running ones, then cancels the rest; idempotent. */
  close(graceMs?: number): Promise<void>;
}

/**
 * Builds the gRPC server for `gw` (the contract loaded, the services added) without binding it:
 * the CPU-heavy part of starting, done before the gateway's ZooKeeper sessions connect (see
 * `startParts` in main.ts). `listen` binds it.
 */
export function buildGrpcServer(gw: Gateway, opts: GrpcOptions): { listen(): Promise<RunningGrpc> } {
  const definition = loadContract();
  const v1 = (loadPackageDefinition(definition).zkgate as GrpcObject).v1 as GrpcObject;
  const server = new Server({
    'grpc.max_receive_message_length': opts.maxMessageBytes,
    'grpc.max_send_message_length': opts.maxMessageBytes,
    'grpc.max_concurrent_streams': opts.maxConcurrentStreams,
    'grpc.max_connection_idle_ms': opts.maxConnectionIdleMs,
    ...(opts.maxConnectionAgeMs > 0 ? { 'grpc.max_connection_age_ms': opts.maxConnectionAgeMs, 'grpc.max_connection_age_grace_ms': opts.maxConnectionAgeGraceMs } : {}),
    'grpc.keepalive_time_ms': opts.keepaliveTimeMs,
    'grpc.keepalive_timeout_ms': opts.keepaliveTimeoutMs,
    // Nothing serves channelz; grpc-js would track every call and message for it.
    'grpc.enable_channelz': 0,
    interceptors: [accessLogInterceptor(gw.logger)],
  });
  const fast = new Map<string, FastMethod>();
  for (const [name, implement] of Object.entries(SERVICES)) {
    const service = lenientDecoding((v1[name] as ServiceClientConstructor).service);
    server.addService(service, implement(gw));
    if (name === 'Znodes') {
      for (const [method, body] of Object.entries(ZNODES_FAST)) {
        const def = service[method] as ServiceDefinition[string];
        fast.set(def.path, { requestDeserialize: def.requestDeserialize, responseSerialize: def.responseSerialize, body });
      }
    }
  }
  const { health, stop } = gatewayHealth(gw, Object.keys(SERVICES).map((n) => `zkgate.v1.${n}`));
  health.addToServer(server);
  // Reflection describes the contract as written (snake_case fields), not the loader's camelCase view.
  new ReflectionService(loadContract({ ...LOADER_OPTIONS, keepCase: true })).addToServer(server);

  const fastPath = opts.fastPath ? grpcFastPath(gw, fast, opts.maxMessageBytes) : undefined;
  return { listen: () => listenBuilt(server, opts, fastPath, stop) };
}

/** Binds a built server; its `close` also detaches the health service (`stop`). */
async function listenBuilt(server: Server, opts: GrpcOptions, fast: FastStreams | undefined, stop: () => void): Promise<RunningGrpc> {
  const listener = await listenGrpc(server, opts, fast);
  let closing: Promise<void> | undefined;
  const close = (graceMs = 2000): Promise<void> =>
    (closing ??= new Promise<void>((resolve) => {
      stop();
      listener.close();
      // Whichever way grpc-js ends, no socket stays: a session it closed gracefully only ends its
      // socket and waits for a FIN that a hostile or hung client never sends.
      const done = (): void => {
        listener.destroyAll();
        resolve();
      };
      const force = setTimeout(() => {
        server.forceShutdown();
        done();
      }, graceMs);
      server.tryShutdown(() => {
        clearTimeout(force);
        done();
      });
    }));
  return { port: listener.port, guard: listener.guard, fastPath: listener.fastPath, close };
}
