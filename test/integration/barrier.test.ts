/**
 * Barriers against a real ZooKeeper and a real Curator 5.4 (one JVM for the file): a double
 * barrier of Curator and gateway members releases together (nobody enters before the last one
 * arrives; a gateway member's leave returns once the last one left); a simple barrier set on one side
 * holds waiters on the other; cancel-safety of enter; bad input refused with nothing changed.
 * The gateway reaches ZooKeeper through a proxy that cuts its connection at the request a case is
 * about, or holds it down for an outage (test/support/zk-proxy.ts), not a freeze of ZooKeeper that
 * cut it only once the client's timeout, two thirds of the session, declared it lost. Curator and
 * raw clients connect to ZooKeeper directly.
 */
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ZkClient } from '../../src/zk/index.js';
import { connectRaw } from '../support/zk-tree.js';
import { appendLine } from '../support/peers.js';
import { startCuratorQueuePeer, type CuratorQueuePeer } from '../support/curator-queue-peer.js';
import { eventually, uniquePath, zkProxyAndGateway, type Problem } from '../support/test-gateway.js';
import type { RestClient } from '../support/openapi.js';
import { cutCreateAnswer, cutWithin, type CutMatch } from '../support/zk-proxy.js';

interface Entry {
  node: string;
  members: number;
}
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** One gateway member: arrives, enters, holds, leaves, logging like the Curator peer. */
async function gatewayMember(rest: RestClient, path: string, members: number, holdMs: number, log: string, id: string): Promise<void> {
  const lease = ((await rest.json('POST', '/v1/leases', { ttlMs: 30_000 })).body as { id: string }).id;
  appendLine(log, `ARRIVE ${id}`);
  const r = await rest.json('POST', `/v1/double-barriers${path}`, { leaseId: lease, members, waitMs: 30_000, data: id });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  appendLine(log, `ENTERED ${id}`);
  await sleep(holdMs);
  appendLine(log, `LEAVING ${id}`);
  const left = await rest.json('DELETE', `/v1/double-barriers${path}`, undefined, { query: { leaseId: lease, node: (r.body as Entry).node, waitMs: 30_000 } });
  assert.equal(left.status, 200, JSON.stringify(left.body));
  appendLine(log, `LEFT ${id}`);
  await rest.json('DELETE', `/v1/leases/${lease}`);
}

/** Line numbers of each verb in the log. */
function positions(log: string): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  log.split('\n').filter(Boolean).forEach((line, i) => (out[line.split(' ')[0] as string] ??= []).push(i));
  return out;
}

describe('barriers', () => {
  const env = zkProxyAndGateway({ tenants: [{ name: 'default', sessionTimeoutMs: 8000 }] });
  let curator: CuratorQueuePeer;
  let dir: string;
  const tenant = () => env.g.running.gateway.tenants.get('default');
  before(async () => {
    curator = await startCuratorQueuePeer(env.zk.connectString);
    dir = mkdtempSync(join(tmpdir(), 'zkgate-barrier-'));
  });
  after(async () => {
    await curator?.close();
    rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(async () => void (await eventually(() => tenant().ready, 20_000, 'the session to be connected')));
  const rest = (): RestClient => env.g.rest;
  /** `call`'s answer, the answer to the create `match` accepts cut (the create applied, its outcome unknown to the gateway). */
  const cutCreate = async <T>(match: CutMatch, call: () => Promise<T>): Promise<T> => (await cutCreateAnswer(env.proxy, match, call)).pending;
  /** Waits until the gateway's session was cut and is back: two transitions past `epoch`. */
  const backFrom = (epoch: number): Promise<boolean> =>
    eventually(() => tenant().session.epoch >= epoch + 2 && tenant().session.isUsable, 15_000, 'the session to be back');
  const grant = async (ttlMs = 30_000): Promise<string> => ((await rest().json('POST', '/v1/leases', { ttlMs })).body as { id: string }).id;
  const raw = async <T>(f: (c: ZkClient) => Promise<T>): Promise<T> => {
    const c = await connectRaw(env.zk.connectString);
    try {
      return await f(c);
    } finally {
      c.close();
    }
  };
  /** The children of `path`; none when it is missing (a failed enter deletes the containers it made). */
  const children = (path: string): Promise<string[]> =>
    raw(async (c) => c.children(path).then((r) => r.children, (err: { code?: string }) => (err.code === 'NO_NODE' ? [] : Promise.reject(err))));

  test('interop › a double barrier of Curator and gateway members releases together, on enter and on leave', async (t) => {
    const path = uniquePath('double');
    const log = join(dir, 'double');
    writeFileSync(log, '');
    const N = 4;
    // Arrivals are staggered (a gateway member first, the other last) and holds differ, so an
    // early release on either side would show in the log.
    const first = gatewayMember(rest(), path, N, 100, log, 'gateway-1');
    await sleep(300);
    const peers = [curator.run('double', path, N, 30_000, 50, log, 'curator-1'), curator.run('double', path, N, 30_000, 600, log, 'curator-2')];
    await eventually(async () => (await children(path)).length === 3, 20_000, 'three members inside');
    await sleep(300);
    const last = gatewayMember(rest(), path, N, 300, log, 'gateway-2');
    await Promise.all([first, last]);
    const results = await Promise.all(peers);
    const text = readFileSync(log, 'utf8');
    const at = positions(text);
    t.diagnostic(`double barrier: ${at.ARRIVE?.length} arrived, ${at.ENTERED?.length} entered, ${at.LEAVING?.length} leaving, ${at.LEFT?.length} left; curator enter/leave results ${results.join(', ')}`);
    assert.deepEqual(results, ['true true', 'true true'], 'Curator entered and left within its waits');
    for (const v of ['ARRIVE', 'ENTERED', 'LEAVING', 'LEFT']) assert.equal(at[v]?.length, N, `${v} ×${N}:\n${text}`);
    assert.ok(Math.max(...(at.ARRIVE as number[])) < Math.min(...(at.ENTERED as number[])), `nobody entered before the last arrived:\n${text}`);
    // A gateway leave returns once every member has left. Curator 5.4's returns once at most one
    // other member is left (its loop breaks on a single remaining child once its own node is gone).
    const lines = text.split('\n').filter(Boolean);
    for (const [i, line] of lines.entries()) {
      if (!line.startsWith('LEFT ')) continue;
      const leavingBefore = lines.slice(0, i).filter((l) => l.startsWith('LEAVING ')).length;
      const need = line.includes('gateway') ? N : N - 1;
      assert.ok(leavingBefore >= need, `${line} returned after only ${leavingBefore} members were leaving:\n${text}`);
    }
    assert.deepEqual(await children(path), [], 'no member and no ready node left');
  });

  test('interop › a simple barrier set by the gateway holds a Curator waiter until removed, and the other way round', async () => {
    const path = uniquePath('gate');
    assert.deepEqual((await rest().json('PUT', `/v1/barriers${path}`)).body, { barrierPath: path, set: true, created: true });
    assert.deepEqual((await rest().json('PUT', `/v1/barriers${path}`)).body, { barrierPath: path, set: true, created: false });
    let passed = false;
    const curatorWait = curator.run('await', path, 20_000).then((r) => ((passed = true), r));
    await sleep(800);
    assert.equal(passed, false, 'the Curator waiter is held while the barrier is set');
    assert.deepEqual((await rest().json('DELETE', `/v1/barriers${path}`)).body, { barrierPath: path, set: false, removed: true });
    assert.equal(await curatorWait, 'true');
    await curator.run('set', path);
    assert.deepEqual((await rest().json('GET', `/v1/barriers${path}`)).body, { barrierPath: path, set: true });
    const held = await rest().json('GET', `/v1/barriers${path}`, undefined, { query: { wait: 300 } });
    assert.deepEqual([held.status, (held.body as Problem).code], [409, 'BARRIER_TIMEOUT']);
    const waiting = rest().json('GET', `/v1/barriers${path}`, undefined, { query: { wait: 20_000 } });
    await sleep(300);
    await curator.run('remove', path);
    const w = await waiting;
    assert.deepEqual([w.status, w.body], [200, { barrierPath: path, set: false }]);
  });

  describe('cancel-safety: no member node of the caller is left', () => {
    test('cancel › an enter whose wait times out answers BARRIER_TIMEOUT and deletes its member node', async () => {
      const path = uniquePath('b-timeout');
      const a = await grant();
      const r = await rest().json('POST', `/v1/double-barriers${path}`, { leaseId: a, members: 2, waitMs: 300 });
      assert.deepEqual([r.status, (r.body as Problem).code], [409, 'BARRIER_TIMEOUT']);
      assert.equal(await raw((c) => c.exists(path)), null, 'not even the container it created is left');
      assert.deepEqual(((await rest().json('GET', `/v1/leases/${a}`)).body as { owned: unknown[] }).owned, []);
    });

    test('cancel › an enter abandoned by its HTTP client deletes its member node', async () => {
      const path = uniquePath('b-gone');
      const a = await grant();
      const ac = new AbortController();
      const pending = fetch(`${env.g.base}/v1/double-barriers${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ leaseId: a, members: 2, waitMs: 20_000 }),
        signal: ac.signal,
      }).catch((e: Error) => e);
      await eventually(async () => (await children(path)).length === 1, 10_000, 'the member node');
      ac.abort();
      await pending;
      await eventually(async () => (await children(path)).length === 0, 10_000, 'the member node to be deleted');
    });

    test('cancel › revoking the lease of a waiting member answers 410 and deletes its node; a member deleted by hand ends its lease lost', async () => {
      const path = uniquePath('b-revoke');
      const [a, b] = [await grant(), await grant()];
      const waiting = rest().json('POST', `/v1/double-barriers${path}`, { leaseId: a, members: 3, waitMs: 20_000 });
      await eventually(async () => (await children(path)).length === 1, 10_000, 'the member node');
      assert.equal((await rest().json('DELETE', `/v1/leases/${a}`)).status, 200);
      const r = await waiting;
      assert.deepEqual([r.status, (r.body as Problem).code], [410, 'LEASE_REVOKED']);
      assert.deepEqual(await children(path), []);
      const waitingB = rest().json('POST', `/v1/double-barriers${path}`, { leaseId: b, members: 3, waitMs: 20_000 });
      const [mine] = await eventually(async () => ((c) => (c.length === 1 ? c : null))(await children(path)), 10_000, "b's member node");
      await raw((c) => c.delete(`${path}/${mine}`));
      const lost = await waitingB;
      assert.deepEqual([lost.status, (lost.body as Problem).code], [410, 'LEASE_LOST']);
      assert.equal(((await rest().json('GET', `/v1/leases/${b}`)).body as { reason: string }).reason, 'node_deleted');
    });

    test('cancel › an enter whose container create (the barrier path) hits a connection loss makes it once the session is back, then enters', async () => {
      const path = uniquePath('b-parent-loss');
      const a = await grant(60_000);
      const r = await cutCreate(
        (p, op) => p === path && op === 'createContainer',
        () => rest().json('POST', `/v1/double-barriers${path}`, { leaseId: a, members: 1, waitMs: 30_000 }),
      );
      assert.equal(r.status, 200, JSON.stringify(r.body));
      const node = (r.body as Entry).node;
      assert.deepEqual((await children(path)).sort(), [node.slice(path.length + 1), 'ready'].sort());
      const left = await rest().json('DELETE', `/v1/double-barriers${path}`, undefined, { query: { leaseId: a, node } });
      assert.equal(left.status, 200, JSON.stringify(left.body));
    });

    test('cancel › an enter whose member create hits a connection loss ends with exactly one member node, owned by the lease', async () => {
      const path = uniquePath('b-loss');
      const a = await grant(60_000);
      // The member create is applied and its answer cut: its outcome is unknown. On a fresh path
      // the first member create fails (NO_NODE) and the containers are made: the one cut is the
      // member create sent after them, which makes the node.
      let containers = false;
      const memberCreate = (p: string, op: string): boolean => {
        if (p === path && op === 'createContainer') containers = true;
        return containers && p.startsWith(`${path}/`) && p !== `${path}/ready` && ['create', 'create2'].includes(op);
      };
      const r = await cutCreate(
        memberCreate,
        () => rest().json('POST', `/v1/double-barriers${path}`, { leaseId: a, members: 1, waitMs: 30_000 }),
      );
      assert.equal(r.status, 200, JSON.stringify(r.body));
      const node = (r.body as Entry).node;
      assert.deepEqual((await children(path)).sort(), [node.slice(path.length + 1), 'ready'].sort(), 'no orphan and no duplicate member');
      await eventually(async () => ((await rest().json('GET', `/v1/leases/${a}`)).body as { state: string }).state === 'active', 10_000, 'the lease to be active');
      assert.deepEqual(((await rest().json('GET', `/v1/leases/${a}`)).body as { owned: unknown[] }).owned, [{ path: node, kind: 'barrier_member' }]);
      const left = await rest().json('DELETE', `/v1/double-barriers${path}`, undefined, { query: { leaseId: a, node } });
      assert.deepEqual([left.status, (left.body as { left: boolean }).left], [200, true]);
      assert.deepEqual(await children(path), []);
    });
  });

  /** Holds the gateway off ZooKeeper until its session is suspended, then lets it back and waits until the same session is. */
  const outage = async (): Promise<void> => {
    const epoch = tenant().session.epoch;
    try {
      env.proxy.block();
      await eventually(() => tenant().session.state === 'suspended', 15_000, 'the session to be suspended');
    } finally {
      env.proxy.unblock();
    }
    await backFrom(epoch);
  };

  test('barrier › a member waiting through a ZooKeeper outage (session suspended, then back) still passes when the last member enters', async () => {
    const path = uniquePath('b-blip');
    const [a, b] = [await grant(60_000), await grant(60_000)];
    const waiting = rest().json('POST', `/v1/double-barriers${path}`, { leaseId: a, members: 2, waitMs: 40_000 });
    await eventually(async () => (await children(path)).length === 1, 10_000, 'the first member node');
    await outage();
    const second = await rest().json('POST', `/v1/double-barriers${path}`, { leaseId: b, members: 2, waitMs: 20_000 });
    assert.equal(second.status, 200, JSON.stringify(second.body));
    const first = await waiting;
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.equal((first.body as { members: number }).members, 2);
    const left = await Promise.all(
      ([[a, first], [b, second]] as const).map(([lease, entry]) =>
        rest().json('DELETE', `/v1/double-barriers${path}`, undefined, { query: { leaseId: lease, node: (entry.body as Entry).node, waitMs: 10_000 } }),
      ),
    );
    assert.deepEqual(left.map((l) => l.status), [200, 200], JSON.stringify(left.map((l) => l.body)));
    assert.deepEqual(await children(path), []);
  });

  test('barrier › an enter whose first look is cut by a connection loss waits for the session and passes when the last member enters', async () => {
    const path = uniquePath('b-cut');
    const [a, b] = [await grant(60_000), await grant(60_000)];
    // The enter's first request for the path (its look at `ready`) never reaches ZooKeeper: the connection is cut under it.
    const epoch = tenant().session.epoch;
    const cutting = env.proxy.cutNextRequest(path);
    const waiting = rest().json('POST', `/v1/double-barriers${path}`, { leaseId: a, members: 2, waitMs: 40_000 });
    const { op } = await cutWithin(cutting, path);
    assert.ok(['exists', 'getData', 'getChildren', 'getChildren2'].includes(op), `the first request cut is a look at the barrier, not ${op}`);
    await backFrom(epoch);
    const second = await rest().json('POST', `/v1/double-barriers${path}`, { leaseId: b, members: 2, waitMs: 20_000 });
    assert.equal(second.status, 200, JSON.stringify(second.body));
    const first = await waiting;
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.equal((await children(path)).length, 3, 'two members and ready');
    for (const lease of [a, b]) assert.equal((await rest().json('DELETE', `/v1/leases/${lease}`)).status, 200);
  });

  test('barrier › a leaving member waiting through a ZooKeeper outage (session suspended, then back) returns once the last member leaves', async () => {
    const path = uniquePath('b-leave-blip');
    const [a, b] = [await grant(60_000), await grant(60_000)];
    const entered = await Promise.all([a, b].map((lease) => rest().json('POST', `/v1/double-barriers${path}`, { leaseId: lease, members: 2, waitMs: 20_000 })));
    assert.deepEqual(entered.map((e) => e.status), [200, 200], JSON.stringify(entered.map((e) => e.body)));
    const [nodeA, nodeB] = entered.map((e) => (e.body as Entry).node) as [string, string];
    const leaving = rest().json('DELETE', `/v1/double-barriers${path}`, undefined, { query: { leaseId: a, node: nodeA, waitMs: 40_000 } });
    await eventually(async () => !(await children(path)).includes(nodeA.slice(path.length + 1)), 10_000, "a's member node to be deleted (a waits for b)");
    await outage();
    const second = await rest().json('DELETE', `/v1/double-barriers${path}`, undefined, { query: { leaseId: b, node: nodeB, waitMs: 20_000 } });
    assert.equal(second.status, 200, JSON.stringify(second.body));
    const first = await leaving;
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.deepEqual(await children(path), []);
  });

  test('barrier › a simple-barrier waiter outlives a ZooKeeper outage (session suspended, then back) and passes once the barrier is removed', async () => {
    const path = uniquePath('sb-blip');
    assert.equal((await rest().json('PUT', `/v1/barriers${path}`)).status, 200);
    const waiting = rest().json('GET', `/v1/barriers${path}`, undefined, { query: { wait: 40_000 } });
    // Whether the wait has begun before the outage or its first look is cut by it, it must ride through.
    await sleep(300);
    await outage();
    assert.equal((await rest().json('DELETE', `/v1/barriers${path}`)).status, 200);
    const r = await waiting;
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(r.body, { barrierPath: path, set: false });
  });

  test('barrier › inspect shows ready and members; leave by another lease is NOT_MEMBER; bad input is 400 and changes nothing', async () => {
    const path = uniquePath('b-bad');
    const [a, b] = [await grant(), await grant()];
    const entered = await rest().json('POST', `/v1/double-barriers${path}`, { leaseId: a, members: 1 });
    assert.equal(entered.status, 200, JSON.stringify(entered.body));
    const node = (entered.body as Entry).node;
    const seen = (await rest().json('GET', `/v1/double-barriers${path}`)).body as { ready: boolean; members: { node: string }[] };
    assert.deepEqual([seen.ready, seen.members.map((m) => m.node)], [true, [node]]);
    const foreign = await rest().json('DELETE', `/v1/double-barriers${path}`, undefined, { query: { leaseId: b, node } });
    assert.deepEqual([foreign.status, (foreign.body as Problem).code], [409, 'NOT_MEMBER']);
    const other = uniquePath('b-none');
    const bad: [string, string, unknown, Record<string, string | number>?][] = [
      ['POST', `/v1/double-barriers${other}`, { leaseId: a, members: 0 }],
      ['POST', `/v1/double-barriers${other}`, { leaseId: a, members: -1 }],
      ['POST', `/v1/double-barriers${other}`, { leaseId: a, members: 10_001 }],
      ['POST', `/v1/double-barriers${other}`, { leaseId: a, members: 'two' }],
      ['POST', `/v1/double-barriers${other}`, { leaseId: a }],
      ['POST', `/v1/double-barriers${other}`, { members: 2 }],
      ['POST', `/v1/double-barriers${other}`, { leaseId: a, members: 2, waitMs: -1 }],
      ['POST', `/v1/double-barriers${other}`, { leaseId: a, members: 2, extra: 1 }],
      ['DELETE', `/v1/double-barriers${path}`, undefined, { leaseId: a, node: '/elsewhere/x' }],
      ['DELETE', `/v1/double-barriers${path}`, undefined, { leaseId: a }],
      ['DELETE', `/v1/double-barriers${path}`, undefined, { leaseId: a, node, waitMs: 'soon' }],
      ['GET', `/v1/barriers${other}`, undefined, { wait: -5 }],
      ['PUT', '/v1/barriers/a%2Fb', undefined],
    ];
    for (const [method, url, body, query] of bad) {
      const r = await rest().json(method, url, body, { query });
      assert.equal(r.status, 400, `${method} ${url} ${JSON.stringify(body ?? query)}: ${JSON.stringify(r.body)}`);
      assert.match((r.body as Problem).code, /^INVALID_(ARGUMENT|PATH)$/);
    }
    assert.equal(await raw((c) => c.exists(other)), null, 'nothing was created');
    assert.deepEqual((await children(path)).sort(), [node.slice(path.length + 1), 'ready'].sort(), 'the member is still inside');
    const left = await rest().json('DELETE', `/v1/double-barriers${path}`, undefined, { query: { leaseId: a, node, waitMs: 5000 } });
    assert.equal(left.status, 200, JSON.stringify(left.body));
    assert.deepEqual(await children(path), []);
  });
});
