/**
 * The WebSocket endpoint `/v1/ws` on the REST HTTP(S) server. The upgrade authenticates like
 * REST (`Authorization: Bearer <key>`, `Zkgate-Tenant`) and takes one unit of the tenant's
 * connection quota; a refused upgrade gets an HTTP problem body. Each socket is a
 * `WsConnection`. Protocol: docs/websocket.md.
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { ZkgateError, payloadTooLarge, type Gateway, type Scope, type ScopedConnection } from '../../core/index.js';
import { countError } from '../metrics.js';
import { mapError } from '../error-table.js';
import { answerAndClose } from '../listener-guard.js';
import { REQUEST_ID_HEADER, requestId } from '../access-log.js';
import { WsConnection } from './connection.js';
import { Heartbeat } from './heartbeat.js';

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

export interface WebSocketEndpoint {
  /** Sockets open now. */
  readonly size: number;
  /** Closes every socket (1001, going away); idempotent. */
  close(): void;
}

/**
 * Node's HTTP server removes its own 'error' listener from a socket it hands to 'upgrade'
 * listeners, so without this one a reset (ECONNRESET) on a refused, pending or upgraded socket
 * would be an unhandled 'error' that ends the process. Stays for the socket's whole life.
 */
function upgradeSocketOnError(this: Duplex): void {
  this.destroy();
}

/** What a message over the limit is counted as (the socket itself is closed 1009 by ws). */
function messageTooLarge(max: number): ZkgateError {
  return payloadTooLarge('message', max, 'wsMaxMessageBytes');
}

function refuse(gw: Gateway, socket: Duplex, err: unknown, reqId: string): void {
  const { error, mapping } = mapError(err);
  countError(error, 'ws');
  // An expected outcome (bad key, wrong path, quota): its access line, at info like REST's.
  gw.logger.info({ reqId, status: mapping.http, code: error.code }, 'websocket upgrade refused');
  answerAndClose(socket, err, { [REQUEST_ID_HEADER]: reqId });
}

/** Serves `/v1/ws` on `server`. */
export function attachWebSocket(server: Server, gw: Gateway): WebSocketEndpoint {
  // One ws server per distinct message limit, so each tenant's limit is ws' maxPayload: a frame
  // announcing more is refused from its header (close 1009) before its payload is read.
  const servers = new Map<number, WebSocketServer>();
  const serverFor = (maxPayload: number): WebSocketServer => {
    let wss = servers.get(maxPayload);
    if (!wss) servers.set(maxPayload, (wss = new WebSocketServer({
          noServer: true,
          maxPayload,
          perMessageDeflate: false,
          // Answer only the protocol name, never an offered credential (browsers need one echoed back).
          handleProtocols: (protocols) => (protocols.has(WS_PROTOCOL) ? WS_PROTOCOL : false),
        })));
    // The 101 echoes the request id, as every REST answer does.
    if (wss.listenerCount('headers') === 0) wss.on('headers', (headers: string[], req: IncomingMessage) => headers.push(`${REQUEST_ID_HEADER}: ${requestIds.get(req) ?? ''}`));
    return wss;
  };
  const heartbeat = new Heartbeat(gw.config.watch.heartbeatMs);
  const clients = (): WebSocket[] => [...servers.values()].flatMap((wss) => [...wss.clients]);
  const requestIds = new WeakMap<IncomingMessage, string>();
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', upgradeSocketOnError);
    const one = (h: string | string[] | undefined): string | undefined => (Array.isArray(h) ? h[0] : h) || undefined;
    // The caller's X-Request-Id (else a new one) names the connection in its access lines.
    const reqId = requestId(one(req.headers['x-request-id']));
    requestIds.set(req, reqId);
    const { pathname } = new URL(req.url ?? '/', 'http://localhost');
    let scope: Scope;
    let conn: ScopedConnection;
    try {
      if (pathname !== WS_PATH) throw new ZkgateError('NOT_FOUND', `no WebSocket endpoint at ${pathname}; use ${WS_PATH}`, {});
      const offered = subprotocolCredentials(one(req.headers['sec-websocket-protocol']));
      scope = gw.as(
        gw.authenticate({
          authorization: one(req.headers.authorization) ?? offered.authorization,
          tenant: one(req.headers['zkgate-tenant']) ?? offered.tenant,
        }),
      );
      conn = scope.connect();
    } catch (err) {
      refuse(gw, socket, err, reqId);
      return;
    }
    socket.once('close', () => conn.close()); // also when the handshake itself is refused
    serverFor(scope.limits.wsMaxMessageBytes).handleUpgrade(req, socket, head, (ws) => {
      ws.on('error', (err: Error & { code?: string }) => {
        if (err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') countError(messageTooLarge(scope.limits.wsMaxMessageBytes), 'ws');
      });
      new WsConnection(ws, socket, gw, scope, conn, heartbeat, reqId);
    });
  });
  let closed = false;
  return {
    get size() {
      return clients().length;
    },
    close() {
      if (closed) return;
      closed = true;
      for (const ws of clients()) {
        ws.close(1001, 'gateway shutting down');
        setTimeout(() => ws.terminate(), 1000).unref();
      }
      for (const wss of servers.values()) wss.close();
    },
  };
}
