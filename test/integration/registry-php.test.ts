/**
 * The registry's PHP examples (php-cli + php-curl) against a real gateway: two providers
 * register, a consumer follows the set with long-polls and calls both round-robin; one provider
 * SIGKILLed disappears within its lease TTL, the other stops cleanly and deregisters.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { spawnClean } from '../../src/zk/index.js';
import { projectFile } from '../../src/project-files.js';
import { eventually, uniquePath, zkAndGateway } from '../support/test-gateway.js';

const TTL_MS = 2000;

interface Proc {
  readonly proc: ChildProcess;
  readonly lines: string[];
}

describe('registry PHP examples (php-cli + php-curl)', () => {
  const env = zkAndGateway();

  test('php › providers register, the consumer follows and balances; a SIGKILLed provider leaves within its TTL', async (t) => {
    const base = uniquePath('php-reg');
    const php = (script: string, args: string[]): Proc => {
      const proc = spawnClean('php', [projectFile(`examples/php/${script}`), ...args], {
        env: { ...process.env, ZKGATE_URL: env.g.base, BASE: base, TTL_MS: String(TTL_MS), TICK_MS: '300' },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const lines: string[] = [];
      proc.stdout?.on('data', (b: Buffer) => lines.push(...b.toString().split('\n').filter(Boolean)));
      return { proc, lines };
    };
    const p1 = php('service-provider.php', ['orders', '10.9.0.1', '8081', 'p1']);
    const p2 = php('service-provider.php', ['orders', '10.9.0.2', '8082', 'p2']);
    let consumer: Proc | undefined;
    try {
      await eventually(() => p1.lines.includes('Registered p1 http://10.9.0.1:8081') && p2.lines.includes('Registered p2 http://10.9.0.2:8082'), 20_000, 'both providers');
      consumer = php('service-consumer.php', ['orders', '200']);
      const c = consumer;
      await eventually(() => c.lines.includes('Instances 2: p1,p2'), 20_000, 'the consumer to see both');
      await eventually(() => c.lines.includes('Call p1 http://10.9.0.1:8081') && c.lines.includes('Call p2 http://10.9.0.2:8082'), 20_000, 'calls to both');

      p1.proc.kill('SIGKILL');
      const killed = Date.now();
      await eventually(() => c.lines.includes('Instances 1: p2'), TTL_MS + 15_000, 'the consumer to drop p1');
      const goneMs = Date.now() - killed;
      p2.proc.kill('SIGTERM');
      await eventually(() => p2.lines.includes('Deregistered p2'), 20_000, 'p2 to deregister');
      await eventually(() => c.lines.includes('Instances 0: ') && c.lines.includes('No instance'), 20_000, 'the consumer to see none');
      const calls = c.lines.filter((l) => l.startsWith('Call ')).length;
      t.diagnostic(`php registry: p1 SIGKILLed, gone for the consumer after ${goneMs} ms (lease TTL ${TTL_MS} ms); consumer calls ${calls}, set changes ${c.lines.filter((l) => l.startsWith('Instances')).length}`);
    } finally {
      for (const p of [p1, p2, consumer]) if (p && p.proc.exitCode === null) p.proc.kill('SIGKILL');
    }
  });
});
