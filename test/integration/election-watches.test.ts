/**
 * Issue 17 item 2: election reads and observes leave no uncounted ZooKeeper watches. Every watch
 * the gateway holds belongs to the hub and shows in `zkgate_watch_zk_watches`; idle ones are
 * bounded by `watch.maxIdleWatches`. Measured on the server with `wchs`/`wchc`.
 */
import { beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { fourLetter } from '../support/zk-server.js';
import { eventually, uniquePath, zkAndGateway } from '../support/test-gateway.js';

const MAX_IDLE = 20;

describe('election watches are the hub’s: counted and bounded', () => {
  const env = zkAndGateway({ watch: { maxIdleWatches: MAX_IDLE }, tenants: [{ name: 'default', sessionTimeoutMs: 10_000 }] });
  const tenant = () => env.g.running.gateway.tenants.get('default');
  beforeEach(async () => void (await eventually(() => tenant().ready, 20_000, 'the session to be connected')));

  /** Watches the gateway's session holds on the server (`wchc`: session id, then one path per line). */
  const serverWatches = async (): Promise<number> => {
    const dump = await fourLetter(env.zk.clientPort, 'wchc');
    const mine = dump.split(/\n(?=0x)/).find((s) => s.startsWith(`0x${tenant().session.sessionId}`)) ?? '';
    return mine.split('\n').slice(1).filter((l) => l.trim().startsWith('/')).length;
  };
  const totalWatches = async (): Promise<number> => Number(/Total watches:(\d+)/.exec(await fourLetter(env.zk.clientPort, 'wchs'))?.[1]);
  const metric = async (name: string): Promise<number> => {
    const text = (await env.g.rest.request('GET', '/metrics')).body as string;
    let sum = 0;
    for (const m of text.matchAll(new RegExp(`^${name}\\{tenant="default"[^}]*\\} (\\d+)$`, 'gm'))) sum += Number(m[1]);
    return sum;
  };
  /** Runs `n` calls of `f`, `width` at a time. */
  const pooled = async (n: number, width: number, f: (i: number) => Promise<void>): Promise<void> => {
    let next = 0;
    await Promise.all(Array.from({ length: width }, async () => {
      for (let i = next++; i < n; i = next++) await f(i);
    }));
  };

  test('600 election reads (wait=0) on distinct paths leave no ZooKeeper watch behind', async () => {
    const base = uniquePath('reads');
    // Some elections exist (a children listing), most do not (an exists check).
    const made = await env.g.rest.json('POST', `/v1/nodes${base}/e0`, { createParents: true });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    const before = await totalWatches();
    await pooled(600, 8, async (i) => {
      const r = await env.g.rest.json('GET', `/v1/elections${base}/e${i % 300}${i >= 300 ? `/x${i}` : ''}`, undefined, { query: { wait: '0', after: '0' } });
      assert.equal(r.status, 200, JSON.stringify(r.body));
    });
    const after = await totalWatches();
    assert.ok(after - before <= MAX_IDLE, `${after - before} watches left by 600 reads (bound ${MAX_IDLE})`);
    assert.equal(await serverWatches(), await metric('zkgate_watch_zk_watches'), 'every watch of the session is counted');
  });

  test('200 observers of distinct elections, each gone after its first state: idle watches stay within the bound and every server watch is counted', async () => {
    const base = uniquePath('observe');
    const core = env.g.running.gateway;
    await pooled(200, 8, async (i) => {
      const ac = new AbortController();
      for await (const state of core.elections.observe(tenant(), `${base}/e${i}`, { signal: ac.signal })) {
        assert.equal(state.leader, null);
        ac.abort();
      }
    });
    assert.ok((await metric('zkgate_watch_idle_watches')) <= MAX_IDLE, 'idle watches within watch.maxIdleWatches');
    assert.equal(await serverWatches(), await metric('zkgate_watch_zk_watches'), 'the metric counts every watch the session holds');
  });
});
