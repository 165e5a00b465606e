/**
 * gRPC `zkgate.v1.Elections`: each RPC makes one call on the caller's scope (which authorizes) and
 * maps the answer; Observe streams the core's observation (current state first, then every change).
 */
import type { ServerWritableStream, UntypedServiceImplementation } from '@grpc/grpc-js';
import type { ElectionListing, Gateway, LeaderState, Leadership, ScopedConnection } from '../../core/index.js';
import { contenderMessage, type ListRequest } from './locks.js';
import { callSignal, failStream, scopeOf, unaryWith, waitOptions, writeWhenReady, type CallLike } from './call-context.js';
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

/** The proto form of an election listing. */
function electionListMessage(l: ElectionListing): Record<string, unknown> {
  return { ...l, elections: l.elections.map((e) => ({ ...e, candidates: e.candidates.map(contenderMessage) })) };
}

function leadershipMessage(l: Leadership): Record<string, unknown> {
  return { electionPath: l.electionPath, node: l.node, term: l.term, value: l.value, leaseId: l.leaseId, leaseState: toEnum('LEASE_STATE', l.leaseState), trustMs: l.trustMs };
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
      const value = req.value.length > 0 ? req.value : undefined;
      const won = await scopeOf(gw, call).elections.campaign(req.path, req.leaseId, value, {
        ...waitOptions(unwrap(req.waitMs), call as CallLike),
        signal: callSignal(call as CallLike),
      });
      return leadershipMessage(won);
    }),
    List: unary(async (req: ListRequest, call) => electionListMessage(await scopeOf(gw, call).elections.list(req.path, { limit: req.limit || undefined }))),
    Leader: unary(async (req: LeaderRequest, call) => {
      return leaderStateMessage(await scopeOf(gw, call).elections.leader(req.path));
    }),
    Proclaim: unary(async (req: ProclaimRequest, call) => {
      return leadershipMessage(await scopeOf(gw, call).elections.proclaim(req.path, req.leaseId, req.node, req.value));
    }),
    Resign: unary(async (req: NodeRequest, call) => {
      const out = await scopeOf(gw, call).elections.resign(req.path, req.leaseId, req.node);
      return { resigned: out.left, reason: out.reason, node: out.node, leaseId: out.leaseId, leaseState: toEnum('LEASE_STATE', out.leaseState), trustMs: out.trustMs };
    }),
    Observe: (call: ServerWritableStream<LeaderRequest, Record<string, unknown>>) => {
      void (async () => {
        // A streaming connection (a unit of the tenant's connections) holding one subscription.
        let conn: ScopedConnection | undefined;
        try {
          const { path } = checkDecoded(call.request);
          conn = scopeOf(gw, call).connect();
          for await (const state of conn.observe(path, { signal: callSignal(call) })) {
            await writeWhenReady(call, leaderStateMessage(state));
          }
          call.end();
        } catch (err) {
          failStream(call, err, gw.logger);
        } finally {
          conn?.close();
        }
      })();
    },
  };
}
