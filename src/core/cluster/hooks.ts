/**
 * What the principal-scoped facade needs from the cluster (core-internal): whether a lease id
 * belongs to another instance, and keeping such a lease alive while a connection is open.
 */
import type { Principal } from '../auth/authenticator.js';
import type { Lease } from '../leases/lease.js';
import type { LeaseListing } from '../facade/leases.js';

/**
 * Thrown by the facade when a call names a lease another instance holds: the forwarding scope
 * catches it and carries out the whole call on that instance. Never reaches a transport.
 */
export class LeaseElsewhere extends Error {
  override readonly name = 'LeaseElsewhere';
  constructor(readonly leaseId: string) {
    // Thrown and caught once per forwarded call and never shown: no stack trace to capture.
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(`lease ${leaseId} is held by another instance`);
    Error.stackTraceLimit = limit;
  }
}

export interface ClusterHooks {
  /** True when `id` was granted by another instance (or an earlier start of this one). */
  elsewhere(id: string): boolean;
  /** True for a lease another instance holds (as handed to a caller here). */
  isRemote(lease: Lease): boolean;
  /** Keeps a remote lease alive from here until `signal` aborts. @throws its end (410), LEASE_NOT_FOUND */
  keepAliveWhileOpen(principal: Principal, lease: Lease, signal: AbortSignal): Promise<void>;
  /** The caller's listing (`leases.list`) from every other registered instance, naming those that did not answer. */
  listElsewhere(principal: Principal, opts: { includeEnded?: boolean }): Promise<LeaseListing>;
}
