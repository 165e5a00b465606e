/**
 * Reads the shared log of the PHP cron workers (examples/php/cron-worker.php; one line per
 * write, appended with O_APPEND) and checks seed 003's promises: every run-once trigger
 * completed exactly once, every (trigger, shard item) completed at least once, and no two
 * workers inside the same run-once trigger or the same shard item at the same time. The test
 * appends `KILL <worker>` when it SIGKILLs one (a dead worker is inside nothing).
 */

export interface CronReport {
  /** Completions per run-once trigger: every one must be exactly 1. */
  readonly oncePerTrigger: readonly number[];
  /** Run-once attempts started (an attempt cut by a kill is reclaimed: one more). */
  readonly onceStarts: number;
  /** (trigger, item) pairs completed at least once, of triggers × shards. */
  readonly shardPairsCovered: number;
  readonly shardPairs: number;
  /** Most completions of one (trigger, item) (1: never run twice). */
  readonly maxShardCompletions: number;
  readonly shardStarts: number;
  /** Attempts above 1 (reclaims of orphaned runs). */
  readonly reclaims: number;
  /** Completions per worker, `w1=…` */
  readonly perWorker: Readonly<Record<string, number>>;
  /** Two workers inside one trigger or one item at once, as `line N: …`. */
  readonly overlaps: readonly string[];
}

/** Analyzes the log of `triggers` triggers over `shards` items. */
export function analyzeCronLog(text: string, triggers: number, shards: number): CronReport {
  const oncePerTrigger = new Array<number>(triggers).fill(0);
  const shardDone = new Map<string, number>();
  const inside = new Map<string, Set<string>>();
  const perWorker: Record<string, number> = {};
  const overlaps: string[] = [];
  let onceStarts = 0;
  let shardStarts = 0;
  let reclaims = 0;
  const lines = text.split('\n');
  lines.forEach((line, i) => {
    const f = line.split(' ');
    if (f[0] === 'KILL') {
      for (const set of inside.values()) set.delete(f[1]!);
      return;
    }
    if (f[0] !== 'START' && f[0] !== 'END') return;
    const once = f[1] === 'once';
    const t = Number(f[2]!.slice(1));
    const item = once ? -1 : Number(f[3]);
    const worker = once ? f[3]! : f[4]!;
    // Exclusion per run-once trigger, and per shard item across triggers (an item is one worker's at a time).
    const key = once ? `once t${t}` : `item ${item}`;
    let set = inside.get(key);
    if (!set) inside.set(key, (set = new Set()));
    if (f[0] === 'START') {
      const others = [...set].filter((w) => w !== worker);
      if (others.length > 0) overlaps.push(`line ${i + 1}: ${worker} starts ${key} while ${others.join(', ')} inside`);
      set.add(worker);
      if (once) onceStarts++;
      else shardStarts++;
      if (/attempt=(\d+)/.exec(line)?.[1] !== '1') reclaims++;
      return;
    }
    set.delete(worker);
    perWorker[worker] = (perWorker[worker] ?? 0) + 1;
    if (once) oncePerTrigger[t] = (oncePerTrigger[t] ?? 0) + 1;
    else shardDone.set(`${t} ${item}`, (shardDone.get(`${t} ${item}`) ?? 0) + 1);
  });
  let covered = 0;
  for (let t = 0; t < triggers; t++) for (let s = 0; s < shards; s++) if (shardDone.has(`${t} ${s}`)) covered++;
  return {
    oncePerTrigger,
    onceStarts,
    shardPairsCovered: covered,
    shardPairs: triggers * shards,
    maxShardCompletions: Math.max(0, ...shardDone.values()),
    shardStarts,
    reclaims,
    perWorker,
    overlaps,
  };
}
