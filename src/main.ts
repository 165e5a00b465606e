/**
 * Composition root: config → ZooKeeper (configured or embedded) → core → transports.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Config } from './config/schema.js';
import { Gateway, type Logger } from './core/index.js';
import { createRestApp } from './api/rest/app.js';
import { startEmbeddedZooKeeper, type EmbeddedZooKeeper } from './zk/index.js';

export interface RunningGateway {
  readonly gateway: Gateway;
  readonly httpPort: number;
  readonly connectString: string;
  readonly embedded: EmbeddedZooKeeper | null;
  /** Stops listeners, closes sessions, stops the embedded ZooKeeper; idempotent. */
  close(): Promise<void>;
}

function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/** Starts everything the config asks for and resolves once the listeners are bound. */
export async function startGateway(config: Config, logger: Logger): Promise<RunningGateway> {
  let embedded: EmbeddedZooKeeper | null = null;
  let connect = config.zookeeper.connect;
  if (!connect) {
    embedded = await startEmbeddedZooKeeper({ dataDir: config.embedded.dataDir, port: config.embedded.port });
    connect = embedded.connectString;
    logger.info({ connect, dataDir: config.embedded.dataDir }, 'no zookeeper configured: started the embedded local server');
  }
  const gateway = new Gateway(config, connect, logger);
  await gateway.start();
  const http = createServer(createRestApp(gateway));
  const httpPort = await listen(http, config.http.port, config.http.bind);
  logger.info({ httpPort, bind: config.http.bind, zookeeper: connect }, 'zkgate listening');

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      await new Promise<void>((r) => {
        http.close(() => r());
        http.closeAllConnections();
      });
      gateway.close();
      await embedded?.stop();
    })());
  return { gateway, httpPort, connectString: connect, embedded, close };
}
