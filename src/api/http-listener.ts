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
import { Server as NetServer, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { ZkgateError } from '../core/index.js';
import { answerAndClose, closeAtOnce, ConnectionGuard, destroyAfterEnd, guardConnections, type ConnectionLimits } from './listener-guard.js';
import { countListenerTimeout } from './metrics.js';

export interface HttpListener {
  readonly server: Server;
  readonly guard: ConnectionGuard;
  /**
   * Starts a graceful drain: stops accepting connections and ends every idle keep-alive
   * connection now, and every other one once its last running request is answered (see
   * `endIdle`). Connections with a running request stay until it is answered.
   */
  drain(): void;
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
  const idle = new IdleConnections();
  const options = {
    headersTimeout: config.headersTimeoutMs,
    requestTimeout: config.requestTimeoutMs,
    keepAliveTimeout: config.idleTimeoutMs,
    connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(Math.min(config.headersTimeoutMs, config.requestTimeoutMs) / 10))),
  };
  // With TLS the handshake shares the header deadline: a client that never finishes it is cut too.
  const listener = idle.track(app);
  const server: Server = tls ? createTlsServer({ ...tls, ...options, handshakeTimeout: config.headersTimeoutMs }, listener) : createServer(options, listener);
  // A keep-alive connection idle for idleTimeoutMs: ended gracefully rather than destroyed.
  // (With a 'timeout' listener Node leaves the socket to it; only idle ones have a timeout here.)
  server.on('timeout', (socket: Duplex) => (idle.has(socket) ? idle.end(socket) : socket.destroy()));
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
  const drain = (): void => {
    // net's close, not http's: http.Server#close also destroys the idle connections, which
    // would reset a request arriving on one at that instant (see endIdle).
    if (server.listening) NetServer.prototype.close.call(server);
    idle.drain();
  };
  return { server, guard, drain };
}

/**
 * Keep-alive connections between requests, and how they are closed. Node destroys an idle
 * connection at its keep-alive timeout (and in closeIdleConnections / close): a request that a
 * client or a balancer reusing its server connections (haproxy `http-reuse`) sent at that
 * instant is then in the socket's receive queue, and closing a socket with unread data resets
 * it (RST). haproxy does not retry a request whose server connection was reset (it retries an
 * empty response, `retry-on empty-response`, i.e. a clean close): it closes the client's
 * connection without an answer, which a client sees as "other side closed" (seen in
 * cluster-haproxy.test with `http-reuse safe`). Here an idle connection is ended instead: a FIN
 * first, and a request read from it afterwards is dropped without being run, so whoever sent
 * it reads a clean close before any answer and can send it again, to this or another instance.
 */
class IdleConnections {
  /** Connections between requests (their last request answered, no new one begun). */
  private readonly idle = new Set<Duplex>();
  /** Connections this side ended: a request read from them is not run. */
  private readonly ended = new WeakSet<Duplex>();
  /** Requests running per connection (a pipelining client may have more than one). */
  private readonly running = new Map<Duplex, number>();
  /** Connections whose close is listened to (once each). */
  private readonly seen = new WeakSet<Duplex>();
  private draining = false;

  /** `app`, with every request's connection accounted for. */
  track(app: RequestListener): RequestListener {
    return (req, res) => {
      const socket = req.socket;
      if (this.ended.has(socket)) {
        // Sent before our FIN reached the client: it sees the close, never an answer.
        socket.destroy();
        return;
      }
      this.idle.delete(socket);
      const before = this.running.get(socket);
      this.running.set(socket, (before ?? 0) + 1);
      if (before === undefined && !this.seen.has(socket)) {
        this.seen.add(socket);
        socket.once('close', () => this.idle.delete(socket));
      }
      res.once('close', () => {
        const left = (this.running.get(socket) ?? 1) - 1;
        if (left > 0) return void this.running.set(socket, left);
        this.running.delete(socket);
        if (socket.destroyed || !socket.writable) return;
        this.idle.add(socket);
        if (this.draining) this.end(socket);
      });
      app(req, res);
    };
  }

  has(socket: Duplex): boolean {
    return this.idle.has(socket);
  }

  /** Ends an idle connection: FIN now; anything it sends from now on is never run. */
  end(socket: Duplex): void {
    this.idle.delete(socket);
    this.ended.add(socket);
    socket.end(); // destroyAfterEnd (the listener guard) destroys it if the client never closes
  }

  drain(): void {
    this.draining = true;
    for (const socket of [...this.idle]) this.end(socket);
  }
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
