import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { status, type ClientReadableStream, type ClientUnaryCall, type ServiceError } from '@grpc/grpc-js';
import { errorCode, startGrpcFixture, type GrpcFixture, type GrpcTestClient } from '../support/grpc-client.js';
import { readStream, type Msg } from '../support/grpc-streams.js';

let fx: GrpcFixture;
let c: GrpcTestClient;

before(async () => {
  fx = await startGrpcFixture({ tenants: [{ name: 'default', sessionTimeoutMs: 10_000 }] });
  c = fx.client;
});
after(() => fx?.close());

async function grant(ttlMs = 10_000): Promise<string> {
  return (await c.unary<{ id: string }>('Leases', 'Grant', { ttlMs })).id;
}

async function failure(p: Promise<unknown>): Promise<ServiceError> {
  try {
    await p;
  } catch (err) {
    return err as ServiceError;
  }
  assert.fail('the call succeeded');
}

async function queueOf(path: string, flavour = 'LOCK_FLAVOUR_CURATOR'): Promise<{ holder: Msg | null; queue: Msg[] }> {
  return c.unary('Locks', 'Inspect', { path, flavour });
}

async function eventually(cond: () => Promise<boolean>, what: string, timeoutMs = 3000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) assert.fail(what);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Starts a unary call that can be cancelled. */
function startAcquire(req: Msg): { call: ClientUnaryCall; result: Promise<Msg> } {
  let call!: ClientUnaryCall;
  const result = new Promise<Msg>((resolve, reject) => {
    const client = c.services.Locks as unknown as Record<string, (r: Msg, md: unknown, o: unknown, cb: (e: ServiceError | null, r: Msg) => void) => ClientUnaryCall>;
    call = client.Acquire!.call(client, req, c.metadata(), {}, (e, r) => (e ? reject(e) : resolve(r)));
  });
  return { call, result };
}

describe('grpc Locks', () => {

  test('the call deadline is the wait: the gateway answers ABORTED LOCK_NOT_ACQUIRED with the holder before it, and no waiter node is left; wait_ms 0 is a try-lock', async () => {
    const [a, b] = [await grant(), await grant()];
    const holder = await c.unary<{ node: string; fencingToken: string }>('Locks', 'Acquire', { path: '/locks/dl', leaseId: a }, { deadlineMs: 5000 });
    // Not DEADLINE_EXCEEDED (a transport timeout): core ends the wait a margin before the deadline.
    const late = await failure(c.unary('Locks', 'Acquire', { path: '/locks/dl', leaseId: b }, { deadlineMs: 6000 }));
    assert.deepEqual([late.code, errorCode(late)], [status.ABORTED, 'LOCK_NOT_ACQUIRED'], late.details);
    const details = JSON.parse(String(late.metadata.get('zkgate-error-details')[0])) as Record<string, string>;
    assert.equal(details.holder, holder.node);
    assert.equal(details.holderFencingToken, holder.fencingToken);
    await eventually(async () => (await queueOf('/locks/dl')).queue.length === 1, 'the timed-out waiter node is deleted');
    const ttl = await c.unary<{ owned: Msg[] }>('Leases', 'TimeToLive', { id: b });
    assert.deepEqual(ttl.owned, []);
    const tried = await failure(c.unary('Locks', 'Acquire', { path: '/locks/dl', leaseId: b, waitMs: { value: 0 } }, { deadlineMs: 5000 }));
    assert.deepEqual([tried.code, errorCode(tried)], [status.ABORTED, 'LOCK_NOT_ACQUIRED']);
    assert.equal((await queueOf('/locks/dl')).queue.length, 1);
  });

  test('kazoo flavour names nodes like Kazoo; lease and input errors map to their statuses', async () => {
    const a = await grant();
    const held = await c.unary<{ node: string; flavour: string }>('Locks', 'Acquire', { path: '/locks/kz', leaseId: a, flavour: 'LOCK_FLAVOUR_KAZOO' }, { deadlineMs: 5000 });
    assert.match(held.node, /^\/locks\/kz\/[0-9a-f]{32}__lock__\d{10}$/);
    assert.equal(held.flavour, 'LOCK_FLAVOUR_KAZOO');
    assert.equal(((await queueOf('/locks/kz', 'LOCK_FLAVOUR_KAZOO')).holder as Msg).node, held.node);
    const cases: [Msg, status, string][] = [
      [{ path: '/locks/x', leaseId: 'nope.1' }, status.NOT_FOUND, 'LEASE_NOT_FOUND'],
      [{ path: '/locks/x' }, status.INVALID_ARGUMENT, 'INVALID_ARGUMENT'],
      [{ path: 'locks', leaseId: a }, status.INVALID_ARGUMENT, 'INVALID_PATH'],
      [{ path: '/locks/x', leaseId: a, flavour: 7 }, status.INVALID_ARGUMENT, 'INVALID_ARGUMENT'],
      [{ path: '/locks/x', leaseId: a, waitMs: { value: -1 } }, status.INVALID_ARGUMENT, 'INVALID_ARGUMENT'],
    ];
    for (const [req, code, zk] of cases) {
      const e = await failure(c.unary('Locks', 'Acquire', req, { deadlineMs: 5000 }));
      assert.deepEqual([e.code, errorCode(e)], [code, zk], JSON.stringify(req));
    }
    await c.unary('Leases', 'Revoke', { id: a });
    const ended = await failure(c.unary('Locks', 'Acquire', { path: '/locks/x', leaseId: a }, { deadlineMs: 5000 }));
    assert.deepEqual([ended.code, errorCode(ended)], [status.FAILED_PRECONDITION, 'LEASE_REVOKED']);
    assert.equal((await queueOf('/locks/kz', 'LOCK_FLAVOUR_KAZOO')).holder, null);
  });
});

describe('grpc Elections', () => {
  test('observe sends the current state first, then every change including no leader; campaign waits for leadership', async () => {
    const [a, b] = [await grant(), await grant()];
    const observe = (c.services.Elections as unknown as { Observe(r: Msg, md: unknown): ClientReadableStream<Msg> }).Observe({ path: '/elect/e1' }, c.metadata());
    const seen = readStream(observe);
    const leaderOf = (m: Msg): string | null => (m.leader ? Buffer.from((m.leader as Msg).value as Buffer).toString() : null);
    assert.equal(leaderOf(await seen.next()), null);
    const won = await c.unary<{ node: string; term: string; electionPath: string; value: Buffer }>('Elections', 'Campaign', { path: '/elect/e1', leaseId: a, value: Buffer.from('alpha') }, { deadlineMs: 5000 });
    assert.equal(won.electionPath, '/elect/e1');
    assert.equal(leaderOf(await seen.next()), 'alpha');
    const second = c.unary<{ node: string; term: string }>('Elections', 'Campaign', { path: '/elect/e1', leaseId: b, value: Buffer.from('beta') }, { deadlineMs: 10_000 });
    const notLeader = await failure(c.unary('Elections', 'Proclaim', { path: '/elect/e1', node: won.node, leaseId: b, value: Buffer.from('x') }));
    assert.deepEqual([notLeader.code, errorCode(notLeader)], [status.FAILED_PRECONDITION, 'NOT_LEADER']);
    await c.unary('Elections', 'Proclaim', { path: '/elect/e1', node: won.node, leaseId: a, value: Buffer.from('alpha-2') });
    assert.equal(leaderOf(await seen.next()), 'alpha-2');
    const leader = await c.unary<Msg>('Elections', 'Leader', { path: '/elect/e1' });
    assert.equal(leaderOf(leader), 'alpha-2');
    assert.equal((leader.leader as Msg).term, won.term);
    const resigned = await c.unary<{ resigned: boolean; reason: string }>('Elections', 'Resign', { path: '/elect/e1', node: won.node, leaseId: a });
    assert.deepEqual([resigned.resigned, resigned.reason], [true, 'deleted']);
    const next = await second;
    assert.ok(BigInt(next.term) > BigInt(won.term));
    assert.equal(leaderOf(await seen.next()), 'beta');
    await c.unary('Elections', 'Resign', { path: '/elect/e1', node: next.node, leaseId: b });
    assert.equal(leaderOf(await seen.next()), null);
    observe.cancel();
  });

  test('a campaign past its deadline answers ABORTED NOT_ELECTED naming the leader and withdraws its candidacy', async () => {
    const [a, b] = [await grant(), await grant()];
    const leader = await c.unary<{ node: string }>('Elections', 'Campaign', { path: '/elect/e2', leaseId: a }, { deadlineMs: 5000 });
    const e = await failure(c.unary('Elections', 'Campaign', { path: '/elect/e2', leaseId: b }, { deadlineMs: 6000 }));
    assert.deepEqual([e.code, errorCode(e)], [status.ABORTED, 'NOT_ELECTED'], e.details);
    assert.equal((JSON.parse(String(e.metadata.get('zkgate-error-details')[0])) as Record<string, string>).leader, leader.node);
    await eventually(async () => (await c.unary<{ children: Msg[] }>('Znodes', 'Children', { path: '/elect/e2' })).children.length === 1, 'the candidate node is deleted');
    const tried = await failure(c.unary('Elections', 'Campaign', { path: '/elect/e2', leaseId: b, waitMs: { value: 0 } }, { deadlineMs: 5000 }));
    assert.deepEqual([tried.code, errorCode(tried)], [status.ABORTED, 'NOT_ELECTED']);
  });
});
