import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { averageAllocation } from '../../src/core/jobs/allocation.js';

describe('averageAllocation (Elastic-Job AverageAllocationJobShardingStrategy)', () => {
  test('allocation › the remainder goes one item each to the first sorted members', () => {
    assert.deepEqual(averageAllocation(['c', 'a', 'b'], 8), { a: [0, 1, 6], b: [2, 3, 7], c: [4, 5] });
    assert.deepEqual(averageAllocation(['a', 'b', 'c'], 9), { a: [0, 1, 2], b: [3, 4, 5], c: [6, 7, 8] });
    assert.deepEqual(averageAllocation(['a', 'b', 'c'], 2), { a: [0], b: [1], c: [] });
  });

  test('allocation › every item is assigned exactly once, whatever the members and count', () => {
    for (let members = 1; members <= 7; members++) {
      for (let count = 0; count <= 20; count++) {
        const ids = Array.from({ length: members }, (_, i) => `m${(i * 7) % members}`);
        const out = Object.values(averageAllocation(ids, count)).flat().sort((x, y) => x - y);
        assert.deepEqual(out, Array.from({ length: count }, (_, i) => i), `${members} members, ${count} items`);
      }
    }
  });

  test('allocation › no members, no entries; duplicates count once', () => {
    assert.deepEqual(averageAllocation([], 5), {});
    assert.deepEqual(averageAllocation(['a', 'a'], 2), { a: [0, 1] });
  });
});
