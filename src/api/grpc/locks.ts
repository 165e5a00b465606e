/** gRPC `zkgate.v1.Locks`: each RPC makes one call on the caller's scope (which authorizes) and maps the answer. */
import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import { LOCK_FLAVOURS, type Contender, type Gateway, type LockFlavour, type LockHold, type LockInspection } from '../../core/index.js';
import { callSignal, scopeOf, unaryWith, waitOptions, type CallLike } from './call-context.js';
import { fromEnum, toEnum, unwrap, type Wrapped } from './proto-values.js';

interface AcquireRequest {
  path: string;
  leaseId: string;
  flavour: string;
  waitMs: Wrapped<number>;
  data: Buffer;
}
interface ReleaseRequest {
  path: string;
  node: string;
  leaseId: string;
}
interface InspectRequest {
  path: string;
  flavour: string;
}

/** Locks.List and Elections.List requests. */
export interface ListRequest {
  path: string;
  /** 0 = the tenant's maximum (proto3 cannot tell it from absent). */
  limit: number;
}

const flavourOf = (f: string): LockFlavour | undefined => fromEnum<LockFlavour>(f, 'LOCK_FLAVOUR', LOCK_FLAVOURS, 'flavour');

/** The proto form of a queue node. */
export function contenderMessage(c: Contender): Record<string, unknown> {
  return { node: c.node, data: c.data, fencingToken: c.fencingToken, ephemeralOwner: c.ephemeralOwner, stat: c.stat };
}

function inspectionMessage(lock: LockInspection): Record<string, unknown> {
  const { lockPath, flavour, holder, queue } = lock;
  return { lockPath, flavour: toEnum('LOCK_FLAVOUR', flavour), holder: holder && contenderMessage(holder), queue: queue.map(contenderMessage) };
}

function holdMessage(h: LockHold): Record<string, unknown> {
  return { ...h, flavour: toEnum('LOCK_FLAVOUR', h.flavour), leaseState: toEnum('LEASE_STATE', h.leaseState) };
}

/** The Locks service implementation over `gw`. */
export function locksService(gw: Gateway): UntypedServiceImplementation {
  const unary = unaryWith(gw.logger);
  return {
    Acquire: unary(async (req: AcquireRequest, call) => {
      const flavour = flavourOf(req.flavour);
      const hold = await scopeOf(gw, call).locks.acquire(req.path, req.leaseId, {
        flavour,
        ...waitOptions(unwrap(req.waitMs), call as CallLike),
        data: req.data.length > 0 ? req.data : undefined,
        signal: callSignal(call as CallLike),
      });
      return holdMessage(hold);
    }),
    Release: unary(async (req: ReleaseRequest, call) => {
      const r = await scopeOf(gw, call).locks.release(req.path, req.leaseId, req.node);
      return { ...r, leaseState: toEnum('LEASE_STATE', r.leaseState) };
    }),
    Inspect: unary(async (req: InspectRequest, call) => inspectionMessage(await scopeOf(gw, call).locks.inspect(req.path, flavourOf(req.flavour)))),
    List: unary(async (req: ListRequest, call) => {
      const l = await scopeOf(gw, call).locks.list(req.path, { limit: req.limit || undefined });
      return { ...l, locks: l.locks.map(inspectionMessage) };
    }),
  };
}
