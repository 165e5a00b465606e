import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { status, type ClientDuplexStream, type ServiceError } from '@grpc/grpc-js';
import { expireSession } from '../support/zk-server.js';
import { startGrpcFixture, type GrpcFixture, type GrpcTestClient } from '../support/grpc-client.js';
import { readStream, type Msg, type StreamReader } from '../support/grpc-streams.js';

let fx: GrpcFixture;
let c: GrpcTestClient;

before(async () => {
  fx = await startGrpcFixture({ tenants: [{ name: 'default', sessionTimeoutMs: 10_000 }], watch: { queueSize: 8 } });
  c = fx.client;
});
after(() => fx?.close());

function openWatch(): { stream: ClientDuplexStream<Msg, Msg>; reader: StreamReader; sub(id: string, path: string, kind?: string): void } {
  const stream = (c.services.Watch as unknown as { Watch(md: unknown): ClientDuplexStream<Msg, Msg> }).Watch(c.metadata());
  return {
    stream,
    reader: readStream(stream),
    sub: (id, path, kind = 'WATCH_KIND_DATA') => stream.write({ subscribe: { id, path, kind } }),
  };
}

const isEvent = (id: string, type?: string) => (m: Msg) =>
  m.type === 'WATCH_RESPONSE_TYPE_EVENT' && m.id === id && (type === undefined || (m.event as Msg).type === type);
const eventOf = (m: Msg): Msg => m.event as Msg;
const text = (b: unknown): string => Buffer.from(b as Buffer).toString();

/** A unary call retried while it answers UNAVAILABLE (the documented client reaction), up to 15 s. */
async function whenAvailable<T>(call: () => Promise<T>): Promise<T> {
  const end = Date.now() + 15_000;
  for (;;) {
    try {
      return await call();
    } catch (err) {
      if ((err as ServiceError).code !== status.UNAVAILABLE || Date.now() > end) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

describe('grpc Watch', () => {
  test('one stream, many subscriptions by id: current state first, then changes carrying data, stat and zxid', async () => {
    const w = openWatch();
    w.sub('cfg', '/w1/config');
    assert.deepEqual(await w.reader.next(), { type: 'WATCH_RESPONSE_TYPE_SUBSCRIBED', id: 'cfg', path: '/w1/config', kind: 'WATCH_KIND_DATA', event: null, errorCode: '', errorMessage: '' });
    const current = eventOf(await w.reader.next(isEvent('cfg')));
    assert.deepEqual([current.type, current.stat, current.zxid], ['current', null, '0']);
    await c.unary('Znodes', 'Create', { path: '/w1/config', data: Buffer.from('color=red'), createParents: true });
    const created = eventOf(await w.reader.next(isEvent('cfg')));
    assert.equal(created.type, 'created');
    assert.equal(text(created.data), 'color=red');
    assert.equal(created.zxid, (created.stat as Msg).mzxid);
    w.sub('kids', '/w1', 'WATCH_KIND_CHILDREN');
    const kids = eventOf(await w.reader.next(isEvent('kids')));
    assert.deepEqual([kids.type, kids.children], ['current', ['config']]);
    await c.unary('Znodes', 'Set', { path: '/w1/config', data: Buffer.from('color=blue') });
    const changed = eventOf(await w.reader.next(isEvent('cfg')));
    assert.deepEqual([changed.type, text(changed.data)], ['data_changed', 'color=blue']);
    assert.ok(BigInt(changed.zxid as string) > BigInt(created.zxid as string));
    await c.unary('Znodes', 'Create', { path: '/w1/other' });
    assert.deepEqual(eventOf(await w.reader.next(isEvent('kids'))).children, ['config', 'other']);
    w.stream.write({ unsubscribe: { id: 'kids' } });
    assert.equal((await w.reader.next((m) => m.type === 'WATCH_RESPONSE_TYPE_UNSUBSCRIBED')).id, 'kids');
    await c.unary('Znodes', 'Delete', { path: '/w1/config' });
    const deleted = eventOf(await w.reader.next(isEvent('cfg')));
    assert.deepEqual([deleted.type, deleted.stat], ['deleted', null]);
    await c.unary('Znodes', 'Delete', { path: '/w1/other' });
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(w.reader.pending.filter((m) => m.id === 'kids').length, 0, 'nothing arrives for an unsubscribed id');
    w.stream.end();
    assert.equal(await w.reader.ended, null);
  });

  test('a refused request gets ERROR for its id and the stream stays usable', async () => {
    const w = openWatch();
    const errorFor = (id: string) => (m: Msg) => m.type === 'WATCH_RESPONSE_TYPE_ERROR' && m.id === id;
    w.sub('bad', 'no-slash');
    assert.equal((await w.reader.next(errorFor('bad'))).errorCode, 'INVALID_PATH');
    w.sub('', '/x');
    assert.equal((await w.reader.next(errorFor(''))).errorCode, 'INVALID_ARGUMENT');
    w.stream.write({ unsubscribe: { id: 'never' } });
    assert.equal((await w.reader.next(errorFor('never'))).errorCode, 'NOT_FOUND');
    w.sub('dup', '/');
    await w.reader.next(isEvent('dup'));
    w.sub('dup', '/');
    assert.equal((await w.reader.next(errorFor('dup'))).errorCode, 'INVALID_ARGUMENT');
    w.sub('kind', '/', 'WATCH_KIND_NOPE');
    await w.reader.next((m) => m.id === 'kind' && m.type !== 'WATCH_RESPONSE_TYPE_SUBSCRIBED');
    w.sub('ok', '/');
    assert.equal(eventOf(await w.reader.next(isEvent('ok'))).type, 'current');
    w.stream.end();
  });

  test('subtree subscriptions report nodes below the path; a forced session expiry yields resync events', async () => {
    const w = openWatch();
    await c.unary('Znodes', 'Create', { path: '/w2/a', data: Buffer.from('1'), createParents: true });
    w.sub('tree', '/w2', 'WATCH_KIND_SUBTREE');
    w.sub('node', '/w2/a');
    await w.reader.next(isEvent('node', 'current'));
    await c.unary('Znodes', 'Create', { path: '/w2/a/b', data: Buffer.from('2') });
    const below = eventOf(await w.reader.next((m) => isEvent('tree', 'created')(m) && eventOf(m).path === '/w2/a/b'));
    assert.equal(text(below.data), '2');
    const session = fx.gw.gateway.tenant('default').session;
    await expireSession(fx.zk.connectString, session.sessionId, session.sessionPassword);
    const resync = eventOf(await w.reader.next(isEvent('node', 'resync'), 20_000));
    assert.equal(text(resync.data), '1');
    assert.match(resync.note as string, /.+/);
    await w.reader.next(isEvent('tree', 'resync'), 20_000);
    // A starved machine may suspend the brand-new session for a moment: UNAVAILABLE means retry.
    await whenAvailable(() => c.unary('Znodes', 'Set', { path: '/w2/a', data: Buffer.from('after') }));
    assert.equal(text(eventOf(await w.reader.next(isEvent('node', 'data_changed'))).data), 'after');
    w.stream.end();
  });

  test('a subscriber that does not read is cut with LOST SLOW_CONSUMER while the stream goes on', async () => {
    const w = openWatch();
    await whenAvailable(() => c.unary('Znodes', 'Create', { path: '/w3/big', createParents: true }));
    w.sub('slow', '/w3/big');
    await w.reader.next(isEvent('slow', 'current'));
    // Stop reading: HTTP/2 flow control pushes back on the gateway. About 32 messages fit in the
    // stream buffers on both sides and 8 in the subscription's queue; the next one cuts it.
    w.stream.pause();
    const blob = Buffer.alloc(20_000, 'x');
    for (let i = 0; i < 70; i++) {
      await whenAvailable(() => c.unary('Znodes', 'Set', { path: '/w3/big', data: blob }));
    }
    w.stream.resume();
    const lost = await w.reader.next((m) => m.type === 'WATCH_RESPONSE_TYPE_LOST' && m.id === 'slow', 15_000);
    assert.equal(lost.errorCode, 'SLOW_CONSUMER');
    w.sub('again', '/w3/big');
    assert.equal(eventOf(await w.reader.next(isEvent('again'))).type, 'current');
    w.stream.end();
  });
});
