/**
 * What both forms of the internal channel (signed POSTs in channel.ts, frames on a persistent
 * connection in frames.ts) share: the request signature, the secret as a key, the error a call
 * fails with before any answer.
 */
import { createHash, createHmac, createSecretKey, type KeyObject } from 'node:crypto';

/** Why a channel call failed before any answer: the owner refused the connection (not listening), its TLS certificate was not trusted, the call never left, or something else. */
export class ChannelError extends Error {
  override readonly name = 'ChannelError';
  constructor(
    message: string,
    /**
     * `refused`: nothing listens at the address (the process is gone); `untrusted`: an `https://`
     * address whose certificate this instance does not trust (nothing was sent: a configuration
     * error, not a failure of the peer); `unsent`: the connection for calls could not be opened
     * in time (no answer to the upgrade, the call's time ran out while it opened, or backing off
     * after such an open): nothing of the call was written, so it was provably not carried out;
     * `failed`: reset, timeout, bad answer — the call may have reached the peer.
     */
    readonly kind: 'refused' | 'untrusted' | 'unsent' | 'failed',
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/**
 * HMAC-SHA256 signature of a request (exported for tests that play a hostile or a real peer).
 * `secret` may be the key made once by `secretKey` (a string is turned into a key on every call).
 */
export function sign(secret: string | KeyObject, time: string, nonce: string, from: string, path: string, body: string): string {
  const digest = createHash('sha256').update(body).digest('hex');
  return createHmac('sha256', secret).update(`${time}\n${nonce}\n${from}\n${path}\n${digest}`).digest('hex');
}

/** The cluster secret as an HMAC key, made once per process instead of on every signature. */
export const secretKey = (secret: string): KeyObject => createSecretKey(Buffer.from(secret, 'utf8'));

/**
 * The ChannelError for a connection that failed: `refused` (ECONNREFUSED), `untrusted` (the TLS
 * peer's certificate failed verification: OpenSSL's verify codes, Node's altname check) or
 * `failed`, naming `base` and the cause.
 */
export function channelError(base: string, err: NodeJS.ErrnoException): ChannelError {
  const code = err.code ?? '';
  if (code === 'ECONNREFUSED') return new ChannelError(`cluster: ${base}: ECONNREFUSED`, 'refused', { cause: err });
  if (/CERT|SIGNATURE|ISSUER/.test(code)) return new ChannelError(`cluster: ${base}: TLS certificate not trusted: ${err.message} (${code})`, 'untrusted', { cause: err });
  return new ChannelError(`cluster: ${base}: ${code || err.message}`, 'failed', { cause: err });
}
