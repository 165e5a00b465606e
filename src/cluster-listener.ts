/**
 * The internal listener other instances of a cluster forward calls to (docs/cluster.md): plain
 * HTTP on `cluster.bind:cluster.port`, every request signed with the cluster secret (checked by
 * core). Until the gateway is wired, it answers 503. Whoever reaches the port without the secret
 * is a hostile client like any other: the listener is the public one's (src/api/http-listener.ts)
 * with `cluster.*` connection bounds and deadlines, so slow senders are cut, connections are
 * counted per listener and per address, and closing it destroys every connection it accepted.
 * A signed upgrade request opens a peer's persistent connection for forwarded calls
 * (src/core/cluster/frames.ts); it was admitted by the same bounds and header deadline.
 */
import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Cluster } from './core/index.js';
import { createHttpListener, type HttpListenerConfig } from './api/http-listener.js';

export interface ClusterListener {
  /** The URL other instances use: `cluster.advertise`, else `http://<bind>:<port>`. */
  readonly address: string;
  /** Connections open now (counted from accept to close). */
  readonly connections: number;
  /** Starts handing requests to `cluster`. */
  serve(cluster: Cluster): void;
  close(): Promise<void>;
}

/** Binds the internal listener. */
export async function startClusterListener(opts: HttpListenerConfig & { port: number; bind?: string; advertise?: string }, httpBind: string): Promise<ClusterListener> {
  let target: Cluster | null = null;
  const { server, guard } = createHttpListener(
    (req, res) => {
      if (target) target.handle(req, res);
      else res.writeHead(503).end();
    },
    opts,
    null,
    'cluster',
  );
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (target) return target.upgrade(req, socket, head);
    socket.end('HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    socket.destroy();
  });
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
    get connections() {
      return guard.open;
    },
    serve: (c) => void (target = c),
    close: () =>
      (closing ??= new Promise<void>((r) => {
        server.close(() => r());
        // Peers' persistent connections first hear that this instance goes away and are closed
        // by them once the calls they sent are answered (≤ 1 s): new connections are refused.
        void (target?.closeConnections() ?? Promise.resolve()).finally(() => {
          server.closeAllConnections();
          // closeAllConnections knows only sockets with an HTTP request: a half-closed or refused one goes too.
          guard.destroyAll();
        });
      })),
  };
}
