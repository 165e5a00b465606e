/**
 * The WebSocket endpoint `/v1/ws` on the REST HTTP(S) server. The upgrade authenticates like
 * REST (`Authorization: Bearer <key>`, `Zkgate-Tenant`) and takes one unit of the tenant's
 * connection quota; a refused upgrade gets an HTTP problem body. Each socket is a
 * `WsConnection`. Protocol: docs/websocket.md.
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { ZkgateError, type Gateway, type Scope, type ScopedConnection } from '../../core/index.js';
import { countError } from '../metrics.js';
import { mapError } from '../error-table.js';
import { problemOf } from '../json.js';
import { WsConnection } from './connection.js';

/** The URL path of the endpoint. */
export const WS_PATH = '/v1/ws';

/** The subprotocol a client may offer; the server echoes it when offered. */
export const WS_PROTOCOL = 'zkgate.v1';

/**
 * Credentials offered as subprotocols, for browsers, which cannot set `Authorization` on an
 * upgrade: `zkgate.bearer.<key>` and `zkgate.tenant.<name>` beside `zkgate.v1`.
 */
function subprotocolCredentials(header: string | undefined): { authorization?: string; tenant?: string } {
  const out: { authorization?: string; tenant?: string } = {};
  for (const p of (header ?? '').split(',').map((s) => s.trim())) {
    if (p.startsWith('zkgate.bearer.')) out.authorization ??= `Bearer ${p.slice('zkgate.bearer.'.length)}`;
    else if (p.startsWith('zkgate.tenant.')) out.tenant ??= p.slice('zkgate.tenant.'.length);
  }
  return out;
}

/** Frames larger than this many times `limits.wsMaxMessageBytes` close the socket (1009) unread. */
const HARD_LIMIT_FACTOR = 16;

export interface WebSocketEndpoint {
  /** Sockets open now. */
  readonly size: number;
  /** Closes every socket (1001, going away); idempotent. */
  close(): void;
}

/** How long a refused upgrade's socket may stay open after the answer for the client to read it and close, ms. */
const REFUSED_LINGER_MS = 5000;

/**
 * Node's HTTP server removes its own 'error' listener from a socket it hands to 'upgrade'
 * listeners, so without this one a reset (ECONNRESET) on a refused, pending or upgraded socket
 * would be an unhandled 'error' that ends the process. Stays for the socket's whole life.
 */
function upgradeSocketOnError(this: Duplex): void {
  this.destroy();
}

function refuse(socket: Duplex, err: unknown): void {
  countError(mapError(err).error, 'ws');
  const p = problemOf(err);
  const body = JSON.stringify(p);
  const auth = p.code === 'UNAUTHENTICATED' ? 'WWW-Authenticate: Bearer realm="zkgate"\r\n' : '';
  socket.end(
    `HTTP/1.1 ${p.status} ${p.title}\r\nContent-Type: application/problem+json\r\n${auth}` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
  // Whatever else the client sends is discarded; a client that never closes its side is cut
  // (the server allows half-open sockets, so it would otherwise stay open for good).
  socket.resume();
  const linger = setTimeout(() => socket.destroy(), REFUSED_LINGER_MS);
  socket.once('close', () => clearTimeout(linger));
}

/** Serves `/v1/ws` on `server`. */
export function attachWebSocket(server: Server, gw: Gateway): WebSocketEndpoint {
  const largest = Math.max(gw.config.limits.wsMaxMessageBytes, ...gw.tenantLimits().map((l) => l.wsMaxMessageBytes));
  const wss = new WebSocketServer({
    noServer: true,
    // Messages over the tenant's limit but below this bound get an error reply; the socket stays usable.
    maxPayload: largest * HARD_LIMIT_FACTOR,
    perMessageDeflate: false,
    // Answer only the protocol name, never an offered credential (browsers need one echoed back).
    handleProtocols: (protocols) => (protocols.has(WS_PROTOCOL) ? WS_PROTOCOL : false),
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', upgradeSocketOnError);
    const { pathname } = new URL(req.url ?? '/', 'http://localhost');
    let scope: Scope;
    let conn: ScopedConnection;
    try {
      if (pathname !== WS_PATH) throw new ZkgateError('NOT_FOUND', `no WebSocket endpoint at ${pathname}; use ${WS_PATH}`, {});
      const one = (h: string | string[] | undefined): string | undefined => (Array.isArray(h) ? h[0] : h) || undefined;
      const offered = subprotocolCredentials(one(req.headers['sec-websocket-protocol']));
      scope = gw.as(
        gw.authenticate({
          authorization: one(req.headers.authorization) ?? offered.authorization,
          tenant: one(req.headers['zkgate-tenant']) ?? offered.tenant,
        }),
      );
      conn = scope.connect();
    } catch (err) {
      refuse(socket, err);
      return;
    }
    socket.once('close', () => conn.close()); // also when the handshake itself is refused
    wss.handleUpgrade(req, socket, head, (ws) => new WsConnection(ws, gw, scope, conn));
  });
  let closed = false;
  return {
    get size() {
      return wss.clients.size;
    },
    close() {
      if (closed) return;
      closed = true;
      for (const ws of wss.clients) {
        ws.close(1001, 'gateway shutting down');
        setTimeout(() => ws.terminate(), 1000).unref();
      }
      wss.close();
    },
  };
}
