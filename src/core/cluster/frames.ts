/**
 * The persistent internal channel for forwarded facade calls (docs/cluster.md "Forwarding
 * overhead"): one WebSocket per peer, opened by an HTTP Upgrade on the cluster listener, carrying
 * many calls at once, each answer matched to its call by id.
 *
 * Why: a forwarded call over one HTTP/1.1 POST each cost ~330 µs of CPU in node:http alone
 * (request and response objects, header parsing and writing on both sides) before any zkgate
 * code; a frame on an open connection costs a few µs. Why WebSocket (the `ws` library, already a
 * dependency) rather than hand-written length-prefixed frames on net/tls: the upgrade reaches the
 * cluster listener like any request, so the listener's connection bounds, header deadline, TLS
 * and the signed-request check all apply unchanged; `ws` does the framing, the size cap
 * (`maxPayload`), ping/pong and the closing handshake, all well exercised against hostile peers.
 *
 * Authentication (not weaker than one HMAC-signed POST per call):
 * - The upgrade request is signed exactly like a POST (time, nonce, sender, path, empty body;
 *   fresh within 30 s, nonce never seen): a bad one is answered 401 and nothing else happens.
 * - The 101 answer carries a server nonce. Both sides derive a key for this connection only:
 *   HMAC(secret, "zkgate-frames-v1", sender, client nonce, server nonce).
 * - Every frame, both ways, starts with HMAC-SHA256(connection key, direction, counter, payload).
 *   Counters start at 0 per direction and grow by one per frame, so a frame replayed, dropped,
 *   reordered or moved to another connection (another key) fails its check and the connection is
 *   closed before the frame does anything. Unlike the POSTs, answers are authenticated too.
 * The payload is not encrypted (nor were the POSTs): on an untrusted network give the cluster
 * listener TLS (`cluster.advertise: https://…`), the upgrade then runs inside it.
 *
 * Frames (binary; after the 32-byte MAC, ASCII type, decimal id, a space, the rest):
 *   C<id> <call body JSON>     caller → owner: run it (the body of a POST to /cluster/v1/call)
 *   X<id>                      caller → owner: cancel it (the caller's signal aborted)
 *   R<id> <answer JSON>        owner → caller: its answer (what the POST's response body was)
 *   E<id> <message>            owner → caller: it failed before an answer (a POST's 500)
 *   G                          owner → caller: going away; send nothing new here
 * The connection dropping fails every call still open on the caller (ChannelError 'failed', as a
 * reset POST) and cancels every call still running on the owner (as a closed POST). A call that
 * fails before its frame is written (the connection did not open in time, or backing off after
 * such an open) fails 'unsent': the caller may say it was not carried out.
 */
import * as crypto from 'node:crypto';
import { createHash, createHmac, randomBytes, timingSafeEqual, type KeyObject } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { backoffDelay } from '../../zk/backoff.js';
import { ZkgateError, cancelled } from '../errors.js';
import { ChannelError, channelError, secretKey, sign } from './channel-auth.js';
import type { ChannelVerifier } from './channel.js';

/** The path of the upgrade request (signed as a POST's path). */
export const FRAMES_PATH = '/cluster/v1/frames';
/** The largest frame: the POST path's body limit (MAX_BODY in cluster.ts) plus the frame's head. */
export const MAX_BODY = 32 * 1_048_576;
const MAX_FRAME = MAX_BODY + 64;
/**
 * Calls one connection may have running on the owner. The callers' own bounds come first (each
 * tenant's `maxLocksPerTenant`, leases and connections limit the waits a peer can open); this is
 * a backstop against a buggy peer, well above the 256 sockets a peer's HTTP pool had.
 */
export const MAX_RUNNING_PER_CONNECTION = 16_384;
/** Each side pings at this pace and drops a connection that did not answer the previous ping (half-open peers). */
const HEARTBEAT_MS = 15_000;
const MAC_BYTES = 32;
const TO_OWNER = 0;
const TO_CALLER = 1;

/** The key of one connection (both sides derive it from what the upgrade exchanged). */
export function connectionKey(secret: KeyObject, from: string, clientNonce: string, serverNonce: string): KeyObject {
  return secretKey(createHmac('sha256', secret).update(`zkgate-frames-v1\n${from}\n${clientNonce}\n${serverNonce}`).digest('hex'));
}

/**
 * HMAC-SHA256 under one connection key with its padded key blocks made once (RFC 2104:
 * H((K ^ opad) || H((K ^ ipad) || message))): per frame two one-shot hashes (`crypto.hash`) and
 * no HMAC object, key schedule or stream, where `createHmac` made and keyed a new object (four
 * calls into the binding) for every frame both ways — the channel's largest own cost in the
 * profiles (docs/cluster.md "Forwarding overhead"). The bytes are createHmac's exactly
 * (test/unit/frame-mac.test.ts): the wire format is unchanged.
 */
export class FrameMac {
  /** K ^ ipad, written in front of every message hashed. */
  private readonly ipad = Buffer.alloc(BLOCK);
  /** K ^ opad, then room for the inner digest: the outer hash's whole input. */
  private readonly outer = Buffer.alloc(BLOCK + MAC_BYTES);

  constructor(readonly key: KeyObject) {
    const raw = key.export();
    const k = raw.length > BLOCK ? createHash('sha256').update(raw).digest() : raw;
    for (let i = 0; i < BLOCK; i++) {
      const b = i < k.length ? (k[i] as number) : 0;
      this.ipad[i] = b ^ 0x36;
      this.outer[i] = b ^ 0x5c;
    }
  }

  /** A frame: its MAC over (direction, counter, payload), then the payload. */
  seal(direction: number, counter: number, payload: string): Buffer {
    const len = Buffer.byteLength(payload);
    // [K ^ ipad | head | payload] is hashed; the MAC then overwrites the 32 bytes before the
    // payload, and the frame is that view: the payload is written once.
    const buf = Buffer.allocUnsafe(SEALED_AT + MAC_BYTES + len);
    buf.write(payload, BLOCK + HEAD, 'utf8');
    this.digest(buf, direction, counter).copy(buf, SEALED_AT);
    return buf.subarray(SEALED_AT);
  }

  /** A frame's payload when its MAC is right for `counter`, else null. */
  open(direction: number, counter: number, frame: Buffer): Buffer | null {
    if (frame.length <= MAC_BYTES) return null;
    const payload = frame.subarray(MAC_BYTES);
    const buf = Buffer.allocUnsafe(BLOCK + HEAD + payload.length);
    payload.copy(buf, BLOCK + HEAD);
    return timingSafeEqual(frame.subarray(0, MAC_BYTES), this.digest(buf, direction, counter)) ? payload : null;
  }

  /** The MAC of the message in `buf` after its first BLOCK + HEAD bytes (which it overwrites). */
  private digest(buf: Buffer, direction: number, counter: number): Buffer {
    this.ipad.copy(buf, 0);
    buf[BLOCK] = direction;
    buf.writeUInt32BE(Math.floor(counter / 2 ** 32), BLOCK + 1);
    buf.writeUInt32BE(counter >>> 0, BLOCK + 5);
    if (!oneShot) return createHmac('sha256', this.key).update(buf.subarray(BLOCK)).digest();
    oneShot('sha256', buf, 'buffer').copy(this.outer, BLOCK);
    return oneShot('sha256', this.outer, 'buffer');
  }
}

/** `crypto.hash` (Node 20.12+); without it the MAC is made with createHmac, the same bytes. */
const oneShot = (crypto as { hash?: (algorithm: string, data: Buffer, encoding: 'buffer') => Buffer }).hash;
/** SHA-256's block size, and the MAC's head: direction (1 byte), counter (8 bytes, big-endian). */
const BLOCK = 64;
const HEAD = 9;
/** Where a sealed frame starts in the buffer it was hashed in. */
const SEALED_AT = BLOCK + HEAD - MAC_BYTES;

/** A frame sealed with `key` (for tests that play a peer; connections keep a FrameMac). */
export function seal(key: KeyObject | FrameMac, direction: number, counter: number, payload: string): Buffer {
  return (key instanceof FrameMac ? key : new FrameMac(key)).seal(direction, counter, payload);
}

/** A payload's type, id and rest. */
function parse(payload: Buffer): { type: string; id: number; rest: string } {
  const sp = payload.indexOf(0x20);
  const end = sp < 0 ? payload.length : sp;
  const id = end > 1 ? Number(payload.toString('latin1', 1, end)) : 0;
  return { type: String.fromCharCode(payload[0] as number), id: Number.isSafeInteger(id) ? id : -1, rest: sp < 0 ? '' : payload.toString('utf8', sp + 1) };
}

/** What `FrameClient.call` resolves with when the call is to go as a POST instead. */
export const POST: unique symbol = Symbol('post');

/** Where a member's address points, parsed once (a forwarded call is on the hot path). */
export interface Target {
  readonly tls: boolean;
  readonly host: string;
  readonly port: number;
  /** `host:port` as a URL writes it (IPv6 in brackets). */
  readonly authority: string;
}

interface Pending {
  resolve(v: unknown): void;
  reject(err: unknown): void;
}

/**
 * One open connection, either side: frames sealed with this connection's key and counters,
 * checked on arrival (a bad one ends the connection before it is read), and a heartbeat.
 */
abstract class FramedConnection {
  private sent = 0;
  private received = 0;
  private alive = true;
  private readonly heartbeat: NodeJS.Timeout;
  private readonly mac: FrameMac;

  constructor(
    protected readonly ws: WebSocket,
    key: KeyObject,
    private readonly outgoing: number,
    incoming: number,
    onGone: () => void,
  ) {
    const mac = (this.mac = new FrameMac(key));
    ws.on('message', (data: RawData) => {
      const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
      const payload = mac.open(incoming, this.received++, buf);
      // Forged, replayed, reordered or cut: nothing on this connection can be trusted any
      // more; the close fails (caller) or cancels (owner) what it carried.
      if (!payload) return void ws.terminate();
      this.onPayload(payload);
    });
    ws.on('pong', () => void (this.alive = true));
    ws.on('error', () => undefined); // 'close' follows (a frame over maxPayload is one)
    ws.once('close', () => {
      clearInterval(this.heartbeat);
      onGone();
      this.onClose();
    });
    this.heartbeat = setInterval(() => {
      if (!this.alive) return void ws.terminate();
      this.alive = false;
      ws.ping();
    }, HEARTBEAT_MS);
    this.heartbeat.unref();
  }

  protected send(payload: string): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(this.mac.seal(this.outgoing, this.sent++, payload));
  }

  protected abstract onPayload(payload: Buffer): void;
  protected abstract onClose(): void;

  terminate(): void {
    this.ws.terminate();
  }
}

/** One open connection to a peer, caller side. */
class CallerConnection extends FramedConnection {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  /** The owner said it is going away: no new call goes here; closed once the open ones are answered. */
  private retiring = false;

  constructor(
    ws: WebSocket,
    key: KeyObject,
    private readonly base: string,
    onGone: () => void,
  ) {
    super(ws, key, TO_OWNER, TO_CALLER, onGone);
  }

  protected onClose(): void {
    const err = new ChannelError(`cluster: ${this.base}: the connection closed before the answer`, 'failed');
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  get usable(): boolean {
    return !this.retiring && this.ws.readyState === WebSocket.OPEN;
  }

  /** Sends call `text`; resolves with its answer. Aborting `signal` sends a cancel frame. */
  call(text: string, signal: AbortSignal | undefined, timeoutMs: number | undefined): Promise<unknown> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const settle = (): void => {
        this.pending.delete(id);
        if (timer) clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        if (this.retiring && this.pending.size === 0) this.ws.close(1000);
      };
      // Given up here: the owner is told to stop (a wait is cancelled there as a closed POST's).
      const giveUp = (err: unknown): void => {
        if (!this.pending.has(id)) return;
        settle();
        this.send(`X${id}`);
        reject(err);
      };
      const onAbort = (): void => giveUp(signal?.reason);
      this.pending.set(id, {
        resolve: (v) => (settle(), resolve(v)),
        reject: (e) => (settle(), reject(e)),
      });
      if (timeoutMs) timer = setTimeout(() => giveUp(new ChannelError(`cluster: no answer from ${this.base} within ${timeoutMs} ms`, 'failed')), timeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.send(`C${id} ${text}`);
    });
  }

  protected onPayload(payload: Buffer): void {
    const { type, id, rest } = parse(payload);
    if (type === 'G') {
      this.retiring = true;
      if (this.pending.size === 0) this.ws.close(1000);
      return;
    }
    const p = this.pending.get(id);
    if (!p) return; // given up here already (cancelled, timed out)
    if (type === 'R') {
      let v: unknown;
      try {
        v = JSON.parse(rest) as unknown;
      } catch (err) {
        return p.reject(new ChannelError('cluster: the answer was cut or malformed', 'failed', { cause: err }));
      }
      p.resolve(v);
    } else p.reject(new ChannelError(`cluster: ${this.base}: ${rest || 'the call failed'}`, 'failed'));
  }
}

/** What became of an attempt to open a connection. */
type Opened = CallerConnection | { readonly http: true };

/** A peer as the caller sees it: its connection, or until when it is spoken to over POSTs. */
interface Peer {
  conn: CallerConnection | null;
  opening: Promise<Opened> | null;
  /** Until then (ms since the epoch) calls go as POSTs: the peer did not take the upgrade (an older version). */
  httpUntil: number;
  /** Opens that failed in a row (reset by one that succeeds, or by a call to another process at the address). */
  failures: number;
  /** The last failed open: until `until`, calls to the same process fail at once with its error. */
  failed: { readonly err: ChannelError; readonly at: number; readonly until: number; readonly process: string } | null;
}

/** Back-off after a failed open, ms: from 100, doubling, at most 5 s (with jitter). */
const OPEN_BACKOFF_BASE_MS = 100;
const OPEN_BACKOFF_CAP_MS = 5000;

/** A call's options: its cancellation or time limit, and which process it is meant for. */
export interface FrameCallOptions {
  readonly signal?: AbortSignal;
  readonly timeoutMs?: number;
  /**
   * The process the call is meant for (`<instanceId>.<incarnation>`): a failed open is held
   * against later calls to that process only, never against another one that has since taken
   * the address (a restart on the same address is a new incarnation). Absent: the address alone.
   */
  readonly process?: string;
}

/** The caller side: a connection per peer, opened on first use, again after it closed. */
export class FrameClient {
  private readonly peers = new Map<string, Peer>();
  private readonly all = new Set<CallerConnection>();
  private closed = false;

  constructor(
    private readonly secret: KeyObject,
    private readonly from: string,
    private readonly nonce: () => string,
  ) {}

  /**
   * Runs call `text` on the peer at `base` over its connection; resolves `POST` when the peer
   * does not take the upgrade (the caller sends a POST instead). @throws ChannelError
   */
  call(base: string, target: Target, text: string, opts: FrameCallOptions): Promise<unknown> {
    let peer = this.peers.get(base);
    if (!peer) {
      if (this.peers.size >= 1024) this.peers.clear();
      this.peers.set(base, (peer = { conn: null, opening: null, httpUntil: 0, failures: 0, failed: null }));
    }
    const now = Date.now();
    if (this.closed || peer.httpUntil > now) return Promise.resolve(POST);
    if (peer.conn?.usable) return peer.conn.call(text, opts.signal, opts.timeoutMs);
    const p = peer;
    const process = opts.process ?? '';
    // Backing off after a failed open: the same answer at once, no new connection attempt. For
    // another process at the address the past failure says nothing: it is tried now.
    const failed = p.failed;
    if (failed && failed.process === process && failed.until > now && !p.opening) {
      return Promise.reject(new ChannelError(`${failed.err.message} (connecting failed ${now - failed.at} ms ago; tried again in ${failed.until - now} ms)`, failed.err.kind, { cause: failed.err }));
    }
    if (failed && failed.process !== process) p.failures = 0;
    const opening = (p.opening ??= this.connect(base, target, p).then(
      (c) => ((p.failures = 0), (p.failed = null), c),
      (err: unknown) => {
        const at = Date.now();
        if (err instanceof ChannelError) p.failed = { err, at, until: at + backoffDelay(p.failures++, OPEN_BACKOFF_BASE_MS, OPEN_BACKOFF_CAP_MS), process };
        throw err;
      },
    ).finally(() => (p.opening = null)));
    return this.whileOpening(opening, base, opts).then((c) => ('http' in c ? POST : c.call(text, opts.signal, opts.timeoutMs)));
  }

  /** `opening`, given up when the call's signal aborts or its time passes first. */
  private whileOpening(opening: Promise<Opened>, base: string, opts: { signal?: AbortSignal; timeoutMs?: number }): Promise<Opened> {
    if (!opts.signal && !opts.timeoutMs) return opening;
    return new Promise((resolve, reject) => {
      const { signal, timeoutMs } = opts;
      // Nothing of the call is written before the connection is open: 'unsent', not 'failed'.
      const timer = timeoutMs ? setTimeout(() => done(() => reject(new ChannelError(`cluster: ${base}: the connection for calls did not open within ${timeoutMs} ms`, 'unsent'))), timeoutMs) : undefined;
      const onAbort = (): void => done(() => reject(signal?.reason));
      const done = (f: () => void): void => {
        if (timer) clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        f();
      };
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      opening.then(
        (c) => done(() => resolve(c)),
        (e: unknown) => done(() => reject(e)),
      );
    });
  }

  private connect(base: string, target: Target, peer: Peer): Promise<Opened> {
    const time = String(Date.now());
    const nonce = this.nonce();
    const ws = new WebSocket(`${target.tls ? 'wss' : 'ws'}://${target.authority}${FRAMES_PATH}`, {
      headers: {
        'x-zkgate-cluster-from': this.from,
        'x-zkgate-cluster-time': time,
        'x-zkgate-cluster-nonce': nonce,
        'x-zkgate-cluster-signature': sign(this.secret, time, nonce, this.from, FRAMES_PATH, ''),
      },
      perMessageDeflate: false,
      followRedirects: false,
      handshakeTimeout: 10_000,
      maxPayload: MAX_FRAME,
      // Frames carry their own MAC; there is no intermediary a mask protects (RFC 6455 §10.3
      // guards browsers' proxies), and a zero mask lets `ws` skip masking every byte.
      generateMask: (mask: Buffer) => void mask.fill(0),
      skipUTF8Validation: true,
    });
    return new Promise<Opened>((resolve, reject) => {
      let serverNonce = '';
      let settled = false;
      const finish = (f: () => void): void => {
        if (settled) return;
        settled = true;
        f();
      };
      ws.once('upgrade', (res: IncomingMessage) => {
        const n = res.headers['x-zkgate-cluster-nonce'];
        serverNonce = typeof n === 'string' ? n : '';
      });
      ws.once('open', () =>
        finish(() => {
          if (!/^[0-9a-f]{32}$/.test(serverNonce) || this.closed) {
            ws.terminate();
            return reject(new ChannelError(`cluster: ${base}: the upgrade's answer carried no usable nonce`, 'unsent'));
          }
          const conn = new CallerConnection(ws, connectionKey(this.secret, this.from, nonce, serverNonce), base, () => {
            this.all.delete(conn);
            if (peer.conn === conn) peer.conn = null;
          });
          this.all.add(conn);
          peer.conn = conn;
          resolve(conn);
        }),
      );
      // An answer other than 101: an instance of an older version (POSTs only: it answers a GET
      // 401), or one not wired yet (503). POSTs for a while, then the upgrade is tried again.
      ws.once('unexpected-response', (req, res) =>
        finish(() => {
          res.resume();
          req.destroy();
          peer.httpUntil = Date.now() + ((res.statusCode ?? 500) >= 500 ? 5_000 : 60_000);
          resolve({ http: true });
        }),
      );
      ws.on('error', (err: NodeJS.ErrnoException) =>
        finish(() => {
          // Refused: nothing listens (the process is gone), as for a POST. A certificate not
          // trusted: a POST would meet the same one. A handshake that timed out: a hung peer.
          // Anything else (reset mid-upgrade…): this call goes as a POST, which tells refused
          // from failed as it always did.
          const known = channelError(base, err);
          if (known.kind !== 'failed') reject(known);
          else if (/handshake has timed out/.test(err.message)) reject(new ChannelError(`cluster: ${base}: no answer to the upgrade`, 'unsent', { cause: err }));
          else resolve({ http: true });
        }),
      );
    });
  }

  /** Closes every connection (their open calls fail). */
  close(): void {
    this.closed = true;
    for (const c of this.all) c.terminate();
    this.all.clear();
    this.peers.clear();
  }
}

/**
 * Runs one call on the owner: `body` is the call (JSON text), `gone` the controller whose signal
 * stands for the caller going away (made only when the call waits; the handler may abort it too,
 * for a handoff), `reply` its answer. A rejection is answered with an `E` frame (a POST's 500).
 */
export type FrameHandler = (body: string, gone: () => AbortController, reply: (answer: unknown) => void) => Promise<void>;

interface Running {
  ac: AbortController | undefined;
}

/** One connection from a peer, owner side. */
class OwnerConnection extends FramedConnection {
  private readonly running = new Map<number, Running>();

  constructor(
    ws: WebSocket,
    key: KeyObject,
    private readonly handler: FrameHandler,
    private readonly onError: (err: unknown) => void,
    onGone: () => void,
  ) {
    super(ws, key, TO_CALLER, TO_OWNER, onGone);
  }

  protected onClose(): void {
    // The caller went away: its calls still running stop, as when a POST's connection closes.
    const reason = cancelled('client_gone', 'cluster: the forwarding instance went away');
    for (const r of this.running.values()) r.ac?.abort(reason);
    this.running.clear();
  }

  goAway(): void {
    this.send('G');
  }

  protected onPayload(payload: Buffer): void {
    const { type, id, rest } = parse(payload);
    if (type === 'X') {
      const r = this.running.get(id);
      this.running.delete(id);
      r?.ac?.abort(cancelled('client_gone', 'cluster: the forwarding instance cancelled the call'));
      return;
    }
    if (type !== 'C' || id <= 0 || this.running.has(id)) return void this.ws.terminate();
    if (this.running.size >= MAX_RUNNING_PER_CONNECTION) return this.send(`E${id} too many calls running on one connection (${MAX_RUNNING_PER_CONNECTION})`);
    const r: Running = { ac: undefined };
    this.running.set(id, r);
    const answered = (): boolean => {
      if (this.running.get(id) !== r) return false; // cancelled: the caller forgot the id
      this.running.delete(id);
      return true;
    };
    this.handler(
      rest,
      () => (r.ac ??= new AbortController()),
      (answer) => {
        if (answered()) this.send(`R${id} ${JSON.stringify(answer)}`);
      },
    ).catch((err: unknown) => {
      this.onError(err);
      if (answered()) this.send(`E${id} ${err instanceof ZkgateError ? err.code : 'internal error'}`);
    });
  }
}

/** The owner side: takes signed upgrades on the cluster listener and runs their calls. */
export class FrameServer {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME, perMessageDeflate: false, clientTracking: false, skipUTF8Validation: true });
  private readonly serverNonces = new WeakMap<IncomingMessage, string>();
  private readonly conns = new Set<OwnerConnection>();
  private closing = false;

  constructor(
    private readonly secret: KeyObject,
    private readonly verifier: ChannelVerifier,
    private readonly handler: FrameHandler,
    private readonly onError: (err: unknown) => void,
  ) {
    this.wss.on('headers', (headers: string[], req: IncomingMessage) => {
      headers.push(`x-zkgate-cluster-nonce: ${this.serverNonces.get(req) ?? ''}`);
    });
  }

  /** Handles an upgrade request of the cluster listener: a signed one becomes a connection, anything else a refusal. */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const refuse = (status: string): void => {
      if (socket.writable) socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
      socket.destroy();
    };
    const url = req.url ?? '/';
    const path = url.includes('?') ? url.slice(0, url.indexOf('?')) : url;
    if (path !== FRAMES_PATH) return refuse('404 Not Found');
    if (this.closing) return refuse('503 Service Unavailable');
    const from = req.method === 'GET' ? this.verifier.verify(req.headers, FRAMES_PATH, '') : null;
    if (!from) return refuse('401 Unauthorized');
    const clientNonce = req.headers['x-zkgate-cluster-nonce'] as string;
    const serverNonce = randomBytes(16).toString('hex');
    this.serverNonces.set(req, serverNonce);
    // Not a WebSocket handshake after all (no key, wrong version): `ws` answers 400 and closes.
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      if (this.closing) return void ws.terminate();
      const conn = new OwnerConnection(ws, connectionKey(this.secret, from, clientNonce, serverNonce), this.handler, this.onError, () => this.conns.delete(conn));
      this.conns.add(conn);
    });
  }

  /**
   * Tells every peer this instance goes away and waits (at most `ms`) for each connection to be
   * closed by its peer once its calls are answered: a call a peer sent before it heard `G` is
   * still answered, so nothing in flight meets a reset it could not tell from a crash. The
   * connections left are then terminated.
   */
  async close(ms = 1000): Promise<void> {
    this.closing = true;
    for (const c of this.conns) c.goAway();
    const until = Date.now() + ms;
    while (this.conns.size > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    for (const c of this.conns) c.terminate();
    this.conns.clear();
  }
}
