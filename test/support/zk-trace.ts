/**
 * A trace of every call the process's ZooKeeper clients (`NativeZkClient`, the gateway's real
 * client) make while `traced` runs: what a lock costs in requests and round trips, read from
 * the calls themselves. Importing this module wraps the client's methods once.
 */
import { performance } from 'node:perf_hooks';
import { ZkError } from '../../src/zk/errors.js';
import { NativeZkClient } from '../../src/zk/native-client.js';

export interface Call {
  readonly op: string;
  readonly path: string;
  /** A watcher was passed (a watch is set). */
  readonly watch: boolean;
  readonly start: number;
  end: number;
  /** The code of the error the call failed with (`NO_NODE`…, src/zk/errors.ts); unset on success. */
  error?: string;
}

/** Every call of the gateway's ZooKeeper clients while `calls` is set. */
let calls: Call[] | undefined;
const OPS = ['create', 'createWithStat', 'get', 'exists', 'children', 'set', 'delete', 'sync'] as const;
for (const op of OPS) {
  const proto = NativeZkClient.prototype as unknown as Record<string, (this: NativeZkClient, path: string, ...rest: unknown[]) => Promise<unknown>>;
  const orig = proto[op] as (this: NativeZkClient, path: string, ...rest: unknown[]) => Promise<unknown>;
  proto[op] = function (this: NativeZkClient, path: string, ...rest: unknown[]): Promise<unknown> {
    const c: Call = { op, path, watch: rest.some((a) => typeof a === 'function'), start: performance.now(), end: Number.POSITIVE_INFINITY };
    calls?.push(c);
    const p = orig.call(this, path, ...rest);
    const done = (): void => void (c.end = performance.now());
    p.then(done, (err: unknown) => {
      c.error = err instanceof ZkError ? err.code : String(err);
      done();
    });
    return p;
  };
}

/**
 * The longest chain of calls under `prefix` in which each was sent after the previous one's
 * answer, leaving out the ownership watch on `held` (set once the create has named the node;
 * nothing waits for its answer, but it may well arrive before the HTTP answer does).
 */
export function roundTrips(trace: readonly Call[], prefix: string, held?: string): number {
  const mine = trace
    .filter((c) => c.path === prefix || c.path.startsWith(`${prefix}/`))
    .filter((c) => !(c.path === held && c.watch))
    .sort((a, b) => a.start - b.start);
  const depth: number[] = [];
  mine.forEach((c, i) => {
    depth[i] = 1 + Math.max(0, ...mine.slice(0, i).flatMap((p, j) => (p.end <= c.start ? [depth[j] as number] : [])));
  });
  return Math.max(0, ...depth);
}

/** Runs `fn` with the trace on; resolves with its result and the calls it made. */
export async function traced<T>(fn: () => Promise<T>): Promise<{ result: T; trace: Call[] }> {
  calls = [];
  try {
    const result = await fn();
    return { result, trace: calls };
  } finally {
    calls = undefined;
  }
}
