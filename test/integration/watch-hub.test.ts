import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ZkgateError, blockingRead, type Gateway, type Tenant, type WatchEvent, type WatchStream } from '../../src/core/index.js';
import { expireSession, fourLetter, startZkServer, type ZkStandalone } from '../support/zk-server.js';
import { eventually, startTestGateway, type TestGateway } from '../support/test-gateway.js';
import { take, until } from '../support/events.js';

const brief = (e: WatchEvent): string => `${e.type} ${e.path}${e.data ? `=${e.data.toString()}` : ''}${e.children ? ` [${e.children.join(',')}]` : ''}`;

/** How many watches the gateway's session holds on `path` (server-side, chroot included), by `wchc`. */
async function serverWatches(zkPort: number, tenant: Tenant, path: string): Promise<number> {
  const dump = await fourLetter(zkPort, 'wchc');
  const sections = dump.split(/\n(?=0x)/);
  const mine = sections.find((s) => s.startsWith(`0x${tenant.session.sessionId}`)) ?? '';
  return mine.split('\n').filter((l) => l.trim() === path).length;
}

describe('watch hub', () => {
  let zk: ZkStandalone;
  let gw: TestGateway;
  let core: Gateway;
  let tenant: Tenant;
  const zkc = () => tenant.client();

  before(async () => {
    zk = await startZkServer();
    gw = await startTestGateway(zk.connectString, { watch: { queueSize: 64, maxSubtreeNodes: 20 } });
    core = gw.running.gateway;
    tenant = core.tenant();
  });
  after(async () => {
    await gw?.close();
    await zk?.close();
  });

  test('data events carry data, stat and zxid: current, created, data_changed, deleted', async () => {
    const s = core.watches.watch(tenant, '/cfg', { kind: 'data' });
    const it = s[Symbol.asyncIterator]();
    const [first] = await take(it, 1);
    assert.deepEqual({ type: first?.type, stat: first?.stat, zxid: first?.zxid }, { type: 'current', stat: null, zxid: '0' });
    await zkc().create('/cfg', Buffer.from('v1'), 'persistent');
    const [created] = await take(it, 1);
    assert.equal(created?.type, 'created');
    assert.equal(created?.data?.toString(), 'v1');
    assert.equal(created?.zxid, created?.stat?.mzxid);
    const stat = await zkc().set('/cfg', Buffer.from('v2'));
    const [changed] = await take(it, 1);
    assert.equal(changed?.type, 'data_changed');
    assert.equal(changed?.data?.toString(), 'v2');
    assert.equal(changed?.zxid, stat.mzxid);
    assert.equal(changed?.stat?.version, 1);
    await zkc().delete('/cfg');
    const [deleted] = await take(it, 1);
    assert.deepEqual({ type: deleted?.type, stat: deleted?.stat, zxid: deleted?.zxid }, { type: 'deleted', stat: null, zxid: '0' });
    s.stop();
  });

  test('children events carry the sorted list and the pzxid', async () => {
    await zkc().create('/dir', Buffer.alloc(0), 'persistent');
    await zkc().create('/dir/b', Buffer.alloc(0), 'persistent');
    const s = core.watches.watch(tenant, '/dir', { kind: 'children' });
    const it = s[Symbol.asyncIterator]();
    assert.deepEqual((await take(it, 1)).map(brief), ['current /dir [b]']);
    await zkc().create('/dir/a', Buffer.alloc(0), 'persistent');
    const [ev] = await take(it, 1);
    assert.equal(brief(ev as WatchEvent), 'children_changed /dir [a,b]');
    assert.equal(ev?.zxid, (await zkc().exists('/dir'))?.pzxid);
    // A data change of the parent is not a children change.
    await zkc().set('/dir', Buffer.from('x'));
    await zkc().delete('/dir/b');
    assert.deepEqual((await take(it, 1)).map(brief), ['children_changed /dir [a]']);
    s.stop();
  });

  test('a subtree subscription reports every node below the path, then changes anywhere in it', async () => {
    await zkc().create('/tree', Buffer.from('root'), 'persistent');
    await zkc().create('/tree/x', Buffer.from('x'), 'persistent');
    await zkc().create('/tree/x/y', Buffer.from('y'), 'persistent');
    const s = core.watches.watch(tenant, '/tree', { kind: 'subtree' });
    const it = s[Symbol.asyncIterator]();
    const initial = (await take(it, 3)).map(brief).sort();
    assert.deepEqual(initial, ['current /tree/x/y=y', 'current /tree/x=x', 'current /tree=root']);
    await zkc().create('/tree/x/z', Buffer.from('z'), 'persistent');
    assert.deepEqual((await take(it, 1)).map(brief), ['created /tree/x/z=z']);
    await zkc().set('/tree/x/y', Buffer.from('y2'));
    assert.deepEqual((await take(it, 1)).map(brief), ['data_changed /tree/x/y=y2']);
    await zkc().delete('/tree/x/z');
    assert.deepEqual((await take(it, 1)).map(brief), ['deleted /tree/x/z']);
    s.stop();
  });

  test('a subtree larger than the node limit ends with SUBTREE_TOO_LARGE', async () => {
    await zkc().create('/big', Buffer.alloc(0), 'persistent');
    for (let i = 0; i < 25; i++) await zkc().create(`/big/n${i}`, Buffer.alloc(0), 'persistent');
    const s = core.watches.watch(tenant, '/big', { kind: 'subtree' });
    const err = await s.closed;
    assert.ok(err instanceof ZkgateError && err.code === 'SUBTREE_TOO_LARGE', String(err));
    assert.deepEqual([err.details.limit, err.details.max], ['watch.maxSubtreeNodes', 20]);
    await assert.rejects(take(s[Symbol.asyncIterator](), 1), (e: unknown) => e instanceof ZkgateError && e.code === 'SUBTREE_TOO_LARGE');
  });

  test('1,000 subscribers on one path share one ZooKeeper watch and one read per change', async () => {
    await zkc().create('/shared', Buffer.from('0'), 'persistent');
    const streams: WatchStream[] = [];
    for (let i = 0; i < 1000; i++) streams.push(core.watches.watch(tenant, '/shared', { kind: 'data' }));
    const its = streams.map((s) => s[Symbol.asyncIterator]());
    for (const e of await Promise.all(its.map((it) => take(it, 1)))) assert.equal(brief(e[0] as WatchEvent), 'current /shared=0');
    const stats = () => core.watches.stats().find((x) => x.tenant === tenant.name);
    assert.equal(stats()?.subscribers.data, 1000);
    const readsBefore = stats()?.reads as number;
    for (const v of ['1', '2', '3']) {
      await zkc().set('/shared', Buffer.from(v));
      const got = await Promise.all(its.map((it) => take(it, 1)));
      for (const e of got) assert.equal(brief(e[0] as WatchEvent), `data_changed /shared=${v}`);
    }
    assert.equal((stats()?.reads as number) - readsBefore, 3, 'one ZooKeeper read per change for all 1,000 subscribers');
    assert.equal(await serverWatches(zk.clientPort, tenant, '/shared'), 1, 'one watch in ZooKeeper (wchc)');
    const wchs = await fourLetter(zk.clientPort, 'wchs');
    const total = Number(/Total watches:(\d+)/.exec(wchs)?.[1]);
    assert.ok(total < 100, `ZooKeeper holds ${total} watches in all (wchs), not one per subscriber`);
    for (const s of streams) s.stop();
    assert.equal(stats()?.subscribers.data, 0);
    // Without subscribers the watch is kept while it is pending: a newcomer gets the state without a read.
    const armed = stats()?.zkWatches.data as number;
    assert.ok(armed >= 1);
    const reads = stats()?.reads;
    const again = core.watches.watch(tenant, '/shared', { kind: 'data' });
    assert.equal(brief((await take(again[Symbol.asyncIterator](), 1))[0] as WatchEvent), 'current /shared=3');
    assert.equal(stats()?.reads, reads, 'no read for a subscriber joining a pending watch');
    again.stop();
    await zkc().set('/shared', Buffer.from('4'));
    await eventually(() => stats()?.zkWatches.data === armed - 1, 5000, 'the idle watch dropped once it fired');
    assert.equal(stats()?.reads, reads, 'no read after a watch nobody listens to fires');
  });

  test('sinks added or removed by a delivery: a newcomer gets the new state once as current, a removed one nothing more', async () => {
    // The hub walks its sinks in place while it publishes a change (no copy per change).
    await zkc().create('/loop', Buffer.from('v1'), 'persistent');
    const seen: Record<string, string[]> = { a: [], b: [], c: [] };
    const sink = (name: string) => ({ deliver: (e: WatchEvent) => void seen[name]?.push(brief(e)), fail: () => undefined });
    const b = sink('b');
    let stopB: (() => void) | undefined;
    let stopC: (() => void) | undefined;
    const a = {
      deliver: (e: WatchEvent) => {
        seen.a?.push(brief(e));
        if (e.type !== 'data_changed' || stopB) return;
        stopB = core.watches.follow(tenant, 'data', '/loop', b); // joins during the delivery of v2
        stopC?.(); // leaves before its turn
      },
      fail: () => undefined,
    };
    const stopA = core.watches.follow(tenant, 'data', '/loop', a);
    stopC = core.watches.follow(tenant, 'data', '/loop', sink('c'));
    await eventually(() => seen.c?.length === 1, 5000, 'c has the current state');
    await zkc().set('/loop', Buffer.from('v2'));
    await eventually(() => seen.b?.length === 1, 5000, 'b joined');
    await zkc().set('/loop', Buffer.from('v3'));
    await eventually(() => seen.a?.length === 3 && seen.b?.length === 2, 5000, 'v3 delivered');
    assert.deepEqual(seen, {
      a: ['current /loop=v1', 'data_changed /loop=v2', 'data_changed /loop=v3'],
      b: ['current /loop=v2', 'data_changed /loop=v3'],
      c: ['current /loop=v1'],
    });
    stopA();
    stopB?.();
  });

  test('repeated long-polls on a quiet node share one pending watch: no read and no new watch per poll', async () => {
    await zkc().create('/quiet', Buffer.from('q'), 'persistent');
    const stats = () => core.watches.stats().find((x) => x.tenant === tenant.name);
    const first = await blockingRead(core.watches, tenant, '/quiet', 'data', { waitMs: 0 });
    const reads = stats()?.reads;
    for (let i = 0; i < 20; i++) {
      const r = await blockingRead(core.watches, tenant, '/quiet', 'data', { index: first.state.zxid, waitMs: 20 });
      assert.equal(r.unchanged, true);
    }
    assert.equal(stats()?.reads, reads);
    assert.equal(await serverWatches(zk.clientPort, tenant, '/quiet'), 1);
  });

  test('a slow consumer is cut with SLOW_CONSUMER while the others get every event', async () => {
    await zkc().create('/busy', Buffer.from('0'), 'persistent');
    const slow = core.watches.watch(tenant, '/busy', { kind: 'data', queueSize: 4 });
    const fast = core.watches.watch(tenant, '/busy', { kind: 'data' });
    const it = fast[Symbol.asyncIterator]();
    await take(it, 1);
    for (let i = 1; i <= 8; i++) {
      await zkc().set('/busy', Buffer.from(String(i)));
      assert.equal(brief((await take(it, 1))[0] as WatchEvent), `data_changed /busy=${i}`);
    }
    const err = await slow.closed;
    assert.ok(err instanceof ZkgateError && err.code === 'SLOW_CONSUMER', String(err));
    assert.equal(fast.isStopped, false);
    assert.ok((core.watches.stats().find((x) => x.tenant === tenant.name)?.slowConsumers ?? 0) >= 1);
    fast.stop();
  });

  test('break ends a subscription and runs its cleanup', async () => {
    const s = core.watches.watch(tenant, '/gone', { kind: 'children' });
    for await (const ev of s) {
      assert.equal(ev.type, 'current');
      break;
    }
    assert.equal(await s.closed, undefined);
    assert.equal(core.watches.stats().find((x) => x.tenant === tenant.name)?.subscribers.children, 0);
  });

  test('a forced session expiry gives every subscription a resync with the current state, then changes again', async () => {
    await zkc().create('/survive', Buffer.from('a'), 'persistent');
    const s = core.watches.watch(tenant, '/survive', { kind: 'data' });
    const it = s[Symbol.asyncIterator]();
    await take(it, 1);
    const oldSession = tenant.session.sessionId;
    await expireSession(zk.connectString, oldSession, tenant.session.sessionPassword);
    // A reconnect of the old session may come first (the harness's hijack races with it); wait for the new session's resync.
    const seen = await until(it, (e) => e.type === 'resync' && /expired/.test(e.note ?? ''), 20_000);
    const resync = seen.at(-1) as WatchEvent;
    assert.equal(resync.data?.toString(), 'a');
    assert.match(resync.note ?? '', /coalesced/);
    assert.notEqual(tenant.session.sessionId, oldSession);
    await eventually(() => tenant.ready);
    await zkc().set('/survive', Buffer.from('b'));
    assert.deepEqual((await take(it, 1)).map(brief), ['data_changed /survive=b']);
    s.stop();
  });
});
