/**
 * Helpers for states followed through the watch hub and recomputed from the latest events
 * (an election's leader, a service's instance set): a "something changed" flag a reader awaits,
 * and the long-poll answer built on such an observation.
 */
import { toZkgateError, type ZkgateError } from '../errors.js';

/** A dirty flag with one waiter: `wake()` sets it, `changed()` resolves once it is set. */
export class ChangeFlag {
  private dirty = true;
  private notify: (() => void) | undefined;

  /** Resolves at the next `wake()` (at once if one came since the last `take()`, or `now` is true); `signal` ends it. */
  changed(signal: AbortSignal, now = false): Promise<void> {
    if (this.dirty || now || signal.aborted) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = (): void => {
        signal.removeEventListener('abort', done);
        this.notify = undefined;
        resolve();
      };
      this.notify = done;
      signal.addEventListener('abort', done, { once: true });
    });
  }

  /** Clears the flag (the reader is about to read the state). */
  take(): void {
    this.dirty = false;
  }

  wake(): void {
    this.dirty = true;
    this.notify?.();
  }
}

/**
 * Long-poll over an observation: answers at once when the current index differs from `index`
 * (or none is given, or `waitMs` is 0: then a plain `read`, which leaves no watch behind), else
 * at the next change or after `waitMs` with `unchanged: true`.
 */
export async function pollObserved<S extends { readonly index: string }>(
  observe: (signal: AbortSignal) => AsyncIterable<S>,
  read: () => Promise<S>,
  index: string | undefined,
  waitMs: number,
  signal?: AbortSignal,
): Promise<S & { unchanged: boolean }> {
  if (index === undefined || waitMs === 0) {
    const state = await read();
    return { ...state, unchanged: index !== undefined && state.index === index };
  }
  const stop = AbortSignal.any([AbortSignal.timeout(Math.max(waitMs, 1)), ...(signal ? [signal] : [])]);
  let seen: S | undefined;
  for await (const state of observe(stop)) {
    if (seen !== undefined || state.index !== index) return { ...state, unchanged: false };
    seen = state;
  }
  return { ...(seen ?? (await read())), unchanged: true };
}

/** A followed state as `observeLatest` reads it. */
export interface Followed<S> {
  /** The state now, or undefined while it is not known yet. @throws the watch's failure */
  state(): S | undefined;
  changed(signal: AbortSignal): Promise<void>;
  close(): void;
}

/**
 * Yields the followed state now, then each new one (by `key`) until `signal` aborts; only the
 * latest state is ever read, so a slow consumer makes nothing buffer. Closes `watch` at the end.
 */
export async function* observeLatest<S>(watch: Followed<S>, key: (s: S) => string, signal: AbortSignal): AsyncGenerator<S> {
  try {
    let last: string | undefined;
    while (!signal.aborted) {
      const state = watch.state();
      const k = state === undefined ? undefined : key(state);
      if (state !== undefined && k !== last) {
        last = k;
        yield state;
      }
      await watch.changed(signal);
    }
  } finally {
    watch.close();
  }
}

/**
 * Base of a state recomputed from hub events: subclasses compute `current()` from what their
 * sinks stored and call `wake()` on every event, `fail()` when a watch cannot go on.
 */
export abstract class FollowedState<S> implements Followed<S> {
  private failure: ZkgateError | undefined;
  private readonly flag = new ChangeFlag();

  /** @param path names the followed thing in a failure */
  constructor(private readonly what: string) {}

  /** Resolves at the next change (at once if one came since the last `state()`); `signal` ends it. */
  changed(signal: AbortSignal): Promise<void> {
    return this.flag.changed(signal, this.failure !== undefined);
  }

  /** The current state, or undefined while it is not known yet. @throws the watch's failure */
  state(): S | undefined {
    this.flag.take();
    if (this.failure) throw this.failure;
    return this.current();
  }

  abstract close(): void;

  protected abstract current(): S | undefined;

  protected fail(err: unknown): void {
    this.failure = toZkgateError(err, this.what);
    this.wake();
  }

  protected wake(): void {
    this.flag.wake();
  }
}
