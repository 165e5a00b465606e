import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { analyzeCronLog } from '../support/cron-log.js';

describe('the cron log checker (test/support/cron-log.ts)', () => {
  test('cron log › counts completions per trigger and per (trigger, item), and reclaims', () => {
    const log = [
      'START once t0 w1 attempt=1',
      'END once t0 w1',
      'START shard t0 0 w1 attempt=1',
      'START shard t0 1 w2 attempt=1',
      'END shard t0 1 w2',
      'KILL w1',
      'START shard t0 0 w2 attempt=2',
      'END shard t0 0 w2',
    ].join('\n');
    const r = analyzeCronLog(log, 1, 2);
    assert.deepEqual(r.oncePerTrigger, [1]);
    assert.deepEqual([r.shardPairsCovered, r.shardPairs, r.maxShardCompletions, r.reclaims], [2, 2, 1, 1]);
    assert.deepEqual(r.overlaps, [], 'a killed worker is inside nothing');
  });

  test('cron log › flags two workers inside one trigger or one item at once, and missing or double runs', () => {
    const log = ['START once t0 w1 attempt=1', 'START once t0 w2 attempt=1', 'END once t0 w2', 'END once t0 w1', 'START shard t3 5 w1 attempt=1', 'START shard t4 5 w2 attempt=1'].join('\n');
    const r = analyzeCronLog(log, 2, 8);
    assert.equal(r.overlaps.length, 2);
    assert.match(r.overlaps[1]!, /w2 starts item 5 while w1 inside/);
    assert.deepEqual(r.oncePerTrigger, [2, 0]);
    assert.equal(r.shardPairsCovered, 0);
  });
});
