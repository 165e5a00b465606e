/**
 * Elastic-Job's `AverageAllocationJobShardingStrategy`, copied rule for rule so that users who
 * know it get the same answer: members sorted, each gets `floor(count / n)` consecutive items,
 * and the remainder goes one item each to the first members.
 * 8 items over [a, b, c] → a: 0 1 6, b: 2 3 7, c: 4 5.
 */

/**
 * Items per member for `shardCount` items over `members` (sorted here; duplicates ignored).
 * Every item appears exactly once; no members → no entries.
 */
export function averageAllocation(members: readonly string[], shardCount: number): Record<string, number[]> {
  const sorted = [...new Set(members)].sort();
  const out: Record<string, number[]> = {};
  if (sorted.length === 0) return out;
  const per = Math.floor(shardCount / sorted.length);
  sorted.forEach((m, i) => {
    out[m] = Array.from({ length: per }, (_, k) => i * per + k);
  });
  const remainder = shardCount % sorted.length;
  for (let i = 0; i < remainder; i++) out[sorted[i]!]!.push(per * sorted.length + i);
  return out;
}
