/**
 * Connection bounds of a listener: how many TCP connections it holds, in all and per client
 * address, checked when a connection is accepted — before any TLS handshake, HTTP parsing or
 * HTTP/2 session costs anything. A refused plaintext HTTP connection gets a 429 LIMIT_EXCEEDED
 * problem and is closed; a TLS or gRPC one is closed at once (a handshake is the expensive part).
 */
import type { Server as NetServer, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { ZkgateError } from '../core/index.js';
import { countRefusedConnection, watchListener, type ListenerName } from './metrics.js';
import { problemOf } from './json.js';

export interface ConnectionLimits {
  /** Open connections on the listener. */
  readonly maxConnections: number;
  /** Open connections from one client address; 0 = unbounded. */
  readonly maxConnectionsPerAddress: number;
}

/** Which bound a refused connection hit, as named in the config. */
export type ConnectionLimitName = 'maxConnections' | 'maxConnectionsPerAddress';

/** Counts a listener's open connections, in all and per client address. */
export class ConnectionGuard {
  private total = 0;
  private readonly perAddress = new Map<string, number>();
  /** Every admitted socket still open: closing the listener destroys them all. */
  private readonly sockets = new Set<Socket>();
  private readonly unwatch: () => void;

  constructor(
    readonly listener: ListenerName,
    readonly limits: ConnectionLimits,
  ) {
    this.unwatch = watchListener(this);
  }

  /** Connections open now. */
  get open(): number {
    return this.total;
  }

  /** The most connections any one client address holds now. */
  get busiestAddress(): number {
    let most = 0;
    for (const n of this.perAddress.values()) most = Math.max(most, n);
    return most;
  }

  /**
   * Counts `socket` until it closes, or names the bound it would exceed (then nothing is counted).
   */
  admit(socket: Socket): ConnectionLimitName | null {
    // IPv4 clients of a dual-stack listener appear as ::ffff:a.b.c.d.
    const address = (socket.remoteAddress ?? '').replace(/^::ffff:/, '');
    const fromAddress = this.perAddress.get(address) ?? 0;
    if (this.total >= this.limits.maxConnections) return 'maxConnections';
    if (this.limits.maxConnectionsPerAddress > 0 && fromAddress >= this.limits.maxConnectionsPerAddress) return 'maxConnectionsPerAddress';
    this.total += 1;
    this.perAddress.set(address, fromAddress + 1);
    this.sockets.add(socket);
    destroyAfterEnd(socket);
    socket.once('close', () => {
      this.sockets.delete(socket);
      this.total -= 1;
      const left = (this.perAddress.get(address) ?? 1) - 1;
      if (left > 0) this.perAddress.set(address, left);
      else this.perAddress.delete(address);
    });
    return null;
  }

  /**
   * Destroys every admitted socket still open (with TLS, the TLS socket above it goes too):
   * whatever a client does, nothing accepted outlives the listener.
   */
  destroyAll(): void {
    for (const socket of this.sockets) socket.destroy();
  }

  /** Stops reporting this listener's figures; idempotent. */
  close(): void {
    this.unwatch();
  }
}

/**
 * Puts `guard` in front of `server`'s own connection handling (HTTP parsing, or the TLS
 * handshake of a TLS server): the server's 'connection' listeners run only for admitted sockets.
 * Wrapping them, rather than accepting on a separate server, keeps Node's own connection
 * tracking (header and request timeouts) working. Every accepted socket also gets an error
 * listener for its whole life, so a reset can never become an unhandled 'error'.
 */
export function guardConnections(server: NetServer, guard: ConnectionGuard, refuse: (socket: Socket, err: ZkgateError) => void): void {
  const own = server.listeners('connection') as ((socket: Socket) => void)[];
  server.removeAllListeners('connection');
  server.on('connection', (socket: Socket) => {
    socket.on('error', socketOnError);
    const limit = guard.admit(socket);
    if (limit) {
      countRefusedConnection(guard.listener, limit);
      const max = guard.limits[limit];
      const what = limit === 'maxConnections' ? 'open connections' : 'open connections from one address';
      refuse(socket, new ZkgateError('LIMIT_EXCEEDED', `${guard.listener} listener: at most ${max} ${what} (${guard.listener}.${limit})`, { limit: `${guard.listener}.${limit}`, max }));
      return;
    }
    for (const listener of own) listener.call(server, socket);
  });
}

function socketOnError(this: Duplex): void {
  this.destroy();
}

/** Refuses a connection by closing it at once (TLS before its handshake, gRPC before its preface). */
export function closeAtOnce(socket: Socket): void {
  socket.destroy();
}

/** How long a socket may stay open after the gateway ended its side, for the client to read the rest and close, ms. */
const HALF_CLOSED_LINGER_MS = 5000;

/**
 * Destroys `socket` if its peer has not closed within a few seconds of the gateway ending its
 * side. Servers here allow half-open sockets (HTTP does; an HTTP/2 session closed gracefully only
 * ends its socket and waits for the peer's FIN), so a client that never closes would otherwise
 * hold the socket, and a unit of the connection bound, for good. With TLS, pass the TLS socket:
 * its end is not the TCP socket's 'finish'.
 */
export function destroyAfterEnd(socket: Duplex): void {
  let linger: NodeJS.Timeout | undefined;
  socket.once('finish', () => {
    linger = setTimeout(() => socket.destroy(), HALF_CLOSED_LINGER_MS);
    linger.unref(); // the socket itself keeps the process up while it is open
  });
  socket.once('close', () => clearTimeout(linger));
}

/**
 * Answers `err` as an HTTP/1.1 problem on a raw socket and closes it: whatever else the client
 * sends is discarded unread, and a client that never closes its side is cut after a few seconds.
 */
export function answerAndClose(socket: Duplex, err: unknown, headers: Record<string, string> = {}): void {
  const p = problemOf(err);
  const body = JSON.stringify(p);
  const auth = p.code === 'UNAUTHENTICATED' ? 'WWW-Authenticate: Bearer realm="zkgate"\r\n' : '';
  const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
  socket.end(
    `HTTP/1.1 ${p.status} ${p.title}\r\nContent-Type: application/problem+json\r\n${auth}${extra}` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
  socket.resume();
  destroyAfterEnd(socket);
}
