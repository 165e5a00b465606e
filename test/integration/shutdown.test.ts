/**
 * Graceful shutdown of the real `zkgate serve` (README "Shutdown"): SIGTERM stops accepting,
 * lets running requests finish within `shutdown.drainTimeoutMs`, answers waits still running
 * 503, ends streams with a reason, and always exits — also when ZooKeeper does not answer and
 * nobody reads stdout any more; a second signal exits at once.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startZkServer, type ZkStandalone } from '../support/zk-server.js';
import { exitWithin, serveListening, type Listening } from '../support/cli-process.js';

let zk: ZkStandalone;
before(async () => {
  zk = await startZkServer();
});
after(async () => {
  await zk?.close();
});

async function post(base: string, path: string, body: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function lease(base: string): Promise<string> {
  const r = await post(base, '/v1/leases', { ttlMs: 60_000 });
  assert.equal(r.status, 201);
  return r.body.id as string;
}

/** Resolves once the lock at `path` shows `n` contenders (holder included), so their requests are running. */
async function queued(base: string, path: string, n: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const q = (await (await fetch(`${base}/v1/locks/${path}`)).json()) as { queue: unknown[] };
    if (q.queue.length === n) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`the lock ${path} never showed ${n} contenders`);
}

/** Reads a Server-Sent Events response until the server ends it. */
async function readToEnd(res: Response): Promise<string> {
  let text = '';
  for await (const chunk of res.body as AsyncIterable<Uint8Array>) text += Buffer.from(chunk).toString('utf8');
  return text;
}

describe('shutdown', () => {
  test('SIGTERM › exits although stdout is a closed pipe and ZooKeeper is frozen', async () => {
    const gw = await serveListening(['--zookeeper', zk.connectString], undefined);
    try {
      gw.proc.stdout?.destroy(); // nobody reads stdout any more: every log line is EPIPE
      zk.pause();
      gw.proc.kill('SIGTERM');
      const code = await exitWithin(gw, 30_000);
      assert.notEqual(code, null, `still running 30 s after SIGTERM:\n${gw.out()}`);
    } finally {
      zk.resume();
      await gw.kill();
    }
  });

  test('SIGTERM › a wait finishes with its own answer, one past the drain time gets 503, streams end with a reason, new requests are refused, exit 0', async () => {
    const gw: Listening = await serveListening(['--zookeeper', zk.connectString], { shutdown: { drainTimeoutMs: 3000, exitTimeoutMs: 20_000 } });
    try {
      const [a, b, c] = [await lease(gw.base), await lease(gw.base), await lease(gw.base)];
      assert.equal((await post(gw.base, '/v1/locks/shutdown-lock', { leaseId: a })).status, 200);
      const sse = await fetch(`${gw.base}/v1/watch/shutdown-lock`);
      const sseText = readToEnd(sse);
      type Answer = { status: number; body: Record<string, unknown> };
      const settled = (p: Promise<Answer>): Promise<Answer> => p.catch((err: Error) => ({ status: 0, body: { error: String(err.cause ?? err) } }));
      const short = settled(post(gw.base, '/v1/locks/shutdown-lock', { leaseId: b, waitMs: 1500 }));
      const long = settled(post(gw.base, '/v1/locks/shutdown-lock', { leaseId: c, waitMs: 60_000 }));
      await queued(gw.base, 'shutdown-lock', 3);
      gw.proc.kill('SIGTERM');
      await gw.waitFor(/shutting down/);

      const refused = await fetch(`${gw.base}/v1/leases`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } }).then(
        (r) => r.status,
        () => 'connection refused',
      );
      assert.ok(refused === 503 || refused === 'connection refused', `a new request during the drain got ${refused}`);
      const events = await sseText;
      assert.match(events, /event: error\ndata: .*"detail":"watch: the gateway is shutting down","code":"UNAVAILABLE"/);
      const s = await short;
      assert.equal(s.status, 409, JSON.stringify(s.body));
      assert.equal(s.body.code, 'LOCK_NOT_ACQUIRED');
      const l = await long;
      assert.equal(l.status, 503, JSON.stringify(l.body));
      assert.equal(l.body.code, 'UNAVAILABLE');
      assert.equal(await exitWithin(gw, 20_000), 0, gw.out());
    } finally {
      await gw.kill();
    }
  });

  test('SIGTERM with shutdown.unreadyDelayMs › /readyz answers 503 at once while requests are still served, then it drains and exits 0', async () => {
    const gw = await serveListening(['--zookeeper', zk.connectString], { shutdown: { drainTimeoutMs: 1000, exitTimeoutMs: 20_000, unreadyDelayMs: 4000 } });
    try {
      assert.equal((await fetch(`${gw.base}/readyz`)).status, 200);
      gw.proc.kill('SIGTERM');
      await gw.waitFor(/still serving/);
      const ready = await fetch(`${gw.base}/readyz`);
      assert.equal(ready.status, 503, 'a balancer sees the instance going');
      assert.equal(((await ready.json()) as { shuttingDown?: boolean }).shuttingDown, true);
      assert.equal((await post(gw.base, '/v1/leases', { ttlMs: 60_000 })).status, 201, 'a request routed before the balancer noticed is still served');
      assert.equal(await exitWithin(gw, 20_000), 0, gw.out());
    } finally {
      await gw.kill();
    }
  });

  test('SIGTERM twice › the second signal exits at once', async () => {
    const gw = await serveListening(['--zookeeper', zk.connectString], { shutdown: { drainTimeoutMs: 120_000, exitTimeoutMs: 300_000 } });
    try {
      const [a, b] = [await lease(gw.base), await lease(gw.base)];
      assert.equal((await post(gw.base, '/v1/locks/twice-lock', { leaseId: a })).status, 200);
      const waiting = post(gw.base, '/v1/locks/twice-lock', { leaseId: b, waitMs: 100_000 }).catch(() => null);
      await queued(gw.base, 'twice-lock', 2);
      gw.proc.kill('SIGTERM');
      await gw.waitFor(/shutting down/);
      assert.equal(await exitWithin(gw, 1000), null, 'the first signal lets the running wait drain');
      gw.proc.kill('SIGTERM');
      assert.equal(await exitWithin(gw, 10_000), 143, gw.out());
      await waiting;
    } finally {
      await gw.kill();
    }
  });
});
