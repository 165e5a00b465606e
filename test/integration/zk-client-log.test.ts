/**
 * The ZooKeeper C client's own log reaches the gateway's stderr (zookeeper.clientLogLevel,
 * default `error`), so a process the client aborts says why; it never mixes into the JSON log
 * on stdout. The binding printed its lines to stdout before (patches/README.md, 6).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnClean, freePort } from '../../src/zk/index.js';
import { CLI } from '../support/cli-process.js';

/**
 * Runs `zkgate serve` against a port nobody listens on until stderr matches `until`, then kills it.
 * The session (and its log) starts after the transports are built: 10 s and more at load 15.
 */
async function serveRefused(config: string, until: RegExp): Promise<{ stdout: string; stderr: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'zkgate-clientlog-'));
  writeFileSync(join(dir, 'zkgate.yaml'), config);
  const port = await freePort();
  const proc = spawnClean(process.execPath, [CLI, 'serve', '--http-port', '0', '--grpc-port', '0', '--zookeeper', `127.0.0.1:${port}`], {
    env: { ...process.env, ZKGATE_CONFIG: join(dir, 'zkgate.yaml'), ZKGATE_ZOOKEEPER: '', ZKGATE_LOG_LEVEL: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const closed = new Promise((r) => proc.once('close', r));
  try {
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no ${until} on stderr in 60 s; stderr:\n${stderr}\nstdout:\n${stdout}`)), 60_000);
      proc.stdout?.on('data', (b: Buffer) => (stdout += b.toString()));
      proc.stderr?.on('data', (b: Buffer) => {
        stderr += b.toString();
        if (until.test(stderr)) {
          clearTimeout(t);
          resolve();
        }
      });
    });
  } finally {
    proc.kill('SIGKILL');
    await closed;
    rmSync(dir, { recursive: true, force: true });
  }
  return { stdout, stderr };
}

test('default clientLogLevel: a refused ZooKeeper connection is logged by the C client on stderr, stdout holds only JSON lines', async () => {
  const { stdout, stderr } = await serveRefused('tenants:\n  - name: default\n', /ZOO_ERROR@.*Connection refused/);
  assert.match(stderr, /ZOO_ERROR@/);
  const notJson = stdout.split('\n').filter((l) => l && !l.startsWith('{'));
  assert.deepEqual(notJson, [], 'stdout: JSON log lines only');
});

test('clientLogLevel debug: the binding\'s own lines go to stderr too (prefixed node-zk:), not to stdout', async () => {
  const { stdout, stderr } = await serveRefused('zookeeper:\n  clientLogLevel: debug\ntenants:\n  - name: default\n', /node-zk: /);
  assert.match(stderr, /ZOO_DEBUG@/);
  assert.doesNotMatch(stdout, /node-zk|ZOO_/);
});
