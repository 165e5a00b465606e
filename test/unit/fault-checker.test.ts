import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { checkHolds, checkWrites, silentGap } from '../faults/checker.js';

describe('fault campaign checker', () => {
  test('holds › a strict alternation has no overlap', () => {
    const r = checkHolds(['ENTER a 1 10', 'EXIT a 1', 'ENTER cur.1 1', 'EXIT cur.1 1', 'ENTER b 1 12', 'EXIT b 1'].join('\n'));
    assert.deepEqual([r.acquisitions, r.overlaps, r.overlapsWithoutLossReport, r.fencingViolations], [3, 0, 0, 0]);
  });

  test('holds › an overlap counts against the target unless the holder reported its loss first', () => {
    const silent = checkHolds(['ENTER a 1 10', 'ENTER cur.1 1', 'EXIT cur.1 1', 'EXIT a 1'].join('\n'));
    assert.deepEqual([silent.overlaps, silent.overlapsWithoutLossReport], [1, 1]);
    const reported = checkHolds(['ENTER a 1 10', 'LOSS a', 'ENTER cur.1 1', 'EXIT cur.1 1', 'EXIT a 1'].join('\n'));
    assert.deepEqual([reported.overlaps, reported.overlapsWithoutLossReport], [1, 0]);
  });

  test('holds › fencing tokens must rise across holders; LEAD/UNLEAD work the same', () => {
    const r = checkHolds(['LEAD a 1 20', 'UNLEAD a 1', 'LEAD b 1 15', 'UNLEAD b 1'].join('\n'), 'LEAD', 'UNLEAD');
    assert.equal(r.fencingViolations, 1);
  });

  test('writes › lost acknowledged writes and failed-but-applied writes are counted from the final history', () => {
    const r = checkWrites(['w1.1', 'w2.1', 'w1.3'], new Set(['w1.1', 'w1.2']), new Set(['w1.3', 'w2.2']), new Set(['w2.1']));
    assert.deepEqual([r.acknowledged, r.lostAcknowledged, r.failedButApplied, r.unknown], [2, 1, 1, 1]);
  });

  test('watch › coalesced versions are fine, going back or ending behind is a silent gap', () => {
    const ok = [{ type: 'current', version: 0 }, { type: 'data_changed', version: 3 }, { type: 'resync', version: 2 }, { type: 'data_changed', version: 4 }];
    assert.equal(silentGap(ok, 4), undefined);
    assert.match(silentGap([{ type: 'current', version: 5 }, { type: 'data_changed', version: 4 }], 5) ?? '', /went back/);
    assert.match(silentGap(ok, 9) ?? '', /ended on version 4/);
  });
});
