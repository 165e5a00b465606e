/**
 * Where the contract suite proves each error code, per transport — and, where a code cannot
 * arise on a transport, why. error-coverage.test.ts fails when a code of src/core/errors.ts is
 * missing here (so a new code cannot be forgotten) or a file named here never asserts it.
 */
import type { ErrorCode } from '../../src/core/index.js';
import type { Transport } from './clients.js';

/**
 * `in`: the contract test file (test/contract) that asserts the code; `never`: why it cannot
 * arise on that transport; `todo`: a code no test asserts yet (its owner's work in progress) —
 * listed by error-coverage.test.ts on every run so that it is not forgotten.
 */
export type Proof = { readonly in: string } | { readonly never: string } | { readonly todo: string };

const all = (file: string): Record<Transport, Proof> => ({ rest: { in: file }, grpc: { in: file }, ws: { in: file } });
const nowhere = (why: string): Record<Transport, Proof> => ({ rest: { never: why }, grpc: { never: why }, ws: { never: why } });
const todo = (why: string): Record<Transport, Proof> => ({ rest: { todo: why }, grpc: { todo: why }, ws: { todo: why } });
const NO_URLS = 'no URLs and no HTTP methods on this transport';

export const ERROR_COVERAGE: Readonly<Record<ErrorCode, Readonly<Record<Transport, Proof>>>> = {
  NO_NODE: all('znodes.test.ts'),
  NODE_EXISTS: all('znodes.test.ts'),
  BAD_VERSION: all('znodes.test.ts'),
  NOT_EMPTY: all('znodes.test.ts'),
  NO_CHILDREN_FOR_EPHEMERALS: all('znodes.test.ts'),
  NO_AUTH: all('errors.test.ts'),
  INVALID_ACL: { rest: { in: 'errors.test.ts' }, grpc: { in: 'errors.test.ts' }, ws: { never: 'the WebSocket protocol has no ACL call (Znodes.SetAcl is REST and gRPC only)' } },
  INVALID_PATH: all('znodes.test.ts'),
  INVALID_ARGUMENT: all('znodes.test.ts'),
  DATA_TOO_LARGE: all('znodes.test.ts'),
  PAYLOAD_TOO_LARGE: {
    rest: { in: 'errors.test.ts' },
    grpc: { never: 'grpc-js refuses a message over grpc.maxMessageBytes itself (RESOURCE_EXHAUSTED without zkgate-error-code), before the gateway sees it; errors.test.ts proves that answer' },
    ws: { in: 'errors.test.ts' },
  },
  UNSUPPORTED_MEDIA_TYPE: {
    rest: { in: 'errors.test.ts' },
    grpc: { never: 'messages are protobuf, framed by gRPC: there is no content type to choose' },
    ws: { never: 'messages are JSON text frames; a binary frame is INVALID_ARGUMENT (field message)' },
  },
  SUBTREE_TOO_LARGE: all('znodes.test.ts'),
  LEASE_REQUIRED: all('znodes.test.ts'),
  LEASE_NOT_FOUND: all('recipes.test.ts'),
  LEASE_EXPIRED: all('errors.test.ts'),
  LEASE_REVOKED: all('recipes.test.ts'),
  LEASE_LOST: all('errors.test.ts'),
  LEASE_UNCERTAIN: all('zookeeper.test.ts'),
  LOCK_NOT_ACQUIRED: all('recipes.test.ts'),
  NOT_ELECTED: all('recipes.test.ts'),
  NOT_LEADER: all('recipes.test.ts'),
  SLOW_CONSUMER: all('quotas.test.ts'),
  UNIMPLEMENTED: all('zookeeper.test.ts'),
  UNAVAILABLE: all('zookeeper.test.ts'),
  SESSION_EXPIRED: nowhere(
    'only a call already in flight at the instant ZooKeeper ends the session gets it; a call sent after the expiry is refused UNAVAILABLE before it is sent (zookeeper.test.ts proves the expiry itself: LEASE_LOST session_expired)',
  ),
  NOT_FOUND: all('errors.test.ts'),
  METHOD_NOT_ALLOWED: { rest: { in: 'errors.test.ts' }, grpc: { never: `${NO_URLS} (an unknown RPC is grpc-js's UNIMPLEMENTED)` }, ws: { never: `${NO_URLS} (an unknown call method is INVALID_ARGUMENT)` } },
  UNAUTHENTICATED: all('access.test.ts'),
  PERMISSION_DENIED: all('access.test.ts'),
  LIMIT_EXCEEDED: all('quotas.test.ts'),
  TOO_MANY_CHILDREN: all('errors.test.ts'),
  CANCELLED: all('errors.test.ts'),
  // semaphores, queues and barriers (src/core/recipes), jobs (src/core/jobs): their own contract files
  PERMITS_NOT_ACQUIRED: all('semaphores.test.ts'),
  QUEUE_EMPTY: all('queues-barriers.test.ts'),
  BARRIER_TIMEOUT: all('queues-barriers.test.ts'),
  NOT_MEMBER: all('queues-barriers.test.ts'),
  JOB_NOT_FOUND: all('jobs.test.ts'),
  JOB_NOT_ACTIVE: all('jobs.test.ts'),
  RUN_CLAIMED: all('jobs.test.ts'),
  RUN_NOT_HELD: all('jobs.test.ts'),
  NOT_JOB_MEMBER: all('jobs.test.ts'),
  SHARD_NOT_HELD: all('jobs.test.ts'),
  // service registry (src/core/registry)
  NO_INSTANCES: all('registry.test.ts'),
  INSTANCE_NOT_OWNED: all('registry.test.ts'),
  INTERNAL: nowhere('an unexpected failure (a bug): no real condition produces it; errors.test.ts proves a cancelled wait is never counted as INTERNAL'),
};
