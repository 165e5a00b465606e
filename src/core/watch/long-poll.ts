/**
 * Blocking reads ("long-poll", like Consul's blocking queries) on top of the watch hub: a
 * client sends the index (zxid) of the state it last saw and how long it may wait. Thousands of
 * waiting clients on one node cost one ZooKeeper watch.
 *
 * "Unchanged" is a claim about ZooKeeper, so it is only made when the hub's watch was valid for
 * the whole wait: the same session epoch throughout (no suspension, reconnect or expiry) and
 * ZooKeeper heard from within a third of the session timeout at the answer (no silent gap, such
 * as the gateway process frozen: its timers fire before it notices the lost session). Otherwise
 * the node is read again — or the hub's resync taken — before answering. The same holds for a
 * state the hub had cached when the gap came.
 */
import { monotonicMs } from '../../zk/index.js';
import { ZkgateError } from '../errors.js';
import type { Tenant } from '../tenants/tenant.js';
import type { WatchHub } from './hub.js';
import { readNodeState } from './node-watch.js';
import type { WatchEvent } from './types.js';

/** Longest time to read the current state (before the wait, or to re-check after a gap), ms. */
const READ_MS = 10_000;

export interface BlockingReadOptions {
  /** The `zxid` of the state the client last saw ("0": the node did not exist). Absent: answer at once. */
  readonly index?: string;
  /** Longest wait, ms; capped by config `watch.maxWaitMs`. */
  readonly waitMs: number;
  /** Aborting (the client went away) ends the wait early, answering the unchanged state. */
  readonly signal?: AbortSignal;
}

export interface BlockingReadResult {
  /** The state to answer: `stat` null when the node does not exist. */
  readonly state: WatchEvent;
  /** True when the wait ended without a change from `index`. */
  readonly unchanged: boolean;
}

/**
 * True when the tenant's session is still the one of `epoch` and ZooKeeper answered it recently
 * enough that no notification can have been missed unnoticed (heartbeats come every sixth of
 * the session timeout, src/zk/session.ts).
 */
function vouched(tenant: Tenant, epoch: number): boolean {
  const l = tenant.session.liveness();
  return l.usable && l.epoch === epoch && monotonicMs() - l.lastHeardAt <= l.sessionTimeoutMs / 3;
}

/** Resolves after `ms` or when `signal` aborts, with `undefined`. */
function timeout(ms: number, signal?: AbortSignal): { promise: Promise<undefined>; cancel(): void } {
  let cancel = (): void => undefined;
  const promise = new Promise<undefined>((resolve) => {
    const done = (): void => resolve(undefined);
    if (signal?.aborted) return done();
    const t = setTimeout(done, Math.max(0, ms));
    signal?.addEventListener('abort', done, { once: true });
    cancel = () => {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
    };
  });
  return { promise, cancel };
}

/**
 * Resolves at once when the node's current state differs from `index` (or no index is given),
 * else on the first change or when the wait ends (then `unchanged`, if the watch vouches for it).
 * @throws INVALID_PATH, UNAVAILABLE (session down, or no state read within the wait), LIMIT_EXCEEDED
 */
export async function blockingRead(
  hub: WatchHub,
  tenant: Tenant,
  path: string,
  kind: 'data' | 'children',
  opts: BlockingReadOptions,
): Promise<BlockingReadResult> {
  const waitMs = Math.max(0, Math.min(opts.waitMs, hub.limits.maxWaitMs));
  const done = new AbortController();
  const stream = hub.watch(tenant, path, { kind, signal: done.signal });
  const events = stream[Symbol.asyncIterator]();
  // One outstanding pull at a time: one that loses a race to a timer is kept for the next call.
  let pending: Promise<{ ev: WatchEvent | undefined }> | undefined;
  /** The stream's next event, or undefined when it ended, `ms` passed or the client went away. */
  const next = async (ms: number): Promise<WatchEvent | undefined> => {
    pending ??= events.next().then((r) => ({ ev: r.done ? undefined : r.value }));
    const t = timeout(ms, opts.signal);
    try {
      const got = await Promise.race([pending, t.promise]);
      if (!got) return undefined;
      pending = undefined;
      return got.ev;
    } finally {
      t.cancel();
    }
  };
  const answer = (state: WatchEvent): BlockingReadResult => ({ state, unchanged: opts.index !== undefined && state.zxid === opts.index });
  try {
    let last = await next(READ_MS);
    if (!last) throw new ZkgateError('UNAVAILABLE', `watch: the state of ${path} could not be read`, { path });
    let epoch = tenant.session.liveness().epoch;
    // A state the hub had cached across a gap is re-checked like an unchanged one.
    if (!vouched(tenant, epoch) && !opts.signal?.aborted) last = await recheck(tenant, path, kind, next);
    if (!answer(last).unchanged || waitMs === 0) return answer(last);
    const deadline = monotonicMs() + waitMs;
    for (;;) {
      const ev = await next(deadline - monotonicMs());
      if (!ev) break;
      if (!answer(ev).unchanged) return answer(ev);
      last = ev; // a resync that found the same state: checked on the session it came on
      epoch = tenant.session.liveness().epoch;
    }
    if (opts.signal?.aborted || vouched(tenant, epoch)) return answer(last);
    return answer(await recheck(tenant, path, kind, next));
  } finally {
    done.abort();
  }
}

/**
 * The node's state checked after a gap: a plain read, or the hub's next event (its resync once
 * a new session is up), whichever comes first within READ_MS.
 * @throws UNAVAILABLE when neither comes
 */
async function recheck(
  tenant: Tenant,
  path: string,
  kind: 'data' | 'children',
  next: (ms: number) => Promise<WatchEvent | undefined>,
): Promise<WatchEvent> {
  const read = (async () => readNodeState(tenant.client(), kind, path))().catch(() => undefined);
  const deadline = monotonicMs() + READ_MS;
  // The read fails while the session is down: then only the hub's resync can answer.
  const fromRead = read.then((s) => s ?? new Promise<never>(() => undefined));
  const state = await Promise.race([fromRead, next(deadline - monotonicMs())]);
  if (state) return state;
  throw new ZkgateError('UNAVAILABLE', `watch: the state of ${path} could not be checked after the zookeeper session was interrupted`, { path });
}
