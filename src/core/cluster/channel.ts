/**
 * The internal channel between instances: HTTP POSTs of JSON, each signed with HMAC-SHA256 of
 * the cluster secret over time, nonce, sender, path and body digest. The receiver refuses a
 * request older than 30 s or a nonce it has seen (replay). Answers are one JSON value, or
 * newline-delimited JSON for a stream. Closing the request cancels the work on the receiver.
 * Forwarded facade calls (`/cluster/v1/call`, the hot path) go as frames on one persistent
 * connection per peer instead (frames.ts), and as POSTs to a peer that does not take it (an
 * instance of an older version during a rolling upgrade).
 */
import { randomBytes, timingSafeEqual, type KeyObject } from 'node:crypto';
import { Agent, request, type IncomingMessage, type RequestOptions } from 'node:http';
import type { Socket } from 'node:net';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { ChannelError, channelError, secretKey, sign } from './channel-auth.js';
import { FrameClient, POST, type FrameCallOptions, type Target } from './frames.js';

export { ChannelError, secretKey, sign } from './channel-auth.js';

const SKEW_MS = 30_000;

/** The path of a forwarded facade call: carried as frames when the peer takes them. */
export const CALL_PATH = '/cluster/v1/call';

/** Random nonce bytes drawn in batches: one CSPRNG call per 256 requests instead of one each. */
class NoncePool {
  private buf = Buffer.alloc(0);
  private at = 0;
  next(): string {
    if (this.at + 12 > this.buf.length) {
      this.buf = randomBytes(12 * 256);
      this.at = 0;
    }
    const n = this.buf.toString('hex', this.at, this.at + 12);
    this.at += 12;
    return n;
  }
}

/** Sends signed requests to other instances. */
export class ChannelClient {
  // Keep-alive sockets (no TCP handshake per call), Nagle off: a forwarded call is one small
  // write each way and must not wait for an ACK of the previous segment.
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 256, noDelay: true });
  private readonly tlsAgent = new HttpsAgent({ keepAlive: true, maxSockets: 256, noDelay: true });
  private readonly key: KeyObject;
  private readonly nonces = new NoncePool();
  private readonly targets = new Map<string, Target>();
  private readonly frames: FrameClient;

  constructor(
    secret: string,
    private readonly from: string,
  ) {
    this.key = secretKey(secret);
    this.frames = new FrameClient(this.key, from, () => this.nonces.next());
  }

  private target(base: string): Target {
    let t = this.targets.get(base);
    if (!t) {
      const url = new URL(base);
      const tls = url.protocol === 'https:';
      // URL keeps an IPv6 literal's brackets; the socket wants the bare address.
      const port = url.port ? Number(url.port) : tls ? 443 : 80;
      t = { tls, host: url.hostname.replace(/^\[(.*)\]$/, '$1'), port, authority: `${url.hostname}:${port}` };
      if (this.targets.size >= 1024) this.targets.clear();
      this.targets.set(base, t);
    }
    return t;
  }

  /**
   * POSTs `body` to `base + path`; resolves with the response once its headers arrived.
   * `path` is absolute (`/cluster/v1/…`), without a query. Aborting `signal` (or `timeoutMs`
   * passing) destroys the request, which cancels the work.
   * @throws ChannelError
   */
  open(base: string, path: string, body: unknown, opts: { signal?: AbortSignal; timeoutMs?: number }): Promise<IncomingMessage> {
    return this.send(base, path, JSON.stringify(body), opts, true);
  }

  /**
   * Sends `body` to `base + path` and resolves with its JSON answer: a forwarded facade call
   * (`CALL_PATH`) as a frame on the peer's connection, anything else (or to a peer that does not
   * take the connection) as a POST. Aborting `signal` (or `timeoutMs` passing) cancels the work.
   * @throws ChannelError
   */
  async call(base: string, path: string, body: unknown, opts: FrameCallOptions): Promise<unknown> {
    const text = JSON.stringify(body);
    if (path === CALL_PATH) {
      const v = await this.frames.call(base, this.target(base), text, opts);
      if (v !== POST) return v;
    }
    return readJson(await this.send(base, path, text, opts, true));
  }

  private send(base: string, path: string, text: string, opts: { signal?: AbortSignal; timeoutMs?: number }, mayRetry: boolean): Promise<IncomingMessage> {
    const time = String(Date.now());
    const nonce = this.nonces.next();
    const { tls, host, port } = this.target(base);
    const options: RequestOptions = {
      method: 'POST',
      host,
      port,
      path,
      agent: tls ? this.tlsAgent : this.agent,
      headers: {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(text),
        'x-zkgate-cluster-from': this.from,
        'x-zkgate-cluster-time': time,
        'x-zkgate-cluster-nonce': nonce,
        'x-zkgate-cluster-signature': sign(this.key, time, nonce, this.from, path, text),
      },
    };
    if (opts.signal) options.signal = opts.signal;
    if (opts.timeoutMs) options.timeout = opts.timeoutMs;
    return new Promise((resolve, reject) => {
      const req = (tls ? httpsRequest : request)(options);
      // Until its socket is connected nothing of the request has left: a failure then is 'unsent'.
      let connected = false;
      req.once('socket', (s: Socket) => void (s.connecting ? s.once('connect', () => void (connected = true)) : (connected = true)));
      req.on('timeout', () =>
        req.destroy(connected ? new ChannelError(`cluster: no answer from ${base} within ${opts.timeoutMs} ms`, 'failed') : new ChannelError(`cluster: ${base}: not connected within ${opts.timeoutMs} ms`, 'unsent')),
      );
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (err instanceof ChannelError || err.name === 'AbortError') return reject(err);
        // A kept-alive socket the peer closed as this request went out (a draining instance
        // closes its idle connections): the peer never read it, so it is sent again, once, on a
        // new connection (signed anew: the receiver refuses a nonce it has seen).
        if (mayRetry && req.reusedSocket && err.code === 'ECONNRESET' && !opts.signal?.aborted) return resolve(this.send(base, path, text, opts, false));
        const e = channelError(base, err);
        reject(e.kind === 'failed' && !connected ? new ChannelError(e.message, 'unsent', { cause: err }) : e);
      });
      req.on('response', resolve);
      req.end(text);
    });
  }

  /** Ends idle keep-alive sockets and the peers' connections (calls open on them fail). */
  close(): void {
    this.frames.close();
    this.agent.destroy();
    this.tlsAgent.destroy();
  }
}

/**
 * Reads a whole body (an answer, or a request on the owner) as one string; resolves null when
 * it is longer than `max` bytes (nothing more is kept). Plain events, not an async iterator:
 * this runs twice per forwarded call. @throws the stream's error, or when it closed before its end
 */
export function readBody(stream: IncomingMessage, max = Infinity): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (f: () => void): void => {
      if (done) return;
      done = true;
      stream.off('data', onData);
      f();
    };
    const onData = (c: Buffer): void => {
      size += c.length;
      if (size > max) finish(() => resolve(null));
      else chunks.push(c);
    };
    stream.on('data', onData);
    stream.once('end', () => finish(() => resolve(chunks.length === 1 ? (chunks[0] as Buffer).toString('utf8') : Buffer.concat(chunks).toString('utf8'))));
    stream.once('error', (err) => finish(() => reject(err)));
    stream.once('close', () => finish(() => reject(Object.assign(new Error('Premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' }))));
  });
}

/** Reads a whole response body as JSON. @throws ChannelError */
export async function readJson(res: IncomingMessage): Promise<unknown> {
  try {
    return JSON.parse((await readBody(res)) as string) as unknown;
  } catch (err) {
    throw new ChannelError('cluster: the answer was cut or malformed', 'failed', { cause: err });
  }
}

/** Yields each line of a newline-delimited JSON response. */
export async function* readLines(res: IncomingMessage): AsyncGenerator<unknown> {
  let buf = '';
  for await (const c of res) {
    buf += (c as Buffer).toString('utf8');
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line) yield JSON.parse(line) as unknown;
    }
  }
}

/** Checks signatures of incoming requests and remembers nonces for the skew window. */
export class ChannelVerifier {
  private readonly seen = new Map<string, number>();
  private readonly key: KeyObject;

  constructor(secret: string) {
    this.key = secretKey(secret);
  }

  /**
   * Whether the head carries a well-formed, fresh signature (not yet checked against the body):
   * a request without one is refused before its body is read.
   */
  plausible(headers: IncomingMessage['headers']): boolean {
    const h = (k: string): string => (typeof headers[k] === 'string' ? (headers[k] as string) : '');
    const [from, time, nonce, sig] = [h('x-zkgate-cluster-from'), h('x-zkgate-cluster-time'), h('x-zkgate-cluster-nonce'), h('x-zkgate-cluster-signature')];
    if (!from || !/^\d+$/.test(time) || !/^[0-9a-f]{24}$/.test(nonce) || !/^[0-9a-f]{64}$/.test(sig)) return false;
    return Math.abs(Date.now() - Number(time)) <= SKEW_MS;
  }

  /** The sender's instance id when the request is genuine and fresh, else null. */
  verify(headers: IncomingMessage['headers'], path: string, body: string): string | null {
    if (!this.plausible(headers)) return null;
    const [from, time, nonce, sig] = ['x-zkgate-cluster-from', 'x-zkgate-cluster-time', 'x-zkgate-cluster-nonce', 'x-zkgate-cluster-signature'].map((k) => headers[k] as string) as [string, string, string, string];
    const now = Date.now();
    const want = Buffer.from(sign(this.key, time, nonce, from, path, body), 'hex');
    if (!timingSafeEqual(want, Buffer.from(sig, 'hex'))) return null;
    if (this.seen.has(nonce)) return null;
    this.prune(now);
    this.seen.set(nonce, now + 2 * SKEW_MS);
    return from;
  }

  /**
   * Forgets nonces past the window. Entries are inserted in time order with the same lifetime,
   * so the expired ones are at the front: stop at the first live one (was a scan of the whole
   * map on every request once it held 1000, i.e. at more than ~17 calls/s).
   */
  private prune(now: number): void {
    for (const [n, until] of this.seen) {
      if (until >= now) return;
      this.seen.delete(n);
    }
  }
}
