/**
 * One streaming connection of a caller (a WebSocket, an SSE response, a gRPC stream): it holds
 * a unit of the tenant's `limits.maxConnectionsPerTenant` until closed, and its watch
 * subscriptions and election observes together count against `watch.maxSubscriptionsPerConnection`
 * and, each, a unit of the tenant's `limits.maxSubscriptionsPerTenant`. Closing it ends them all.
 */
import { ZkgateError } from '../errors.js';
import type { LeaderState } from '../recipes/election.js';
import { serviceRef, type InstanceSet } from '../registry/instance-set.js';
import type { WatchStream } from '../watch/hub.js';
import type { WatchOptions } from '../watch/types.js';
import type { ScopeContext } from './scope.js';

/** Something open on the connection that closing it stops. */
interface Stoppable {
  stop(): void;
}

export class ScopedConnection {
  private readonly open = new Set<Stoppable>();
  private readonly releaseUnit: () => void;
  private state: 'open' | 'closed' = 'open';
  /** Most subscriptions (watches and observes) open at once. */
  readonly limit: number;

  /** @throws LIMIT_EXCEEDED past the tenant's `limits.maxConnectionsPerTenant` */
  constructor(private readonly ctx: ScopeContext) {
    this.releaseUnit = ctx.tenant.quotas.take('connections');
    this.limit = ctx.services.watches.limits.maxSubscriptionsPerConnection;
  }

  /** Subscriptions open now. */
  get size(): number {
    return this.open.size;
  }

  /** True once `close()` ran. */
  get closed(): boolean {
    return this.state === 'closed';
  }

  /**
   * Subscribes to `path` (see `WatchHub.watch`): the current state first, then every change.
   * @throws INVALID_PATH, PERMISSION_DENIED, LIMIT_EXCEEDED, UNAVAILABLE
   */
  watch(path: string, opts: WatchOptions): WatchStream {
    this.ctx.authorize('watch', path);
    this.checkRoom();
    const stream = this.ctx.services.watches.watch(this.ctx.tenant, path, opts);
    this.open.add(stream);
    stream.onStop(() => this.open.delete(stream));
    return stream;
  }

  /**
   * Observes the election at `path`: the leader state now, then every change, until `signal`
   * aborts, the consumer stops iterating or the connection closes. Authorization and quotas are
   * checked at once, before the first state is read.
   * @throws INVALID_PATH, PERMISSION_DENIED, LIMIT_EXCEEDED
   */
  observe(path: string, opts: { signal?: AbortSignal } = {}): AsyncGenerator<LeaderState> {
    this.ctx.authorize('lock.read', path);
    const { elections } = this.ctx.services;
    const tenant = this.ctx.tenant;
    return this.hold(opts.signal, (signal) => elections.observe(tenant, path, { signal }));
  }

  /**
   * Follows the instance set of `service` under `base` (default `/services`): the set now, then
   * every change (only the latest when the reader is slow), like `observe`.
   * @throws INVALID_ARGUMENT, INVALID_PATH, PERMISSION_DENIED, LIMIT_EXCEEDED
   */
  instances(base: string | undefined, service: string, opts: { signal?: AbortSignal } = {}): AsyncGenerator<InstanceSet> {
    const ref = serviceRef(base, service);
    this.ctx.authorize('watch', ref.path);
    const { discovery } = this.ctx.services;
    const tenant = this.ctx.tenant;
    return this.hold(opts.signal, (signal) => discovery.observe(tenant, ref, { signal }));
  }

  /** Runs a core observation as one subscription of this connection (room and quota checked at once). */
  private hold<T>(outer: AbortSignal | undefined, start: (signal: AbortSignal) => AsyncGenerator<T>): AsyncGenerator<T> {
    this.checkRoom();
    const release = this.ctx.tenant.quotas.take('subscriptions');
    const ac = new AbortController();
    const entry: Stoppable = {
      stop: () => {
        ac.abort();
        release();
        this.open.delete(entry);
      },
    };
    this.open.add(entry);
    const signal = outer ? AbortSignal.any([outer, ac.signal]) : ac.signal;
    return (async function* observeWhileOpen() {
      try {
        yield* start(signal);
      } finally {
        entry.stop();
      }
    })();
  }

  /** Ends every subscription and gives back the connection's unit. Idempotent. */
  close(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    for (const s of [...this.open]) s.stop();
    this.open.clear();
    this.releaseUnit();
  }

  private checkRoom(): void {
    if (this.state === 'closed') throw new ZkgateError('UNAVAILABLE', 'connection: already closed', {});
    if (this.open.size >= this.limit) {
      throw new ZkgateError('LIMIT_EXCEEDED', `watch: at most ${this.limit} subscriptions per connection (watch.maxSubscriptionsPerConnection)`, {
        limit: 'watch.maxSubscriptionsPerConnection',
        max: this.limit,
      });
    }
  }
}
