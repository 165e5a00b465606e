/**
 * The internal channel between instances: HTTP POSTs of JSON, each signed with HMAC-SHA256 of
 * the cluster secret over time, nonce, sender, path and body digest. The receiver refuses a
 * request older than 30 s or a nonce it has seen (replay). Answers are one JSON value, or
 * newline-delimited JSON for a stream. Closing the request cancels the work on the receiver.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { Agent, request, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';

const SKEW_MS = 30_000;

/** Why a channel call failed before any answer: the owner refused the connection (not listening) or something else. */
export class ChannelError extends Error {
  override readonly name = 'ChannelError';
  constructor(
    message: string,
    /** `refused`: nothing listens at the address (the process is gone); `failed`: reset, timeout, bad answer. */
    readonly kind: 'refused' | 'failed',
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** HMAC-SHA256 signature of a request (exported for tests that play a hostile or a real peer). */
export function sign(secret: string, time: string, nonce: string, from: string, path: string, body: string): string {
  const digest = createHash('sha256').update(body).digest('hex');
  return createHmac('sha256', secret).update(`${time}\n${nonce}\n${from}\n${path}\n${digest}`).digest('hex');
}

/** Sends signed requests to other instances. */
export class ChannelClient {
  // Keep-alive sockets (no TCP handshake per call), Nagle off: a forwarded call is one small
  // write each way and must not wait for an ACK of the previous segment.
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 256, noDelay: true });
  private readonly tlsAgent = new HttpsAgent({ keepAlive: true, maxSockets: 256, noDelay: true });

  constructor(
    private readonly secret: string,
    private readonly from: string,
  ) {}

  /**
   * POSTs `body` to `base + path`; resolves with the response once its headers arrived.
   * Aborting `signal` (or `timeoutMs` passing) destroys the request, which cancels the work.
   * @throws ChannelError
   */
  open(base: string, path: string, body: unknown, opts: { signal?: AbortSignal; timeoutMs?: number }): Promise<IncomingMessage> {
    const text = JSON.stringify(body);
    const time = String(Date.now());
    const nonce = randomBytes(12).toString('hex');
    const url = new URL(path, base);
    const tls = url.protocol === 'https:';
    return new Promise((resolve, reject) => {
      const req = (tls ? httpsRequest : request)(url, {
        method: 'POST',
        agent: tls ? this.tlsAgent : this.agent,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(text),
          'x-zkgate-cluster-from': this.from,
          'x-zkgate-cluster-time': time,
          'x-zkgate-cluster-nonce': nonce,
          'x-zkgate-cluster-signature': sign(this.secret, time, nonce, this.from, url.pathname, text),
        },
        ...(opts.signal ? { signal: opts.signal } : {}),
        ...(opts.timeoutMs ? { timeout: opts.timeoutMs } : {}),
      });
      req.on('timeout', () => req.destroy(new ChannelError(`cluster: no answer from ${base} within ${opts.timeoutMs} ms`, 'failed')));
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (err instanceof ChannelError || err.name === 'AbortError') return reject(err);
        reject(new ChannelError(`cluster: ${base}: ${err.code ?? err.message}`, err.code === 'ECONNREFUSED' ? 'refused' : 'failed', { cause: err }));
      });
      req.on('response', resolve);
      req.end(text);
    });
  }

  /** Ends idle keep-alive sockets. */
  close(): void {
    this.agent.destroy();
    this.tlsAgent.destroy();
  }
}

/** Reads a whole response body as JSON. @throws ChannelError */
export async function readJson(res: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  try {
    for await (const c of res) chunks.push(c as Buffer);
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
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

  constructor(private readonly secret: string) {}

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
    const want = Buffer.from(sign(this.secret, time, nonce, from, path, body), 'hex');
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
