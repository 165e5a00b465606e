/**
 * The frame MAC of the internal channel (src/core/cluster/frames.ts `FrameMac`) is made from
 * padded key blocks computed once per connection and one-shot hashes; it must be byte for byte
 * the HMAC-SHA256 that `createHmac` makes over (direction, 8-byte counter, payload), which is the
 * wire format peers of earlier versions check. Compared here over keys of every length class,
 * payload lengths around SHA-256's block and padding boundaries, multi-byte UTF-8, and counters
 * past 2^32; and a frame altered in any way does not open.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import { connectionKey, FrameMac, seal } from '../../src/core/cluster/frames.js';
import { secretKey } from '../../src/core/cluster/channel.js';

/** The frame as the channel made it before FrameMac: createHmac over the head and the payload. */
function reference(key: KeyObject, direction: number, counter: number, payload: string): Buffer {
  const head = Buffer.alloc(9);
  head[0] = direction;
  head.writeUInt32BE(Math.floor(counter / 2 ** 32), 1);
  head.writeUInt32BE(counter >>> 0, 5);
  const body = Buffer.from(payload, 'utf8');
  return Buffer.concat([createHmac('sha256', key).update(head).update(body).digest(), body]);
}

const keys: [string, KeyObject][] = [
  ['a connection key (64 hex characters, one block)', connectionKey(secretKey('frame-mac-secret-0123456789abcdef'), 'gw-a', 'ab'.repeat(12), 'cd'.repeat(16))],
  ['a short key', createSecretKey(randomBytes(7))],
  ['a key of 63 bytes', createSecretKey(randomBytes(63))],
  ['a key longer than a block (hashed first)', createSecretKey(randomBytes(100))],
];
const lengths = [0, 1, 22, 23, 54, 55, 56, 63, 64, 65, 118, 119, 120, 127, 128, 1000, 70_000];
const counters = [0, 1, 2, 255, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 5, 2 ** 53 - 1];

test('FrameMac seals exactly the bytes createHmac made, for every key, length and counter', () => {
  let n = 0;
  for (const [what, key] of keys) {
    const mac = new FrameMac(key);
    for (const len of lengths) {
      const payload = `C${len} ${'x'.repeat(len)}`;
      for (const counter of counters) {
        for (const direction of [0, 1]) {
          const want = reference(key, direction, counter, payload);
          assert.deepEqual(mac.seal(direction, counter, payload), want, `${what}, ${len} bytes, counter ${counter}, direction ${direction}`);
          assert.deepEqual(mac.open(direction, counter, want), want.subarray(32));
          n++;
        }
      }
    }
    // Multi-byte UTF-8: the MAC covers the encoded bytes.
    const utf = 'R7 {"ok":"zkgate ✓ — 節點 🦓"}';
    assert.deepEqual(mac.seal(1, 3, utf), reference(key, 1, 3, utf), `${what}, UTF-8`);
    // The test peers' helper seals the same way, from a key or a FrameMac.
    assert.deepEqual(seal(key, 0, 9, utf), reference(key, 0, 9, utf));
    assert.deepEqual(seal(mac, 0, 9, utf), reference(key, 0, 9, utf));
  }
  assert.equal(n, keys.length * lengths.length * counters.length * 2);
});

test('a frame altered in any byte, or opened with another counter, direction or key, does not open', () => {
  const [, key] = keys[0] as [string, KeyObject];
  const mac = new FrameMac(key);
  const frame = mac.seal(0, 41, 'C41 {"op":"leases.keepAlive"}');
  assert.ok(mac.open(0, 41, frame));
  for (let i = 0; i < frame.length; i++) {
    const bad = Buffer.from(frame);
    bad[i] = (bad[i] as number) ^ 0x01;
    assert.equal(mac.open(0, 41, bad), null, `byte ${i} flipped`);
  }
  assert.equal(mac.open(0, 42, frame), null, 'next counter');
  assert.equal(mac.open(0, 41 + 2 ** 32, frame), null, "the counter's high word");
  assert.equal(mac.open(1, 41, frame), null, 'other direction');
  assert.equal(new FrameMac(keys[1]?.[1] as KeyObject).open(0, 41, frame), null, 'other key');
  assert.equal(mac.open(0, 41, frame.subarray(0, frame.length - 1)), null, 'cut short');
  assert.equal(mac.open(0, 41, frame.subarray(0, 32)), null, 'a MAC without a payload');
});
