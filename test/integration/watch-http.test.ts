import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, type ChildProcess } from 'node:child_process';
import { spawnClean } from '../../src/zk/index.js';
import { promisify } from 'node:util';
import { createInterface } from 'node:readline';
import { generateApiKey, hashApiKey, type Tenant } from '../../src/core/index.js';
import { projectFile } from '../../src/project-files.js';
import { startZkServer, type ZkStandalone } from '../support/zk-server.js';
import { eventually, startTestGateway, type TestGateway } from '../support/test-gateway.js';
import { contract, restClient, type RestClient } from '../support/openapi.js';

const run = promisify(execFile);

/** curl -s -i: status, lower-cased headers and body. */
async function curl(url: string, ...args: string[]): Promise<{ status: number; headers: Map<string, string>; body: string; ms: number }> {
  const t0 = Date.now();
  const { stdout } = await run('/usr/bin/curl', ['-s', '-i', ...args, url], { timeout: 30_000 });
  const [head = '', body = ''] = stdout.split(/\r\n\r\n/, 2);
  const lines = head.split('\r\n');
  const headers = new Map(lines.slice(1).map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()] as [string, string]));
  return { status: Number(lines[0]?.split(' ')[1]), headers, body, ms: Date.now() - t0 };
}

interface SseFrame {
  event: string;
  id?: string;
  data: Record<string, unknown>;
}

/** `curl -N` on an SSE URL; frames arrive in `frames` as they come. */
function sse(url: string): { proc: ChildProcess; frames: SseFrame[] } {
  const proc = spawnClean('/usr/bin/curl', ['-s', '-N', '-H', 'Accept: text/event-stream', url], { stdio: ['ignore', 'pipe', 'inherit'] });
  const frames: SseFrame[] = [];
  let buf = '';
  proc.stdout?.on('data', (chunk: Buffer) => {
    buf += chunk.toString('utf8');
    let i: number;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const f: Partial<SseFrame> = {};
      for (const line of block.split('\n')) {
        if (line.startsWith('event: ')) f.event = line.slice(7);
        else if (line.startsWith('id: ')) f.id = line.slice(4);
        else if (line.startsWith('data: ')) f.data = JSON.parse(line.slice(6)) as Record<string, unknown>;
      }
      if (f.event) frames.push(f as SseFrame);
    }
  });
  return { proc, frames };
}

const coverage = new Set<string>();

describe('watch over HTTP: long-poll and Server-Sent Events', () => {
  let zk: ZkStandalone;
  let gw: TestGateway;
  let rest: RestClient;
  let tenant: Tenant;
  const procs: ChildProcess[] = [];
  const zkc = () => tenant.client();

  before(async () => {
    zk = await startZkServer();
    gw = await startTestGateway(zk.connectString, { watch: { heartbeatMs: 500, maxSubtreeNodes: 50 }, limits: { maxSubscriptionsPerTenant: 40 } });
    rest = restClient(gw.base, { coverage });
    tenant = gw.running.gateway.tenant();
  });
  after(async () => {
    for (const p of procs) p.kill('SIGKILL');
    await gw?.close();
    await zk?.close();
  });

  test('long-poll answers at once when the state differs from the index', async () => {
    await zkc().create('/lp', Buffer.from('v1'), 'persistent');
    const r = await rest.json('GET', '/v1/nodes/lp', undefined, { query: { wait: 20_000, index: '0' } });
    assert.equal(r.status, 200);
    const stat = (r.body as { stat: { mzxid: string } }).stat;
    assert.equal(r.headers.get('x-zkgate-index'), stat.mzxid);
    assert.equal(r.headers.get('x-zkgate-unchanged'), null);
  });

  test('long-poll with curl blocks until the node changes and returns the new data', async () => {
    const { stat } = await zkc().get('/lp');
    const pending = curl(`${gw.base}/v1/nodes/lp?wait=20000&index=${stat.mzxid}`);
    await new Promise((r) => setTimeout(r, 400));
    const changed = await zkc().set('/lp', Buffer.from('v2'));
    const r = await pending;
    assert.equal(r.status, 200);
    assert.ok(r.ms >= 350 && r.ms < 10_000, `answered after ${r.ms} ms`);
    assert.equal((JSON.parse(r.body) as { data: string }).data, 'v2');
    assert.equal(r.headers.get('x-zkgate-index'), changed.mzxid);
  });

  test('long-poll ends after the wait with the unchanged state and X-Zkgate-Unchanged', async () => {
    const { stat } = await zkc().get('/lp');
    const t0 = Date.now();
    const r = await rest.json('GET', '/v1/nodes/lp', undefined, { query: { wait: 600, index: stat.mzxid } });
    assert.ok(Date.now() - t0 >= 550);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('x-zkgate-unchanged'), 'true');
    assert.equal((r.body as { data: string }).data, 'v2');
  });

  test('long-poll on a missing node waits for its creation', async () => {
    const pending = rest.json('GET', '/v1/nodes/later', undefined, { query: { wait: 20_000, index: '0' } });
    await new Promise((r) => setTimeout(r, 300));
    await zkc().create('/later', Buffer.from('here'), 'persistent');
    const r = await pending;
    assert.equal(r.status, 200);
    assert.equal((r.body as { data: string }).data, 'here');
    const missing = await rest.json('GET', '/v1/nodes/never', undefined, { query: { wait: 300, index: '0' } });
    assert.equal(missing.status, 404);
    assert.equal(missing.headers.get('x-zkgate-unchanged'), 'true');
    assert.equal(missing.headers.get('x-zkgate-index'), '0');
  });

  test('long-poll on children returns the new listing when a child appears', async () => {
    await zkc().create('/members', Buffer.alloc(0), 'persistent');
    const first = await rest.json('GET', '/v1/children/members');
    const index = first.headers.get('x-zkgate-index') as string;
    assert.equal(index, (first.body as { stat: { pzxid: string } }).stat.pzxid);
    const pending = rest.json('GET', '/v1/children/members', undefined, { query: { wait: 20_000, index } });
    await new Promise((r) => setTimeout(r, 300));
    await zkc().create('/members/m1', Buffer.alloc(0), 'persistent');
    const r = await pending;
    assert.deepEqual((r.body as { children: { name: string }[] }).children, [{ name: 'm1' }]);
    assert.notEqual(r.headers.get('x-zkgate-index'), index);
  });

  test('bad long-poll and watch parameters get 400 and change nothing', async () => {
    const badQueries: Record<string, string | number>[] = [{ wait: -1 }, { wait: 10, index: 'abc' }, { wait: 'soon' }];
    for (const query of badQueries) {
      const r = await rest.json('GET', '/v1/nodes/lp', undefined, { query });
      assert.equal(r.status, 400, JSON.stringify(query));
      assert.equal((r.body as { code: string }).code, 'INVALID_ARGUMENT');
    }
    const bad = await rest.json('GET', '/v1/watch/lp', undefined, { query: { kind: 'everything' } });
    assert.equal(bad.status, 400);
    assert.equal((await rest.json('GET', '/v1/watch/lp', undefined, { headers: { 'zkgate-tenant': 'no-such-tenant' } })).status, 404, 'an unknown tenant');
    const badPath = await rest.json('GET', '/v1/watch/a//b');
    assert.equal(badPath.status, 400);
    assert.equal((badPath.body as { code: string }).code, 'INVALID_PATH');
  });

  test('curl -N on a watch URL streams the current state, then every change, as Server-Sent Events', async () => {
    await zkc().create('/sse', Buffer.from('one'), 'persistent');
    const { proc, frames } = sse(`${gw.base}/v1/watch/sse?kind=data`);
    procs.push(proc);
    await eventually(() => frames.length >= 1, 10_000, 'first SSE frame');
    assert.equal(frames[0]?.event, 'current');
    assert.equal(frames[0]?.data.data, 'one');
    await zkc().set('/sse', Buffer.from('two'));
    await eventually(() => frames.length >= 2, 10_000, 'second SSE frame');
    assert.equal(frames[1]?.event, 'data_changed');
    assert.equal(frames[1]?.data.data, 'two');
    assert.equal(frames[1]?.id, frames[1]?.data.zxid);
    await zkc().delete('/sse');
    await eventually(() => frames.length >= 3, 10_000, 'third SSE frame');
    assert.equal(frames[2]?.event, 'deleted');
    proc.kill();
    await eventually(() => (gw.running.gateway.watches.stats()[0]?.subscribers.data ?? 0) === 0, 5000, 'subscription released when curl leaves');
  });

  test('a subtree stream over SSE reports nodes below the path', async () => {
    await zkc().create('/svc', Buffer.alloc(0), 'persistent');
    const { proc, frames } = sse(`${gw.base}/v1/watch/svc?kind=subtree`);
    procs.push(proc);
    await eventually(() => frames.length >= 1, 10_000, 'first frame');
    await zkc().create('/svc/a', Buffer.from('10.0.0.1'), 'persistent');
    await eventually(() => frames.some((f) => f.event === 'created' && f.data.path === '/svc/a' && f.data.data === '10.0.0.1'), 10_000, 'created frame');
    proc.kill();
    await eventually(() => (gw.running.gateway.watches.stats()[0]?.subscribers.subtree ?? 0) === 0, 5000, 'subtree released when curl leaves');
  });

  test('/metrics shows subscribers and armed ZooKeeper watches of the hub', async () => {
    await zkc().create('/m', Buffer.alloc(0), 'persistent');
    const streams = Array.from({ length: 5 }, () => gw.running.gateway.watches.watch(tenant, '/m', { kind: 'children' }));
    await eventually(() => (gw.running.gateway.watches.stats()[0]?.zkWatches.children ?? 0) >= 1);
    const r = await rest.request('GET', '/metrics');
    const text = r.body as string;
    assert.match(text, /zkgate_watch_subscribers\{tenant="default",kind="children"\} 5\n/);
    assert.match(text, /zkgate_watch_zk_watches\{tenant="default",kind="children"\} [1-9]\d*\n/);
    assert.match(text, /zkgate_watch_zk_reads\{tenant="default"\} [1-9]\d*\n/);
    for (const s of streams) s.stop();
  });

  test('the PHP config watcher (plain php-curl) prints each new version via long-poll', async () => {
    await zkc().create('/config', Buffer.from('color=red'), 'persistent');
    const php = spawnClean('/usr/bin/php', [projectFile('examples/php/config-watcher.php'), gw.base, '/config', '3'], { stdio: ['ignore', 'pipe', 'inherit'] });
    procs.push(php);
    const lines: string[] = [];
    createInterface({ input: php.stdout as NodeJS.ReadableStream }).on('line', (l) => lines.push(l));
    await eventually(() => lines.length >= 1, 10_000, 'first line');
    await zkc().set('/config', Buffer.from('color=blue'));
    await eventually(() => lines.length >= 2, 10_000, 'second line');
    await zkc().set('/config', Buffer.from('color=green'));
    const code = await new Promise<number | null>((r) => php.on('exit', r));
    assert.equal(code, 0);
    assert.deepEqual(lines, ['/config version 0: color=red', '/config version 1: color=blue', '/config version 2: color=green']);
  });
  test('a subtree stream past the node limit ends with an error event (SUBTREE_TOO_LARGE)', async () => {
    await zkc().create('/bigtree', Buffer.alloc(0), 'persistent');
    for (let i = 0; i < 50; i++) await zkc().create(`/bigtree/n${i}`, Buffer.alloc(0), 'persistent');
    const r = await rest.request('GET', '/v1/watch/bigtree', { query: { kind: 'subtree' } });
    assert.equal(r.status, 200);
    const text = r.body as string;
    assert.match(text, /^event: current\n/);
    assert.match(text, /event: error\ndata: \{[^\n]*"code":"SUBTREE_TOO_LARGE"/);
  });

  test('past the tenant\'s subscription quota, watches and long-polls get 429 LIMIT_EXCEEDED', async () => {
    const open = gw.running.gateway.watches.stats()[0]?.subscribers;
    const used = (open?.data ?? 0) + (open?.children ?? 0) + (open?.subtree ?? 0);
    const held = Array.from({ length: 40 - used }, () => gw.running.gateway.watches.watch(tenant, '/lp', { kind: 'data' }));
    try {
      const tries: [string, Record<string, string | number>][] = [
        ['/v1/watch/lp', {}],
        ['/v1/nodes/lp', { wait: 1000, index: '1' }],
        ['/v1/nodes', { wait: 1000, index: '1' }],
        ['/v1/children/lp', { wait: 1000, index: '1' }],
        ['/v1/children', { wait: 1000, index: '1' }],
      ];
      for (const [path, query] of tries) {
        const r = await rest.json('GET', path, undefined, { query });
        assert.equal(r.status, 429, path);
        assert.equal((r.body as { code: string; details: { limit: string } }).details.limit, 'maxSubscriptionsPerTenant');
      }
    } finally {
      for (const s of held) s.stop();
    }
  });

  test('with API keys a watch needs a key (401) and a path in its scope (403)', async () => {
    const key = generateApiKey();
    const keyed = await startTestGateway(zk.connectString, {
      tenants: [{ name: 'default', sessionTimeoutMs: 4000, apiKeys: [{ sha256: hashApiKey(key), role: 'read', prefixes: ['/app'] }] }],
    });
    try {
      const c = restClient(keyed.base, { coverage });
      assert.equal((await c.json('GET', '/v1/watch/app')).status, 401);
      const denied = await c.json('GET', '/v1/watch/other', undefined, { headers: { authorization: `Bearer ${key}` } });
      assert.equal(denied.status, 403);
      assert.equal((denied.body as { code: string }).code, 'PERMISSION_DENIED');
    } finally {
      await keyed.close();
    }
  });

  test('other methods on a watch URL are refused', async () => {
    const r = await rest.json('POST', '/v1/watch/lp', {});
    assert.equal(r.status, 405);
    assert.equal((r.body as { code: string }).code, 'METHOD_NOT_ALLOWED');
  });

  test('a watch while ZooKeeper is down is refused with 503 UNAVAILABLE', async () => {
    await zk.stop();
    try {
      await eventually(() => !tenant.ready, 10_000, 'session suspended');
      const r = await rest.json('GET', '/v1/watch/lp');
      assert.equal(r.status, 503);
      assert.equal((r.body as { code: string }).code, 'UNAVAILABLE');
    } finally {
      await zk.start();
    }
    await eventually(() => tenant.ready, 15_000, 'session back');
  });
});

describe('watch over HTTP: coverage', () => {
  test('every documented watch response that can be produced was produced and checked', () => {
    const mine = contract()
      .documented()
      .filter((k) => /^(GET|OTHER) \/v1\/watch\//.test(k) || /^GET \/v1\/(nodes|children)(\/\{path\})? 429$/.test(k))
      .filter((k) => !k.endsWith(' 500'));
    assert.deepEqual(mine.filter((k) => !coverage.has(k)), []);
  });
});
