/**
 * gRPC `zkgate.v1.Leases`. The KeepAlive stream refreshes leases on request and pushes every
 * state change of the leases it has kept alive (loss included) as messages in the stream; it
 * never ends a lease itself (expiry belongs to core).
 */
import type { ServerDuplexStream, UntypedServiceImplementation } from '@grpc/grpc-js';
import type { Gateway, Lease, LeaseInfo, LeaseStateEvent, Principal } from '../../core/index.js';
import { mapError } from '../error-table.js';
import { failStream, principalOf, unaryWith } from './call-context.js';
import { checkDecoded } from './malformed.js';
import { toEnum } from './proto-values.js';

interface GrantRequest {
  ttlMs: number;
}
interface LeaseRequest {
  id: string;
}

/** The proto form of a lease. */
export function leaseMessage(info: LeaseInfo): Record<string, unknown> {
  return { ...info, state: toEnum('LEASE_STATE', info.state) };
}

type KeepAliveCall = ServerDuplexStream<LeaseRequest, Record<string, unknown>>;

/** One KeepAlive stream: the leases it follows and their state listeners. */
function keepAliveStream(gw: Gateway, principal: Principal, call: KeepAliveCall): void {
  const followed = new Map<Lease, (e: LeaseStateEvent) => void>();
  const send = (msg: Record<string, unknown>): void => {
    if (!call.writableEnded && !call.cancelled) call.write(msg);
  };
  const follow = (lease: Lease): void => {
    if (followed.has(lease)) return;
    const onState = (e: LeaseStateEvent): void => send({ type: 'KEEPALIVE_TYPE_STATE', id: e.leaseId, lease: leaseMessage(lease.info()) });
    lease.on('state', onState);
    followed.set(lease, onState);
  };
  const stop = (): void => {
    for (const [lease, onState] of followed) lease.off('state', onState);
    followed.clear();
  };
  call.on('data', (req: LeaseRequest) => {
    let lease: Lease | undefined;
    try {
      lease = gw.leaseAs(principal, checkDecoded(req).id, 'lease.write');
      follow(lease);
      gw.leases.keepAlive(principal.tenant, req.id);
      send({ type: 'KEEPALIVE_TYPE_REFRESHED', id: req.id, lease: leaseMessage(lease.info()) });
    } catch (err) {
      const { error } = mapError(err);
      send({ type: 'KEEPALIVE_TYPE_ERROR', id: req.id, lease: lease ? leaseMessage(lease.info()) : null, errorCode: error.code, errorMessage: error.message });
    }
  });
  call.on('end', () => {
    stop();
    call.end();
  });
  call.on('cancelled', stop);
  call.on('error', stop);
}

/** The Leases service implementation over `gw`. */
export function leasesService(gw: Gateway): UntypedServiceImplementation {
  const unary = unaryWith(gw.logger);
  return {
    Grant: unary((req: GrantRequest, call) => {
      const p = principalOf(gw, call);
      gw.auth.authorize(p, 'lease.write');
      return leaseMessage(gw.leases.grant(p.tenant, req.ttlMs, p.keyId).info());
    }),
    Revoke: unary(async (req: LeaseRequest, call) => {
      const p = principalOf(gw, call);
      gw.leaseAs(p, req.id, 'lease.write');
      return leaseMessage((await gw.leases.revoke(p.tenant, req.id)).info());
    }),
    TimeToLive: unary((req: LeaseRequest, call) => leaseMessage(gw.leaseAs(principalOf(gw, call), req.id, 'lease.read').info())),
    KeepAlive: (call: KeepAliveCall) => {
      let principal: Principal;
      try {
        principal = principalOf(gw, call);
      } catch (err) {
        failStream(call, err, gw.logger);
        return;
      }
      keepAliveStream(gw, principal, call);
    },
  };
}
