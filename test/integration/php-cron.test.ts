/**
 * Seed 003's distributed cron with the PHP worker (examples/php/cron-worker.php, plain PHP +
 * php-curl): three workers fire every second over 60 triggers; one is SIGKILLed while it runs
 * something and a fourth joins midway. From their shared O_APPEND log: every run-once trigger
 * completed exactly once, every (trigger, shard) of 8 shards completed at least once, and never
 * two workers inside one trigger or one shard item at the same time. The counts are printed.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectFile } from '../../src/project-files.js';
import { spawnClean } from '../../src/zk/index.js';
import { analyzeCronLog } from '../support/cron-log.js';
import { eventually, zkAndGateway } from '../support/test-gateway.js';

const TRIGGERS = 60;
const SHARDS = 8;
const INTERVAL_MS = 1000;
const TTL_MS = 3000;
const CATCHUP = 6;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('PHP cron worker (seed 003): run once, shards, failover', () => {
  const env = zkAndGateway({ tenants: [{ name: 'default', sessionTimeoutMs: 15_000 }] });

  test('php cron › 3 workers, 8 shards, 60 triggers, one SIGKILLed mid-run and one added: each trigger once, every (trigger, shard) covered, never two at once', { timeout: 150_000 }, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'zkgate-php-cron-'));
    const log = join(dir, 'log');
    writeFileSync(log, '');
    const suffix = Math.random().toString(36).slice(2, 8);
    const t0 = Date.now() + 3000; // time for PHP to start and join
    const procs = new Map<string, ChildProcess>();
    const start = (name: string): void => {
      const p = spawnClean('php', [projectFile('examples/php/cron-worker.php')], {
        env: {
          ...process.env,
          ZKGATE_URL: env.g.base,
          WORKER: name,
          ONCE_JOB: `report-${suffix}`,
          SHARD_JOB: `sms-${suffix}`,
          SHARDS: String(SHARDS),
          INTERVAL_MS: String(INTERVAL_MS),
          T0_MS: String(t0),
          TRIGGERS: String(TRIGGERS),
          CATCHUP: String(CATCHUP),
          TTL_MS: String(TTL_MS),
          WORK_MS: '60',
          LOG: log,
        },
        stdio: ['ignore', 'ignore', 'inherit'],
      });
      procs.set(name, p);
    };
    const report = () => analyzeCronLog(readFileSync(log, 'utf8'), TRIGGERS, SHARDS);
    try {
      for (const w of ['w1', 'w2', 'w3']) start(w);
      // Midway, kill w1 while it is inside a run (its last line a START), so a run is orphaned.
      await sleep(t0 + 20 * INTERVAL_MS - Date.now());
      await eventually(() => /START [^\n]* w1 attempt=\d+\n?$/.test(readFileSync(log, 'utf8').split('\n').filter((l) => / w1( |$)/.test(l)).slice(-1)[0] + '\n'), 15_000, 'w1 inside a run');
      procs.get('w1')!.kill('SIGKILL');
      const killedInside = readFileSync(log, 'utf8').split('\n').filter((l) => / w1( |$)/.test(l)).slice(-1)[0] ?? '';
      appendFileSync(log, 'KILL w1\n');
      await sleep(t0 + 30 * INTERVAL_MS - Date.now());
      start('w4');
      await eventually(
        () => {
          const r = report();
          return r.oncePerTrigger.every((c) => c > 0) && r.shardPairsCovered === r.shardPairs;
        },
        t0 + (TRIGGERS + CATCHUP + 15) * INTERVAL_MS - Date.now(),
        'every trigger and every (trigger, shard) done',
      );
      await sleep(INTERVAL_MS); // a double run would show up here
      const r = report();
      const once = r.oncePerTrigger;
      const counts =
        `php cron: ${TRIGGERS} triggers × ${SHARDS} shards, workers w1-w3, w1 SIGKILLed inside "${killedInside.trim()}" at trigger 20, w4 added at 30; ` +
        `run-once: completed per trigger min ${Math.min(...once)} max ${Math.max(...once)}, ${r.onceStarts} started; ` +
        `shards: ${r.shardPairsCovered}/${r.shardPairs} (trigger, shard) covered, max ${r.maxShardCompletions} completion per pair, ${r.shardStarts} started; ` +
        `${r.reclaims} orphaned runs reclaimed; overlaps ${r.overlaps.length}; completions per worker ${JSON.stringify(r.perWorker)}`;
      t.diagnostic(counts);
      console.log(counts);
      assert.deepEqual(r.overlaps, [], 'never two workers inside one trigger or one shard item at once');
      assert.deepEqual([Math.min(...once), Math.max(...once)], [1, 1], 'runs per trigger exactly 1');
      assert.equal(r.shardPairsCovered, r.shardPairs, 'every (trigger, shard) processed');
      assert.equal(r.maxShardCompletions, 1, 'a (trigger, shard) run is never completed twice');
      assert.ok(r.reclaims >= 1, "the run w1 was inside when killed was reclaimed by another worker");
      assert.ok((r.perWorker.w4 ?? 0) > 0, 'the added worker took its share');
    } finally {
      for (const p of procs.values()) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
