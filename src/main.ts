/**
 * Composition root: config → ZooKeeper (configured or embedded) → core → transports (REST and
 * WebSocket share one HTTP server).
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { ConfigError, type Config } from './config/schema.js';
import { Gateway, exposureCheck, type Logger } from './core/index.js';
import { createRestApp } from './api/rest/app.js';
import { startGrpcServer } from './api/grpc/server.js';
import { attachWebSocket } from './api/ws/server.js';
import { startEmbeddedZooKeeper, type EmbeddedZooKeeper } from './zk/index.js';

export interface RunningGateway {
  readonly gateway: Gateway;
  readonly httpPort: number;
  /** The bound gRPC port. */
  readonly grpcPort: number;
  readonly connectString: string;
  readonly embedded: EmbeddedZooKeeper | null;
  /** TCP connections the HTTP listener holds open now (requests, WebSockets, refused upgrades not yet closed). */
  openConnections(): Promise<number>;
  /** Stops listeners, closes sessions, stops the embedded ZooKeeper; idempotent. */
  close(): Promise<void>;
}

/** Slow clients cannot hold a connection forever while sending headers or a body (slowloris). */
const SERVER_TIMEOUTS = { headersTimeout: 10_000, requestTimeout: 60_000 } as const;

function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
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

/** Starts everything the config asks for and resolves once the listeners are bound. */
export async function startGateway(config: Config, logger: Logger): Promise<RunningGateway> {
  checkExposure(config, logger);
  const tls = config.tls ? readTlsFiles(config.tls) : null;
  let embedded: EmbeddedZooKeeper | null = null;
  let connect = config.zookeeper.connect;
  if (!connect) {
    embedded = await startEmbeddedZooKeeper({ dataDir: config.embedded.dataDir, port: config.embedded.port });
    connect = embedded.connectString;
    logger.info({ connect, dataDir: config.embedded.dataDir }, 'no zookeeper configured: started the embedded local server');
  }
  const gateway = new Gateway(config, connect, logger);
  await gateway.start();
  const app = createRestApp(gateway);
  const http = tls ? createTlsServer({ ...tls, ...SERVER_TIMEOUTS }, app) : createServer(SERVER_TIMEOUTS, app);
  const ws = attachWebSocket(http, gateway);
  const httpPort = await listen(http, config.http.port, config.http.bind);
  const grpc = await startGrpcServer(gateway, { ...config.grpc, bind: config.http.bind, tls });
  logger.info({ httpPort, grpcPort: grpc.port, bind: config.http.bind, tls: Boolean(tls), auth: gateway.auth.required, zookeeper: connect }, 'zkgate listening');

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      ws.close();
      await Promise.all([
        new Promise<void>((r) => {
          http.close(() => r());
          http.closeAllConnections();
        }),
        grpc.close(),
      ]);
      gateway.close();
      await embedded?.stop();
    })());
  const openConnections = (): Promise<number> =>
    new Promise((resolve, reject) => http.getConnections((err, n) => (err ? reject(err) : resolve(n))));
  return { gateway, httpPort, grpcPort: grpc.port, connectString: connect, embedded, openConnections, close };
}
