import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { status, type ClientDuplexStream, type ServiceError } from '@grpc/grpc-js';
import type { RunningGateway } from '../../src/main.js';
import { expireSession, type ZkStandalone } from '../support/zk-server.js';
import { readStream, type Msg } from '../support/grpc-streams.js';
import { errorCode, startGrpcFixture, type GrpcFixture, type GrpcTestClient } from '../support/grpc-client.js';

type Stat = { czxid: string; mzxid: string; version: number; aversion: number; ephemeralOwner: string; dataLength: number; numChildren: number; ctimeMs: number };

let fx: GrpcFixture;
let zk: ZkStandalone;
let gw: RunningGateway;
let c: GrpcTestClient;

before(async () => {
  fx = await startGrpcFixture({
    grpc: { maxMessageBytes: 64 * 1024, maxConcurrentStreams: 8 },
    limits: { maxDataBytes: 4096, maxRecursiveDeleteNodes: 5 },
    tenants: [
      { name: 'default', sessionTimeoutMs: 10_000 },
      { name: 'acme', chroot: '/tenants/acme', sessionTimeoutMs: 10_000 },
    ],
  });
  ({ zk, gw, client: c } = fx);
});

after(() => fx?.close());

/** Asserts that `p` fails with gRPC `code` and zkgate error `zkCode`. */
async function rejectsWith(p: Promise<unknown>, code: status, zkCode?: string): Promise<ServiceError> {
  try {
    await p;
  } catch (err) {
    const e = err as ServiceError;
    assert.equal(e.code, code, `gRPC ${status[e.code]} (${e.details}), wanted ${status[code]}`);
    if (zkCode) assert.equal(errorCode(e), zkCode, e.details);
    return e;
  }
  assert.fail(`expected ${status[code]}`);
}

describe('grpc Znodes', () => {
  test('create, get, exists, children, set, delete round-trip raw bytes and the full stat', async () => {
    const bytes = Buffer.from([0, 255, 1, 128, 10]);
    const created = await c.unary<{ path: string }>('Znodes', 'Create', { path: '/rt/a', data: bytes, createParents: true });
    assert.equal(created.path, '/rt/a');
    const got = await c.unary<{ path: string; data: Buffer; stat: Stat }>('Znodes', 'Get', { path: '/rt/a' });
    assert.deepEqual(Buffer.from(got.data), bytes);
    assert.match(got.stat.czxid, /^\d+$/);
    assert.equal(typeof got.stat.czxid, 'string');
    assert.equal(got.stat.dataLength, 5);
    assert.equal(got.stat.ephemeralOwner, '0');
    assert.ok(got.stat.ctimeMs > Date.now() - 60_000);

    const seq = await c.unary<{ path: string }>('Znodes', 'Create', { path: '/rt/q-', mode: 'CREATE_MODE_PERSISTENT_SEQUENTIAL' });
    assert.match(seq.path, /^\/rt\/q-\d{10}$/);
    const kids = await c.unary<{ children: { name: string; stat: Stat | null }[]; stat: Stat }>('Znodes', 'Children', { path: '/rt', withStats: true });
    assert.deepEqual(kids.children.map((k) => k.name), ['a', seq.path.slice(4)]);
    assert.equal(kids.children[0]?.stat?.dataLength, 5);
    assert.equal(kids.stat.numChildren, 2);
    const bare = await c.unary<{ children: { name: string; stat: Stat | null }[] }>('Znodes', 'Children', { path: '/rt' });
    assert.equal(bare.children[0]?.stat, null);

    const set = await c.unary<{ stat: Stat }>('Znodes', 'Set', { path: '/rt/a', data: Buffer.from('v2'), version: { value: 0 } });
    assert.equal(set.stat.version, 1);
    const ex = await c.unary<{ exists: boolean; stat: Stat }>('Znodes', 'Exists', { path: '/rt/a' });
    assert.equal(ex.exists, true);
    assert.equal(ex.stat.version, 1);
    await c.unary('Znodes', 'Delete', { path: '/rt/a', version: { value: 1 } });
    const gone = await c.unary<{ exists: boolean; stat: Stat | null }>('Znodes', 'Exists', { path: '/rt/a' });
    assert.deepEqual(gone, { exists: false, stat: null });
    await c.unary('Znodes', 'Delete', { path: '/rt', recursive: true });
    await rejectsWith(c.unary('Znodes', 'Get', { path: '/rt' }), status.NOT_FOUND, 'NO_NODE');
  });

  test('ACL get and set with zkCli letters, compare-and-set on aversion, and sync', async () => {
    await c.unary('Znodes', 'Create', { path: '/acl-a' });
    const acl = await c.unary<{ acl: Msg[]; stat: Stat }>('Znodes', 'GetAcl', { path: '/acl-a' });
    assert.deepEqual(acl.acl, [{ scheme: 'world', id: 'anyone', perms: 'cdrwa' }]);
    const set = await c.unary<{ acl: Msg[]; stat: Stat }>('Znodes', 'SetAcl', {
      path: '/acl-a',
      acl: [{ scheme: 'world', id: 'anyone', perms: 'rwa' }],
      version: { value: 0 },
    });
    assert.deepEqual(set.acl, [{ scheme: 'world', id: 'anyone', perms: 'rwa' }]);
    assert.equal(set.stat.aversion, 1);
    await rejectsWith(c.unary('Znodes', 'SetAcl', { path: '/acl-a', acl: [{ scheme: 'world', id: 'anyone', perms: 'r' }], version: { value: 0 } }), status.ABORTED, 'BAD_VERSION');
    assert.deepEqual(await c.unary('Znodes', 'Sync', { path: '/acl-a' }), { path: '/acl-a', synced: true });
  });

  // The codes themselves, and the gRPC status each maps to, are proven on every transport by
  // test/contract (znodes.test.ts, errors.test.ts; the contract client checks the status against
  // src/api/error-table.ts). Here: what only a protobuf request can carry.
  test('protobuf-only input: an empty request, an unknown enum value, a TTL wrapper without a TTL mode, ACL letters; details in zkgate-error-details', async () => {
    await rejectsWith(c.unary('Znodes', 'Get', {}), status.INVALID_ARGUMENT, 'INVALID_PATH');
    const e = await rejectsWith(c.unary('Znodes', 'Create', { path: '/errs/t', ttlMs: { value: 1000 } }), status.INVALID_ARGUMENT, 'INVALID_ARGUMENT');
    assert.equal(e.metadata.get('zkgate-error-details')[0], '{"field":"ttlMs"}');
    await rejectsWith(c.unary('Znodes', 'Create', { path: '/errs/m', mode: 99 }), status.INVALID_ARGUMENT, 'INVALID_ARGUMENT');
    await c.unary('Znodes', 'Create', { path: '/errs' });
    await rejectsWith(c.unary('Znodes', 'SetAcl', { path: '/errs', acl: [{ scheme: 'world', id: 'anyone', perms: 'rx' }] }), status.INVALID_ARGUMENT, 'INVALID_ARGUMENT');
    await rejectsWith(c.unary('Znodes', 'SetAcl', { path: '/errs', acl: [] }), status.INVALID_ARGUMENT, 'INVALID_ARGUMENT');
    assert.deepEqual((await c.unary<{ acl: Msg[] }>('Znodes', 'GetAcl', { path: '/errs' })).acl, [{ scheme: 'world', id: 'anyone', perms: 'cdrwa' }], 'refused ACLs changed nothing');
    for (const p of ['/errs/t', '/errs/m']) assert.equal((await c.unary<{ exists: boolean }>('Znodes', 'Exists', { path: p })).exists, false);
  });

  test('metadata zkgate-tenant selects the tenant and its chroot; an unknown tenant is NOT_FOUND', async () => {
    await c.unary('Znodes', 'Create', { path: '/only-acme', data: Buffer.from('a') }, { tenant: 'acme' });
    assert.equal((await c.unary<{ exists: boolean }>('Znodes', 'Exists', { path: '/tenants/acme/only-acme' })).exists, true);
    assert.equal((await c.unary<{ exists: boolean }>('Znodes', 'Exists', { path: '/only-acme' })).exists, false);
    await rejectsWith(c.unary('Znodes', 'Get', { path: '/' }, { tenant: 'nobody' }), status.NOT_FOUND, 'NOT_FOUND');
  });
});

function keepAliveStream(): { stream: ClientDuplexStream<Msg, Msg>; next(pred?: (m: Msg) => boolean, timeoutMs?: number): Promise<Msg> } {
  const client = c.services.Leases as unknown as { KeepAlive(md: unknown): ClientDuplexStream<Msg, Msg> };
  const stream = client.KeepAlive(c.metadata());
  return { stream, next: readStream(stream).next };
}

describe('grpc Leases', () => {
  test('keepalive stream keeps a lease past its TTL, answers errors in-stream and reports expiry in the stream', async () => {
    const lease = await c.unary<{ id: string }>('Leases', 'Grant', { ttlMs: 1000 });
    const ka = keepAliveStream();
    for (let i = 0; i < 4; i++) {
      ka.stream.write({ id: lease.id });
      const m = await ka.next();
      assert.equal(m.type, 'KEEPALIVE_TYPE_REFRESHED');
      assert.equal((m.lease as Msg).state, 'LEASE_STATE_ACTIVE');
      await new Promise((r) => setTimeout(r, 400));
    }
    ka.stream.write({ id: 'unknown.lease' });
    const err = await ka.next();
    assert.deepEqual([err.type, err.id, err.errorCode], ['KEEPALIVE_TYPE_ERROR', 'unknown.lease', 'LEASE_NOT_FOUND']);
    // Stop sending: the lease expires and the stream says so.
    const expired = await ka.next((m) => m.type === 'KEEPALIVE_TYPE_STATE', 5000);
    assert.equal((expired.lease as Msg).state, 'LEASE_STATE_EXPIRED');
    assert.equal((expired.lease as Msg).reason, 'keepalive_missed');
    ka.stream.write({ id: lease.id });
    const after = await ka.next();
    assert.deepEqual([after.type, after.errorCode], ['KEEPALIVE_TYPE_ERROR', 'LEASE_EXPIRED']);
    ka.stream.end();
  });

  test('a forced session expiry is reported as LOST in the keepalive stream and its ephemeral is gone', async () => {
    const lease = await c.unary<{ id: string }>('Leases', 'Grant', { ttlMs: 30_000 });
    await c.unary('Znodes', 'Create', { path: '/lost-eph', mode: 'CREATE_MODE_EPHEMERAL', leaseId: lease.id });
    const ka = keepAliveStream();
    ka.stream.write({ id: lease.id });
    assert.equal((await ka.next()).type, 'KEEPALIVE_TYPE_REFRESHED');
    const session = gw.gateway.tenant('default').session;
    await expireSession(zk.connectString, session.sessionId, session.sessionPassword);
    const lost = await ka.next((m) => m.type === 'KEEPALIVE_TYPE_STATE' && (m.lease as Msg).state === 'LEASE_STATE_LOST', 15_000);
    assert.equal((lost.lease as Msg).reason, 'session_expired');
    ka.stream.write({ id: lease.id });
    assert.deepEqual((await ka.next()).errorCode, 'LEASE_LOST');
    // The new session serves again; the lost lease's ephemeral is gone.
    await waitFor(async () => (await c.unary<{ exists: boolean }>('Znodes', 'Exists', { path: '/lost-eph' }).catch(() => ({ exists: true }))).exists === false);
    ka.stream.end();
  });
});

async function waitFor(cond: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) assert.fail('condition not met in time');
    await new Promise((r) => setTimeout(r, 100));
  }
}
