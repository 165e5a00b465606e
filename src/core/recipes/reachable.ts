/**
 * Riding through a ZooKeeper outage inside a recipe's wait. A connection loss does not end a
 * waiter's wait while its session may come back (a leader election in the ensemble, a GC pause),
 * as it does not end a Curator recipe's: the read is sent again once the session is back, until
 * the wait's deadline. Only reads and writes that may simply be sent again go through here; a
 * create whose outcome is unknown goes through the ownership module's protected create.
 */
import { ZkgateError, toZkgateError } from '../errors.js';
import type { Lease } from '../leases/lease.js';
import type { Tenant } from '../tenants/tenant.js';
import { wake } from './wake.js';

/** Longest pause between two tries, ms: a state change that came before the wait is not missed for long. */
const RETRY_MS = 1000;

/**
 * Runs `op` until it is answered. On UNAVAILABLE (connection loss, or no session now) — or
 * LEASE_UNCERTAIN, which `op` throws before it sends anything — it waits for a state change of
 * `by`'s tenant (and of the lease, for a lease's wait) or a second at most, and tries again,
 * until `deadline`.
 * @param by the lease whose wait it is, or the tenant of a wait without a lease
 * @param path names the wait in the error
 * @param deadline ms since the epoch
 * @throws UNAVAILABLE when ZooKeeper stays unreachable until `deadline` (for a lease: its end
 *   (410), or LEASE_UNCERTAIN while its session is suspended); `op`'s other errors; the signal's
 *   reason on abort
 */
export async function reachable<T>(by: Lease | Tenant, path: string, deadline: number, signal: AbortSignal, op: () => Promise<T>): Promise<T> {
  const lease = 'assertUsable' in by ? by : undefined;
  const states = 'assertUsable' in by ? [by.tenant, by] : [by];
  for (;;) {
    signal.throwIfAborted();
    try {
      return await op();
    } catch (err) {
      const e = toZkgateError(err, path);
      if (e.code !== 'UNAVAILABLE' && e.code !== 'LEASE_UNCERTAIN') throw e;
      if (Date.now() >= deadline) {
        lease?.assertUsable();
        throw new ZkgateError('UNAVAILABLE', `${path}: zookeeper unreachable until the deadline`, { path });
      }
      await wake({ deadline: Math.min(deadline, Date.now() + RETRY_MS), signal, states });
    }
  }
}
