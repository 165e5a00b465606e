/**
 * Keeps a lease alive while a connection (a WebSocket) is open. When the connection goes, the
 * binding only stops refreshing: the lease lapses `ttlMs` later unless something else keeps it
 * alive, and then everything it owns (ephemerals, lock holds, candidacies) is deleted. The
 * connection never ends the lease itself (as etcd's adapters `Orphan()` their sessions).
 */
import type { Lease } from './lease.js';
import type { LeaseManager } from './lease-manager.js';

/**
 * Refreshes `lease` now and every third of its TTL until `signal` aborts or the lease ends.
 * @throws the lease's end (410) or LEASE_NOT_FOUND when it cannot be kept alive now
 */
export function keepAliveWhileOpen(manager: LeaseManager, lease: Lease, signal: AbortSignal): void {
  manager.keepAlive(lease.tenant, lease.id);
  const timer = setInterval(() => {
    if (lease.isEnded) {
      clearInterval(timer);
      return;
    }
    manager.keepAlive(lease.tenant, lease.id);
  }, Math.max(50, Math.floor(lease.ttlMs / 3)));
  timer.unref();
  signal.addEventListener('abort', () => clearInterval(timer), { once: true });
}
