/**
 * The trust window: how long from now a holder may act on what its lease holds (ephemerals,
 * lock holds, leadership) without a fresh answer. Chubby calls it the lease validity.
 *
 * A hold ends, at the earliest, when either
 * - the lease's TTL passes without a keepalive (the gateway then deletes what it owns), or
 * - ZooKeeper expires the gateway's session: never before `sessionTimeoutMs` after it last heard
 *   from the gateway, which is no earlier than the send time of the latest request it answered
 *   (src/zk/liveness.ts). A gateway that is frozen or cut off cannot tell its holders, so this
 *   bound holds whatever happens to the gateway after the answer.
 * It is 0 whenever ownership is not established: the lease is not `active` (uncertain while
 * the session is suspended, or ended), or its session is not the tenant's usable one.
 * A hold can still end earlier by an explicit act (release, revoke, someone deleting the node);
 * such loss is pushed, and fencing tokens guard against it.
 */
import { monotonicMs } from '../../zk/index.js';
import type { Lease } from './lease.js';

/** ms from now for which `lease`'s holds can be trusted; an integer, 0 when not at all. */
export function trustMs(lease: Lease): number {
  if (lease.state !== 'active') return 0;
  const session = lease.tenant.session;
  const live = session.liveness();
  if (!live.usable || session.generation !== lease.generation) return 0;
  const bySession = live.aliveUntil - monotonicMs();
  const byTtl = lease.deadline - Date.now();
  return Math.max(0, Math.floor(Math.min(bySession, byTtl)));
}
