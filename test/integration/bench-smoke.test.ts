/**
 * `npm run bench --quick` works end to end: ZooKeeper, the gateway, W, the load generators and
 * Curator's JVM start as separate processes, every measure produces a figure, everything exits.
 * It asserts no speed (the figures of a quick run on a shared machine mean nothing).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { projectFile } from '../../src/project-files.js';

const run = promisify(execFile);

test('bench --quick prints one table with a figure for every measure', { timeout: 240_000 }, async () => {
  const { stdout } = await run(process.execPath, [projectFile('dist/bench/run.js'), '--quick'], { timeout: 230_000, maxBuffer: 1 << 20 }).catch((err: Error & { stdout?: string }) => {
    // The bench says why it stopped on stdout ("bench: stopped early: …"), which execFile's error leaves out.
    throw new Error(`${err.message}\nstdout:\n${err.stdout ?? ''}`, { cause: err });
  });
  const rows = stdout.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| measure'));
  const measures = rows.map((r) => r.split(' | ')[0]?.slice(2) ?? '');
  for (const m of [
    'REST GET throughput ÷ D',
    'REST GET latency ÷ D',
    'REST PUT (set) throughput ÷ D',
    'REST GET with every read sent to ZooKeeper (`?cache=false`) ÷ D',
    'gRPC Get ÷ REST GET',
    'gRPC Get ÷ REST GET with h2load driving both',
    'the same with minimal servers (h2load',
    'WebSocket fan-out events/s ÷ W',
    'fan-out latency p99',
    'idle WebSocket memory per socket ÷ W',
    'ZooKeeper reads per change',
    'lock cycles/s ÷ Curator InterProcessMutex',
    'ZooKeeper watchers triggered per lock release',
  ]) {
    assert.ok(measures.some((x) => x.startsWith(m)), `no row for ${m}:\n${stdout}`);
  }
  for (const r of rows) assert.match(r.split(' | ')[1] ?? '', /\d/, `row without a figure: ${r}`);
  assert.match(stdout, /^machine: /m);
});
