import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { QueuedIterator, ZkgateError } from '../../src/core/index.js';

describe('queued iterator', () => {
  test('yields pushed items in order, then ends after a plain stop', async () => {
    const q = new QueuedIterator<number>(10);
    q.push(1);
    q.push(2);
    setTimeout(() => {
      q.push(3);
      q.stop();
    }, 5);
    const got: number[] = [];
    for await (const v of q) got.push(v);
    assert.deepEqual(got, [1, 2, 3]);
    assert.equal(await q.closed, undefined);
  });

  test('overflow ends the stream with SLOW_CONSUMER instead of buffering', async () => {
    const q = new QueuedIterator<number>(3, 'watch /x');
    for (let i = 0; i < 3; i++) assert.equal(q.push(i), true);
    assert.equal(q.push(3), false);
    assert.equal(q.pending, 0, 'queued items are dropped');
    const err = await q.closed;
    assert.ok(err instanceof ZkgateError && err.code === 'SLOW_CONSUMER');
    assert.match(err.message, /watch \/x/);
    await assert.rejects(q[Symbol.asyncIterator]().next(), (e: unknown) => e === err);
  });

  test('break cleans up in finally', async () => {
    const q = new QueuedIterator<string>(10);
    let cleaned: Error | undefined | 'no' = 'no';
    q.onStop((e) => (cleaned = e));
    q.push('a');
    q.push('b');
    for await (const v of q) {
      assert.equal(v, 'a');
      break;
    }
    assert.equal(cleaned, undefined);
    assert.equal(q.isStopped, true);
    assert.equal(q.push('c'), false);
  });

  test('stop(err) wakes a waiting consumer with the error', async () => {
    const q = new QueuedIterator<number>(10);
    const next = q[Symbol.asyncIterator]().next();
    q.stop(new Error('boom'));
    await assert.rejects(next, /boom/);
  });

  test('a second consumer is refused', () => {
    const q = new QueuedIterator<number>(1);
    q[Symbol.asyncIterator]();
    assert.throws(() => q[Symbol.asyncIterator](), TypeError);
  });
});

describe('queued iterator › push mode (consume)', () => {
  test('hands over what is queued, then each push at once; a false answer queues until resume()', () => {
    const q = new QueuedIterator<number>(3);
    q.push(1);
    const got: number[] = [];
    let ready = true;
    q.consume({
      take: (v) => {
        got.push(v);
        return ready;
      },
    });
    assert.deepEqual(got, [1]);
    q.push(2);
    assert.deepEqual(got, [1, 2], 'delivered within push');
    ready = false;
    q.push(3); // taken, then the consumer says wait
    q.push(4);
    q.push(5);
    assert.deepEqual(got, [1, 2, 3]);
    assert.equal(q.pending, 2);
    ready = true;
    q.resume();
    assert.deepEqual(got, [1, 2, 3, 4, 5]);
    assert.equal(q.pending, 0);
  });

  test('an item pushed while resume hands over the queue comes after what was queued', () => {
    const q = new QueuedIterator<number>(5);
    const got: number[] = [];
    let ready = false;
    q.consume({
      take: (v) => {
        got.push(v);
        // Taking 2 makes the producer push again, as a socket write could run a hub delivery.
        if (v === 2) q.push(9);
        return ready;
      },
    });
    q.push(1); // taken; the consumer says wait
    q.push(2);
    q.push(3);
    ready = true;
    q.resume();
    assert.deepEqual(got, [1, 2, 3, 9]);
    q.push(4);
    assert.deepEqual(got, [1, 2, 3, 9, 4], 'delivered within push again once the queue is empty');
    assert.equal(q.pending, 0);
  });

  test('a consumer that stays busy is cut with SLOW_CONSUMER past maxPending, as an iterating one', async () => {
    const q = new QueuedIterator<number>(2, 'watch /p');
    q.consume({ take: () => false });
    assert.equal(q.push(0), true); // taken; the consumer is now busy
    assert.equal(q.push(1), true);
    assert.equal(q.push(2), true);
    assert.equal(q.push(3), false);
    const err = await q.closed;
    assert.ok(err instanceof ZkgateError && err.code === 'SLOW_CONSUMER');
    q.resume(); // nothing left to hand over
    assert.equal(q.pending, 0);
  });

  test('one consumer only: consume after iteration (or twice) is refused', () => {
    const q = new QueuedIterator<number>(1);
    q.consume({ take: () => true });
    assert.throws(() => q.consume({ take: () => true }), TypeError);
    assert.throws(() => q[Symbol.asyncIterator](), TypeError);
  });
});
