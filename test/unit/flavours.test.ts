import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { curatorFlavour, curatorSortKey, kazooFlavour } from '../../src/core/index.js';

describe('lock flavours (rules from test/peers/README.md)', () => {
  test('curator › sorts ALL children by the text after the last marker, whole name when absent', () => {
    assert.equal(curatorSortKey('_c_1a-lock-0000000003', 'lock-'), '0000000003');
    assert.equal(curatorSortKey('x-lock-lock-0000000001', 'lock-'), '0000000001');
    assert.equal(curatorSortKey('150c__lock__0000000001', 'lock-'), '150c__lock__0000000001');
    const order = curatorFlavour('lock-').order([
      '150c66686ddf4a8bab78f5865553cb45__lock__0000000001',
      '_c_b-lock-0000000004',
      '_c_a-lock-0000000003',
      'plain',
    ]);
    // Curator quirk: kazoo-named nodes compare by their whole name, after every sequence.
    assert.deepEqual(order, ['_c_a-lock-0000000003', '_c_b-lock-0000000004', '150c66686ddf4a8bab78f5865553cb45__lock__0000000001', 'plain']);
  });

  test('curator › latch flavour uses latch- and the names look like LeaderLatch nodes', () => {
    const f = curatorFlavour('latch-');
    assert.match(f.newPrefix(), /^_c_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}-latch-$/);
    assert.deepEqual(f.order(['_c_z-latch-0000000002', '_c_y-latch-0000000001']), ['_c_y-latch-0000000001', '_c_z-latch-0000000002']);
    assert.match(curatorFlavour('lock-').newPrefix(), /-lock-$/);
  });

  test('curator › the sort is stable for equal keys', () => {
    assert.deepEqual(curatorFlavour('lock-').order(['b-lock-0000000001', 'a-lock-0000000001']), ['b-lock-0000000001', 'a-lock-0000000001']);
  });

  test('kazoo › only __lock__<seq> names count, ordered by the sequence string; the uuid never matters', () => {
    assert.match(kazooFlavour.newPrefix(), /^[0-9a-f]{32}__lock__$/);
    const order = kazooFlavour.order([
      'ffff__lock__0000000002',
      '_c_a-lock-0000000000',
      'aaaa__lock__0000000003',
      '0000__rlock__0000000001',
      'bbbb__lock__0000000001',
      'cccc__lock__-000000001x',
    ]);
    assert.deepEqual(order, ['bbbb__lock__0000000001', 'ffff__lock__0000000002', 'aaaa__lock__0000000003']);
  });
});
