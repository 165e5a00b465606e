/**
 * The PHP queue and barrier examples (plain PHP + php-curl) against a real gateway: a producer
 * and three claim/ack workers, one SIGKILLed while it holds a claim (its item is delivered again).
 */
import { beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { projectFile } from '../../src/project-files.js';
import { spawnClean } from '../../src/zk/index.js';
import { eventually, uniquePath, zkAndGateway } from '../support/test-gateway.js';

const execAsync = promisify(execFile);
const TTL_MS = 2000;

describe('PHP queue and barrier examples (php-cli + php-curl)', () => {
  const env = zkAndGateway({ tenants: [{ name: 'default', sessionTimeoutMs: 8000 }] });
  // Each test starts with a connected session (on a loaded machine the first may start before it is).
  beforeEach(async () => void (await eventually(() => env.g.running.gateway.tenants.get('default').ready, 20_000, 'the session to be connected')));

  test('php › producer and three claim/ack workers: every item acked; a worker SIGKILLed mid-item has it redelivered', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'zkgate-php-queue-'));
    const log = join(dir, 'log');
    writeFileSync(log, '');
    const queue = uniquePath('mail');
    const phpEnv = (name: string, workMs: number): NodeJS.ProcessEnv => ({ ...process.env, ZKGATE_URL: env.g.base, WORKER: name, TTL_MS: String(TTL_MS), WORK_MS: String(workMs), LOG: log });
    const procs: ChildProcess[] = [];
    try {
      const produced = await execAsync('php', [projectFile('examples/php/queue-producer.php'), queue, '30', 'mail'], { env: phpEnv('producer', 0) });
      assert.equal(produced.stdout.split('\n').filter((l) => l.startsWith('PUT ')).length, 30);
      // The victim claims one item and "works" on it for a minute; it is killed before the ack.
      const victim = spawnClean('php', [projectFile('examples/php/queue-worker.php'), queue], { env: phpEnv('victim', 60_000), stdio: ['ignore', 'pipe', 'inherit'] });
      procs.push(victim);
      const claimed = await eventually(() => /^CLAIM victim (\S+)/m.exec(readFileSync(log, 'utf8'))?.[1], 15_000, 'the victim to claim an item');
      const exits = ['w1', 'w2'].map((name) => {
        const p = spawnClean('php', [projectFile('examples/php/queue-worker.php'), queue, String(TTL_MS * 2)], { env: phpEnv(name, 20), stdio: ['ignore', 'pipe', 'inherit'] });
        procs.push(p);
        return new Promise<number | null>((resolve) => p.on('exit', (code) => resolve(code)));
      });
      victim.kill('SIGKILL');
      assert.deepEqual(await Promise.all(exits), [0, 0], 'the workers stop once the queue stays empty');
      const lines = readFileSync(log, 'utf8').split('\n').filter(Boolean);
      const acked = new Set(lines.filter((l) => l.startsWith('ACK ')).map((l) => l.split(' ')[2]));
      const claimsOf = (data: string): string[] => lines.filter((l) => l.startsWith('CLAIM ') && l.split(' ')[2] === data).map((l) => l.split(' ')[1] as string);
      const perWorker = ['w1', 'w2'].map((w) => `${w} ${lines.filter((l) => l.startsWith(`ACK ${w} `)).length}`).join(', ');
      t.diagnostic(`php queue: 30 put, ${acked.size} acked (${perWorker}); victim claimed ${claimed}, redelivered to ${claimsOf(claimed).filter((w) => w !== 'victim').join(', ')}`);
      assert.equal(acked.size, 30, 'every item acked');
      assert.ok(!lines.some((l) => l.startsWith('ACK victim')), 'the victim never acked');
      assert.equal(claimsOf(claimed).length, 2, "the victim's item was claimed once more");
      const q = (await env.g.rest.json('GET', `/v1/queues${queue}`)).body as { length: number; claimed: number };
      assert.deepEqual([q.length, q.claimed], [0, 0]);
    } finally {
      for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('php › barrier.php: three double-barrier members enter together and leave together; a waiter passes when the barrier is removed', async (t) => {
    const path = uniquePath('batch');
    const started: { name: string; proc: ChildProcess; lines: string[]; exit: Promise<number | null> }[] = [];
    const log: string[] = [];
    try {
      for (const [i, name] of ['m1', 'm2', 'm3'].entries()) {
        if (i > 0) await new Promise((r) => setTimeout(r, 400));
        const proc = spawnClean('php', [projectFile('examples/php/barrier.php'), 'double', path, '3', String(100 + 200 * i)], {
          env: { ...process.env, ZKGATE_URL: env.g.base, WORKER: name, TTL_MS: String(TTL_MS), WAIT_MS: '20000' },
          stdio: ['ignore', 'pipe', 'inherit'],
        });
        log.push(`START ${name}`);
        const lines: string[] = [];
        proc.stdout?.on('data', (b: Buffer) => {
          for (const l of b.toString().split('\n').filter(Boolean)) {
            lines.push(l);
            log.push(l);
          }
        });
        started.push({ name, proc, lines, exit: new Promise((resolve) => proc.on('exit', (code) => resolve(code))) });
      }
      assert.deepEqual(await Promise.all(started.map((s) => s.exit)), [0, 0, 0], log.join('\n'));
      const at = (prefix: string): number[] => log.flatMap((l, i) => (l.startsWith(prefix) ? [i] : []));
      t.diagnostic(`php double barrier: ${at('ENTERED').length} entered, ${at('LEFT').length} left`);
      assert.ok(Math.max(...at('START')) < Math.min(...at('ENTERED')), `nobody entered before the last started:\n${log.join('\n')}`);
      assert.ok(Math.max(...at('LEAVING')) < Math.min(...at('LEFT')), `nobody left before the last was leaving:\n${log.join('\n')}`);
      const state = (await env.g.rest.json('GET', `/v1/double-barriers${path}`)).body as { ready: boolean; members: unknown[] };
      assert.deepEqual([state.ready, state.members], [false, []]);
      // The simple barrier: a waiter is held until the barrier is removed.
      const gate = uniquePath('gate');
      assert.equal((await env.g.rest.json('PUT', `/v1/barriers${gate}`)).status, 200);
      let out = '';
      const waiter = execAsync('php', [projectFile('examples/php/barrier.php'), 'wait', gate, '20000'], { env: { ...process.env, ZKGATE_URL: env.g.base } }).then((r) => (out = r.stdout));
      await new Promise((r) => setTimeout(r, 800));
      assert.equal(out, '', 'held while the barrier is set');
      assert.equal((await env.g.rest.json('DELETE', `/v1/barriers${gate}`)).status, 200);
      await waiter;
      assert.equal(out, 'PASSED\n');
    } finally {
      for (const s of started) if (s.proc.exitCode === null && s.proc.signalCode === null) s.proc.kill('SIGKILL');
    }
  });
});
