/**
 * One row per error code: its HTTP status, gRPC status code and WebSocket close code. Every
 * transport maps errors through this table and nowhere else.
 */
import { ERROR_CODES, ZkgateError, toZkgateError, type ErrorCode } from '../core/index.js';

export interface ErrorMapping {
  readonly http: number;
  /** grpc status code number (see @grpc/grpc-js `status`). */
  readonly grpc: number;
  /** Close code used when the error ends a WebSocket (4000–4999 are application codes). */
  readonly ws: number;
  readonly title: string;
}

// gRPC codes: 1 CANCELLED, 3 INVALID_ARGUMENT, 5 NOT_FOUND, 6 ALREADY_EXISTS, 7 PERMISSION_DENIED,
// 8 RESOURCE_EXHAUSTED, 9 FAILED_PRECONDITION, 10 ABORTED, 12 UNIMPLEMENTED, 13 INTERNAL, 14 UNAVAILABLE,
// 16 UNAUTHENTICATED
export const ERROR_TABLE: Readonly<Record<ErrorCode, ErrorMapping>> = {
  NO_NODE: { http: 404, grpc: 5, ws: 4404, title: 'No such node' },
  NODE_EXISTS: { http: 409, grpc: 6, ws: 4409, title: 'Node exists' },
  BAD_VERSION: { http: 412, grpc: 10, ws: 4412, title: 'Version mismatch' },
  NOT_EMPTY: { http: 409, grpc: 9, ws: 4409, title: 'Node not empty' },
  NO_CHILDREN_FOR_EPHEMERALS: { http: 409, grpc: 9, ws: 4409, title: 'Ephemeral nodes cannot have children' },
  NO_AUTH: { http: 403, grpc: 7, ws: 4403, title: 'Not authorized by the node ACL' },
  INVALID_ACL: { http: 400, grpc: 3, ws: 4400, title: 'Invalid ACL' },
  INVALID_PATH: { http: 400, grpc: 3, ws: 4400, title: 'Invalid path' },
  INVALID_ARGUMENT: { http: 400, grpc: 3, ws: 4400, title: 'Invalid argument' },
  DATA_TOO_LARGE: { http: 413, grpc: 8, ws: 4413, title: 'Data too large' },
  PAYLOAD_TOO_LARGE: { http: 413, grpc: 8, ws: 1009, title: 'Request too large' },
  UNSUPPORTED_MEDIA_TYPE: { http: 415, grpc: 3, ws: 1003, title: 'Unsupported media type' },
  SUBTREE_TOO_LARGE: { http: 409, grpc: 9, ws: 4409, title: 'Subtree too large (recursive delete or subtree watch)' },
  LEASE_REQUIRED: { http: 400, grpc: 9, ws: 4400, title: 'A lease is required' },
  LEASE_NOT_FOUND: { http: 404, grpc: 5, ws: 4404, title: 'No such lease' },
  LEASE_EXPIRED: { http: 410, grpc: 9, ws: 4410, title: 'Lease expired' },
  LEASE_REVOKED: { http: 410, grpc: 9, ws: 4410, title: 'Lease revoked' },
  LEASE_LOST: { http: 410, grpc: 9, ws: 4410, title: 'Lease lost' },
  LEASE_UNCERTAIN: { http: 503, grpc: 14, ws: 1013, title: 'Lease state uncertain while ZooKeeper is unreachable' },
  // ABORTED, not DEADLINE_EXCEEDED: the wait ended on the gateway's side with an answer (who
  // holds it), which clients must not mistake for a transport timeout.
  LOCK_NOT_ACQUIRED: { http: 409, grpc: 10, ws: 4409, title: 'Lock not acquired within the wait' },
  PERMITS_NOT_ACQUIRED: { http: 409, grpc: 10, ws: 4409, title: 'Semaphore permits not acquired within the wait' },
  NOT_ELECTED: { http: 409, grpc: 10, ws: 4409, title: 'Not elected within the wait' },
  NOT_LEADER: { http: 409, grpc: 9, ws: 4409, title: 'Not the current leader' },
  // ABORTED like LOCK_NOT_ACQUIRED: the wait ended on the gateway's side with an answer.
  QUEUE_EMPTY: { http: 409, grpc: 10, ws: 4409, title: 'No queue item within the wait' },
  BARRIER_TIMEOUT: { http: 409, grpc: 10, ws: 4409, title: 'Barrier not passed within the wait' },
  NOT_MEMBER: { http: 409, grpc: 9, ws: 4409, title: 'Not a member of the double barrier' },
  SLOW_CONSUMER: { http: 503, grpc: 8, ws: 4408, title: 'Slow consumer: the event queue overflowed' },
  UNIMPLEMENTED: { http: 501, grpc: 12, ws: 4501, title: 'Not supported by the ZooKeeper server' },
  UNAVAILABLE: { http: 503, grpc: 14, ws: 1013, title: 'ZooKeeper unavailable' },
  SESSION_EXPIRED: { http: 503, grpc: 14, ws: 1013, title: 'ZooKeeper session expired' },
  NOT_FOUND: { http: 404, grpc: 5, ws: 4404, title: 'Not found' },
  METHOD_NOT_ALLOWED: { http: 405, grpc: 12, ws: 4405, title: 'Method not allowed on this URL' },
  UNAUTHENTICATED: { http: 401, grpc: 16, ws: 4401, title: 'Missing or invalid API key' },
  PERMISSION_DENIED: { http: 403, grpc: 7, ws: 4403, title: 'Not allowed for this API key' },
  LIMIT_EXCEEDED: { http: 429, grpc: 8, ws: 4429, title: 'A per-tenant limit is reached' },
  TOO_MANY_CHILDREN: { http: 409, grpc: 8, ws: 4409, title: 'Too many children for one listing' },
  // 499 (nginx's "client closed request"): nobody reads it, but logs and metrics show it is no server error.
  CANCELLED: { http: 499, grpc: 1, ws: 4499, title: 'Cancelled: the client went away or its deadline passed' },
  INTERNAL: { http: 500, grpc: 13, ws: 1011, title: 'Internal error' },
  JOB_NOT_FOUND: { http: 404, grpc: 5, ws: 4404, title: 'No such job' },
  JOB_NOT_ACTIVE: { http: 409, grpc: 9, ws: 4409, title: 'The job is paused or disabled' },
  // ALREADY_EXISTS: the expected answer of every crontab but one, with the claimer in details.
  RUN_CLAIMED: { http: 409, grpc: 6, ws: 4409, title: 'The run is already claimed (or done)' },
  RUN_NOT_HELD: { http: 409, grpc: 9, ws: 4409, title: 'The run is not running for this lease' },
  NOT_JOB_MEMBER: { http: 409, grpc: 9, ws: 4409, title: 'The lease has not joined the job as this member' },
  SHARD_NOT_HELD: { http: 409, grpc: 9, ws: 4409, title: 'The shard item is not claimed by this lease' },
  NO_INSTANCES: { http: 404, grpc: 5, ws: 4404, title: 'The service has no enabled instance' },
  INSTANCE_NOT_OWNED: { http: 409, grpc: 9, ws: 4409, title: 'The service instance is not owned by this lease' },
};

/** The mapping for any thrown value (unknown errors become INTERNAL). */
export function mapError(err: unknown): { error: ZkgateError; mapping: ErrorMapping } {
  const error = toZkgateError(err);
  return { error, mapping: ERROR_TABLE[error.code] };
}

export { ERROR_CODES };
