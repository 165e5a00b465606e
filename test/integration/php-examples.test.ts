/**
 * The PHP examples (plain PHP + php-curl) against a real gateway: seed 000's leader-election
 * worker (three workers, the leader SIGKILLed, a new leader within the lease TTL) and a cron-style
 * lock around a critical section.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, type ChildProcess } from 'node:child_process';
import { spawnClean } from '../../src/zk/index.js';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectFile } from '../../src/project-files.js';
import { checkOverlaps } from '../support/peers.js';
import { eventually, uniquePath, zkAndGateway } from '../support/test-gateway.js';

const TTL_MS = 3000;

interface Worker {
  readonly name: string;
  readonly proc: ChildProcess;
  readonly lines: string[];
}

describe('PHP examples (php-cli + php-curl)', () => {
  const env = zkAndGateway();

  test('php › three leader-workers: one leads; SIGKILL it and another leads within the lease TTL', async (t) => {
    const election = uniquePath('cluster');
    const workers: Worker[] = ['w1', 'w2', 'w3'].map((name) => {
      const proc = spawnClean('php', [projectFile('examples/php/leader-worker.php')], {
        env: { ...process.env, ZKGATE_URL: env.g.base, WORKER: name, ELECTION: election, TTL_MS: String(TTL_MS), TICK_MS: '300' },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const lines: string[] = [];
      proc.stdout?.on('data', (b: Buffer) => lines.push(...b.toString().split('\n').filter(Boolean)));
      return { name, proc, lines };
    });
    try {
      const leaderOf = async (): Promise<string | null> =>
        ((await env.g.rest.json('GET', `/v1/elections${election}`)).body as { leader: { value: string } | null }).leader?.value ?? null;
      const first = await eventually(leaderOf, 10_000, 'a first leader');
      const leading = (w: Worker): boolean => w.lines.some((l) => /I'm the leader|I'm the new leader/.test(l));
      await eventually(() => workers.filter((w) => w.lines.includes('Working')).length === 2, 10_000, 'two workers working');
      assert.deepEqual(workers.filter(leading).map((w) => w.name), [first], 'exactly one worker says it leads');
      const old = workers.find((w) => w.name === first) as Worker;
      old.proc.kill('SIGKILL');
      const t0 = Date.now();
      const next = await eventually(async () => {
        const l = await leaderOf();
        return l && l !== first ? l : null;
      }, TTL_MS + 5000, 'a new leader');
      const took = Date.now() - t0;
      const heir = workers.find((w) => w.name === next) as Worker;
      await eventually(() => heir.lines.some((l) => l.startsWith("I'm the new leader!")), 3000, 'the heir to say so');
      t.diagnostic(`leader ${first} killed; ${next} led ${took} ms later (lease TTL ${TTL_MS} ms)`);
      assert.ok(took <= TTL_MS + 1500, `new leader after ${took} ms`);
      assert.deepEqual(workers.filter((w) => w !== old && leading(w)).map((w) => w.name), [next], 'only the heir claims leadership');
    } finally {
      for (const w of workers) if (w.proc.exitCode === null && w.proc.signalCode === null) w.proc.kill('SIGKILL');
    }
  });

  test('php › lock.php runs one critical section at a time, and skips a run while the lock is held', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'zkgate-php-'));
    const lockPath = uniquePath('cron');
    const php = (runId: string, waitMs: number): Promise<{ code: number; out: string }> =>
      new Promise((resolve) => {
        execFile(
          'php',
          [projectFile('examples/php/lock.php'), lockPath, String(waitMs)],
          { env: { ...process.env, ZKGATE_URL: env.g.base, RUN_ID: runId, LOG: join(dir, 'log'), HOLD_MS: '250' } },
          (err, stdout) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout }),
        );
      });
    try {
      const runs = await Promise.all(['cron-1', 'cron-2', 'cron-3'].map((id) => php(id, 10_000)));
      assert.deepEqual(runs.map((r) => r.code), [0, 0, 0], runs.map((r) => r.out).join('\n'));
      const report = checkOverlaps(readFileSync(join(dir, 'log'), 'utf8'));
      t.diagnostic(`lock.php: rounds ${JSON.stringify(report.rounds)}, overlaps ${report.overlaps}`);
      assert.deepEqual(report.problems, []);
      assert.equal(Object.keys(report.rounds).length, 3);
      const tokens = readFileSync(join(dir, 'log'), 'utf8').split('\n').filter((l) => l.startsWith('ENTER')).map((l) => BigInt(l.split(' ')[2] as string));
      assert.ok(tokens.every((x, i) => i === 0 || x > (tokens[i - 1] as bigint)), 'fencing tokens rise run after run');
      const holder = ((await env.g.rest.json('POST', '/v1/leases', { ttlMs: 30_000 })).body as { id: string }).id;
      assert.equal((await env.g.rest.json('POST', `/v1/locks${lockPath}`, { leaseId: holder, data: 'manual' })).status, 200);
      const skipped = await php('cron-4', 0);
      assert.equal(skipped.code, 3);
      assert.match(skipped.out, /^busy: /m);
      await env.g.rest.json('DELETE', `/v1/leases/${holder}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
