/** The benchmark's arithmetic: medians of per-round ratios and nearest-rank percentiles. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatTable, median, medianRatio, percentile } from '../../bench/stats.js';

test('median of odd and even counts, NaN when empty', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.ok(Number.isNaN(median([])));
});

test('percentile is nearest rank over ascending values', () => {
  const xs = Array.from({ length: 100 }, (_, i) => i + 1);
  assert.equal(percentile(xs, 50), 50);
  assert.equal(percentile(xs, 99), 99);
  assert.equal(percentile([7], 99), 7);
});

test('medianRatio pairs rounds by index before taking the median', () => {
  // Per-round ratios 1, 2, 0.1 → 1; the ratio of the medians would be 3 / 5 = 0.6.
  assert.equal(medianRatio([1, 10, 3], [1, 5, 30]), 1);
});

test('formatTable marks met and unmet goals', () => {
  const t = formatTable([{ measure: 'a', value: '1', goal: '≥ 1', met: true }, { measure: 'b', value: '0', goal: '≥ 1', met: false }, { measure: 'c', value: '2', goal: '' }]);
  assert.match(t, /\| a \| 1 \| ≥ 1 \| yes \|/);
  assert.match(t, /\| b \| 0 \| ≥ 1 \| no \|/);
  assert.match(t, /\| c \| 2 \|  \| {2}\|/);
});
