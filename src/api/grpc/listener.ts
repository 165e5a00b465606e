/**
 * The gRPC listener: the gateway accepts TCP itself (and terminates TLS), applies the connection
 * bounds of `grpc.*`, gives every connection `handshakeTimeoutMs` to finish its TLS handshake and
 * then again to send the HTTP/2 connection preface (the magic and its SETTINGS frame), and only
 * then hands it to grpc-js through a connection injector. grpc-js on its own listener would
 * accept any number of connections and keep those that never finish the preface for good.
 * Streams of the fast path's methods (fast-path.ts) are taken before grpc-js' stream handler.
 */
import type { Server as GrpcServer } from '@grpc/grpc-js';
import { ServerCredentials } from '@grpc/grpc-js';
import type { Http2Server, ServerHttp2Stream } from 'node:http2';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { closeAtOnce, ConnectionGuard, destroyAfterEnd, guardConnections, type ConnectionLimits } from '../listener-guard.js';
import { countListenerTimeout } from '../metrics.js';
import type { FastStreams } from './fast-path.js';

/** The client connection preface of HTTP/2 (RFC 9113 §3.4), followed by a SETTINGS frame. */
const MAGIC = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const FRAME_HEADER_BYTES = 9;
const SETTINGS = 0x4;
/** The largest frame a peer may send before SETTINGS says otherwise (SETTINGS_MAX_FRAME_SIZE's initial value). */
const MAX_INITIAL_FRAME = 16_384;

export interface GrpcListener {
  readonly port: number;
  readonly guard: ConnectionGuard;
  /** Whether the fast path takes its streams (false when none was given or grpc-js' internals moved). */
  readonly fastPath: boolean;
  /** Stops accepting and drops connections still in their handshake or preface; idempotent. */
  close(): void;
  /** Destroys every connection still open, HTTP/2 sessions included (after grpc-js' shutdown). */
  destroyAll(): void;
}

/** What the gRPC front listener is configured with (the api layer owns it; config's `grpc` section must fit it). */
export interface GrpcListenerConfig extends ConnectionLimits {
  readonly handshakeTimeoutMs: number;
  readonly maxMessageBytes: number;
  readonly maxConcurrentStreams: number;
  readonly maxConnectionIdleMs: number;
  /** 0 = no bound. */
  readonly maxConnectionAgeMs: number;
  readonly maxConnectionAgeGraceMs: number;
  readonly keepaliveTimeMs: number;
  readonly keepaliveTimeoutMs: number;
}

export interface GrpcListenerOptions extends GrpcListenerConfig {
  readonly bind: string;
  readonly port: number;
  readonly tls: { readonly cert: Buffer; readonly key: Buffer } | null;
}

/** What the fast path needs of grpc-js beyond its public API (present in 1.10–1.14). */
interface GrpcJsInternals {
  readonly http2Servers?: Map<Http2Server, unknown>;
  onStreamOpened?(stream: ServerHttp2Stream): void;
}

/**
 * Puts `fast` in front of grpc-js' stream handler on the HTTP/2 server behind `inject` (the one
 * the injector created): grpc-js gets every stream the fast path declines. Returns false, and
 * leaves grpc-js alone, when its internals are not where they were.
 */
function takeFastStreams(server: GrpcServer, created: Http2Server | undefined, fast: FastStreams): boolean {
  const internals = server as unknown as GrpcJsInternals;
  if (!created || typeof internals.onStreamOpened !== 'function') return false;
  const grpcJs = created.listeners('stream') as ((...args: unknown[]) => void)[];
  if (grpcJs.length === 0) return false;
  created.removeAllListeners('stream');
  created.on('stream', (stream: ServerHttp2Stream, headers, ...rest: unknown[]) => {
    // grpc-js counts open streams per session for its idle timeout (grpc.max_connection_idle_ms).
    if (fast(stream, headers, () => internals.onStreamOpened?.call(server, stream))) return;
    for (const listener of grpcJs) listener.call(created, stream, headers, ...rest);
  });
  return true;
}

/** Binds the listener and resolves with its port once it accepts. */
export async function listenGrpc(server: GrpcServer, opts: GrpcListenerOptions, fast?: FastStreams): Promise<GrpcListener> {
  // TLS is terminated here, so grpc-js sees the decrypted stream (a TLSSocket all the same).
  const servers = (server as unknown as GrpcJsInternals).http2Servers;
  const before = new Set(servers?.keys());
  const injector = server.createConnectionInjector(ServerCredentials.createInsecure());
  const created = [...(servers?.keys() ?? [])].find((s) => !before.has(s));
  const fastPath = fast !== undefined && takeFastStreams(server, created, fast);
  const pending = new Set<Socket>();
  const front: NetServer = opts.tls
    ? createTlsServer({ cert: opts.tls.cert, key: opts.tls.key, ALPNProtocols: ['h2'], handshakeTimeout: opts.handshakeTimeoutMs })
    : createNetServer();
  const accepted = (socket: Socket): void => {
    pending.add(socket);
    readPreface(socket, opts.handshakeTimeoutMs, (ok) => {
      pending.delete(socket);
      if (ok) injector.injectConnection(socket);
    });
  };
  if (opts.tls) {
    front.on('secureConnection', (socket: TLSSocket) => {
      destroyAfterEnd(socket); // the TCP socket below never sees the TLS socket's end
      accepted(socket);
    });
    front.on('tlsClientError', (err: NodeJS.ErrnoException, socket: TLSSocket) => {
      if (err.code === 'ERR_TLS_HANDSHAKE_TIMEOUT') countListenerTimeout('grpc', 'handshake');
      socket.destroy();
    });
  } else {
    front.on('connection', accepted);
  }
  // Small HTTP/2 frames (a unary answer, a WINDOW_UPDATE, a PING ack) must not wait for an ACK
  // (Nagle): set on the TCP socket from the start, the TLS handshake and the preface included.
  front.on('connection', (socket: Socket) => socket.setNoDelay(true));
  const guard = new ConnectionGuard('grpc', opts);
  guardConnections(front, guard, closeAtOnce);
  const port = await new Promise<number>((resolve, reject) => {
    front.once('error', reject);
    front.listen(opts.port, opts.bind, () => {
      front.off('error', reject);
      resolve((front.address() as AddressInfo).port);
    });
  });
  let closed = false;
  return {
    port,
    guard,
    fastPath,
    close() {
      if (closed) return;
      closed = true;
      front.close(() => guard.close());
      for (const socket of pending) socket.destroy();
    },
    destroyAll() {
      guard.destroyAll();
    },
  };
}

/**
 * Reads the client preface (magic, then one whole SETTINGS frame) within `timeoutMs`, puts it
 * back for the HTTP/2 session to read, and reports whether it came: a wrong preface, a close or
 * the deadline destroys the socket.
 */
function readPreface(socket: Socket, timeoutMs: number, done: (ok: boolean) => void): void {
  let got = Buffer.alloc(0);
  const finish = (ok: boolean): void => {
    clearTimeout(timer);
    socket.off('data', onData);
    socket.off('close', onClose);
    if (ok) {
      socket.pause();
      socket.unshift(got); // Node's HTTP/2 session reads what is already buffered first
    } else {
      socket.destroy();
    }
    done(ok);
  };
  const timer = setTimeout(() => {
    countListenerTimeout('grpc', 'preface');
    finish(false);
  }, timeoutMs);
  const onClose = (): void => finish(false);
  const onData = (chunk: Buffer): void => {
    got = Buffer.concat([got, chunk]);
    const magic = got.subarray(0, MAGIC.length);
    if (!MAGIC.subarray(0, magic.length).equals(magic)) return finish(false); // not HTTP/2
    if (got.length < MAGIC.length + FRAME_HEADER_BYTES) return;
    const length = got.readUIntBE(MAGIC.length, 3);
    if (got[MAGIC.length + 3] !== SETTINGS || length > MAX_INITIAL_FRAME) return finish(false);
    if (got.length >= MAGIC.length + FRAME_HEADER_BYTES + length) finish(true);
  };
  socket.on('data', onData);
  socket.once('close', onClose);
}
