/** gRPC `zkgate.v1.Queues`: each RPC makes one call on the caller's scope (which authorizes) and maps the answer. */
import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import { DELIVERY_MODES, type ClaimOutcome, type DeliveryMode, type Gateway } from '../../core/index.js';
import { callSignal, scopeOf, unaryWith, waitOptions, type CallLike } from './call-context.js';
import { fromEnum, optionalString, toEnum, unwrap, type Wrapped } from './proto-values.js';

interface PutRequest {
  path: string;
  data: Buffer;
}
interface TakeRequest {
  path: string;
  mode: string;
  leaseId: string;
  waitMs: Wrapped<number>;
}
interface ClaimRef {
  path: string;
  leaseId: string;
  item: string;
}

const outcome = (o: ClaimOutcome): Record<string, unknown> => ({ ...o, leaseState: toEnum('LEASE_STATE', o.leaseState) });

/** The Queues service implementation over `gw`. */
export function queuesService(gw: Gateway): UntypedServiceImplementation {
  const unary = unaryWith(gw.logger);
  return {
    Put: unary(async (req: PutRequest, call) => scopeOf(gw, call).queues.put(req.path, req.data)),
    Take: unary(async (req: TakeRequest, call) => {
      const mode = fromEnum<DeliveryMode>(req.mode, 'DELIVERY_MODE', DELIVERY_MODES, 'mode');
      const d = await scopeOf(gw, call).queues.take(req.path, {
        mode,
        leaseId: optionalString(req.leaseId),
        ...waitOptions(unwrap(req.waitMs), call as CallLike),
        signal: callSignal(call as CallLike),
      });
      const base = { mode: toEnum('DELIVERY_MODE', d.mode), queuePath: d.queuePath, item: d.item, node: d.node, data: d.data, stat: d.stat };
      if (d.mode === 'at_most_once') return base;
      return { ...base, claim: d.claim, fencingToken: d.fencingToken, leaseId: d.leaseId, leaseState: toEnum('LEASE_STATE', d.leaseState), trustMs: d.trustMs };
    }),
    Ack: unary(async (req: ClaimRef, call) => outcome(await scopeOf(gw, call).queues.ack(req.path, req.leaseId, req.item))),
    Release: unary(async (req: ClaimRef, call) => outcome(await scopeOf(gw, call).queues.release(req.path, req.leaseId, req.item))),
    Inspect: unary(async (req: { path: string }, call) => {
      const q = await scopeOf(gw, call).queues.inspect(req.path);
      return { queuePath: q.queuePath, length: q.length, claimed: q.claimed, head: q.head && { item: q.head.item, node: q.head.node, data: q.head.data, stat: q.head.stat } };
    }),
  };
}
