/**
 * The internal channel's POSTs (src/core/cluster/channel.ts) to an address whose TCP connect never
 * completes: a peer that drops SYNs (partitioned, or its accept queue full). The request's
 * timeout ends it; nothing of it left this process, so it fails 'unsent' (a forwarded call then
 * answers outcome not_applied), not 'failed' (outcome unknown, after a probe). The peer here is a
 * real process listening with an accept queue of 1, stopped (SIGSTOP) and its queue filled: the
 * kernel then drops further SYNs, as for a partitioned host.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { ChannelClient, ChannelError } from '../../src/core/cluster/channel.js';

test('a POST whose connect does not complete fails within its timeoutMs, as unsent (nothing of it left)', async () => {
  const child = spawn(process.execPath, ['-e', "require('net').createServer().listen({ port: 0, host: '127.0.0.1', backlog: 1 }, function () { console.log(this.address().port) })"], { stdio: ['ignore', 'pipe', 'inherit'] });
  const held: Socket[] = [];
  const client = new ChannelClient('channel-test-secret-0123456789abcdef', 'test');
  try {
    const port = await new Promise<number>((r) => child.stdout.once('data', (d: Buffer) => r(Number(d.toString()))));
    child.kill('SIGSTOP');
    // Fill the stopped process's accept queue until a connect hangs.
    for (;;) {
      const s = connect(port, '127.0.0.1');
      held.push(s);
      s.on('error', () => undefined);
      const connected = await new Promise<boolean>((r) => {
        s.once('connect', () => r(true));
        setTimeout(() => r(false), 500);
      });
      if (!connected) break;
      assert.ok(held.length < 64, 'the accept queue never filled');
    }
    const started = Date.now();
    const err = await Promise.race([
      client.open(`http://127.0.0.1:${port}`, '/cluster/v1/ping', {}, { timeoutMs: 300 }).then(
        () => assert.fail('answered'),
        (e: unknown) => e,
      ),
      new Promise((r) => setTimeout(() => r(new Error('still connecting after 5 s')), 5000)),
    ]);
    assert.ok(err instanceof ChannelError, String(err));
    assert.equal(err.kind, 'unsent', err.message);
    assert.match(err.message, /not connected within 300 ms/);
    assert.ok(Date.now() - started < 2000, `took ${Date.now() - started} ms`);
  } finally {
    client.close();
    child.kill('SIGKILL');
    for (const s of held) s.destroy();
  }
});
