/**
 * The internal listener other instances of a cluster forward calls to (docs/cluster.md): plain
 * HTTP on `cluster.bind:cluster.port`, every request signed with the cluster secret (checked by
 * core). Until the gateway is wired, it answers 503.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Cluster } from './core/index.js';

export interface ClusterListener {
  /** The URL other instances use: `cluster.advertise`, else `http://<bind>:<port>`. */
  readonly address: string;
  /** Starts handing requests to `cluster`. */
  serve(cluster: Cluster): void;
  close(): Promise<void>;
}

/** Binds the internal listener. */
export async function startClusterListener(opts: { port: number; bind?: string; advertise?: string }, httpBind: string): Promise<ClusterListener> {
  let target: Cluster | null = null;
  const server = createServer((req, res) => {
    if (target) target.handle(req, res);
    else res.writeHead(503).end();
  });
  server.keepAliveTimeout = 65_000;
  const bind = opts.bind ?? httpBind;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, bind, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const host = bind.includes(':') ? `[${bind}]` : bind === '0.0.0.0' ? '127.0.0.1' : bind;
  const address = opts.advertise ?? `http://${host}:${port}`;
  let closing: Promise<void> | undefined;
  return {
    address,
    serve: (c) => void (target = c),
    close: () =>
      (closing ??= new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      })),
  };
}
