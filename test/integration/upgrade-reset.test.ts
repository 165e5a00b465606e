/**
 * Issue 9, item 1: a WebSocket upgrade the gateway refuses (no key, a bad key, a foreign tenant,
 * a wrong path, an Upgrade header on /healthz or any other route, a bad Sec-WebSocket-Key) followed
 * by a TCP reset from the client must not crash the process — over plain HTTP and over TLS. After
 * each reset the gateway still answers, and no connection quota unit or socket is left behind.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, type RunningGateway } from '../../src/main.js';
import { validateConfig } from '../../src/config/schema.js';
import { generateApiKey, hashApiKey, silentLogger } from '../../src/core/index.js';
import { startZkServer, type ZkStandalone } from '../support/zk-server.js';
import { makeTestCert, type TestCert } from '../support/tls.js';
import { eventually } from '../support/test-gateway.js';
import { rawConnect, sleep, upgradeRequest, type RawOptions } from '../support/raw-conn.js';

const KEY = generateApiKey();
let zk: ZkStandalone;
let cert: TestCert;
/** What would have ended a real gateway process (the test runner survives them; the gateway would not). */
const crashes: unknown[] = [];
process.on('uncaughtException', (err) => crashes.push(err));


before(async () => {
  zk = await startZkServer();
  cert = makeTestCert();
});
after(async () => {
  await zk?.close();
});

/** A refused (or accepted) upgrade: what to send and the status the gateway answers. */
const CASES: { name: string; request: () => string; status: number }[] = [
  { name: 'no key', request: () => upgradeRequest('/v1/ws'), status: 401 },
  { name: 'a bad key', request: () => upgradeRequest('/v1/ws', { authorization: 'Bearer zkg_nope' }), status: 401 },
  { name: 'a foreign tenant', request: () => upgradeRequest('/v1/ws', { authorization: `Bearer ${KEY}`, 'zkgate-tenant': 'other' }), status: 403 },
  { name: 'an unknown tenant without a key', request: () => upgradeRequest('/v1/ws', { 'zkgate-tenant': 'nobody' }), status: 401 },
  { name: 'a wrong path', request: () => upgradeRequest('/v1/wss', { authorization: `Bearer ${KEY}` }), status: 404 },
  { name: 'an Upgrade header on /healthz', request: () => upgradeRequest('/healthz'), status: 404 },
  { name: 'an h2c Upgrade on a node route', request: () => upgradeRequest('/v1/nodes/x', { authorization: `Bearer ${KEY}`, upgrade: 'h2c' }), status: 404 },
  { name: 'a bad Sec-WebSocket-Key', request: () => upgradeRequest('/v1/ws', { authorization: `Bearer ${KEY}`, 'sec-websocket-key': 'short' }), status: 400 },
  { name: 'a missing Sec-WebSocket-Version', request: () => upgradeRequest('/v1/ws', { authorization: `Bearer ${KEY}`, 'sec-websocket-version': '' }), status: 400 },
  { name: 'an accepted upgrade', request: () => upgradeRequest('/v1/ws', { authorization: `Bearer ${KEY}` }), status: 101 },
];

/** GET /healthz over a fresh raw connection: the gateway is still up and serving. */
async function healthz(opts: RawOptions): Promise<number> {
  const c = await rawConnect(opts);
  c.socket.write('GET /healthz HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n');
  const res = await c.response();
  c.socket.destroy();
  return res.status;
}

for (const tls of [false, true]) {
  describe(`refused upgrade then TCP reset (${tls ? 'TLS' : 'plain'})`, () => {
    let gw: RunningGateway;
    let opts: RawOptions;
    before(async () => {
      gw = await startGateway(
        validateConfig({
          zookeeper: { connect: zk.connectString },
          http: { port: 0 },
          log: { level: 'silent' },
          tenants: [
            { name: 'main', chroot: '/main', apiKeys: [{ sha256: hashApiKey(KEY), role: 'write' }] },
            { name: 'other', chroot: '/other', apiKeys: [{ sha256: hashApiKey(generateApiKey()), role: 'write' }] },
          ],
          ...(tls ? { tls: { certFile: cert.certFile, keyFile: cert.keyFile } } : {}),
        }),
        silentLogger,
      );
      opts = { port: gw.httpPort, ...(tls ? { ca: cert.cert } : {}) };
    });
    after(async () => {
      await gw?.close();
    });

    for (const c of CASES) {
      test(`${c.name}: answered ${c.status}, the reset crashes nothing`, async () => {
        const conn = await rawConnect(opts);
        conn.socket.write(c.request());
        const res = await conn.response();
        assert.equal(res.status, c.status, res.head);
        conn.reset();
        // The reset reaches the server's socket after its answer; give the event loop a turn to see it.
        await sleep(100);
        assert.deepEqual(crashes.splice(0), []);
        assert.equal(await healthz(opts), 200);
        await eventually(() => gw.connections().http === 0, 5000, 'the server side of the connection to close');
        const main = gw.gateway.tenants.all().find((t) => t.name === 'main');
        await eventually(() => main?.quotas.usage().connections.used === 0, 5000, 'the connection quota unit to come back');
      });
    }

    test('a reset while the upgrade request is still arriving (headers cut in the middle)', async () => {
      for (const cut of [10, 40, 90]) {
        const conn = await rawConnect(opts);
        conn.socket.write(upgradeRequest('/v1/ws', { authorization: `Bearer ${KEY}` }).slice(0, cut));
        await sleep(50);
        conn.reset();
      }
      await sleep(100);
      assert.deepEqual(crashes.splice(0), []);
      assert.equal(await healthz(opts), 200);
      await eventually(() => gw.connections().http === 0, 5000, 'every server socket to close');
    });

    test('many refused upgrades reset at once: still up, every socket gone', async () => {
      const conns = await Promise.all(Array.from({ length: 40 }, () => rawConnect(opts)));
      conns.forEach((c, i) => c.socket.write((CASES[i % CASES.length] as (typeof CASES)[number]).request()));
      await Promise.all(conns.map((c) => c.response()));
      for (const c of conns) c.reset();
      await sleep(200);
      assert.deepEqual(crashes.splice(0), []);
      assert.equal(await healthz(opts), 200);
      await eventually(() => gw.connections().http === 0, 5000, 'every server socket to close');
      await eventually(() => gw.gateway.tenants.all().every((t) => t.quotas.usage().connections.used === 0), 5000, 'every connection unit back');
    });
  });
}
