/** gRPC `zkgate.v1.Semaphores`: each RPC makes one call on the caller's scope (which authorizes) and maps the answer. */
import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import type { Gateway } from '../../core/index.js';
import { callSignal, scopeOf, unaryWith, waitOptions, type CallLike } from './call-context.js';
import { contenderMessage } from './locks.js';
import { optionalString, toEnum, unwrap, type Wrapped } from './proto-values.js';

interface AcquireRequest {
  path: string;
  leaseId: string;
  permits: Wrapped<number>;
  maxPermits: Wrapped<number>;
  countPath: string;
  waitMs: Wrapped<number>;
  data: Buffer;
}
interface ReleaseRequest {
  path: string;
  leaseId: string;
  node: string;
}
interface InspectRequest {
  path: string;
  maxPermits: Wrapped<number>;
  countPath: string;
}

/** The Semaphores service implementation over `gw`. */
export function semaphoresService(gw: Gateway): UntypedServiceImplementation {
  const unary = unaryWith(gw.logger);
  return {
    Acquire: unary(async (req: AcquireRequest, call) => {
      const g = await scopeOf(gw, call).semaphores.acquire(req.path, req.leaseId, {
        permits: unwrap(req.permits),
        maxPermits: unwrap(req.maxPermits),
        countPath: optionalString(req.countPath),
        ...waitOptions(unwrap(req.waitMs), call as CallLike),
        data: req.data.length > 0 ? req.data : undefined,
        signal: callSignal(call as CallLike),
      });
      return { ...g, leaseState: toEnum('LEASE_STATE', g.leaseState) };
    }),
    Release: unary(async (req: ReleaseRequest, call) => {
      const r = await scopeOf(gw, call).semaphores.release(req.path, req.leaseId, optionalString(req.node));
      return { ...r, leaseState: toEnum('LEASE_STATE', r.leaseState) };
    }),
    Inspect: unary(async (req: InspectRequest, call) => {
      const s = await scopeOf(gw, call).semaphores.inspect(req.path, { maxPermits: unwrap(req.maxPermits), countPath: optionalString(req.countPath) });
      return {
        semaphorePath: s.semaphorePath,
        maxPermits: s.maxPermits === null ? null : { value: s.maxPermits },
        holders: s.holders.map(contenderMessage),
        waiting: s.waiting.map(contenderMessage),
        lockQueue: s.lockQueue.map(contenderMessage),
      };
    }),
  };
}
