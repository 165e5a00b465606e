/** JSON forms of lock and election answers, shared by the lock and election routes. */
import type { Contender, Leader, LeaderState, Leadership } from '../../core/index.js';
import { encodeData } from '../json-data.js';

/** A queue node: its data with an explicit encoding, fencing token and owner. */
export function contenderJson(c: Contender): Record<string, unknown> {
  return { node: c.node, ...encodeData(c.data), fencingToken: c.fencingToken, ephemeralOwner: c.ephemeralOwner, ctimeMs: c.stat.ctimeMs };
}

function leaderJson(l: Leader): Record<string, unknown> {
  const { data, encoding } = encodeData(l.value);
  return { node: l.node, value: data, encoding, term: l.term, version: l.version };
}

export function leaderStateJson(s: LeaderState & { unchanged?: boolean }): Record<string, unknown> {
  const out: Record<string, unknown> = { electionPath: s.electionPath, leader: s.leader ? leaderJson(s.leader) : null, index: s.index };
  if (s.unchanged !== undefined) out.unchanged = s.unchanged;
  return out;
}

export function leadershipJson(l: Leadership): Record<string, unknown> {
  const { data, encoding } = encodeData(l.value);
  return { electionPath: l.electionPath, leader: true, node: l.node, term: l.term, value: data, encoding, leaseId: l.leaseId, leaseState: l.leaseState, trustMs: l.trustMs };
}
