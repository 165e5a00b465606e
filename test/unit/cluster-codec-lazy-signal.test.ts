/**
 * A forwarded facade call finds a lazy abort (a REST lock acquire's, src/api/rest/request-signal.ts)
 * as it finds an AbortSignal: the call may wait, so it is stopped by a handoff and its caller's
 * going away reaches the owner (src/core/cluster/cluster.ts `invoke` and `forward`).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decode, encode, findSignal, withSignal } from '../../src/core/cluster/codec.js';
import { LazySignal, signalOf } from '../../src/core/recipes/wake.js';

class Lazy extends LazySignal {
  made = 0;
  private ac: AbortController | undefined;
  throwIfAborted(): void {
    this.ac?.signal.throwIfAborted();
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
