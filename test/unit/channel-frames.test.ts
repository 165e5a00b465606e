/**
 * The internal channel's persistent connection (src/core/cluster/frames.ts), on real loopback
 * sockets: a `ChannelClient` calling a `FrameServer` behind a plain node:http server (what the
 * cluster listener is), with a handler standing for the owner's facade. Covers multiplexing,
 * cancellation both ways, the connection dropping, refused, the fallback to POSTs for a peer of
 * the previous version, and hostile peers: unsigned, forged and replayed upgrades (401, nothing
 * runs), forged, replayed and oversized frames, garbage and frames after the close.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { WebSocket, type RawData } from 'ws';
import { CALL_PATH, ChannelClient, ChannelError, ChannelVerifier, readBody, secretKey, sign } from '../../src/core/cluster/channel.js';
import { connectionKey, FRAMES_PATH, FrameServer, seal, type FrameHandler } from '../../src/core/cluster/frames.js';
import { ZkgateError } from '../../src/core/errors.js';

const SECRET = 'frames-test-secret-0123456789abcdef';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Owner {
  readonly base: string;
  readonly server: Server;
  readonly frames: FrameServer;
  /** TCP connections accepted so far. */
  readonly accepted: () => number;
  /** Call bodies the handler ran. */
  readonly ran: string[];
  close(): Promise<void>;
}

/**
 * An owner: `handler` runs framed calls; POSTs to /cluster/v1/call are answered `{"ok":"post"}`
 * (so a test sees which way a call went).
 */
async function owner(handler: FrameHandler = async (body, _gone, reply) => reply({ ok: JSON.parse(body) as unknown }), port = 0): Promise<Owner> {
  const ran: string[] = [];
  const frames = new FrameServer(
    secretKey(SECRET),
    new ChannelVerifier(SECRET),
    (body, gone, reply) => (ran.push(body), handler(body, gone, reply)),
    () => undefined,
  );
  let accepted = 0;
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => void readBody(req).then(() => res.writeHead(200).end('{"ok":"post"}')));
  server.on('connection', (s: Socket) => (accepted++, sockets.add(s), s.once('close', () => sockets.delete(s))));
  server.on('upgrade', (req: IncomingMessage, socket, head: Buffer) => frames.upgrade(req, socket, head));
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    server,
    frames,
    accepted: () => accepted,
    ran,
    close: async () => {
      server.close();
      await frames.close(200);
      for (const s of sockets) s.destroy();
    },
  };
}

/** Signed upgrade headers as a peer sends them (`nonce` fixed to replay them). */
function upgradeHeaders(nonce = Buffer.from(Array.from({ length: 12 }, () => Math.floor(Math.random() * 256))).toString('hex'), signature?: string): Record<string, string> {
  const time = String(Date.now());
  return {
    'x-zkgate-cluster-from': 'peer',
    'x-zkgate-cluster-time': time,
    'x-zkgate-cluster-nonce': nonce,
    'x-zkgate-cluster-signature': signature ?? sign(SECRET, time, nonce, 'peer', FRAMES_PATH, ''),
  };
}

/** A hand-played peer: opens the connection, answers the status it got, or the socket and its key. */
function rawPeer(base: string, headers: Record<string, string>, maxPayload?: number): Promise<{ status: number } | { ws: WebSocket; key: ReturnType<typeof secretKey> }> {
  const ws = new WebSocket(`${base.replace('http', 'ws')}${FRAMES_PATH}`, { headers, perMessageDeflate: false, ...(maxPayload ? { maxPayload } : {}) });
  return new Promise((resolve, reject) => {
    let serverNonce = '';
    ws.once('upgrade', (res) => void (serverNonce = String(res.headers['x-zkgate-cluster-nonce'])));
    ws.once('unexpected-response', (req, res) => (req.destroy(), resolve({ status: res.statusCode ?? 0 })));
    ws.once('open', () => resolve({ ws, key: connectionKey(secretKey(SECRET), 'peer', headers['x-zkgate-cluster-nonce'] as string, serverNonce) }));
    ws.once('error', reject);
    ws.on('error', () => undefined); // later errors (the owner closing on us) are what the tests look at
  });
}

/** The close code once `ws` closed; 1000 ("not closed by the owner") if it is still open after 5 s. */
const closed = (ws: WebSocket): Promise<number> =>
  ws.readyState === WebSocket.CLOSED
    ? Promise.resolve(-1)
    : new Promise((r) => {
        const t = setTimeout(() => r(1000), 5000);
        ws.once('close', (code: number) => (clearTimeout(t), r(code)));
      });
/** Resolves once `s` aborted; rejects after 5 s. */
const aborted = (s: AbortSignal | undefined): Promise<void> =>
  new Promise((resolve, reject) => {
    if (s?.aborted) return resolve();
    const t = setTimeout(() => reject(new Error('not cancelled on the owner')), 5000);
    s?.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
  });
const callBody = (n: number): { tenant: string; keyId: string; op: string; args: number[] } => ({ tenant: 't', keyId: 'k', op: 'x.y', args: [n] });

test('many calls at once go over one connection, each answer matched to its call', async () => {
  const o = await owner(async (body, _gone, reply) => {
    await sleep(Math.random() * 20); // answers come back out of order
    reply({ ok: JSON.parse(body) as unknown });
  });
  const client = new ChannelClient(SECRET, 'caller');
  try {
    const answers = await Promise.all(Array.from({ length: 300 }, (_, i) => client.call(o.base, CALL_PATH, callBody(i), { timeoutMs: 10_000 })));
    answers.forEach((a, i) => assert.deepEqual(a, { ok: callBody(i) }));
    assert.equal(o.accepted(), 1, 'one TCP connection for 300 calls');
    assert.equal(o.ran.length, 300);
  } finally {
    client.close();
    await o.close();
  }
});

test("the caller's signal aborting cancels the call on the owner; the owner's answer after it is dropped", async () => {
  let ownerSignal: AbortSignal | undefined;
  const o = await owner(async (body, gone, reply) => {
    if (!body.includes('"args":[1]')) return reply({ ok: 'next' });
    ownerSignal = gone().signal;
    await new Promise((r) => ownerSignal?.addEventListener('abort', r, { once: true }));
    reply({ ok: 'late' });
  });
  const client = new ChannelClient(SECRET, 'caller');
  try {
    const ac = new AbortController();
    const call = client.call(o.base, CALL_PATH, callBody(1), { signal: ac.signal });
    while (!ownerSignal) await sleep(5);
    ac.abort(new Error('client went away'));
    await assert.rejects(call, /client went away/);
    await aborted(ownerSignal);
    assert.ok(ownerSignal.reason instanceof ZkgateError && ownerSignal.reason.code === 'CANCELLED', 'cancelled on the owner');
    // The connection is still good for the next call.
    assert.deepEqual(await client.call(o.base, CALL_PATH, callBody(2), { timeoutMs: 5000 }), { ok: 'next' });
    assert.equal(o.accepted(), 1);
  } finally {
    client.close();
    await o.close();
  }
});

test("the connection dropping fails the caller's open calls ('failed') and cancels them on the owner", async () => {
  const signals: AbortSignal[] = [];
  const o = await owner(async (_body, gone) => void signals.push(gone().signal)); // never answers
  const client = new ChannelClient(SECRET, 'caller');
  try {
    const calls = [1, 2, 3].map((n) => client.call(o.base, CALL_PATH, callBody(n), { signal: new AbortController().signal }));
    while (signals.length < 3) await sleep(5);
    client.close(); // the caller's side goes away: the owner cancels all three
    for (const c of calls) await assert.rejects(c, (e: unknown) => e instanceof ChannelError && e.kind === 'failed');
    await Promise.all(signals.map(aborted));

    // And the other way: the owner's side drops (its connections are destroyed).
    const client2 = new ChannelClient(SECRET, 'caller');
    const call = client2.call(o.base, CALL_PATH, callBody(4), { signal: new AbortController().signal });
    while (signals.length < 4) await sleep(5);
    await o.close();
    await assert.rejects(call, (e: unknown) => e instanceof ChannelError && e.kind === 'failed');
    // Nothing listens now: refused, as a POST would be (how cluster.ts tells instance_gone).
    await assert.rejects(client2.call(o.base, CALL_PATH, callBody(5), { timeoutMs: 5000 }), (e: unknown) => e instanceof ChannelError && e.kind === 'refused');
    client2.close();
  } finally {
    client.close();
    await o.close();
  }
});

test('a peer of the previous version (POSTs only: the upgrade is answered 401) is called with POSTs; one upgrade attempt', async () => {
  let upgrades = 0;
  let posts = 0;
  // What an older zkgate's cluster listener does: every request is a POST to Cluster.handle, a GET is 401.
  const old = createServer((req, res) => {
    if (req.method !== 'POST') return void (upgrades++, res.writeHead(401, { connection: 'close' }).end());
    posts++;
    void readBody(req).then(() => res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":"old"}'));
  });
  await new Promise<void>((r) => old.listen(0, '127.0.0.1', r));
  const client = new ChannelClient(SECRET, 'caller');
  try {
    const base = `http://127.0.0.1:${(old.address() as AddressInfo).port}`;
    for (let i = 0; i < 5; i++) assert.deepEqual(await client.call(base, CALL_PATH, callBody(i), { timeoutMs: 5000 }), { ok: 'old' });
    assert.deepEqual([upgrades, posts], [1, 5]);
  } finally {
    client.close();
    old.close();
  }
});

test('an unsigned, forged, stale or replayed upgrade is answered 401 and nothing runs', async () => {
  const o = await owner();
  try {
    const good = upgradeHeaders();
    const first = await rawPeer(o.base, good);
    assert.ok('ws' in first, 'a signed upgrade is taken');
    first.ws.terminate();
    assert.deepEqual(await rawPeer(o.base, good), { status: 401 }, 'replayed (nonce seen)');
    assert.deepEqual(await rawPeer(o.base, {}), { status: 401 }, 'unsigned');
    assert.deepEqual(await rawPeer(o.base, upgradeHeaders(undefined, 'cd'.repeat(32))), { status: 401 }, 'forged');
    const stale = upgradeHeaders();
    stale['x-zkgate-cluster-time'] = String(Date.now() - 120_000);
    stale['x-zkgate-cluster-signature'] = sign(SECRET, stale['x-zkgate-cluster-time'], stale['x-zkgate-cluster-nonce'] as string, 'peer', FRAMES_PATH, '');
    assert.deepEqual(await rawPeer(o.base, stale), { status: 401 }, 'stale');
    // Signed for another path (a POST's signature used for the upgrade).
    const other = upgradeHeaders();
    other['x-zkgate-cluster-signature'] = sign(SECRET, other['x-zkgate-cluster-time'] as string, other['x-zkgate-cluster-nonce'] as string, 'peer', CALL_PATH, '');
    assert.deepEqual(await rawPeer(o.base, other), { status: 401 }, 'signed for another path');
    assert.deepEqual(o.ran, []);
  } finally {
    await o.close();
  }
});

test('forged, replayed, reordered frames and garbage close the connection before anything runs; its running calls are cancelled', async () => {
  const signals: AbortSignal[] = [];
  const o = await owner(async (body, gone, reply) => {
    if (body.includes('wait')) return void signals.push(gone().signal);
    reply({ ok: 1 });
  });
  try {
    const answers = (ws: WebSocket): RawData[] => {
      const got: RawData[] = [];
      ws.on('message', (d: RawData) => got.push(d));
      return got;
    };
    // A valid call, then the same frame again (replayed): the first runs, the replay closes it.
    let p = await rawPeer(o.base, upgradeHeaders());
    assert.ok('ws' in p);
    answers(p.ws);
    const frame0 = seal(p.key, 0, 0, 'C1 "wait"');
    p.ws.send(frame0);
    while (signals.length < 1) await sleep(5);
    p.ws.send(frame0);
    assert.notEqual(await closed(p.ws), 1000);
    await aborted(signals[0]);
    assert.equal(o.ran.length, 1, 'the replay did not run');

    // Forged: a frame sealed with the cluster secret itself, not the connection key.
    p = await rawPeer(o.base, upgradeHeaders());
    assert.ok('ws' in p);
    p.ws.send(seal(secretKey(SECRET), 0, 0, 'C1 "forged"'));
    assert.notEqual(await closed(p.ws), 1000);

    // Reordered: counter 1 first.
    p = await rawPeer(o.base, upgradeHeaders());
    assert.ok('ws' in p);
    p.ws.send(seal(p.key, 0, 1, 'C1 "skipped"'));
    assert.notEqual(await closed(p.ws), 1000);

    // Garbage: text, an unknown type (well sealed), an empty frame.
    for (const junk of ['hello', 'sealed', 'empty']) {
      const q = await rawPeer(o.base, upgradeHeaders());
      assert.ok('ws' in q);
      if (junk === 'hello') q.ws.send('hello');
      else q.ws.send(junk === 'sealed' ? seal(q.key, 0, 0, 'Zjunk') : Buffer.alloc(0));
      assert.notEqual(await closed(q.ws), 1000, junk);
    }
    assert.equal(o.ran.length, 1, 'nothing else ran');
  } finally {
    await o.close();
  }
});

test('a frame over the size cap (the POST body limit) closes the connection (1009) unread; frames after the close do nothing', async () => {
  const o = await owner();
  try {
    const p = await rawPeer(o.base, upgradeHeaders());
    assert.ok('ws' in p);
    const big = seal(p.key, 0, 0, `C1 "${'x'.repeat(32 * 1_048_576 + 100)}"`);
    p.ws.send(big, () => undefined);
    assert.ok([1009, 1006].includes(await closed(p.ws)), 'closed: too big (or reset while still sending)');

    // A peer that sends its close, then a call on the same socket: the call is not run.
    const q = await rawPeer(o.base, upgradeHeaders());
    assert.ok('ws' in q);
    const socket = (q.ws as unknown as { _socket: Socket })._socket;
    q.ws.close(1000);
    // A masked binary frame by hand (the ws client will not send after its close).
    const payload = seal(q.key, 0, 0, 'C1 "after close"');
    const head = Buffer.from([0x82, 0x80 | 126, payload.length >> 8, payload.length & 0xff, 0, 0, 0, 0]);
    socket.write(Buffer.concat([head, payload]));
    await closed(q.ws);
    await sleep(100);
    assert.deepEqual(o.ran, []);
  } finally {
    await o.close();
  }
});

test('an owner going away (listener closing) answers the calls already sent, then the caller opens a new connection', async () => {
  let release: () => void = () => undefined;
  const held = new Promise<void>((r) => (release = r));
  const o = await owner(async (body, _gone, reply) => {
    if (body.includes('"args":[1]')) await held;
    reply({ ok: JSON.parse(body) as unknown });
  });
  const client = new ChannelClient(SECRET, 'caller');
  try {
    const slow = client.call(o.base, CALL_PATH, callBody(1), { timeoutMs: 10_000 });
    while (o.ran.length < 1) await sleep(5);
    const closing = o.frames.close(5000); // says G; the connection stays until the caller closes it
    await sleep(50);
    release();
    assert.deepEqual(await slow, { ok: callBody(1) }, 'the call sent before G is answered');
    await closing;
    // The listener still accepts here (only frames closed): the next call opens a new connection.
    assert.deepEqual(await client.call(o.base, CALL_PATH, callBody(2), { timeoutMs: 5000 }), { ok: 'post' }, 'a closing FrameServer refuses upgrades (503): POSTs');
    assert.equal(o.accepted(), 3, 'the first connection, a refused upgrade, a POST');
  } finally {
    client.close();
    await o.close();
  }
});

test('an address that refuses: calls to that process fail at once while the open backs off (bounded); one that comes up is used', async () => {
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const port = (probe.address() as AddressInfo).port;
  await new Promise((r) => probe.close(r));
  const base = `http://127.0.0.1:${port}`;
  const client = new ChannelClient(SECRET, 'caller');
  let o: Owner | undefined;
  try {
    const refusal = async (process: string): Promise<ChannelError> => {
      const err = await client.call(base, CALL_PATH, callBody(0), { timeoutMs: 5000, process }).then(
        () => assert.fail('answered'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof ChannelError, String(err));
      return err;
    };
    const first = await refusal('gw-a.1');
    assert.equal(first.kind, 'refused');
    assert.doesNotMatch(first.message, /connecting failed/);
    // Failing again and again (each time a new attempt once the last back-off is over) backs off
    // further: 100 ms doubling, never past 5 s (with jitter).
    for (let i = 0; i < 6; i++) {
      let e: ChannelError;
      do e = await refusal('gw-a.1');
      while (/connecting failed/.test(e.message) && (await sleep(10), true));
      assert.equal(e.kind, 'refused');
    }
    // Meanwhile: the same honest answer (refused) at once, without a new attempt.
    const t0 = Date.now();
    const backing = await refusal('gw-a.1');
    assert.ok(Date.now() - t0 < 100, 'failed fast');
    assert.equal(backing.kind, 'refused');
    assert.match(backing.message, /ECONNREFUSED \(connecting failed \d+ ms ago; tried again in \d+ ms\)/);
    const wait = Number(/tried again in (\d+) ms/.exec(backing.message)?.[1]);
    assert.ok(wait > 1000 && wait <= 5000, `grown, and bounded: ${backing.message}`);
    // The address comes up. Within the back-off a call meant for the process that refused is
    // still answered at once (no attempt: that process is gone); one meant for the process now
    // there connects at once.
    o = await owner(undefined, port);
    const held = await refusal('gw-a.1');
    assert.match(held.message, /connecting failed/);
    assert.equal(o.accepted(), 0, 'no connection attempt while backing off');
    assert.deepEqual(await client.call(base, CALL_PATH, callBody(1), { timeoutMs: 5000, process: 'gw-a.2' }), { ok: callBody(1) });
    assert.equal(o.accepted(), 1);
  } finally {
    client.close();
    await o?.close();
  }
});

test("an address that takes TCP but never answers the upgrade (a hung peer): the call fails 'unsent', nothing of it written; the back-off after the open's timeout too", async () => {
  // A stopped process's listen backlog accepts connections the process never reads.
  const received: Buffer[] = [];
  const sockets = new Set<Socket>();
  const hung = createNetServer((s) => (sockets.add(s), s.on('data', (d: Buffer) => received.push(d)), s.on('error', () => undefined)));
  await new Promise<void>((r) => hung.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(hung.address() as AddressInfo).port}`;
  const client = new ChannelClient(SECRET, 'caller');
  const failure = (timeoutMs: number): Promise<ChannelError> =>
    client.call(base, CALL_PATH, callBody(7), { timeoutMs, process: 'gw-h.1' }).then(
      () => assert.fail('answered'),
      (e: unknown) => (assert.ok(e instanceof ChannelError, String(e)), e),
    );
  try {
    const first = await failure(300);
    assert.equal(first.kind, 'unsent', first.message);
    assert.match(first.message, /did not open within 300 ms/);
    // Calls meanwhile wait for the same open; it gives up after its own 10 s (the upgrade's
    // handshake timeout) and the call waiting on it hears that, still 'unsent'.
    let e: ChannelError;
    do {
      e = await failure(2000);
      assert.equal(e.kind, 'unsent', e.message);
    } while (/did not open within/.test(e.message));
    assert.match(e.message, /no answer to the upgrade$/);
    // Backing off after that open: the next call fails at once, without an attempt, still 'unsent'.
    const t0 = Date.now();
    const backing = await failure(5000);
    assert.ok(Date.now() - t0 < 100, `failed fast: ${Date.now() - t0} ms`);
    assert.equal(backing.kind, 'unsent', backing.message);
    assert.match(backing.message, /no answer to the upgrade \(connecting failed \d+ ms ago/);
    const wire = Buffer.concat(received).toString('latin1');
    assert.match(wire, /^GET \/cluster\/v1\/frames HTTP\/1\.1/, 'only the upgrade reached the peer');
    assert.doesNotMatch(wire, /x\.y/, "no byte of the call's body reached the peer");
  } finally {
    client.close();
    for (const s of sockets) s.destroy();
    hung.close();
  }
});
