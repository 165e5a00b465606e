/**
 * gRPC `zkgate.v1.Elections`: each RPC authorizes, makes one ElectionService call and maps the
 * answer; Observe streams the core's observation (current state first, then every change).
 */
import type { ServerWritableStream, UntypedServiceImplementation } from '@grpc/grpc-js';
import type { Gateway, LeaderState, Leadership } from '../../core/index.js';
import { callSignal, failStream, principalOf, recipeLease, unaryWith, waitFromDeadline, writeWhenReady, type CallLike } from './call-context.js';
import { checkDecoded } from './malformed.js';
import { toEnum, unwrap, type Wrapped } from './proto-values.js';

interface CampaignRequest {
  path: string;
  leaseId: string;
  value: Buffer;
  waitMs: Wrapped<number>;
}
interface LeaderRequest {
  path: string;
}
interface NodeRequest {
  path: string;
  node: string;
  leaseId: string;
}
interface ProclaimRequest extends NodeRequest {
  value: Buffer;
}

function leadershipMessage(l: Leadership): Record<string, unknown> {
  return { electionPath: l.electionPath, node: l.node, term: l.term, value: l.value, leaseId: l.leaseId, leaseState: toEnum('LEASE_STATE', l.leaseState) };
}

/** The proto form of an election's state; no `leader` means "no leader". */
function leaderStateMessage(s: LeaderState): Record<string, unknown> {
  return { electionPath: s.electionPath, leader: s.leader, index: s.index };
}

/** The Elections service implementation over `gw`. */
export function electionsService(gw: Gateway): UntypedServiceImplementation {
  const unary = unaryWith(gw.logger);
  return {
    Campaign: unary(async (req: CampaignRequest, call) => {
      const lease = recipeLease(gw, principalOf(gw, call), 'election', req.path, req.leaseId);
      const value = req.value.length > 0 ? req.value : undefined;
      const won = await gw.elections.campaign(lease, req.path, value, {
        waitMs: waitFromDeadline(unwrap(req.waitMs), call as CallLike),
        signal: callSignal(call as CallLike),
      });
      return leadershipMessage(won);
    }),
    Leader: unary(async (req: LeaderRequest, call) => {
      const p = principalOf(gw, call);
      gw.auth.authorize(p, 'lock.read', req.path);
      return leaderStateMessage(await gw.elections.leader(p.tenant, req.path));
    }),
    Proclaim: unary(async (req: ProclaimRequest, call) => {
      const lease = recipeLease(gw, principalOf(gw, call), 'election', req.path, req.leaseId);
      return leadershipMessage(await gw.elections.proclaim(lease, req.path, req.node, req.value));
    }),
    Resign: unary(async (req: NodeRequest, call) => {
      const lease = recipeLease(gw, principalOf(gw, call), 'election', req.path, req.leaseId);
      const out = await gw.elections.resign(lease, req.path, req.node);
      return { resigned: out.left, reason: out.reason, node: out.node, leaseId: out.leaseId, leaseState: toEnum('LEASE_STATE', out.leaseState) };
    }),
    Observe: (call: ServerWritableStream<LeaderRequest, Record<string, unknown>>) => {
      void (async () => {
        try {
          const { path } = checkDecoded(call.request);
          const p = principalOf(gw, call);
          gw.auth.authorize(p, 'lock.read', path);
          for await (const state of gw.elections.observe(p.tenant, path, { signal: callSignal(call) })) {
            await writeWhenReady(call, leaderStateMessage(state));
          }
          call.end();
        } catch (err) {
          failStream(call, err, gw.logger);
        }
      })();
    },
  };
}
