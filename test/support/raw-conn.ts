/**
 * Raw TCP (or TLS over TCP) connections for hostile-network tests: write bytes at any pace, read
 * an HTTP answer head, half-close, or end with a TCP reset (SO_LINGER 0, `resetAndDestroy`) the
 * way Python's websocket-client and many crashed clients do.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';

export interface RawConn {
  /** The socket the test writes to and reads from (TLS when asked). */
  readonly socket: Socket | TLSSocket;
  /** Everything received so far. */
  received(): Buffer;
  /** Resolves once the peer ended (FIN), closed or reset the connection (or it was destroyed here). */
  readonly closed: Promise<void>;
  /** True once closed. */
  isClosed(): boolean;
  /** Sends a TCP RST (the TCP socket under any TLS) and drops the connection. */
  reset(): void;
  /** Resolves with the received bytes once `pred` holds for them; rejects after `timeoutMs` or on close without it. */
  until(pred: (got: Buffer) => boolean, timeoutMs?: number): Promise<Buffer>;
  /** Resolves with the first HTTP answer (head and a Content-Length body) received. */
  response(timeoutMs?: number): Promise<{ status: number; head: string; body: string }>;
}

export interface RawOptions {
  readonly port: number;
  readonly host?: string;
  /** Trust this CA and talk TLS (servername localhost). */
  readonly ca?: Buffer;
  /** ALPN protocols to offer (TLS only), e.g. ['h2']. */
  readonly alpn?: string[];
  /** Local address to connect from: 127.0.0.2, 127.0.0.3… are other client addresses on loopback. */
  readonly localAddress?: string;
}

/** Opens a connection and resolves once it is established (TLS handshake done). */
export async function rawConnect(opts: RawOptions): Promise<RawConn> {
  // Half-open allowed: the client never sends its FIN on its own (Node 20's resetAndDestroy after
  // an automatic end leaves a handle that never closes, and hostile clients do not close politely).
  const tcp = netConnect({ port: opts.port, host: opts.host ?? '127.0.0.1', allowHalfOpen: true, ...(opts.localAddress ? { localAddress: opts.localAddress } : {}) });
  tcp.on('error', () => undefined); // the test decides what a reset means
  const socket: Socket | TLSSocket = opts.ca
    ? tlsConnect({ socket: tcpPipe(tcp), ca: opts.ca, servername: 'localhost', ALPNProtocols: opts.alpn })
    : tcp;
  socket.on('error', () => undefined);
  const chunks: Buffer[] = [];
  let closed = false;
  const listeners = new Set<() => void>();
  socket.on('data', (c: Buffer) => {
    chunks.push(c);
    for (const l of listeners) l();
  });
  const closedP = new Promise<void>((resolve) => {
    const done = (): void => {
      closed = true;
      for (const l of listeners) l();
      resolve();
    };
    tcp.once('close', done);
    socket.once('end', done); // half-open: the peer's FIN is its close
  });
  await new Promise<void>((resolve, reject) => {
    socket.once(opts.ca ? 'secureConnect' : 'connect', () => resolve());
    socket.once('error', reject);
    tcp.once('close', () => reject(new Error('closed before connecting')));
  });
  const received = (): Buffer => Buffer.concat(chunks);
  const until = (pred: (got: Buffer) => boolean, timeoutMs = 10_000): Promise<Buffer> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        const got = received();
        if (pred(got)) finish(() => resolve(got));
        else if (closed) finish(() => reject(new Error(`closed without the expected bytes; got ${JSON.stringify(got.toString('latin1').slice(0, 200))}`)));
      };
      const timer = setTimeout(() => finish(() => reject(new Error(`no expected bytes within ${timeoutMs} ms; got ${JSON.stringify(received().toString('latin1').slice(0, 200))}`))), timeoutMs);
      const finish = (f: () => void): void => {
        clearTimeout(timer);
        listeners.delete(check);
        f();
      };
      listeners.add(check);
      check();
    });
  return {
    socket,
    received,
    closed: closedP,
    isClosed: () => closed,
    reset: () => {
      tcp.resetAndDestroy();
      socket.destroy(); // the TLS layer above, if any
    },
    until,
    async response(timeoutMs) {
      const got = await until((b) => parseResponse(b) !== null, timeoutMs);
      return parseResponse(got) as { status: number; head: string; body: string };
    },
  };
}

/**
 * A stream over `tcp` for TLS to run on. TLS straight on a net.Socket shares its handle, and a
 * reset of that socket under TLS crashes Node 20 (segfault); over a JS stream the TCP handle stays
 * the socket's own.
 */
function tcpPipe(tcp: Socket): Duplex {
  const pipe = new Duplex({
    read: () => void tcp.resume(),
    write: (chunk: Buffer, _enc, cb) => void tcp.write(chunk, cb),
    final: (cb) => {
      tcp.end();
      cb();
    },
    destroy: (err, cb) => {
      tcp.destroy();
      cb(err);
    },
  });
  tcp.on('data', (d: Buffer) => {
    if (!pipe.push(d)) tcp.pause();
  });
  tcp.on('end', () => pipe.push(null));
  tcp.on('close', () => pipe.destroy());
  return pipe;
}

/** The first complete HTTP/1.1 answer in `b` (Content-Length bodies only), or null. */
function parseResponse(b: Buffer): { status: number; head: string; body: string } | null {
  const end = b.indexOf('\r\n\r\n');
  if (end < 0) return null;
  const head = b.subarray(0, end).toString('latin1');
  const length = /\r\ncontent-length: *(\d+)/i.exec(head);
  const bodyStart = end + 4;
  const want = length ? Number(length[1]) : 0;
  if (b.length < bodyStart + want) return null;
  return { status: Number(head.split(' ')[1]), head, body: b.subarray(bodyStart, bodyStart + want).toString('utf8') };
}

/** The request head of a WebSocket upgrade to `path` with extra header lines. */
export function upgradeRequest(path: string, headers: Record<string, string> = {}): string {
  const all: Record<string, string> = {
    host: 'localhost',
    upgrade: 'websocket',
    connection: 'Upgrade',
    'sec-websocket-version': '13',
    'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
    ...headers,
  };
  return `GET ${path} HTTP/1.1\r\n${Object.entries(all).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The head of a masked client WebSocket frame (mask key 0, so the payload goes as is). */
export function wsFrameHead(length: number, opcode = 0x1): Buffer {
  const first = 0x80 | opcode; // FIN
  if (length < 126) return Buffer.from([first, 0x80 | length, 0, 0, 0, 0]);
  if (length < 65_536) {
    const b = Buffer.from([first, 0x80 | 126, 0, 0, 0, 0, 0, 0]);
    b.writeUInt16BE(length, 2);
    return b;
  }
  const b = Buffer.alloc(14);
  b[0] = first;
  b[1] = 0x80 | 127;
  b.writeBigUInt64BE(BigInt(length), 2);
  return b; // the mask key (last 4 bytes) stays 0
}

/** A server WebSocket frame: opcode and payload (text messages as strings, close frames' code). */
export interface WsFrame {
  readonly opcode: number;
  readonly payload: Buffer;
}

/** The complete unmasked (server) frames in `b`, from its start. */
export function wsFrames(b: Buffer): WsFrame[] {
  const out: WsFrame[] = [];
  let at = 0;
  while (at + 2 <= b.length) {
    const opcode = (b[at] as number) & 0x0f;
    let length = (b[at + 1] as number) & 0x7f;
    let head = 2;
    if (length === 126) {
      if (at + 4 > b.length) break;
      length = b.readUInt16BE(at + 2);
      head = 4;
    } else if (length === 127) {
      if (at + 10 > b.length) break;
      length = Number(b.readBigUInt64BE(at + 2));
      head = 10;
    }
    if (at + head + length > b.length) break;
    out.push({ opcode, payload: b.subarray(at + head, at + head + length) });
    at += head + length;
  }
  return out;
}

/** The close code of the first close frame among `frames`, or null. */
export function wsCloseCode(frames: readonly WsFrame[]): number | null {
  const close = frames.find((f) => f.opcode === 0x8);
  return close && close.payload.length >= 2 ? close.payload.readUInt16BE(0) : null;
}

/** The HTTP/2 client connection preface: the magic and an empty SETTINGS frame. */
export const H2_PREFACE = Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1'), Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])]);

/** An HTTP/2 frame as received: type, flags and payload. */
export interface H2Frame {
  readonly type: number;
  readonly flags: number;
  readonly payload: Buffer;
}

/** The complete HTTP/2 frames in `b` (server to client: no preface), from its start. */
export function h2Frames(b: Buffer): H2Frame[] {
  const out: H2Frame[] = [];
  let at = 0;
  while (at + 9 <= b.length) {
    const length = b.readUIntBE(at, 3);
    if (at + 9 + length > b.length) break;
    out.push({ type: b[at + 3] as number, flags: b[at + 4] as number, payload: b.subarray(at + 9, at + 9 + length) });
    at += 9 + length;
  }
  return out;
}

/** HTTP/2 frame types used here (RFC 9113 §6). */
export const H2 = { SETTINGS: 0x4, PING: 0x6, GOAWAY: 0x7 } as const;

/**
 * Makes a raw connection a minimal, well-behaved HTTP/2 client that opens no stream: it sends the
 * preface, acknowledges the server's SETTINGS and answers every PING, so keepalive never cuts it
 * and only the idle or age bounds can. It never closes its side on its own (a hostile client).
 */
export function idleH2Client(conn: RawConn): void {
  conn.socket.write(H2_PREFACE);
  let answered = 0;
  conn.socket.on('data', () => {
    const frames = h2Frames(conn.received());
    for (const f of frames.slice(answered)) {
      if (f.type === H2.SETTINGS && !(f.flags & 0x1)) conn.socket.write(Buffer.from([0, 0, 0, H2.SETTINGS, 0x1, 0, 0, 0, 0]));
      if (f.type === H2.PING && !(f.flags & 0x1)) conn.socket.write(Buffer.concat([Buffer.from([0, 0, 8, H2.PING, 0x1, 0, 0, 0, 0]), f.payload]));
    }
    answered = frames.length;
  });
}
