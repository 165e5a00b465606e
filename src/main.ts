/**
 * Composition root: config → ZooKeeper (configured or embedded) → core → transports (REST and
 * WebSocket share one HTTP server).
 */
import { readFileSync } from 'node:fs';
import type { Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConfigError, type Config } from './config/schema.js';
import { Gateway, exposureCheck, type Logger } from './core/index.js';
import { createRestApp } from './api/rest/app.js';
import { withFastPath } from './api/rest/fast-path.js';
import { buildGrpcServer } from './api/grpc/server.js';
import { attachWebSocket } from './api/ws/server.js';
import { createHttpListener } from './api/http-listener.js';
import { registerInstance, setNativeLogLevel, startEmbeddedZooKeeper, type EmbeddedZooKeeper, type InstanceRegistration } from './zk/index.js';
import { startClusterListener } from './cluster-listener.js';
import { randomBytes } from 'node:crypto';
import { projectFile } from './project-files.js';

/** The package version, published in the instance's member record. */
const GATEWAY_VERSION = (JSON.parse(readFileSync(projectFile('package.json'), 'utf8')) as { version: string }).version;

export interface RunningGateway {
  readonly gateway: Gateway;
  readonly httpPort: number;
  /** The bound gRPC port. */
  readonly grpcPort: number;
  /** Whether the gRPC fast path answers the hot reads (config grpc.fastPath, and grpc-js as expected). */
  readonly grpcFastPath: boolean;
  readonly connectString: string;
  readonly embedded: EmbeddedZooKeeper | null;
  /**
   * TCP connections each listener holds open now (HTTP: requests, WebSockets, refused upgrades
   * not yet closed; gRPC: connections in their handshake or preface and HTTP/2 sessions).
   */
  connections(): { readonly http: number; readonly grpc: number; readonly cluster: number };
  /** Stops listeners, closes sessions, stops the embedded ZooKeeper at once; idempotent. */
  close(): Promise<void>;
  /**
   * Graceful shutdown (README "Shutdown"): stops accepting, ends streams with a reason, lets
   * running requests finish for `shutdown.drainTimeoutMs`, answers waits still running 503,
   * then `close`. Idempotent; `close` may still be called to cut it short.
   */
  shutdown(): Promise<void>;
}

/** Start-up failed for a reason the operator must fix; the message is the one line to print. */
export class StartupError extends Error {
  override readonly name = 'StartupError';
}

/** What to tell the operator about a port that cannot be bound. */
function bindProblem(what: string, key: string, flag: string, host: string, port: number, err: unknown): StartupError {
  const code = (err as NodeJS.ErrnoException).code ?? '';
  const text = err instanceof Error ? err.message : String(err);
  const cause = code === 'EADDRINUSE' || text.includes('EADDRINUSE') ? 'is already in use' : code === 'EACCES' || text.includes('EACCES') ? 'needs more privileges' : `cannot be bound (${text.split('\n')[0]})`;
  return new StartupError(`zkgate: ${what} port ${port} on ${host} ${cause}: choose another with ${key} (${flag})`);
}

function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const fail = (err: Error): void => reject(bindProblem('HTTP', 'http.port', '--http-port / ZKGATE_HTTP_PORT', host, port, err));
    server.once('error', fail);
    server.listen(port, host, () => {
      server.off('error', fail);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/** The TLS certificate and key files' contents. @throws ConfigError naming the file (never its content) */
export function readTlsFiles(tls: NonNullable<Config['tls']>): { cert: Buffer; key: Buffer } {
  const read = (field: string, file: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new ConfigError(`cannot read tls.${field} ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    }
  };
  return { cert: read('certFile', tls.certFile), key: read('keyFile', tls.keyFile) };
}

/** Every address a listener binds. */
function bindAddresses(config: Config): string[] {
  return [config.http.bind];
}

/**
 * Refuses to start when a non-loopback listener would serve without API keys (unless allowed);
 * warns loudly whenever there are no keys. @throws ConfigError
 */
function checkExposure(config: Config, logger: Logger): void {
  const keys = config.tenants.some((t) => t.apiKeys.length > 0);
  const exposure = exposureCheck(bindAddresses(config), keys, config.security.allowUnauthenticatedPublicBind);
  if (exposure.refuse) throw new ConfigError(exposure.refuse);
  if (exposure.warn) logger.warn({ security: 'unauthenticated' }, exposure.warn);
}

/** Resolves after `ms` (unref'd: never keeps the process alive). */
function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}

/**
 * Starts everything the config asks for and resolves once the listeners are bound. On any
 * failure what was already started (the embedded ZooKeeper, sessions, listeners) is stopped.
 * @throws ConfigError, StartupError (port in use…), EmbeddedUnavailableError
 */
export async function startGateway(config: Config, logger: Logger): Promise<RunningGateway> {
  checkExposure(config, logger);
  const tls = config.tls ? readTlsFiles(config.tls) : null;
  const undo: (() => Promise<void> | void)[] = [];
  try {
    return await startParts(config, logger, tls, undo);
  } catch (err) {
    for (const step of undo.reverse()) await Promise.resolve(step()).catch(() => undefined);
    throw err;
  }
}

async function startParts(config: Config, logger: Logger, tls: { cert: Buffer; key: Buffer } | null, undo: (() => Promise<void> | void)[]): Promise<RunningGateway> {
  let embedded: EmbeddedZooKeeper | null = null;
  let closeInstance = (): void => undefined;
  setNativeLogLevel(config.zookeeper.clientLogLevel);
  let connect = config.zookeeper.connect;
  if (!connect) {
    embedded = await startEmbeddedZooKeeper({ dataDir: config.embedded.dataDir, port: config.embedded.port });
    const started = embedded;
    undo.push(() => started.stop());
    connect = embedded.connectString;
    logger.info({ connect, dataDir: config.embedded.dataDir }, 'no zookeeper configured: started the embedded local server');
  }
  logger.info({ zookeeper: connect, tenants: config.tenants.map((t) => t.name) }, `connecting to ${connect}`);
  // In a cluster (docs/cluster.md) the internal listener is up before the instance registers, so
  // every registered address answers; a cluster instance without a configured id gets a random one.
  const clustered = Boolean(config.cluster.secret);
  const instanceId = config.instanceId ?? (clustered ? `gw-${randomBytes(4).toString('hex')}` : undefined);
  const incarnation = randomBytes(4).toString('hex');
  const internal = clustered ? await startClusterListener(config.cluster, config.http.bind) : null;
  if (internal) undo.push(() => internal.close());
  let registration: InstanceRegistration | null = null;
  if (instanceId) {
    const record = { incarnation, address: internal?.address ?? '', version: GATEWAY_VERSION, startedAt: new Date().toISOString() };
    const instance = await registerInstance({ connect, path: config.instances.path, instanceId, sessionTimeoutMs: 10_000, connectTimeoutMs: 15_000, record });
    if (instance) undo.push(() => instance.close());
    else logger.warn({ instanceId }, 'zookeeper not reachable: could not check that instanceId is unique');
    if (clustered && !instance) throw new StartupError(`zkgate: cluster instance ${instanceId} could not register in zookeeper at ${connect}`);
    registration = instance;
    closeInstance = () => instance?.close();
  }
  const member = registration && clustered ? { incarnation, membership: registration } : undefined;
  const gateway = new Gateway({ ...config, ...(instanceId ? { instanceId } : {}) }, connect, logger, member);
  if (internal && gateway.cluster) internal.serve(gateway.cluster);
  undo.push(() => gateway.close());
  // The transports are built before the sessions connect: building them (the OpenAPI document,
  // the gRPC contract, the docs pages) holds the event loop for a second, several on a loaded
  // machine, and a session that had just connected missed its pings and was suspended, or
  // expired (session timeout 4 s), before the first request (seen in tests at load 11).
  const express = createRestApp(gateway);
  const app = config.http.fastPath ? withFastPath(gateway, express) : express;
  // Connection bounds and timeouts that close slow or silent clients: see src/api/http-listener.ts.
  const { server: http, guard: httpGuard, drain: drainListener } = createHttpListener(app, config.http, tls);
  const ws = attachWebSocket(http, gateway);
  const grpcServer = buildGrpcServer(gateway, { ...config.grpc, bind: config.http.bind, tls });
  await gateway.start();
  const httpPort = await listen(http, config.http.port, config.http.bind);
  undo.push(() => new Promise<void>((r) => http.close(() => r())));
  const grpc = await grpcServer.listen().catch((err: unknown) => {
    throw bindProblem('gRPC', 'grpc.port', '--grpc-port / ZKGATE_GRPC_PORT', config.http.bind, config.grpc.port, err);
  });
  logger.info({ httpPort, grpcPort: grpc.port, bind: config.http.bind, tls: Boolean(tls), auth: gateway.auth.required, zookeeper: connect }, 'zkgate listening');

  // HTTP requests running now (a WebSocket is not one): the drain waits for them.
  const runningResponses = new Set<ServerResponse>();
  let idle: (() => void) | undefined;
  http.on('request', (_req, res: ServerResponse) => {
    runningResponses.add(res);
    res.once('close', () => {
      runningResponses.delete(res);
      if (runningResponses.size === 0) idle?.();
    });
  });
  const drained = (): Promise<void> => (runningResponses.size === 0 ? Promise.resolve() : new Promise((r) => (idle = r)));

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      gateway.beginShutdown();
      ws.close();
      await Promise.all([
        new Promise<void>((r) => {
          http.close(() => r());
          http.closeAllConnections();
          // closeAllConnections knows only HTTP requests: WebSockets (given ws.close()'s second to
          // close), refused upgrades and half-closed sockets are destroyed by the listener's guard.
          setTimeout(() => httpGuard.destroyAll(), 1000).unref();
        }),
        grpc.close(),
      ]);
      gateway.close();
      closeInstance();
      await internal?.close();
      await embedded?.stop();
    })());
  const connections = (): { http: number; grpc: number; cluster: number } => ({ http: httpGuard.open, grpc: grpc.guard.open, cluster: internal?.connections ?? 0 });

  let shuttingDown: Promise<void> | undefined;
  const shutdown = (): Promise<void> =>
    (shuttingDown ??= (async () => {
      const { drainTimeoutMs } = config.shutdown;
      // A request a balancer routes here between the signal and its next health check would be
      // refused 503; answering /readyz 503 first while still serving closes that window.
      const unreadyDelayMs = config.shutdown.unreadyDelayMs ?? (gateway.cluster ? 1000 : 0);
      if (unreadyDelayMs > 0) {
        gateway.announceShutdown();
        logger.info({ unreadyDelayMs }, 'shutdown: /readyz answers 503; still serving until the balancer has seen it');
        await sleep(unreadyDelayMs);
      }
      gateway.beginShutdown(); // /readyz 503, watch streams end with UNAVAILABLE
      ws.close(); // 1001 "gateway shutting down"
      // No new connections; idle keep-alive ones are ended now and the others once their
      // answer is sent, so a balancer that keeps server connections open cannot send one a
      // request that would be refused 503 (a request racing the close is never run: the
      // balancer reads a clean close and retries it elsewhere; src/api/http-listener.ts).
      drainListener();
      // Answers still to come say `Connection: close` (Node would keep their connections open):
      // a balancer reusing server connections learns not to send another request on them.
      for (const res of runningResponses) if (!res.headersSent) res.setHeader('connection', 'close');
      const grpcDone = grpc.close(drainTimeoutMs);
      // In a cluster the leases and their sessions go to a live instance first; waits running
      // here were stopped and are carried on there, so the drain below does not wait for them.
      if (gateway.cluster) await gateway.cluster.handoff().catch((err: unknown) => logger.error({ err }, 'cluster: handoff failed'));
      await Promise.race([drained(), sleep(drainTimeoutMs)]);
      if (runningResponses.size > 0) {
        logger.info({ running: runningResponses.size }, 'drain time over: answering the waits still running 503');
        gateway.endWaits();
        await Promise.race([drained(), sleep(1000)]);
      }
      await grpcDone;
      await close();
    })());
  return { gateway, httpPort, grpcPort: grpc.port, grpcFastPath: grpc.fastPath, connectString: connect, embedded, connections, close, shutdown };
}
