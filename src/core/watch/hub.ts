/**
 * The watch hub: continuous, deduplicated watch streams over ZooKeeper's one-shot watches.
 * Any number of subscribers on one (path, kind) share one ZooKeeper watch and one read per
 * change; every subscriber gets the current state first, then each change in order, and a
 * `resync` with the current state after a disconnect or session expiry — never a silent gap.
 * Each subscriber has a bounded queue; one that falls behind is cut with SLOW_CONSUMER.
 */
import type { Stat } from '../../zk/index.js';
import { ZkgateError, invalidArgument } from '../errors.js';
import type { Logger } from '../logger.js';
import { checkPath } from '../paths.js';
import type { Tenant } from '../tenants/tenant.js';
import type { NodeWatchKind, Sink } from './node-watch.js';
import { QueuedIterator } from './queued-iterator.js';
import { SubtreeWatch } from './subtree.js';
import { DEFAULT_MAX_IDLE, DEFAULT_MAX_IDLE_BYTES, TenantWatches } from './tenant-watches.js';
import { WATCH_KINDS, type WatchEvent, type WatchLimits, type WatchOptions, type WatchStats } from './types.js';

/**
 * A subscription: iterate it for events; `stop()` (or `break`) ends it; `closed` tells why it
 * ended. It is its node watch's sink itself, not a sink object with closures around it: one
 * object fewer per delivery to reach (see `Consumer`).
 */
export class WatchStream extends QueuedIterator<WatchEvent> implements Sink {
  deliver(event: WatchEvent): void {
    this.push(event);
  }
  fail(err: ZkgateError): void {
    this.stop(err);
  }
}

export class WatchHub {
  private readonly tenants = new Map<Tenant, TenantWatches>();
  private lifecycle: 'running' | 'closed' = 'running';
  /** Every stream not yet stopped, so that `close` can end them with a reason. */
  private readonly open = new Set<WatchStream>();

  constructor(
    readonly limits: WatchLimits,
    private readonly log: Logger,
  ) {}

  /**
   * Subscribes to `path` in `tenant`. The stream's first event is the current state (`current`;
   * for a subtree one per node), then changes in order.
   * @throws INVALID_PATH, INVALID_ARGUMENT (kind), LIMIT_EXCEEDED (`limits.maxSubscriptionsPerTenant`),
   *   UNAVAILABLE while the tenant's session is down
   */
  watch(tenant: Tenant, path: string, opts: WatchOptions): WatchStream {
    checkPath(path);
    if (!WATCH_KINDS.includes(opts.kind)) throw invalidArgument('kind', `must be one of ${WATCH_KINDS.join(', ')}`);
    if (this.lifecycle === 'closed') throw new ZkgateError('UNAVAILABLE', 'watch: the gateway is shutting down', {});
    tenant.client(); // fail fast with UNAVAILABLE rather than wait for a session
    const release = tenant.quotas.take('subscriptions');
    const tw = this.of(tenant);
    const queueSize = Math.min(opts.queueSize ?? this.limits.queueSize, this.limits.queueSize);
    const stream = new WatchStream(queueSize, `watch ${path}`);
    const kind = opts.kind;
    tw.subscribers[kind]++;
    this.open.add(stream);
    stream.onStop((err) => {
      this.open.delete(stream);
      release();
      tw.subscribers[kind]--;
      if (err instanceof ZkgateError && err.code === 'SLOW_CONSUMER') tw.slowConsumers++;
    });
    if (opts.signal) bindSignal(stream, opts.signal);
    if (kind === 'subtree') {
      const maxNodes = Math.min(opts.maxNodes ?? this.limits.maxSubtreeNodes, this.limits.maxSubtreeNodes);
      new SubtreeWatch(tw, path, stream, maxNodes).start();
    } else {
      stream.onStop(() => tw.detach(kind, path, stream));
      tw.attach(kind, path, stream);
    }
    return stream;
  }

  /**
   * Follows one node for the gateway's own coordination (held nodes, a queue waiter's
   * predecessor, election observe) through the same shared, counted ZooKeeper watch subscribers
   * use: every ZooKeeper watch the gateway holds is the hub's. Takes no subscription quota unit
   * (the recipe's own quota covers it). `sink` gets `current` first (possibly synchronously),
   * then every change. Returns the function that stops following (idempotent).
   */
  follow(tenant: Tenant, kind: NodeWatchKind, path: string, sink: Sink): () => void {
    if (this.lifecycle === 'closed') return () => undefined;
    const tw = this.of(tenant);
    let on = true;
    tw.attach(kind, path, sink);
    return () => {
      if (on) tw.detach(kind, path, sink);
      on = false;
    };
  }

  /**
   * The read cache: `path`'s data and stat from the hub's shared data watch when that watch
   * vouches for them (docs/watch.md, "Read cache"), else undefined. Nothing is cached beyond
   * what the hub holds for its watches anyway, so memory is bounded by the subscriptions
   * (`limits.maxSubscriptionsPerTenant`), `watch.maxIdleWatches` and `watch.maxIdleBytes`.
   */
  cached(tenant: Tenant, path: string): { readonly data: Buffer; readonly stat: Stat } | undefined {
    return this.tenants.get(tenant)?.cached(path);
  }

  /**
   * Whether the shared watches named (`data:<path>` / `children:<path>`) all vouch for the state
   * they last delivered, so that a state built from them may answer from memory: the read
   * cache's rule (`TenantWatches.vouch`). False for a watch the hub does not hold.
   */
  vouch(tenant: Tenant, keys: Iterable<string>): boolean {
    return this.tenants.get(tenant)?.vouch(keys) ?? false;
  }

  /**
   * A read that puts `path` in the read cache: read with a data watch and kept as an idle watch
   * (`TenantWatches.readThrough`); `missing` for a node that does not exist; undefined when that
   * does not apply (then read plainly).
   * @throws what the read threw
   */
  readThrough(tenant: Tenant, path: string): Promise<{ readonly data: Buffer; readonly stat: Stat } | 'missing' | undefined> {
    if (this.lifecycle === 'closed') return Promise.resolve(undefined);
    return this.of(tenant).readThrough(path);
  }

  /**
   * `path`'s ACL was changed through `tenant`. ZooKeeper notifies no watch of an ACL change, so
   * the read cache stops answering for that node — in every tenant whose chroot holds it — until
   * a read made after a change notification vouches for it again.
   */
  aclChanged(tenant: Tenant, path: string): void {
    const abs = tenant.chroot === '/' ? path : path === '/' ? tenant.chroot : `${tenant.chroot}${path}`;
    for (const tw of this.tenants.values()) {
      const root = tw.tenant.chroot;
      if (root === '/') tw.distrust(abs);
      else if (abs === root) tw.distrust('/');
      else if (abs.startsWith(`${root}/`)) tw.distrust(abs.slice(root.length));
    }
  }

  /** Counts a one-shot ZooKeeper watch set outside the hub until the returned call (`TenantWatches.countOneShot`). */
  countOneShot(tenant: Tenant, kind: 'data' | 'children'): () => void {
    return this.of(tenant).countOneShot(kind);
  }

  /** Per-tenant counters for /metrics. */
  stats(): WatchStats[] {
    return [...this.tenants.values()].map((tw) => tw.stats());
  }

  /** Ends every open stream with UNAVAILABLE (the gateway is shutting down) and every tenant's watches. Idempotent. */
  close(): void {
    if (this.lifecycle === 'closed') return;
    this.lifecycle = 'closed';
    const reason = new ZkgateError('UNAVAILABLE', 'watch: the gateway is shutting down', {});
    for (const s of [...this.open]) s.stop(reason);
    for (const tw of this.tenants.values()) tw.close();
    this.tenants.clear();
  }

  private of(tenant: Tenant): TenantWatches {
    let tw = this.tenants.get(tenant);
    if (!tw) {
      tw = new TenantWatches(tenant, this.log, {
        maxIdle: this.limits.maxIdleWatches ?? DEFAULT_MAX_IDLE,
        maxIdleBytes: this.limits.maxIdleBytes ?? DEFAULT_MAX_IDLE_BYTES,
        readThrough: this.limits.readThrough ?? true,
      });
      this.tenants.set(tenant, tw);
    }
    return tw;
  }
}

function bindSignal(stream: WatchStream, signal: AbortSignal): void {
  if (signal.aborted) {
    stream.stop();
    return;
  }
  const onAbort = (): void => stream.stop();
  signal.addEventListener('abort', onAbort, { once: true });
  stream.onStop(() => signal.removeEventListener('abort', onAbort));
}
