/** gRPC `zkgate.v1.ReadWriteLocks`: each RPC makes one call on the caller's scope (which authorizes) and maps the answer. */
import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import { RW_MODES, type Gateway, type RwContender, type RwMode } from '../../core/index.js';
import { callSignal, scopeOf, unaryWith, waitOptions, type CallLike } from './call-context.js';
import { contenderMessage } from './locks.js';
import { fromEnum, toEnum, unwrap, type Wrapped } from './proto-values.js';

interface AcquireRequest {
  path: string;
  leaseId: string;
  mode: string;
  waitMs: Wrapped<number>;
  data: Buffer;
}
interface ReleaseRequest {
  path: string;
  node: string;
  leaseId: string;
}

const modeEnum = (m: RwContender['mode']): string => (m === 'other' ? 'RW_LOCK_MODE_UNSPECIFIED' : toEnum('RW_LOCK_MODE', m));
const rwContender = (c: RwContender): Record<string, unknown> => ({ contender: contenderMessage(c), mode: modeEnum(c.mode) });

/** The ReadWriteLocks service implementation over `gw`. */
export function rwLocksService(gw: Gateway): UntypedServiceImplementation {
  const unary = unaryWith(gw.logger);
  return {
    Acquire: unary(async (req: AcquireRequest, call) => {
      const hold = await scopeOf(gw, call).rwLocks.acquire(req.path, req.leaseId, {
        mode: fromEnum<RwMode>(req.mode, 'RW_LOCK_MODE', RW_MODES, 'mode'),
        ...waitOptions(unwrap(req.waitMs), call as CallLike),
        data: req.data.length > 0 ? req.data : undefined,
        signal: callSignal(call as CallLike),
      });
      return { ...hold, mode: modeEnum(hold.mode), leaseState: toEnum('LEASE_STATE', hold.leaseState) };
    }),
    Release: unary(async (req: ReleaseRequest, call) => {
      const r = await scopeOf(gw, call).rwLocks.release(req.path, req.leaseId, req.node);
      return { ...r, leaseState: toEnum('LEASE_STATE', r.leaseState) };
    }),
    Inspect: unary(async (req: { path: string }, call) => {
      const l = await scopeOf(gw, call).rwLocks.inspect(req.path);
      return { lockPath: l.lockPath, writer: l.writer && rwContender(l.writer), readers: l.readers.map(rwContender), queue: l.queue.map(rwContender) };
    }),
  };
}
