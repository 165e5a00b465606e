/**
 * Start-up of the real `zkgate serve` when things are not as they should be: a port already in
 * use ends in one clear line and a non-zero exit with the embedded ZooKeeper stopped; a tenant
 * with a chroot starts although ZooKeeper is down, is not ready (with the reason) and becomes
 * ready when ZooKeeper comes up; a second process with the same instanceId refuses to start.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isOk, startZkServer, type ZkStandalone } from '../support/zk-server.js';
import { exitWithin, serveListening, spawnServe } from '../support/cli-process.js';
import { eventually } from '../support/test-gateway.js';

let zk: ZkStandalone;
const dir = mkdtempSync(join(tmpdir(), 'zkgate-startup-'));
before(async () => {
  zk = await startZkServer();
});
after(async () => {
  await zk?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('startup', () => {
  test('port in use › one line naming the port and the config key, exit 2, embedded ZooKeeper stopped', async () => {
    const taken: Server = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const port = (taken.address() as { port: number }).port;
    const p = spawnServe(['--http-port', String(port)], { embedded: { dataDir: join(dir, 'embedded') } });
    try {
      const code = await p.exited;
      const out = p.out();
      assert.equal(code, 2, out);
      const m = /"connect":"127\.0\.0\.1:(\d+)".*started the embedded local server/.exec(out);
      assert.ok(m, `the embedded ZooKeeper started first:\n${out}`);
      const problem = out.split('\n').filter((l) => l && !l.startsWith('{'));
      assert.deepEqual(problem, [`zkgate: HTTP port ${port} on 127.0.0.1 is already in use: choose another with http.port (--http-port / ZKGATE_HTTP_PORT)`]);
      assert.equal(await isOk(Number(m[1])), false, 'the embedded ZooKeeper no longer answers');
    } finally {
      taken.close();
      await p.kill();
    }
  });

  test('duplicate instanceId › a second process with the same instanceId refuses to start; the first keeps serving; the id is free again after a shutdown', async () => {
    const config = { instanceId: 'dup-1', instances: { path: '/startup/instances' } };
    const first = await serveListening(['--zookeeper', zk.connectString], config);
    try {
      const second = spawnServe(['--zookeeper', zk.connectString], config);
      assert.equal(await exitWithin(second, 60_000), 2, second.out());
      assert.match(second.out(), /^zkgate: instanceId dup-1 is already in use by another running gateway \(znode \/startup\/instances\/dup-1: .*"pid":\d+/m);
      await second.kill();
      assert.equal((await fetch(`${first.base}/readyz`)).status, 200);
      first.proc.kill('SIGTERM');
      assert.equal(await first.exited, 0);
      const third = await serveListening(['--zookeeper', zk.connectString], config);
      await third.kill();
    } finally {
      await first.kill();
    }
  });

  test('chroot tenant with ZooKeeper down at boot › starts, /readyz is 503 with the reason, ready once ZooKeeper is up', async () => {
    await zk.stop();
    const gw = await serveListening(['--zookeeper', zk.connectString], { tenants: [{ name: 'acme', chroot: '/startup/acme' }] }).catch(async (err: unknown) => {
      await zk.start();
      throw err;
    });
    try {
      assert.match(gw.out(), new RegExp(`connecting to ${zk.connectString}`));
      const res = await fetch(`${gw.base}/readyz`);
      assert.equal(res.status, 503);
      const body = (await res.json()) as { ready: boolean; tenants: { name: string; ready: boolean; reason?: string }[] };
      assert.equal(body.tenants[0]?.ready, false);
      assert.match(body.tenants[0]?.reason ?? '', /chroot \/startup\/acme not created yet/);
      await zk.start();
      await eventually(async () => (await fetch(`${gw.base}/readyz`)).status === 200, 60_000, '/readyz 200 after ZooKeeper came up');
      const put = await fetch(`${gw.base}/v1/nodes/x`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: 'v' });
      assert.equal(put.status, 201);
    } finally {
      await gw.kill();
    }
  });
});
