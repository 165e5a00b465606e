/**
 * The REST/WebSocket listener: a Node HTTP (or HTTPS) server with the connection bounds of
 * `http.*` in front, and timeouts that really close slow or silent connections.
 *
 * Node enforces `headersTimeout` and `requestTimeout` only when it sweeps its connection list,
 * every `connectionsCheckingInterval` (default 30 s): with the default a 10 s header timeout
 * cut a slowloris connection after up to 40 s. The sweep here runs a tenth of the shortest
 * timeout (at most every second), so a deadline is kept within about 10 %.
 */
import { createServer, type RequestListener, type Server } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { ZkgateError } from '../core/index.js';
import { answerAndClose, closeAtOnce, ConnectionGuard, destroyAfterEnd, guardConnections, type ConnectionLimits } from './listener-guard.js';
import { countListenerTimeout } from './metrics.js';

export interface HttpListener {
  readonly server: Server;
  readonly guard: ConnectionGuard;
}

/** What the HTTP listener is configured with (the api layer owns it; config's `http` section must fit it). */
export interface HttpListenerConfig extends ConnectionLimits {
  readonly headersTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly idleTimeoutMs: number;
}

/**
 * Creates the (not yet listening) server for `app`; TLS when `tls` is given. `name` labels its
 * metrics and refusals: the public listener is `http`, the cluster's internal one `cluster`.
 */
export function createHttpListener(app: RequestListener, config: HttpListenerConfig, tls: { cert: Buffer; key: Buffer } | null, name: 'http' | 'cluster' = 'http'): HttpListener {
  const options = {
    headersTimeout: config.headersTimeoutMs,
    requestTimeout: config.requestTimeoutMs,
    keepAliveTimeout: config.idleTimeoutMs,
    connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(Math.min(config.headersTimeoutMs, config.requestTimeoutMs) / 10))),
  };
  // With TLS the handshake shares the header deadline: a client that never finishes it is cut too.
  const server: Server = tls ? createTlsServer({ ...tls, ...options, handshakeTimeout: config.headersTimeoutMs }, app) : createServer(options, app);
  const guard = new ConnectionGuard(name, config);
  // Plaintext: a clear 429 problem. TLS: closed before the handshake, which is what a flood costs.
  guardConnections(server, guard, tls ? closeAtOnce : (socket: Socket, err: ZkgateError) => answerAndClose(socket, err));
  if (tls) server.on('secureConnection', destroyAfterEnd); // the TCP socket below never sees the TLS socket's end
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => serverOnClientError(name, err, socket));
  server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    if (err.code === 'ERR_TLS_HANDSHAKE_TIMEOUT') countListenerTimeout(name, 'handshake');
    socket.destroy();
  });
  server.once('close', () => guard.close());
  return { server, guard };
}

const CLIENT_ERROR_ANSWERS: Record<string, string> = {
  ERR_HTTP_REQUEST_TIMEOUT: '408 Request Timeout',
  HPE_HEADER_OVERFLOW: '431 Request Header Fields Too Large',
};

/**
 * Answers a connection-level client error (a missed deadline, a malformed request) as Node
 * would — 408 / 431 / 400, then close — and counts missed deadlines. The answer is written only
 * on a connection that has not written anything yet, so it can never land inside a response.
 */
function serverOnClientError(name: 'http' | 'cluster', err: NodeJS.ErrnoException, socket: Duplex & { bytesWritten?: number }): void {
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') countListenerTimeout(name, 'request');
  if (socket.writable && !socket.bytesWritten) {
    const status = CLIENT_ERROR_ANSWERS[err.code ?? ''] ?? '400 Bad Request';
    socket.write(`HTTP/1.1 ${status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
  }
  socket.destroy();
}
