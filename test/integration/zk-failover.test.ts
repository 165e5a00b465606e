/**
 * Failover of the native client (npm `zookeeper` binding, patched by patches/apply.mjs) to a
 * healthy member of a 3-node ensemble, timed against Kazoo on the same ensemble and fault.
 *
 * Unpatched, the binding did not re-arm its timer when the C client reported "no socket, call me
 * again in tv" or dropped a socket with an error, so the next connect attempt waited for a stale
 * timer of a third of the session timeout (6.7 s with 20 s here) while Kazoo was back in ~1 s;
 * after a frozen member it could lose the session. Bounds are relative to Kazoo (1.5x, or Kazoo
 * + 1 s when both are fast), so a slow machine slows both sides.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { NativeZkClient } from '../../src/zk/index.js';
import { startZkEnsemble, type ZkEnsemble } from '../support/zk-server.js';
import { memberOfSession, startKazooSession, waitFor } from '../support/failover.js';

/** Opens native clients until one is connected to member `target` (host order is random). */
async function nativeClientOn(ens: ZkEnsemble, target: number, sessionTimeoutMs: number): Promise<NativeZkClient> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const c = new NativeZkClient({ connect: ens.connectString, sessionTimeoutMs });
    await new Promise<void>((resolve) => c.once('connect', () => resolve()));
    if ((await memberOfSession(ens, c.sessionId)) === target) return c;
    c.close();
  }
  throw new Error(`no native session landed on member ${target + 1} in 20 attempts`);
}

/** Records the epoch ms of every `connect` (connected or reconnected) and `close` of a client. */
function recordEvents(c: NativeZkClient): { connects: number[]; closes: number[] } {
  const r = { connects: [] as number[], closes: [] as number[] };
  c.on('connect', () => r.connects.push(Date.now()));
  c.on('close', () => r.closes.push(Date.now()));
  return r;
}

function hostsWithFirst(ens: ZkEnsemble, first: number): string {
  return [first, ...[0, 1, 2].filter((i) => i !== first)].map((i) => (ens.members[i] as { connectString: string }).connectString).join(',');
}

const within = (nativeMs: number, kazooMs: number): boolean => nativeMs <= Math.max(1.5 * kazooMs, kazooMs + 1000);

describe('native client failover to a healthy member (binding patch)', () => {
  let ens: ZkEnsemble;
  before(async () => {
    // tickTime 1000 allows 20 s sessions, which makes a stale 1/3-timeout wait stand out.
    ens = await startZkEnsemble(3, { tickTimeMs: 1000 });
  });
  after(async () => {
    await ens?.close();
  });

  test('after kill -9 of the leader it is connected to, it reconnects about as fast as Kazoo', async (t) => {
    const sessionTimeoutMs = 20_000;
    const leader = await ens.leaderIndex();
    const native = await nativeClientOn(ens, leader, sessionTimeoutMs);
    const kazoo = await startKazooSession(hostsWithFirst(ens, leader), sessionTimeoutMs);
    try {
      assert.equal(await memberOfSession(ens, kazoo.sessionId), leader, 'kazoo connects to its first host');
      const ev = recordEvents(native);
      const t0 = Date.now();
      await ens.members[leader]?.kill();
      const nativeMs = await waitFor('native reconnect', () => ev.connects.map((t) => t - t0).find((d) => d >= 0), 30_000);
      const kazooMs = await waitFor('kazoo reconnect', () => kazoo.reconnectedAfter(t0), 30_000);
      t.diagnostic(`reconnect after killing the leader: native ${nativeMs} ms, Kazoo ${kazooMs} ms`);
      assert.equal(ev.closes.length, 0, 'the native session survived');
      assert.ok(within(nativeMs, kazooMs), `native reconnected after ${nativeMs} ms, Kazoo after ${kazooMs} ms`);
    } finally {
      native.close();
      await kazoo.close();
      await ens.members[leader]?.start();
    }
  });

  test('after SIGSTOP of its member, it reconnects right after its read timeout and keeps its session', async (t) => {
    const sessionTimeoutMs = 10_000;
    const target = ((await ens.leaderIndex()) + 1) % 3; // a follower: the quorum stays intact
    const native = await nativeClientOn(ens, target, sessionTimeoutMs);
    const kazoo = await startKazooSession(hostsWithFirst(ens, target), sessionTimeoutMs);
    try {
      const ev = recordEvents(native);
      const t0 = Date.now();
      ens.members[target]?.pause();
      const nativeMs = await waitFor('native reconnect', () => ev.connects.map((t) => t - t0).find((d) => d >= 0), 30_000);
      const kazooMs = await waitFor('kazoo reconnect', () => kazoo.reconnectedAfter(t0), 30_000);
      t.diagnostic(`reconnect after SIGSTOP of the member: native ${nativeMs} ms, Kazoo ${kazooMs} ms`);
      assert.equal(ev.closes.length, 0, 'the native session survived');
      assert.equal(kazoo.lostAfter(t0), false, 'the kazoo session survived');
      // The C client (like ZooKeeper's Java client) gives up on a silent member after 2/3 of
      // the session timeout without a reply; Kazoo pings every 1/3 and gives up when the ping is
      // unanswered at its next 1/3 tick (somewhere between 1/3 and 2/3, depending on phase). So
      // the native client must be back right after its read timeout, not a stale timer later.
      const readTimeoutMs = (sessionTimeoutMs * 2) / 3;
      assert.ok(nativeMs <= readTimeoutMs + 2000, `native reconnected after ${nativeMs} ms (Kazoo ${kazooMs} ms)`);
    } finally {
      ens.members[target]?.resume();
      native.close();
      await kazoo.close();
    }
  });
});
