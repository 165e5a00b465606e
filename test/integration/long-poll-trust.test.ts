/**
 * A long-poll never vouches for state it did not check (issue 9 item 3): "unchanged" only when
 * the gateway's watch was valid for the whole wait. The gateway runs as its own process
 * (`zkgate serve`) so that it can be frozen (SIGSTOP) past its session timeout while a long-poll
 * is in flight and the node changes; and a session is expired under in-flight and fresh
 * long-polls, which must all get an answer.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { NativeZkClient, spawnClean } from '../../src/zk/index.js';
import { projectFile } from '../../src/project-files.js';
import { expireSession, startZkServer, type ZkStandalone } from '../support/zk-server.js';
import { eventually, startTestGateway, type TestGateway } from '../support/test-gateway.js';

const CLI = projectFile('dist/src/cli/index.js');
const SESSION_MS = 3000;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Answer {
  status: number;
  index: string | null;
  unchanged: boolean;
  data?: string;
}

async function longPoll(base: string, path: string, index: string, waitMs: number, timeoutMs = 30_000): Promise<Answer> {
  const res = await fetch(`${base}/v1/nodes${path}?wait=${waitMs}&index=${index}`, { signal: AbortSignal.timeout(timeoutMs) });
  const body = (await res.json()) as { data?: string };
  return { status: res.status, index: res.headers.get('x-zkgate-index'), unchanged: res.headers.get('x-zkgate-unchanged') === 'true', data: body.data };
}

/** A direct ZooKeeper handle for setting up and changing nodes behind the gateway's back. */
async function directClient(connect: string): Promise<NativeZkClient> {
  const c = new NativeZkClient({ connect, sessionTimeoutMs: 10_000 });
  await new Promise<void>((resolve) => c.once('connect', () => resolve()));
  return c;
}

let zk: ZkStandalone;
let direct: NativeZkClient;

before(async () => {
  zk = await startZkServer();
  direct = await directClient(zk.connectString);
});
after(async () => {
  direct?.close();
  await zk?.close();
});

describe('long-poll across a frozen gateway process', () => {
  let proc: ChildProcess;
  let base = '';
  let output = '';

  before(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'zkgate-lp-'));
    const config = join(dir, 'zkgate.json');
    writeFileSync(config, JSON.stringify({ tenants: [{ name: 'default', sessionTimeoutMs: SESSION_MS }], log: { level: 'info' } }));
    proc = spawnClean(process.execPath, [CLI, 'serve', '--config', config, '--zookeeper', zk.connectString, '--http-port', '0', '--grpc-port', '0'], {
      env: { ...process.env, ZKGATE_CONFIG: '', ZKGATE_ZOOKEEPER: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    proc.stdout?.on('data', (d: Buffer) => (output += d.toString('utf8')));
    proc.stderr?.on('data', (d: Buffer) => (output += d.toString('utf8')));
    const port = await eventually(() => /"httpPort":(\d+)/.exec(output)?.[1], 30_000, `zkgate to start:\n${output}`);
    base = `http://127.0.0.1:${port}`;
    await eventually(async () => (await fetch(`${base}/readyz`)).status === 200, 20_000, 'the gateway to be ready');
  });
  after(async () => {
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill('SIGCONT');
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGKILL');
    await exited;
  });

  test('a long-poll in flight while the gateway is frozen past its session timeout does not answer "unchanged" with the stale value', async () => {
    await direct.create('/frozen', Buffer.from('v1'), 'persistent');
    const first = await fetch(`${base}/v1/nodes/frozen`);
    const index = first.headers.get('x-zkgate-index');
    assert.ok(index);
    const waitMs = 2000;
    const inFlight = longPoll(base, '/frozen', index, waitMs);
    await sleep(500); // the wait has started
    proc.kill('SIGSTOP');
    try {
      await direct.set('/frozen', Buffer.from('v2'));
      // Past the long-poll's deadline and past the session timeout.
      await sleep(SESSION_MS + waitMs + 1500);
    } finally {
      proc.kill('SIGCONT');
    }
    const a = await inFlight;
    assert.ok(a.status === 200 || a.status === 503, `status ${a.status}`);
    if (a.status === 200) {
      assert.equal(a.unchanged, false, `answered unchanged with ${JSON.stringify(a)} although the node changed while the gateway was frozen`);
      assert.equal(a.data, 'v2');
    }
    // A request right after the resume gets an answer too, and never the stale state as unchanged.
    const b = await longPoll(base, '/frozen', index, 1000, 20_000);
    assert.ok(b.status === 200 || b.status === 503, `status ${b.status}`);
    if (b.status === 200) assert.deepEqual([b.unchanged, b.data], [false, 'v2']);
  });
});

describe('long-poll across a session expiry', () => {
  let g: TestGateway;
  before(async () => {
    g = await startTestGateway(zk.connectString, { tenants: [{ name: 'default', sessionTimeoutMs: 6000 }] });
  });
  after(() => g?.close());

  test('long-polls in flight and sent just after an expiry all get an answer, never a stale "unchanged"', async () => {
    await direct.create('/expiry', Buffer.from('v1'), 'persistent');
    const session = g.running.gateway.tenant().session;
    await eventually(() => session.isUsable, 10_000, 'a usable session');
    const index = (await fetch(`${g.base}/v1/nodes/expiry`)).headers.get('x-zkgate-index');
    assert.ok(index);
    const polls: Promise<Answer>[] = [longPoll(g.base, '/expiry', index, 3000), longPoll(g.base, '/expiry', index, 20_000)];
    await sleep(300);
    await direct.set('/expiry', Buffer.from('v2'));
    // The in-flight polls saw v2 already (a change answers at once); the next ones poll from v2.
    const v2 = await polls[0]!;
    assert.deepEqual([v2.status, v2.data, v2.unchanged], [200, 'v2', false]);
    const index2 = v2.index!;
    const later: Promise<Answer>[] = [longPoll(g.base, '/expiry', index2, 2000), longPoll(g.base, '/expiry', index2, 15_000)];
    await sleep(300);
    const expiring = expireSession(zk.connectString, session.sessionId, session.sessionPassword);
    // Fresh long-polls while the expiry lands and right after it.
    for (let i = 0; i < 10; i++) {
      later.push(longPoll(g.base, '/expiry', index2, 1500, 20_000));
      await sleep(30);
    }
    await expiring;
    for (let i = 0; i < 5; i++) {
      later.push(longPoll(g.base, '/expiry', index2, 1500, 20_000));
      await sleep(5);
    }
    const answers = await Promise.all(later);
    for (const a of answers) {
      assert.ok(a.status === 200 || a.status === 503, `status ${a.status}`);
      if (a.status === 200) assert.equal(a.data, 'v2');
    }
    assert.ok(answers.some((a) => a.status === 200));
  });
});
