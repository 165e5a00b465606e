/**
 * A recipe's wait that a second call by the same lease for the same thing joins instead of
 * starting another: an acquire retried after its answer was lost, or replayed by a balancer
 * (deploy/haproxy.cfg), while the first still waits. One contender node, and every caller still
 * open is answered with its outcome — as the holder acquiring again gets its hold again.
 *
 * The shared wait lasts until the latest caller's deadline and while any caller remains: a
 * caller whose own deadline passes first, or whose client goes away, is answered alone and the
 * wait goes on for the others; the last one to leave gives the wait up (its node is deleted)
 * before it is answered.
 */
import { cancelled } from '../errors.js';
import { LazySignal, signalOf, type Abort } from './wake.js';

/** What the shared work gets: its deadline (the latest caller's, read again: joins extend it) and its abort (every caller gone). */
export interface Joined {
  /** ms since the epoch. */
  readonly until: () => number;
  /**
   * The wait itself as a lazy abort: an acquire that holds at once only calls its
   * `throwIfAborted`, and an `AbortSignal` (with a listener on each caller's, whose own lazy
   * signal it makes) is made only if the work waits. (`signal`, which makes it, cost a lock cycle
   * about a third of its CPU when it was handed to the work.)
   */
  readonly abort: Abort;
}

interface Caller<T> {
  readonly deadline: number;
  readonly signal: Abort | undefined;
  readonly resolve: (v: T) => void;
  readonly reject: (e: unknown) => void;
  timer?: NodeJS.Timeout;
  off?: () => void;
}

/** Why a caller leaves before the work is done. */
type Leaving = { readonly expired: true } | { readonly reason: unknown };

/**
 * One running wait and its callers. Its abort is lazy like an HTTP exchange's (`LazySignal`):
 * a lone caller's abort is only checked until the work waits or a second caller joins, so an
 * acquire that holds at once follows no signal.
 */
class SharedWait<T> extends LazySignal {
  private readonly callers = new Set<Caller<T>>();
  private latest = -Infinity;
  private reason: unknown;
  private gaveUp = false;
  private controller: AbortController | undefined;
  /** The callers' signals are followed (from the first wait, or the first join). */
  private following = false;
  private settled = false;
  /** The work's outcome, set by `run`. */
  private work: Promise<T> | undefined;

  readonly until = (): number => this.latest;

  constructor(
    private readonly expired: T,
    /** What the work was started for (e.g. a semaphore acquire's permit count). */
    readonly label: string,
  ) {
    super();
  }

  throwIfAborted(): void {
    if (this.gaveUp) throw this.reason;
    if (!this.following) for (const c of this.callers) c.signal?.throwIfAborted();
  }

  get abort(): Abort {
    return this;
  }

  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.gaveUp) this.controller.abort(this.reason);
      else this.follow();
    }
    return this.controller.signal;
  }

  /** Starts the work (once); its outcome answers every caller still there. */
  run(work: Promise<T>, done: () => void): void {
    this.work = work;
    const settle = (answer: (c: Caller<T>) => void): void => {
      this.settled = true;
      done();
      for (const c of [...this.callers]) {
        this.forget(c);
        answer(c);
      }
    };
    work.then(
      (v) => settle((c) => c.resolve(v)),
      (err: unknown) => settle((c) => c.reject(err)),
    );
  }

  /** Adds a caller; a deadline later than the others' extends the wait, an earlier one answers that caller alone at its time. */
  join(deadline: number, signal: Abort | undefined): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const c: Caller<T> = { deadline, signal, resolve, reject };
      this.callers.add(c);
      if (deadline > this.latest) this.latest = deadline;
      if (this.callers.size === 1) return;
      // Joined: every caller leaves on its own from now on.
      if (this.following) this.followCaller(c);
      else this.follow();
      for (const o of [...this.callers]) {
        if (o.deadline < this.latest && o.timer === undefined && this.callers.has(o)) {
          o.timer = setTimeout(() => this.leave(o, { expired: true }), Math.max(0, o.deadline - Date.now()));
        }
      }
    });
  }

  private follow(): void {
    if (this.following) return;
    this.following = true;
    for (const c of [...this.callers]) this.followCaller(c);
  }

  private followCaller(c: Caller<T>): void {
    if (!c.signal) return;
    const s = signalOf(c.signal);
    if (s.aborted) return this.leave(c, { reason: s.reason });
    const onAbort = (): void => this.leave(c, { reason: s.reason });
    s.addEventListener('abort', onAbort, { once: true });
    c.off = () => s.removeEventListener('abort', onAbort);
  }

  private forget(c: Caller<T>): boolean {
    if (!this.callers.delete(c)) return false;
    clearTimeout(c.timer);
    c.off?.();
    return true;
  }

  private leave(c: Caller<T>, why: Leaving): void {
    if (!this.forget(c)) return;
    const answer = (): void => ('reason' in why ? c.reject(why.reason) : c.resolve(this.expired));
    if (this.callers.size > 0 || this.settled) return answer();
    // The last caller: the wait is given up, and its node gone, before the answer.
    this.gaveUp = true;
    this.reason = 'reason' in why ? why.reason : cancelled('deadline', 'wait: every caller of a joined wait gave up');
    this.controller?.abort(this.reason);
    const work = this.work ?? Promise.reject(this.reason);
    // A hold won in the meantime is still the answer of a caller whose deadline passed.
    work.then((v) => ('reason' in why ? answer() : c.resolve(v)), answer);
  }
}

/** The running waits of owners (leases), by key (e.g. the lock's path). */
export class JoinedWaits<T> {
  private readonly byOwner = new WeakMap<object, Map<string, SharedWait<T>>>();

  /** @param expired what a caller whose deadline passes first is answered */
  constructor(private readonly expired: T) {}

  /** The label of the owner's wait for `key` running now, if one is. */
  running(owner: object, key: string): string | undefined {
    return this.byOwner.get(owner)?.get(key)?.label;
  }

  /**
   * The owner's (a lease's) wait for `key`: joins the one running, else starts `work`.
   * @param deadline this caller's, ms since the epoch
   * @param label what the work is started for (see `running`); a joining caller's is not compared
   * @returns the work's outcome, or `expired` when this caller's deadline passes first
   * @throws the work's error; the caller's signal's reason when it aborts first
   */
  wait(owner: object, key: string, deadline: number, signal: Abort | undefined, work: (joined: Joined) => Promise<T>, label = ''): Promise<T> {
    let byKey = this.byOwner.get(owner);
    const running = byKey?.get(key);
    if (running) return running.join(deadline, signal);
    if (!byKey) this.byOwner.set(owner, (byKey = new Map()));
    const mine = byKey;
    const shared = new SharedWait<T>(this.expired, label);
    mine.set(key, shared);
    const answer = shared.join(deadline, signal);
    let started: Promise<T>;
    try {
      started = work(shared);
    } catch (err) {
      started = Promise.reject(err);
    }
    shared.run(started, () => {
      if (mine.get(key) === shared) mine.delete(key);
      if (mine.size === 0 && this.byOwner.get(owner) === mine) this.byOwner.delete(owner);
    });
    return answer;
  }
}
