import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeData, encodeData } from '../../src/api/json.js';
import { ZkgateError } from '../../src/core/index.js';
import { toZkError } from '../../src/zk/errors.js';
import { toZkgateError } from '../../src/core/errors.js';

describe('json data encodings', () => {
  test('utf8 and base64 round-trip', () => {
    assert.deepEqual(decodeData('héllo', 'utf8'), Buffer.from('héllo'));
    assert.deepEqual(decodeData('AAEC/w==', 'base64'), Buffer.from([0, 1, 2, 255]));
    assert.deepEqual(decodeData(undefined, undefined), Buffer.alloc(0));
  });
  test('bad base64 and unknown encodings are INVALID_ARGUMENT', () => {
    for (const [d, e] of [['AAE', 'base64'], ['!!!!', 'base64'], ['x', 'hex'], [5, 'utf8']] as const) {
      assert.throws(() => decodeData(d, e), (err: unknown) => err instanceof ZkgateError && err.code === 'INVALID_ARGUMENT');
    }
  });
  test('non-UTF-8 bytes answer base64 unless utf8 was demanded', () => {
    const bin = Buffer.from([0xff, 0xfe, 0x00]);
    assert.deepEqual(encodeData(bin), { data: bin.toString('base64'), encoding: 'base64' });
    assert.deepEqual(encodeData(Buffer.from('ok')), { data: 'ok', encoding: 'utf8' });
    assert.throws(() => encodeData(bin, 'utf8'), /not valid UTF-8/);
  });
});

describe('zookeeper error parsing', () => {
  test('native messages map to stable codes', () => {
    assert.equal(toZkError(new Error('-101 no node')).code, 'NO_NODE');
    assert.equal(toZkError(new Error('-110 node exists')).code, 'NODE_EXISTS');
    assert.equal(toZkError(new Error('-4 connection loss')).code, 'CONNECTION_LOSS');
    assert.equal(toZkError(new Error('fn: "a_get" args: "/,false" result: "ZINVALIDSTATE -9"')).code, 'INVALID_STATE');
    assert.equal(toZkError(new Error('weird')).code, 'SYSTEM_ERROR');
  });
  test('connection loss during a write says its outcome is unknown; during a read it claims no write', () => {
    const write = toZkgateError(toZkError(new Error('-4 connection loss'), '/a', 'write'));
    assert.equal(write.code, 'UNAVAILABLE');
    assert.deepEqual(write.details, { path: '/a', op: 'write', outcome: 'unknown' });
    assert.match(write.message, /^\/a: .*during a write: its outcome is unknown/);
    for (const rc of ['-4 connection loss', '-7 operation timeout']) {
      const read = toZkgateError(toZkError(new Error(rc), '/a', 'read'));
      assert.equal(read.code, 'UNAVAILABLE');
      assert.deepEqual(read.details, { path: '/a', op: 'read' });
      assert.doesNotMatch(read.message, /write|outcome/);
    }
    // Not tied to one request: whether anything was written is not known.
    const unknown = toZkgateError(toZkError(new Error('-4 connection loss'), '/a'));
    assert.equal(unknown.details.outcome, 'unknown');
    assert.equal(unknown.details.op, undefined);
  });
});
