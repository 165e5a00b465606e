/**
 * Grants placed on a tenant's home instance whose answer may be lost (docs/cluster.md "Lease
 * placement", "A placed grant whose answer is lost"). The caller sends each placed grant with a
 * random token and a deadline; when it gives up on the answer (a timeout, a cut connection) it
 * grants the lease itself and tells the home, in the background until a lease granted under the
 * token would have lapsed anyway, to revoke it. The home:
 *
 * - starts a grant only before its deadline, and revokes one that finished after it (it was
 *   given up on): a lease exists under a token only if it was granted by the deadline;
 * - remembers token → lease for as long as that lease could live un-kept-alive, so a grant sent
 *   again with the same token (a POST resent on a new connection) answers the same lease;
 * - on "abandon", revokes the lease granted under the token, or — the abandon overtook the
 *   grant — remembers the token as abandoned until its deadline, so the grant is refused.
 *
 * So once the caller's abandon reached the home, no lease of that token is left on it; if it
 * never does (the home frozen or cut off for the whole window), the lease lapses by its TTL.
 * A home that hands its leases over (graceful shutdown) hands their tokens over with them: the
 * caller that finds the home not listening sends the abandon to the successor, which revokes.
 */
import { backoffDelay } from '../../zk/index.js';
import { ZkgateError } from '../errors.js';
import type { Lease } from '../leases/lease.js';

/**
 * Clock skew tolerated between instances (the internal channel refuses a signature more than
 * 30 s off, so clocks of one working cluster agree within that): windows that compare one
 * instance's time with another's are widened by it.
 */
export const SKEW_MS = 30_000;

/** A placed grant's token and deadline (ms since the epoch, the caller's clock). */
export interface Placement {
  readonly token: string;
  readonly deadline: number;
}

/** A placement token as callers make them (16 random bytes in hex; some slack for other versions). */
const TOKEN = /^[0-9a-f]{16,64}$/;

/** The placement of an internal request, if well-formed. @throws INVALID_ARGUMENT */
export function placementOf(v: unknown): Placement {
  const p = v as Partial<Placement> | null;
  if (!p || typeof p.token !== 'string' || !TOKEN.test(p.token) || typeof p.deadline !== 'number' || !Number.isFinite(p.deadline)) {
    throw new ZkgateError('INVALID_ARGUMENT', 'cluster: malformed placement token', { field: 'placement' });
  }
  return { token: p.token, deadline: p.deadline };
}

/** A placed grant handed over with its lease in a handoff (the adopt request carries them). */
export interface HandedOverGrant {
  readonly token: string;
  readonly leaseId: string;
  /** When it may be forgotten (ms since the epoch, the home's clock; the window allows the skew). */
  readonly until: number;
}

interface Placed {
  readonly tenant: string;
  /**
   * The grant made under the token; the id of the lease granted under it by an instance that
   * handed it over to this one; or `abandoned` (its caller gave up; nothing may be granted under it).
   */
  lease: Promise<Lease> | { readonly handedOver: string } | 'abandoned';
  /** The id of the lease granted here under the token, once granted in time (what a handoff passes on). */
  granted?: string;
  /** When the entry may be forgotten (ms since the epoch). */
  until: number;
}

/** Most tokens remembered (the oldest go first): far above the grants of a few TTLs. */
const MAX_TOKENS = 100_000;

function refused(why: string): ZkgateError {
  return new ZkgateError('UNAVAILABLE', `cluster: placed lease grant refused: ${why}`, { reason: 'placement_abandoned', outcome: 'not_applied' });
}

/** The home side: token → the lease granted under it. */
export class PlacedGrants {
  private readonly byToken = new Map<string, Placed>();
  private prunedAt = 0;

  /**
   * Runs `grant` for placed grant `p` once: a grant sent again with the token answers the same
   * lease; one whose deadline passed, or whose caller abandoned it, is refused (`UNAVAILABLE`)
   * and leaves nothing. `revoke` ends a lease that was granted after all but is not wanted.
   */
  async grant(p: Placement, tenant: string, ttlMs: number, grant: () => Promise<Lease>, revoke: (leaseId: string) => Promise<void>): Promise<Lease> {
    this.prune();
    const seen = this.byToken.get(p.token);
    if (seen) {
      // Handed over: granted on the instance it was sent to (a resent grant goes there, not here).
      if (seen.tenant !== tenant || !(seen.lease instanceof Promise)) throw refused(seen.lease === 'abandoned' ? 'its caller gave up on it' : 'it was granted by another instance');
      return seen.lease;
    }
    if (Date.now() > p.deadline) throw refused('it arrived after its deadline (its caller gave up on it)');
    const lease = grant();
    const entry: Placed = { tenant, lease, until: Math.max(Date.now(), p.deadline) + ttlMs + SKEW_MS };
    this.remember(p.token, entry);
    let l: Lease;
    try {
      l = await lease;
    } catch (err) {
      if (this.byToken.get(p.token) === entry) this.byToken.delete(p.token);
      throw err;
    }
    // Finished after the deadline (this process was stopped or slow meanwhile): the caller has
    // granted the lease elsewhere, so this one goes now rather than at the end of its TTL.
    if (Date.now() > p.deadline && entry.lease !== 'abandoned') {
      entry.lease = 'abandoned';
      await revoke(l.id);
      throw refused('it finished after its deadline (its caller gave up on it)');
    }
    entry.granted = l.id;
    return l;
  }

  /**
   * The caller gave up on placed grant `token`: revokes the lease granted under it (`revoke`),
   * or, when the grant has not arrived, makes sure it is refused if it still does. Idempotent.
   * @throws what `revoke` throws (the caller tries again)
   */
  async abandon(token: string, deadline: number, tenant: string, revoke: (leaseId: string) => Promise<void>): Promise<void> {
    this.prune();
    const seen = this.byToken.get(token);
    if (!seen) return this.remember(token, { tenant, lease: 'abandoned', until: Math.max(Date.now(), deadline) + SKEW_MS });
    if (seen.tenant !== tenant || seen.lease === 'abandoned') return;
    const id = seen.lease instanceof Promise ? (await seen.lease.catch(() => null))?.id : seen.lease.handedOver;
    if (id) await revoke(id);
    seen.lease = 'abandoned';
  }

  /** The placed grants of `tenant` whose leases are handed over now (`ids`): they go with them. */
  handedOver(tenant: string, ids: ReadonlySet<string>): HandedOverGrant[] {
    const out: HandedOverGrant[] = [];
    for (const [token, e] of this.byToken) {
      if (e.tenant === tenant && e.lease instanceof Promise && e.granted !== undefined && ids.has(e.granted)) out.push({ token, leaseId: e.granted, until: e.until });
    }
    return out;
  }

  /** Takes over the placed grants handed over with `tenant`'s leases: an abandon of their token revokes the lease here. */
  adopt(tenant: string, grants: readonly unknown[]): void {
    for (const g of grants) {
      const { token, leaseId, until } = (g ?? {}) as Partial<HandedOverGrant>;
      if (typeof token !== 'string' || !TOKEN.test(token) || typeof leaseId !== 'string' || typeof until !== 'number' || this.byToken.has(token)) continue;
      this.remember(token, { tenant, lease: { handedOver: leaseId }, until });
    }
  }

  private remember(token: string, entry: Placed): void {
    if (this.byToken.size >= MAX_TOKENS) this.byToken.delete(this.byToken.keys().next().value as string);
    this.byToken.set(token, entry);
  }

  /** Forgets the entries past their time (a full scan at most every 10 s). */
  private prune(): void {
    const now = Date.now();
    if (now - this.prunedAt < 10_000) return;
    this.prunedAt = now;
    for (const [t, e] of this.byToken) if (e.until < now) this.byToken.delete(t);
  }
}

/** What one attempt to tell the home achieved: `done` (it knows, or never will), `retry`. */
export type AbandonOutcome = 'done' | 'retry';

/**
 * The caller side: tells homes about grants given up on, each retried in the background (with
 * back-off) until `until`, past which a lease granted under its token has lapsed by itself.
 */
export class AbandonedGrants {
  private readonly timers = new Set<NodeJS.Timeout>();
  private closed = false;

  /** Runs `attempt` now and again after failures until it is `done` or `until` passed. */
  tell(attempt: () => Promise<AbandonOutcome>, until: number, onGiveUp: () => void): void {
    let n = 0;
    const run = (): void => {
      if (this.closed) return;
      void attempt()
        .catch((): AbandonOutcome => 'retry')
        .then((out) => {
          if (out === 'done' || this.closed) return;
          const delay = backoffDelay(n++, 250, 5000);
          if (Date.now() + delay > until) return onGiveUp();
          const t = setTimeout(() => {
            this.timers.delete(t);
            run();
          }, delay);
          t.unref();
          this.timers.add(t);
        });
    };
    run();
  }

  close(): void {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }
}
