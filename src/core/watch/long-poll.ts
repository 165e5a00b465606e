/**
 * Blocking reads ("long-poll", like Consul's blocking queries) on top of the watch hub: a
 * client sends the index (zxid) of the state it last saw and how long it may wait. Thousands of
 * waiting clients on one node cost one ZooKeeper watch.
 */
import { ZkgateError } from '../errors.js';
import type { Tenant } from '../tenants/tenant.js';
import type { WatchHub } from './hub.js';
import type { WatchEvent } from './types.js';

/** Longest time to read the current state before the wait starts, ms. */
const FIRST_READ_MS = 10_000;

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
 * Resolves at once when the node's current state differs from `index` (or no index is given),
 * else on the first change or when the wait ends (then `unchanged`).
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
  // The wait starts once the current state is known; reading it gets a bound of its own.
  let timer = setTimeout(() => done.abort(), FIRST_READ_MS);
  const onClientGone = (): void => done.abort();
  opts.signal?.addEventListener('abort', onClientGone, { once: true });
  let last: WatchEvent | undefined;
  try {
    for await (const ev of stream) {
      const changed = opts.index === undefined || ev.zxid !== opts.index;
      if (changed || waitMs === 0) return { state: ev, unchanged: !changed };
      if (!last) {
        clearTimeout(timer);
        timer = setTimeout(() => done.abort(), waitMs);
      }
      last = ev;
    }
  } finally {
    clearTimeout(timer);
    opts.signal?.removeEventListener('abort', onClientGone);
    done.abort();
  }
  if (!last) throw new ZkgateError('UNAVAILABLE', `watch: the state of ${path} could not be read`, { path });
  return { state: last, unchanged: true };
}
