/**
 * A bounded single-consumer AsyncIterable (after nats.js `QueuedIterator`). Producers `push`;
 * the consumer iterates. Past `maxPending` waiting items the iterator stops itself with
 * SLOW_CONSUMER instead of buffering without bound. `break` (or `return`) in the consumer ends
 * the iterator and runs the cleanup; `stop(err)` ends it from the producer side.
 *
 * Instead of iterating, a consumer may `consume(consumer)`: items are then handed to its `take` as
 * they are pushed, with no promise or microtask per item (a change with 10,000 WebSocket
 * subscribers is 10,000 deliveries in one turn). A consumer that cannot take more returns false
 * (its socket is backed up); items then queue, within the same bound, until it calls `resume()`.
 */
import { ZkgateError } from '../errors.js';

/** Runs once when the iterator ends, with the error it ended with (if any). */
export type Cleanup = (err: Error | undefined) => void;

/**
 * A push-mode consumer (`QueuedIterator.consume`). An object with a method rather than a
 * function: a push then reads no closure and context on its way to the consumer (at 10,000
 * subscribers every object a delivery touches is a cache miss, the socket writes in between
 * having evicted it).
 */
export interface Consumer<T> {
  /** Takes one item; false when it cannot take more until it calls `resume()`. */
  take(item: T): boolean;
}

export class QueuedIterator<T> implements AsyncIterable<T> {
  private readonly items: T[] = [];
  private wake: (() => void) | undefined;
  private stopped = false;
  private error: Error | undefined;
  private consumed = false;
  /** The push-mode consumer (`consume`). */
  private consumer: Consumer<T> | undefined;
  /**
   * Push mode, nothing queued and the consumer taking: a push goes straight to it. False while it
   * asked to wait and while `resume` hands over what was queued (a push then queues behind).
   */
  private direct = false;
  private readonly cleanups: Cleanup[] = [];
  private resolveClosed!: (v: Error | undefined) => void;
  /** Resolves (never rejects) once the iterator ended: with the error it ended with, or undefined. */
  readonly closed: Promise<Error | undefined> = new Promise((r) => (this.resolveClosed = r));

  /**
   * @param maxPending - items that may wait for the consumer; one more ends the iterator with SLOW_CONSUMER
   * @param what - names the stream in the SLOW_CONSUMER message
   */
  constructor(
    readonly maxPending: number,
    private readonly what = 'stream',
  ) {
    if (!Number.isInteger(maxPending) || maxPending < 1) throw new TypeError('queued iterator: maxPending must be a positive integer');
  }

  /** Items waiting for the consumer. */
  get pending(): number {
    return this.items.length;
  }
  /** True once stopped (the consumer may still be draining items pushed before a plain stop). */
  get isStopped(): boolean {
    return this.stopped;
  }

  /** Registers `fn` to run once when the iterator ends (at once if it already has). */
  onStop(fn: Cleanup): void {
    if (this.stopped) fn(this.error);
    else this.cleanups.push(fn);
  }

  /** Queues an item. Returns false when the iterator has stopped (now or before). */
  push(item: T): boolean {
    if (this.stopped) return false;
    if (this.direct) {
      if (!(this.consumer as Consumer<T>).take(item)) this.direct = false;
      return true;
    }
    if (this.items.length >= this.maxPending) {
      this.stop(
        new ZkgateError('SLOW_CONSUMER', `${this.what}: consumer fell more than ${this.maxPending} events behind; the stream was cut`, {
          limit: 'watch.queueSize',
          max: this.maxPending,
        }),
      );
      return false;
    }
    this.items.push(item);
    this.wakeUp();
    return true;
  }

  /**
   * Ends the iterator; idempotent. Without `err` the consumer first gets what is queued; with
   * `err` queued items are dropped and iteration throws `err` at once.
   */
  stop(err?: Error): void {
    if (this.stopped) return;
    this.stopped = true;
    this.error = err;
    if (err) this.items.length = 0;
    this.wakeUp();
    for (const fn of this.cleanups.splice(0)) fn(err);
    this.resolveClosed(err);
  }

  /** @throws TypeError when a second consumer tries to iterate. */
  [Symbol.asyncIterator](): AsyncIterator<T> {
    this.claim();
    return this.iterate();
  }

  /**
   * Push mode: `consumer.take` gets what is queued now, then every item as it is pushed. It
   * returns false when it cannot take more for now; items then wait in the queue (past
   * `maxPending`: SLOW_CONSUMER, as for an iterating consumer) until `resume()`. After a plain
   * `stop` it still gets what was queued; after `stop(err)` nothing more (see `onStop` for the error).
   * @throws TypeError when the iterator already has a consumer
   */
  consume(consumer: Consumer<T>): void {
    this.claim();
    this.consumer = consumer;
    this.resume();
  }

  /** Push mode: the consumer can take items again; hands it what waits, until it says false again. */
  resume(): void {
    const c = this.consumer;
    if (!c) return;
    this.direct = false;
    while (this.items.length > 0) {
      if (!c.take(this.items.shift() as T)) return;
    }
    this.direct = true;
  }

  private claim(): void {
    if (this.consumed) throw new TypeError('queued iterator: already being consumed');
    this.consumed = true;
  }

  private wakeUp(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  private async *iterate(): AsyncGenerator<T> {
    try {
      for (;;) {
        if (this.items.length > 0) {
          yield this.items.shift() as T;
          continue;
        }
        if (this.stopped) {
          if (this.error) throw this.error;
          return;
        }
        await new Promise<void>((r) => (this.wake = r));
      }
    } finally {
      // `break` in the consumer lands here: end the stream and release what feeds it.
      this.stop();
    }
  }
}
