import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ZkSession, ZkError, type StateChange } from '../../src/zk/index.js';
import { expireSession, startZkServer, type ZkStandalone } from '../support/zk-server.js';

function nextState(s: ZkSession, want: StateChange['state'], timeoutMs = 15_000): Promise<StateChange> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no ${want} within ${timeoutMs} ms (now ${s.state})`)), timeoutMs);
    const on = (c: StateChange): void => {
      if (c.state !== want) return;
      clearTimeout(t);
      s.off('state', on);
      resolve(c);
    };
    s.on('state', on);
  });
}

describe('zk session layer', () => {
  let zk: ZkStandalone;
  before(async () => {
    zk = await startZkServer();
  });
  after(async () => {
    await zk.close();
  });

  test('typed operations and typed errors against a real server', async () => {
    const s = new ZkSession({ connect: zk.connectString, sessionTimeoutMs: 4000 });
    await s.start();
    const c = s.client();
    assert.equal(await c.create('/typed', Buffer.from('v1'), 'persistent'), '/typed');
    const seq = await c.create('/typed/q-', Buffer.alloc(0), 'persistent_sequential');
    assert.match(seq, /^\/typed\/q-\d{10}$/);
    const got = await c.get('/typed');
    assert.equal(got.data.toString(), 'v1');
    assert.equal(typeof got.stat.czxid, 'string');
    assert.equal(got.stat.numChildren, 1);
    assert.equal(await c.exists('/typed/none'), null);
    await assert.rejects(c.get('/typed/none'), (e: unknown) => e instanceof ZkError && e.code === 'NO_NODE');
    await assert.rejects(c.create('/typed', Buffer.alloc(0), 'persistent'), (e: unknown) => e instanceof ZkError && e.code === 'NODE_EXISTS');
    await assert.rejects(c.set('/typed', Buffer.from('x'), 7), (e: unknown) => e instanceof ZkError && e.code === 'BAD_VERSION');
    await assert.rejects(c.delete('/typed'), (e: unknown) => e instanceof ZkError && e.code === 'NOT_EMPTY');
    await assert.rejects(c.getAcl('/typed/none'), (e: unknown) => e instanceof ZkError && e.code === 'NO_NODE');
    const ttl = await c.create('/typed-ttl', Buffer.alloc(0), 'ttl', 60_000);
    assert.equal(ttl, '/typed-ttl');
    await c.create('/typed-container', Buffer.alloc(0), 'container');
    const { acl } = await c.getAcl('/typed');
    assert.deepEqual(acl, [{ perms: 31, scheme: 'world', id: 'anyone' }]);
    const fired = new Promise((r) => void c.get('/typed', r));
    await c.set('/typed', Buffer.from('v2'));
    assert.deepEqual(await fired, { type: 'changed', path: '/typed' });
    s.close();
    assert.equal(s.state, 'closed');
  });

  test('a forced expiry is reported and a new session replaces the old one; its ephemerals are gone', async () => {
    const s = new ZkSession({ connect: zk.connectString, sessionTimeoutMs: 4000 });
    const states: string[] = [];
    s.on('state', (c: StateChange) => states.push(c.state));
    await s.start();
    const firstId = s.sessionId;
    assert.equal(s.generation, 1);
    await s.client().create('/eph-of-first', Buffer.alloc(0), 'ephemeral');
    const expired = nextState(s, 'expired');
    const connected = nextState(s, 'connected');
    await expireSession(zk.connectString, firstId, s.sessionPassword);
    const e = await expired;
    assert.equal(e.sessionId, firstId);
    const c2 = await connected;
    assert.equal(c2.generation, 2);
    assert.notEqual(s.sessionId, firstId);
    assert.equal(await s.client().exists('/eph-of-first'), null);
    assert.ok(states.indexOf('expired') < states.lastIndexOf('connected'));
    s.close();
  });

  test('while the server is down the session is suspended and calls fail fast; it comes back as reconnected', async () => {
    const own = await startZkServer();
    try {
      const s = new ZkSession({ connect: own.connectString, sessionTimeoutMs: 8000 });
      await s.start();
      const id = s.sessionId;
      await s.client().create('/survivor', Buffer.alloc(0), 'ephemeral');
      const suspended = nextState(s, 'suspended');
      await own.stop();
      await suspended;
      const t0 = Date.now();
      assert.throws(() => s.client(), (e: unknown) => e instanceof ZkError && e.code === 'CONNECTION_LOSS');
      assert.ok(Date.now() - t0 < 100);
      const back = nextState(s, 'reconnected');
      await own.start();
      await back;
      assert.equal(s.sessionId, id);
      assert.notEqual(await s.client().exists('/survivor'), null);
      s.close();
    } finally {
      await own.close();
    }
  });
});
