/**
 * gRPC `zkgate.v1.Leases`. The KeepAlive stream refreshes leases on request and pushes every
 * state change of the leases it has kept alive (loss included) as messages in the stream; it
 * never ends a lease itself (expiry belongs to core).
 */
import type { ServerDuplexStream, UntypedServiceImplementation } from '@grpc/grpc-js';
import type { Gateway, Lease, LeaseInfo, LeaseStateEvent, Scope, ScopedConnection } from '../../core/index.js';
import { mapError } from '../error-table.js';
import { failStream, scopeOf, unaryWith } from './call-context.js';
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

/** One KeepAlive stream (a unit of the tenant's connections): the leases it follows and their state listeners. */
function keepAliveStream(scope: Scope, conn: ScopedConnection, call: KeepAliveCall): void {
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
    conn.close();
  };
  const refresh = async (req: LeaseRequest): Promise<void> => {
    let lease: Lease | undefined;
    try {
      lease = await scope.leases.get(checkDecoded(req).id);
      follow(lease);
      await scope.leases.keepAlive(req.id);
      send({ type: 'KEEPALIVE_TYPE_REFRESHED', id: req.id, lease: leaseMessage(lease.info()) });
    } catch (err) {
      const { error } = mapError(err);
      send({ type: 'KEEPALIVE_TYPE_ERROR', id: req.id, lease: lease ? leaseMessage(lease.info()) : null, errorCode: error.code, errorMessage: error.message });
    }
  };
  // Answers keep the order of the requests (a lease held elsewhere is refreshed over the cluster).
  let queue = Promise.resolve();
  call.on('data', (req: LeaseRequest) => {
    queue = queue.then(() => refresh(req));
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
    Grant: unary(async (req: GrantRequest, call) => leaseMessage((await scopeOf(gw, call).leases.grant(req.ttlMs)).info())),
    Revoke: unary(async (req: LeaseRequest, call) => leaseMessage((await scopeOf(gw, call).leases.revoke(req.id)).info())),
    List: unary(async (req: { includeEnded: boolean }, call) => {
      const l = await scopeOf(gw, call).leases.listing({ includeEnded: req.includeEnded });
      return { leases: l.leases.map(leaseMessage), incomplete: l.unanswered.length > 0, unanswered: l.unanswered };
    }),
    TimeToLive: unary(async (req: LeaseRequest, call) => leaseMessage((await scopeOf(gw, call).leases.get(req.id)).info())),
    KeepAlive: (call: KeepAliveCall) => {
      let scope: Scope;
      let conn: ScopedConnection;
      try {
        scope = scopeOf(gw, call);
        conn = scope.connect();
      } catch (err) {
        failStream(call, err, gw.logger);
        return;
      }
      keepAliveStream(scope, conn, call);
    },
  };
}
