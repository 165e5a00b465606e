/**
 * A forwarded facade call finds a lazy abort (a REST lock acquire's, src/api/rest/request-signal.ts)
 * as it finds an AbortSignal: the call may wait, so it is stopped by a handoff and its caller's
 * going away reaches the owner (src/core/cluster/cluster.ts `invoke` and `forward`).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decode, encode, findAbort, findSignal, stoppedByHandoff, withSignal, withWaitLeft } from '../../src/core/cluster/codec.js';
import { LazySignal, signalOf } from '../../src/core/recipes/wake.js';

class Lazy extends LazySignal {
  made = 0;
  private ac: AbortController | undefined;
  throwIfAborted(): void {
    this.ac?.signal.throwIfAborted();
  }
  /** The caller goes away (as a closed exchange). */
  abort(reason: Error): void {
    void this.signal;
    this.ac?.abort(reason);
  }
  get signal(): AbortSignal {
    if (!this.ac) {
      this.made++;
      this.ac = new AbortController();
    }
    return this.ac.signal;
  }
}

test('cluster codec › a lazy abort is found, replaced and encoded like an AbortSignal', () => {
  const lazy = new Lazy();
  const args = ['/lock', 'lease-1', { waitMs: 1000, signal: lazy }];
  const found = findSignal(args);
  assert.ok(found instanceof AbortSignal, 'found');
  assert.equal(found, lazy.signal);
  assert.equal(lazy.made, 1, 'made once');
  const other = new AbortController().signal;
  const replaced = withSignal(args, found, other);
  assert.equal((replaced[2] as { signal: unknown }).signal, other, 'replaced by the call-wide signal');
  assert.equal((args[2] as { signal: unknown }).signal, lazy, 'the original args unchanged');
  assert.deepEqual(encode(args), ['/lock', 'lease-1', { waitMs: 1000, signal: { $s: 1 } }]);
  const owner = new AbortController().signal;
  const decoded = decode(encode(args), { signal: owner, lease: () => assert.fail('no lease') }) as unknown[];
  assert.equal((decoded[2] as { signal: unknown }).signal, owner, 'the owner side gets its own signal');
  assert.equal(signalOf(lazy), lazy.signal);
});

test('cluster codec › withWaitLeft lowers the waitMs of the options carrying a signal, and only those', () => {
  const lazy = new Lazy();
  const plain = new AbortController().signal;
  const args = ['/lock', 'lease-1', { waitMs: 1000, signal: lazy, data: 'x' }, { waitMs: 1000 }, [{ after: 3, waitMs: 500, signal: plain }]];
  const since = Date.now() - 400;
  const left = withWaitLeft(args, since) as typeof args;
  const opts = left[2] as { waitMs: number; signal: unknown; data: string };
  assert.ok(opts.waitMs <= 600 && opts.waitMs >= 500, `1000 less the 400 ms spent: ${opts.waitMs}`);
  assert.equal(opts.signal, lazy, 'the signal itself kept');
  assert.equal(opts.data, 'x');
  assert.deepEqual(left[3], { waitMs: 1000 }, 'no signal: not a wait, left alone');
  assert.ok((left[4] as unknown as [{ waitMs: number }])[0].waitMs <= 100, 'nested options too');
  assert.equal((withWaitLeft([{ waitMs: 300, signal: plain }], Date.now() - 1000)[0] as { waitMs: number }).waitMs, 0, 'never below 0');
  assert.equal(lazy.made, 0, 'the lazy signal is not made');
  assert.equal((args[2] as { waitMs: number }).waitMs, 1000, 'the arguments themselves are not changed');
});

test('cluster codec › a lazy abort made stoppable by a handoff stays lazy until something listens', () => {
  // A REST lock acquire through the cluster's facade: forwarded, or holding at once, it only checks.
  const lazy = new Lazy();
  const handoff = new AbortController();
  const args = ['/lock', 'lease-1', { waitMs: 1000, signal: lazy }];
  const found = findAbort(args);
  assert.equal(found, lazy, 'found as it is');
  const stoppable = stoppedByHandoff(lazy, handoff.signal);
  assert.ok(stoppable instanceof LazySignal, 'still lazy');
  const replaced = withSignal(args, lazy, stoppable);
  assert.equal((replaced[2] as { signal: unknown }).signal, stoppable, 'replaced');
  stoppable.throwIfAborted();
  assert.equal(lazy.made, 0, 'checking makes no signal');
  // Waiting: the signal is made, and follows both.
  const signal = signalOf(stoppable);
  assert.equal(lazy.made, 1);
  assert.equal(signalOf(stoppable), signal, 'made once');
  assert.equal(signal.aborted, false);
  handoff.abort(new Error('handing off'));
  assert.equal(signal.aborted, true, 'a handoff stops it');
  // Checked before any signal is made: the handoff shows, and so does the caller going away.
  assert.throws(() => stoppedByHandoff(new Lazy(), handoff.signal).throwIfAborted(), /handing off/);
  const gone = new Lazy();
  const quiet = stoppedByHandoff(gone, new AbortController().signal);
  gone.abort(new Error('client gone'));
  assert.throws(() => quiet.throwIfAborted(), /client gone/);
  assert.equal(signalOf(quiet).aborted, true);
  // A plain AbortSignal (gRPC, WebSocket) gets the combined signal at once, as before.
  const plain = new AbortController();
  const combined = stoppedByHandoff(plain.signal, new AbortController().signal);
  assert.ok(combined instanceof AbortSignal);
  plain.abort(new Error('deadline'));
  assert.equal(combined.aborted, true);
});

