import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { projectFile } from '../../src/project-files.js';
import { TOUR_EXPECTS, readmeBlock, waitForLine } from '../support/readme.js';

const run = promisify(execFile);

describe('README', () => {
  const cwd = mkdtempSync(join(tmpdir(), 'zkgate-readme-'));
  let gw: ReturnType<typeof spawn>;
  let base = '';

  before(async () => {
    // The quick start's `npm start` is `zkgate serve` with no ZooKeeper configured: the embedded default.
    gw = spawn(process.execPath, [projectFile('dist/src/cli/index.js'), 'serve', '--http-port', '0', '--grpc-port', '0'], {
      cwd,
      env: { ...process.env, ZKGATE_ZOOKEEPER: '', ZKGATE_CONFIG: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const m = await waitForLine(gw.stdout as NodeJS.ReadableStream, /"httpPort":(\d+)/, 60_000);
    base = `http://127.0.0.1:${m[1]}`;
  });
  after(() => {
    if (gw.exitCode === null) gw.kill('SIGKILL');
    rmSync(cwd, { recursive: true, force: true });
  });

  test('zkgate serve with nothing configured serves REST on an embedded local ZooKeeper', async () => {
    const ready = (await (await fetch(`${base}/readyz`)).json()) as { ready: boolean; tenants: { name: string }[] };
    assert.equal(ready.ready, true);
    assert.deepEqual(ready.tenants.map((t) => t.name), ['default']);
  });

  test('the curl tour works as written', async () => {
    const script = readmeBlock('## A tour with curl').replace('G=http://127.0.0.1:8080', `G=${base}`);
    const { stdout } = await run('/bin/bash', ['-euo', 'pipefail', '-c', script], { cwd, timeout: 30_000 });
    for (const expected of TOUR_EXPECTS) {
      assert.ok(stdout.includes(expected), `tour output has ${expected}:\n${stdout}`);
    }
    assert.deepEqual(readFileSync(join('/tmp', 'blob')), readFileSync('/bin/true'), 'raw bytes came back unchanged');
  });

  test('SIGTERM shuts the gateway and its embedded ZooKeeper down', async () => {
    const exited = new Promise<number | null>((r) => gw.once('exit', (code) => r(code)));
    gw.kill('SIGTERM');
    assert.equal(await exited, 0);
    const { stdout } = await run('/bin/bash', ['-c', `pgrep -f "[Q]uorumPeerMain ${cwd}" || true`]);
    assert.equal(stdout.trim(), '', 'no ZooKeeper left running from the temp dir');
  });
});
