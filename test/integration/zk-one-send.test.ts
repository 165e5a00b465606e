/**
 * The gateway's ZooKeeper client sends each request in one system call (patches/README.md, the
 * one-send patch). The C client used to send the 4-byte length prefix and the request apart,
 * so with TCP_NODELAY the length left as a segment of its own and ZooKeeper woke up for it and
 * again for the body. A child process makes requests under `strace` and the sends it made are
 * counted: a 4-byte send is a length sent apart. Counts only, no timing.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startZkServer, type ZkStandalone } from '../support/zk-server.js';

const CALLS = 200;
const strace = spawnSync('strace', ['-V'], { encoding: 'utf8' }).status === 0;

let zk: ZkStandalone;
before(async () => {
  zk = await startZkServer();
});
after(async () => {
  await zk?.close();
});

test('a request to ZooKeeper leaves in one send, its length prefix included', { skip: !strace && 'no strace' }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'zkgate-one-send-'));
  try {
    const client = new URL('../support/zk-tree.js', import.meta.url).href;
    // Warm-up calls first, then a marker write, so only the measured calls' sends are counted.
    const script = `
      import { writeSync } from 'node:fs';
      const { connectRaw } = await import(${JSON.stringify(client)});
      const c = await connectRaw(${JSON.stringify(zk.connectString)});
      for (let i = 0; i < 20; i++) await c.exists('/');
      writeSync(2, 'measure\\n');
      for (let i = 0; i < ${CALLS}; i++) await c.exists('/');
      writeSync(2, 'done\\n');
      c.close();
      process.exit(0);`;
    const out = join(dir, 'trace');
    const r = spawnSync('strace', ['-f', '-qq', '-e', 'trace=sendto,sendmsg,write', '-o', out, process.execPath, '--input-type=module', '-e', script], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(r.status, 0, r.stderr);
    const lines = readFileSync(out, 'utf8').split('\n');
    const from = lines.findIndex((l) => l.includes('"measure\\n"'));
    const to = lines.findIndex((l) => l.includes('"done\\n"'));
    assert.ok(from >= 0 && to > from, 'the markers are in the trace');
    const measured = lines.slice(from + 1, to);
    const sends = measured.filter((l) => /\b(sendto|sendmsg)\(/.test(l)).length;
    const lengthsApart = measured.filter((l) => /\bsendto\(\d+, "[^"]*", 4, /.test(l)).length;
    assert.ok(sends >= CALLS, `the trace shows the requests' sends (${sends} for ${CALLS} calls)`);
    assert.ok(lengthsApart < CALLS / 10, `${lengthsApart} length prefixes sent on their own for ${CALLS} calls (${sends} sends)`);
    assert.ok(sends < CALLS * 1.1, `${sends} sends for ${CALLS} calls (want one each)`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
