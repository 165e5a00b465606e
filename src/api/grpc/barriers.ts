/** gRPC `zkgate.v1.Barriers`: each RPC makes one call on the caller's scope (which authorizes) and maps the answer. */
import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import type { Gateway } from '../../core/index.js';
import { callSignal, scopeOf, unaryWith, waitOptions, type CallLike } from './call-context.js';
import { toEnum, unwrap, type Wrapped } from './proto-values.js';

interface WaitRequest {
  path: string;
  waitMs: Wrapped<number>;
}
interface EnterRequest extends WaitRequest {
  leaseId: string;
  members: number;
  data: Buffer;
}
interface LeaveRequest extends WaitRequest {
  leaseId: string;
  node: string;
}

/** The Barriers service implementation over `gw`. */
export function barriersService(gw: Gateway): UntypedServiceImplementation {
  const unary = unaryWith(gw.logger);
  const wait = (req: WaitRequest, call: unknown) => ({ ...waitOptions(unwrap(req.waitMs), call as CallLike), signal: callSignal(call as CallLike) });
  return {
    Set: unary(async (req: { path: string }, call) => scopeOf(gw, call).barriers.set(req.path)),
    Remove: unary(async (req: { path: string }, call) => scopeOf(gw, call).barriers.remove(req.path)),
    Wait: unary(async (req: WaitRequest, call) => scopeOf(gw, call).barriers.wait(req.path, wait(req, call))),
    Enter: unary(async (req: EnterRequest, call) => {
      const e = await scopeOf(gw, call).barriers.enter(req.path, req.leaseId, req.members, { ...wait(req, call), data: req.data.length > 0 ? req.data : undefined });
      return { ...e, leaseState: toEnum('LEASE_STATE', e.leaseState) };
    }),
    Leave: unary(async (req: LeaveRequest, call) => scopeOf(gw, call).barriers.leave(req.path, req.leaseId, req.node, wait(req, call))),
    InspectDouble: unary(async (req: { path: string }, call) => scopeOf(gw, call).barriers.inspectDouble(req.path)),
  };
}
