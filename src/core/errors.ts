/**
 * The error catalogue. Every failure that leaves core is a `ZkgateError` with a stable `code`;
 * transports map codes to their protocol once (src/api/error-table.ts). Codes never change meaning.
 */
import { ZkError, type ZkOpKind } from '../zk/index.js';

/** Stable error codes; documented in docs/errors.md. */
export const ERROR_CODES = [
  'NO_NODE',
  'NODE_EXISTS',
  'BAD_VERSION',
  'NOT_EMPTY',
  'NO_CHILDREN_FOR_EPHEMERALS',
  'NO_AUTH',
  'INVALID_ACL',
  'INVALID_PATH',
  'INVALID_ARGUMENT',
  'DATA_TOO_LARGE',
  'PAYLOAD_TOO_LARGE',
  'UNSUPPORTED_MEDIA_TYPE',
  'SUBTREE_TOO_LARGE',
  'LEASE_REQUIRED',
  'LEASE_NOT_FOUND',
  'LEASE_EXPIRED',
  'LEASE_REVOKED',
  'LEASE_LOST',
  'LEASE_UNCERTAIN',
  'LOCK_NOT_ACQUIRED',
  'PERMITS_NOT_ACQUIRED',
  'NOT_ELECTED',
  'NOT_LEADER',
  'QUEUE_EMPTY',
  'BARRIER_TIMEOUT',
  'NOT_MEMBER',
  'SLOW_CONSUMER',
  'UNIMPLEMENTED',
  'UNAVAILABLE',
  'SESSION_EXPIRED',
  'NOT_FOUND',
  'METHOD_NOT_ALLOWED',
  'UNAUTHENTICATED',
  'PERMISSION_DENIED',
  'LIMIT_EXCEEDED',
  'TOO_MANY_CHILDREN',
  'CANCELLED',
  'INTERNAL',
  // jobs (src/core/jobs)
  'JOB_NOT_FOUND',
  'JOB_NOT_ACTIVE',
  'RUN_CLAIMED',
  'RUN_NOT_HELD',
  'NOT_JOB_MEMBER',
  'SHARD_NOT_HELD',
  'NO_INSTANCES',
  'INSTANCE_NOT_OWNED',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/** A failure with a stable code; `details` carries machine-readable context (path, limit…). */
export class ZkgateError extends Error {
  override readonly name = 'ZkgateError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details: Readonly<Record<string, string | number | boolean>> = {},
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

const FROM_ZK: Readonly<Record<ZkError['code'], ErrorCode>> = {
  NO_NODE: 'NO_NODE',
  NODE_EXISTS: 'NODE_EXISTS',
  BAD_VERSION: 'BAD_VERSION',
  NOT_EMPTY: 'NOT_EMPTY',
  NO_CHILDREN_FOR_EPHEMERALS: 'NO_CHILDREN_FOR_EPHEMERALS',
  NO_AUTH: 'NO_AUTH',
  INVALID_ACL: 'INVALID_ACL',
  AUTH_FAILED: 'UNAVAILABLE',
  CONNECTION_LOSS: 'UNAVAILABLE',
  OPERATION_TIMEOUT: 'UNAVAILABLE',
  SESSION_EXPIRED: 'SESSION_EXPIRED',
  SESSION_MOVED: 'SESSION_EXPIRED',
  INVALID_STATE: 'SESSION_EXPIRED',
  UNIMPLEMENTED: 'UNIMPLEMENTED',
  BAD_ARGUMENTS: 'INVALID_ARGUMENT',
  SYSTEM_ERROR: 'INTERNAL',
};

const MESSAGES: Partial<Record<ErrorCode, string>> = {
  NO_NODE: 'node does not exist',
  NODE_EXISTS: 'node already exists',
  BAD_VERSION: 'version does not match (compare-and-set failed)',
  NOT_EMPTY: 'node has children',
  NO_CHILDREN_FOR_EPHEMERALS: 'ephemeral nodes cannot have children',
  NO_AUTH: 'not authorized by the node ACL',
  INVALID_ACL: 'invalid ACL',
  UNIMPLEMENTED: 'not supported by this ZooKeeper server (TTL nodes need -Dzookeeper.extendedTypesEnabled=true)',
  SESSION_EXPIRED: 'zookeeper session expired during the call; retry',
};

/**
 * A connection lost (or timed out) with a request in flight, by what the request was: only a
 * write's outcome is unknown (it may or may not have been applied); a read changed nothing. The
 * kind is unknown only for a failure not tied to one request.
 */
const CUT_REQUEST: Readonly<Record<ZkOpKind | 'unknown', { readonly message: string; readonly details: Readonly<Record<string, string>> }>> = {
  write: { message: 'zookeeper connection lost during a write: its outcome is unknown (re-read before retrying)', details: { op: 'write', outcome: 'unknown' } },
  read: { message: 'zookeeper connection lost during a read; retry', details: { op: 'read' } },
  unknown: { message: 'zookeeper connection lost during the call: if it wrote, the outcome of that write is unknown', details: { outcome: 'unknown' } },
};

/**
 * A wait given up because its caller went away, the caller's own deadline passed, or its lease
 * released the node it waited with: an expected outcome (never INTERNAL, never logged as an
 * error). Transports abort their signals with it.
 * @param reason `client_gone`, `client_cancelled`, `deadline` or `released`
 */
export function cancelled(reason: 'client_gone' | 'client_cancelled' | 'deadline' | 'released', message: string): ZkgateError {
  return new ZkgateError('CANCELLED', message, { reason });
}

/**
 * Converts anything thrown below core into a `ZkgateError`; ZooKeeper codes map one to one, and
 * a bare abort (an AbortSignal's default reason) is CANCELLED.
 */
export function toZkgateError(err: unknown, path?: string): ZkgateError {
  if (err instanceof ZkgateError) return err;
  if (err instanceof Error && (err.name === 'AbortError' || err.name === 'TimeoutError')) {
    return new ZkgateError('CANCELLED', `cancelled: ${err.message}`, { reason: err.name === 'TimeoutError' ? 'deadline' : 'client_gone' }, { cause: err });
  }
  if (err instanceof ZkError) {
    const code = FROM_ZK[err.code];
    const details: Record<string, string> = {};
    if (path ?? err.path) details.path = (path ?? err.path) as string;
    let message = MESSAGES[code] ?? err.message;
    if (err.code === 'CONNECTION_LOSS' || err.code === 'OPERATION_TIMEOUT') {
      const cut = CUT_REQUEST[err.op ?? 'unknown'];
      message = cut.message;
      Object.assign(details, cut.details);
    }
    return new ZkgateError(code, `${details.path ? `${details.path}: ` : ''}${message}`, details, { cause: err });
  }
  return new ZkgateError('INTERNAL', 'internal error', {}, { cause: err });
}

/**
 * DATA_TOO_LARGE: znode data (or an item, or an instance document: `what`) of `size` bytes over
 * the tenant's `limits.maxDataBytes` (`limit`, bytes).
 */
export function dataTooLarge(size: number, limit: number, what = 'data'): ZkgateError {
  return new ZkgateError('DATA_TOO_LARGE', `${what} is ${size} bytes; the limit is ${limit}`, { limit, size, setting: 'maxDataBytes' });
}

/**
 * PAYLOAD_TOO_LARGE: a request body or message over `limit` bytes, the value of `setting`
 * (`maxBodyBytes`, `wsMaxMessageBytes`); `size` is its length when it was declared. As
 * DATA_TOO_LARGE's, `details.limit` is a number of bytes and `details.setting` names it.
 */
export function payloadTooLarge(what: string, limit: number, setting: string, size?: number): ZkgateError {
  const told = size === undefined ? `${what} is over the limit (limits.${setting}) of ${limit} bytes` : `${what} is ${size} bytes; the limit (limits.${setting}) is ${limit}`;
  return new ZkgateError('PAYLOAD_TOO_LARGE', told, {
    limit,
    setting,
    ...(size !== undefined ? { size } : {}),
  });
}

/** Shorthand for an INVALID_ARGUMENT naming the bad field. */
export function invalidArgument(field: string, problem: string): ZkgateError {
  return new ZkgateError('INVALID_ARGUMENT', `${field}: ${problem}`, { field });
}
