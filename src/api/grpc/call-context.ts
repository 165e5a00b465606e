/**
 * What every gRPC handler needs from its call: the caller (from metadata), an AbortSignal that
 * fires when the call is cancelled or passes its deadline, and one way to turn a thrown error
 * into a gRPC status (through the error table, never ad hoc).
 */
import { Metadata, status, type ServerErrorResponse, type ServerUnaryCall, type sendUnaryData } from '@grpc/grpc-js';
import { MAX_WAIT_MS, cancelled, type Gateway, type Logger, type Scope } from '../../core/index.js';
import { mapError } from '../error-table.js';
import { countError } from '../metrics.js';
import { checkDecoded } from './malformed.js';
import { rememberCaller } from './access-log.js';

/** Metadata key naming the tenant (same as REST's `Zkgate-Tenant` header). */
export const TENANT_METADATA = 'zkgate-tenant';
/** Metadata key carrying the API key as `Bearer <key>` (same as REST's `Authorization` header). */
export const AUTHORIZATION_METADATA = 'authorization';
/** Trailing metadata key carrying the stable error code of a failed call. */
export const ERROR_CODE_METADATA = 'zkgate-error-code';
/** Trailing metadata key carrying the error's details as a JSON object, when it has any. */
export const ERROR_DETAILS_METADATA = 'zkgate-error-details';

/** The parts of a server call the helpers below read (every call kind has them). */
export interface CallLike {
  readonly metadata: Metadata;
  readonly cancelled: boolean;
  getDeadline(): Date | number;
  on(event: 'cancelled', listener: () => void): unknown;
}

function metadataString(md: Metadata, key: string): string | undefined {
  const v = md.get(key)[0];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/**
 * What the caller of a gRPC call may do, from metadata `authorization` (`Bearer <key>`) and
 * `zkgate-tenant`: the single place gRPC authenticates, with the same keys, roles and tenant
 * rule as REST. @throws ZkgateError UNAUTHENTICATED, PERMISSION_DENIED, NOT_FOUND (unknown tenant), INVALID_ARGUMENT
 */
export function scopeOf(gw: Gateway, call: Pick<CallLike, 'metadata'>): Scope {
  const principal = gw.authenticate({
    authorization: metadataString(call.metadata, AUTHORIZATION_METADATA),
    tenant: metadataString(call.metadata, TENANT_METADATA),
  });
  rememberCaller(call.metadata, principal); // for the call's access line
  return gw.as(principal);
}

/**
 * An AbortSignal that aborts when the client cancels the call, goes away, or the call's deadline
 * passes. Core waits (lock acquire, campaign) take it, so their ZooKeeper nodes are removed.
 */
export function callSignal(call: CallLike): AbortSignal {
  const ac = new AbortController();
  const cancel = (): void => ac.abort(cancelled('client_cancelled', 'grpc: call cancelled by the client'));
  if (call.cancelled) cancel();
  else call.on('cancelled', cancel);
  const deadline = call.getDeadline();
  const ms = deadline instanceof Date ? deadline.getTime() : deadline;
  if (Number.isFinite(ms)) {
    const t = setTimeout(() => ac.abort(cancelled('deadline', 'grpc: call deadline exceeded')), Math.max(0, ms - Date.now()));
    t.unref();
    ac.signal.addEventListener('abort', () => clearTimeout(t), { once: true });
  }
  return ac.signal;
}

/** The remaining time before the call's deadline, ms; undefined without a deadline. */
export function deadlineRemainingMs(call: CallLike): number | undefined {
  const deadline = call.getDeadline();
  const ms = deadline instanceof Date ? deadline.getTime() : deadline;
  return Number.isFinite(ms) ? Math.max(0, ms - Date.now()) : undefined;
}

/**
 * JSON with every character outside printable ASCII escaped (`\u00fc`): still the same JSON,
 * and a valid metadata value (grpc-js throws on anything else, e.g. a path with `ü` in it).
 */
function asciiJson(value: unknown): string {
  return JSON.stringify(value).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * A gRPC status for any thrown value, via the one error table; the code travels in metadata.
 * Counted in `zkgate_errors_total`; unexpected errors (INTERNAL) are logged with their cause when `log` is given.
 */
export function toServiceError(err: unknown, log?: Logger): ServerErrorResponse {
  const { error, mapping } = mapError(err);
  countError(error, 'grpc');
  if (log && mapping.grpc === status.INTERNAL) log.error({ err }, 'grpc call failed');
  const metadata = new Metadata();
  metadata.set(ERROR_CODE_METADATA, error.code);
  if (Object.keys(error.details).length) metadata.set(ERROR_DETAILS_METADATA, asciiJson(error.details));
  return Object.assign(new Error(error.message), { code: mapping.grpc as status, details: error.message, metadata });
}

/** A unary handler body: the request and the call in, the response (or a thrown error) out. */
export type UnaryBody<Req, Res> = (request: Req, call: ServerUnaryCall<Req, Res>) => Res | Promise<Res>;

/**
 * Returns `unary(fn)`, which adapts an async `(request, call) => response` function to a
 * grpc-js unary handler: whatever it throws is answered through {@link toServiceError}.
 */
export function unaryWith(log: Logger): <Req, Res>(fn: UnaryBody<Req, Res>) => (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => void {
  return (fn) => (call, callback) => {
    Promise.resolve()
      .then(() => fn(checkDecoded(call.request), call))
      .then(
        (res) => callback(null, res),
        (err: unknown) => callback(toServiceError(err, log)),
      );
  };
}

/** Ends a server stream with the status for `err` (grpc-js turns an `error` event into the status). */
export function failStream(call: { emit(event: 'error', err: Error): boolean }, err: unknown, log?: Logger): void {
  call.emit('error', toServiceError(err, log));
}

/** A writable server stream as the helpers below see it. */
interface StreamLike {
  readonly cancelled: boolean;
  readonly writableEnded: boolean;
  readonly destroyed: boolean;
  write(msg: unknown): boolean;
  once(event: string, listener: () => void): unknown;
  off(event: string, listener: () => void): unknown;
}

/**
 * Writes `msg` and resolves once the stream can take more (HTTP/2 flow control), so a slow
 * reader pushes back on the producer instead of growing a buffer. Resolves at once on a
 * cancelled or ended stream.
 */
export function writeWhenReady(call: StreamLike, msg: unknown): Promise<void> {
  if (call.cancelled || call.writableEnded || call.destroyed) return Promise.resolve();
  if (call.write(msg)) return Promise.resolve();
  return new Promise((resolve) => {
    const events = ['drain', 'close', 'error', 'cancelled'];
    const done = (): void => {
      for (const e of events) call.off(e, done);
      resolve();
    };
    for (const e of events) call.once(e, done);
  });
}

/**
 * The wait of a lock acquire or campaign: `waitMs` when given, else the whole call deadline (at
 * most MAX_WAIT_MS, also without a deadline); core ends the wait a margin before the deadline,
 * so the answer (LOCK_NOT_ACQUIRED with the holder) reaches the client before its deadline.
 */
export function waitOptions(waitMs: number | undefined, call: CallLike): { waitMs?: number; deadline?: number } {
  const remaining = deadlineRemainingMs(call);
  if (remaining === undefined) return { waitMs: waitMs ?? MAX_WAIT_MS };
  return { waitMs, deadline: Date.now() + remaining };
}
