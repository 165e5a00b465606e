/**
 * A ZooKeeper server resetting the gateway's connection while requests are being sent must not
 * crash the gateway. The C client's non-blocking send used to close a socket whose send failed,
 * behind the poll handle through which Node's event loop watches it; libuv then aborted the
 * process (SIGABRT, no message) on epoll_ctl(EBADF) — the fault campaign's stop-member crash.
 * With the binding patch (patches/README.md, 5) the failed send leaves the socket to
 * zookeeper_process(): the requests fail with CONNECTION_LOSS, the session reconnects.
 * The scenario runs in a child process (test/support/reset-peer.ts) so that an abort is a
 * failed assertion, not a dead test runner.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { projectFile } from '../../src/project-files.js';
import { startZkServer, type ZkStandalone } from '../support/zk-server.js';

let zk: ZkStandalone;
before(async () => {
  zk = await startZkServer();
});
after(async () => {
  await zk?.close();
});

test('connection reset while requests are sent: requests fail with CONNECTION_LOSS, the session reconnects, no abort', async () => {
  const rounds = 10;
  const child = spawn(process.execPath, [projectFile('dist/test/support/reset-peer.js'), String(zk.clientPort), String(rounds)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr.on('data', (b: Buffer) => (err += b.toString()));
  // 'close', not 'exit': the pipes are drained, so a dying message is in `err`.
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((r) => child.on('close', (c, s) => r([c, s])));
  assert.deepEqual({ code, signal }, { code: 0, signal: null }, `peer died; stdout:\n${out}\nstderr:\n${err}`);
  const lines = out.trim().split('\n');
  assert.equal(lines.at(-1), 'done');
  const reports = lines.slice(0, -1).map((l) => JSON.parse(l) as { results: string[]; connecting: number });
  assert.equal(reports.length, rounds);
  for (const r of reports) {
    assert.deepEqual(r.results, ['CONNECTION_LOSS', 'CONNECTION_LOSS', 'CONNECTION_LOSS'], 'requests sent into a reset connection fail');
    assert.equal(r.connecting, 1, 'the loss is reported once per reset');
  }
});
