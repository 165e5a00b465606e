/**
 * Waiting in recipes: until a ZooKeeper watch fires, a deadline passes, the tenant's session
 * changes state, or a signal aborts (the caller's, or the lease's end).
 */
import type { EventEmitter } from 'node:events';

/** The callbacks of each emitter's single `state` listener (see `onState`). */
const fanouts = new WeakMap<EventEmitter, Set<(event: unknown) => void>>();

/**
 * Calls `cb` on every `state` event of `emitter` until the returned function is called. Every
 * caller shares ONE listener per emitter: a thousand waiters on a tenant add no listeners (no
 * MaxListenersExceededWarning) and a state change walks one set instead of waking listeners.
 */
export function onState(emitter: EventEmitter, cb: (event: unknown) => void): () => void {
  let set = fanouts.get(emitter);
  if (!set) {
    const callbacks = new Set<(event: unknown) => void>();
    set = callbacks;
    fanouts.set(emitter, callbacks);
    emitter.on('state', (event: unknown) => {
      for (const f of [...callbacks]) if (callbacks.has(f)) f(event);
    });
  }
  const mine = set;
  const entry = (event: unknown): void => cb(event);
  mine.add(entry);
  return () => void mine.delete(entry);
}

/**
 * An abort whose `AbortSignal` is made only when something must listen to it: checking it
 * makes none. An HTTP exchange's (a client that goes away) is one — most lock acquires hold at
 * once and only check it, and an `AbortController` with its signal and a 'close' listener per
 * exchange was ~2 % of a lock cycle's CPU (docs/benchmarks.md, locks2). A class, so that a
 * forwarded call (src/core/cluster/codec.ts) finds it as it finds an `AbortSignal`.
 */
export abstract class LazySignal {
  /** Throws the reason when it has aborted, as `AbortSignal.throwIfAborted`. */
  abstract throwIfAborted(): void;
  /** The signal itself, made on first use (then aborted at once if it has aborted already). */
  abstract get signal(): AbortSignal;
}

/** An abort given either way. */
export type Abort = AbortSignal | LazySignal;

/** The `AbortSignal` of an abort (a lazy one makes it now). */
export function signalOf(a: Abort): AbortSignal {
  return a instanceof LazySignal ? a.signal : a;
}

/** Why a wait ended without an abort. */
export type WakeReason = 'event' | 'timeout' | 'state';

export interface WakeOptions {
  /** Absolute deadline, ms since the epoch; `Infinity` for none. */
  readonly deadline: number;
  /**
   * Aborting it (any of them) rejects the wait with that signal's reason. Several are followed
   * each with a listener, cheaper than one `AbortSignal.any` per wait (a signal, weak references
   * and a finalizer each: a contended lock waits once per cycle).
   */
  readonly signal: AbortSignal | readonly AbortSignal[];
  /** Wakes on any `state` event of these (the tenant's session, the lease). */
  readonly states: readonly EventEmitter[];
  /** Called once with the function that ends the wait with 'event' (e.g. from a watcher). */
  readonly arm?: (wake: () => void) => void;
}

/**
 * Resolves with why the wait ended. A watcher armed through `arm` may fire after the wait has
 * ended; that call is ignored.
 * @throws the signal's reason when it aborts (also when it is already aborted)
 */
export function wake(opts: WakeOptions): Promise<WakeReason> {
  const { states } = opts;
  const signals: readonly AbortSignal[] = 'aborted' in opts.signal ? [opts.signal] : opts.signal;
  const aborted = signals.find((s) => s.aborted);
  if (aborted) return Promise.reject(aborted.reason as Error);
  return new Promise<WakeReason>((resolve, reject) => {
    let done = false;
    let timer: NodeJS.Timeout | undefined;
    let offs: (() => void)[] = [];
    const finish = (reason: WakeReason | null, by?: AbortSignal): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      for (const s of signals) s.removeEventListener('abort', onAbort);
      for (const off of offs) off();
      if (reason) resolve(reason);
      else reject(by?.reason as Error);
    };
    function onAbort(this: AbortSignal): void {
      finish(null, this);
    }
    for (const s of signals) s.addEventListener('abort', onAbort, { once: true });
    offs = states.map((e) => onState(e, () => finish('state')));
    if (Number.isFinite(opts.deadline)) timer = setTimeout(() => finish('timeout'), Math.max(0, opts.deadline - Date.now()));
    opts.arm?.(() => finish('event'));
  });
}

/** Resolves after `ms` unless `signal` aborts first (then rejects with its reason). */
export function delay(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(t);
      reject(signal.reason as Error);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
