/**
 * ZooKeeper return codes become typed errors here, once. The `zookeeper` npm package reports
 * them as `Error("-101 no node")` or, for calls refused before they are sent,
 * `Error('fn: "a_get" args: "…" result: "ZINVALIDSTATE -9"')`.
 */

/** Stable names for the ZooKeeper return codes the gateway distinguishes. */
export type ZkErrorCode =
  | 'NO_NODE'
  | 'NODE_EXISTS'
  | 'BAD_VERSION'
  | 'NOT_EMPTY'
  | 'NO_CHILDREN_FOR_EPHEMERALS'
  | 'NO_AUTH'
  | 'INVALID_ACL'
  | 'AUTH_FAILED'
  | 'CONNECTION_LOSS'
  | 'OPERATION_TIMEOUT'
  | 'SESSION_EXPIRED'
  | 'SESSION_MOVED'
  | 'INVALID_STATE'
  | 'UNIMPLEMENTED'
  | 'BAD_ARGUMENTS'
  | 'SYSTEM_ERROR';

const BY_RC: ReadonlyMap<number, ZkErrorCode> = new Map<number, ZkErrorCode>([
  [-101, 'NO_NODE'],
  [-110, 'NODE_EXISTS'],
  [-103, 'BAD_VERSION'],
  [-111, 'NOT_EMPTY'],
  [-108, 'NO_CHILDREN_FOR_EPHEMERALS'],
  [-102, 'NO_AUTH'],
  [-114, 'INVALID_ACL'],
  [-115, 'AUTH_FAILED'],
  [-4, 'CONNECTION_LOSS'],
  [-7, 'OPERATION_TIMEOUT'],
  [-112, 'SESSION_EXPIRED'],
  [-118, 'SESSION_MOVED'],
  [-9, 'INVALID_STATE'],
  [-116, 'INVALID_STATE'], // ZCLOSING: the handle is being closed
  [-6, 'UNIMPLEMENTED'],
  [-8, 'BAD_ARGUMENTS'],
]);

/**
 * What a ZooKeeper request was: a `read` (get, exists, children, ACL read, sync) changes nothing;
 * a `write` (create, set, delete, ACL write) cut by a connection loss may or may not have applied.
 */
export type ZkOpKind = 'read' | 'write';

/**
 * A failed ZooKeeper call: `code` is stable, `rc` the native return code, `op` what the request
 * was when known (a failure not tied to one request, such as "session is suspended", has none).
 */
export class ZkError extends Error {
  override readonly name = 'ZkError';
  constructor(
    readonly code: ZkErrorCode,
    readonly rc: number,
    message: string,
    readonly path?: string,
    options?: ErrorOptions,
    readonly op?: ZkOpKind,
  ) {
    super(message, options);
  }
}

/** Parses the npm package's error text into a `ZkError`; anything unrecognised is SYSTEM_ERROR. */
export function toZkError(err: unknown, path?: string, op?: ZkOpKind): ZkError {
  if (err instanceof ZkError) return err;
  const text = err instanceof Error ? err.message : String(err);
  const m = /^(-?\d+)\s/.exec(text) ?? /result: "\w+ (-?\d+)"/.exec(text);
  return zkErrorOf(m ? Number(m[1]) : -1, path, err, op);
}

/** The `ZkError` of a native return code (`cause`: what reported it, `op`: the request's kind); unknown codes are SYSTEM_ERROR. */
export function zkErrorOf(rc: number, path?: string, cause?: unknown, op?: ZkOpKind): ZkError {
  const code = BY_RC.get(rc) ?? 'SYSTEM_ERROR';
  return new ZkError(code, rc, messageOf(code, path), path, cause === undefined ? undefined : { cause }, op);
}

/** The error a read of the missing `path` gets, for an answer known without a read (the read cache). */
export function noNode(path: string): ZkError {
  return new ZkError('NO_NODE', -101, messageOf('NO_NODE', path), path);
}

function messageOf(code: ZkErrorCode, path: string | undefined): string {
  return `zookeeper: ${code.toLowerCase().replace(/_/g, ' ')}${path ? ` (${path})` : ''}`;
}

/** True for failures after which a write's outcome is unknown (it may or may not have applied). */
export function isConnectionError(err: unknown): boolean {
  return err instanceof ZkError && (err.code === 'CONNECTION_LOSS' || err.code === 'OPERATION_TIMEOUT');
}
