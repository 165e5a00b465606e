/**
 * JoinedWaits (src/core/recipes/joined-wait.ts): the rules a joined recipe wait follows, with a
 * work whose end the test decides (the recipes' own tests cover it against ZooKeeper: locks,
 * semaphores, rw-locks, elections).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { JoinedWaits, type Joined } from '../../src/core/recipes/joined-wait.js';
import { signalOf } from '../../src/core/recipes/wake.js';

const EXPIRED = 'expired';

/** A work the test ends: `finish(v)`, or it rejects with its signal's reason once every caller gave up. */
function controlledWork(): { start: (j: Joined) => Promise<string>; joined: () => Joined; finish: (v: string) => void; starts: () => number } {
  let starts = 0;
  let last: Joined | undefined;
  let finish: (v: string) => void = () => undefined;
  return {
    start: (j) => {
      starts++;
      last = j;
      return new Promise<string>((resolve, reject) => {
        finish = resolve;
        const s = signalOf(j.abort);
        s.addEventListener('abort', () => setTimeout(() => reject(s.reason as Error), 20), { once: true }); // "deleting its node" takes a moment
      });
    },
    joined: () => last as Joined,
    finish: (v) => finish(v),
    starts: () => starts,
  };
}

const later = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('joined waits', () => {
  test('a second call of the same owner and key joins the running work; both get its outcome; the next call starts afresh', async () => {
    const waits = new JoinedWaits<string>(EXPIRED);
    const owner = {};
    const w = controlledWork();
    const a = waits.wait(owner, 'k', Date.now() + 5000, undefined, w.start, 'x');
    const b = waits.wait(owner, 'k', Date.now() + 5000, undefined, w.start);
    assert.equal(waits.running(owner, 'k'), 'x');
    assert.equal(waits.running({}, 'k'), undefined, 'another owner has no wait there');
    w.finish('held');
    assert.deepEqual(await Promise.all([a, b]), ['held', 'held']);
    assert.equal(w.starts(), 1);
    assert.equal(waits.running(owner, 'k'), undefined);
    const c = waits.wait(owner, 'k', Date.now() + 5000, undefined, w.start);
    assert.equal(w.starts(), 2);
    w.finish('again');
    assert.equal(await c, 'again');
  });

  test('a later deadline extends the work; an earlier caller is answered alone at its own deadline', async () => {
    const waits = new JoinedWaits<string>(EXPIRED);
    const owner = {};
    const w = controlledWork();
    const t0 = Date.now();
    const short = waits.wait(owner, 'k', t0 + 50, undefined, w.start);
    assert.equal(w.joined().until(), t0 + 50);
    const long = waits.wait(owner, 'k', t0 + 5000, undefined, w.start);
    assert.equal(w.joined().until(), t0 + 5000);
    assert.equal(await short, EXPIRED);
    assert.ok(Date.now() - t0 >= 45);
    assert.equal(signalOf(w.joined().abort).aborted, false, 'the work goes on for the other caller');
    w.finish('held');
    assert.equal(await long, 'held');
  });

  test('a caller whose client goes away leaves alone; the last one to leave gives the work up and is answered once it ended', async () => {
    const waits = new JoinedWaits<string>(EXPIRED);
    const owner = {};
    const w = controlledWork();
    const t0 = Date.now();
    const first = new AbortController();
    const a = waits.wait(owner, 'k', t0 + 150, first.signal, w.start);
    const retry = new AbortController();
    const b = waits.wait(owner, 'k', t0 + 5000, retry.signal, w.start);
    retry.abort(new Error('retry gone'));
    await assert.rejects(b, /retry gone/);
    assert.equal(signalOf(w.joined().abort).aborted, false, 'the first caller still waits');
    // The first caller's deadline passes: it is the last, so the work is given up first.
    assert.equal(await a, EXPIRED);
    assert.equal(signalOf(w.joined().abort).aborted, true);
    assert.equal(waits.running(owner, 'k'), undefined, 'the given-up work has ended');
  });

  test('a lone caller aborting gives the work up and gets its own reason once the work ended', async () => {
    const waits = new JoinedWaits<string>(EXPIRED);
    const owner = {};
    const w = controlledWork();
    const ac = new AbortController();
    const a = waits.wait(owner, 'k', Date.now() + 5000, ac.signal, w.start);
    signalOf(w.joined().abort); // the work waits: it follows the callers from now on
    ac.abort(new Error('client gone'));
    await assert.rejects(a, /client gone/);
    assert.equal(waits.running(owner, 'k'), undefined);
    await later(0);
  });
});
