/** Pure helpers of the benchmark: medians, percentiles and the result table. */

/** The median of `xs` (mean of the middle two for an even count); NaN when empty. */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

/** The `p`-th percentile (0–100, nearest rank) of ascending `sorted`; NaN when empty. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] as number;
}

/** Median of the per-round ratios `num[i] / den[i]` (rounds are paired by index). */
export function medianRatio(num: readonly number[], den: readonly number[]): number {
  return median(num.map((n, i) => n / (den[i] as number)));
}

/** One line of the result table. */
export interface ResultRow {
  readonly measure: string;
  /** The figure as printed (ratios to 2 decimals, with absolute values in brackets). */
  readonly value: string;
  readonly goal: string;
  /** Whether the goal is met; undefined when there is no goal or no figure. */
  readonly met?: boolean;
}

/** The rows as a Markdown table (the same text goes to the terminal and into docs/benchmarks.md). */
export function formatTable(rows: readonly ResultRow[]): string {
  const lines = ['| measure | zkgate | goal | met |', '|---|---|---|---|'];
  for (const r of rows) lines.push(`| ${r.measure} | ${r.value} | ${r.goal} | ${r.met === undefined ? '' : r.met ? 'yes' : 'no'} |`);
  return lines.join('\n');
}

/** `x` with two decimals, or `n/a` for NaN. */
export function f2(x: number): string {
  return Number.isFinite(x) ? x.toFixed(2) : 'n/a';
}
