import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { promisify } from 'node:util';
import { projectFile } from '../../src/project-files.js';
import { startGrpcFixture, type GrpcFixture } from '../support/grpc-client.js';

const run = promisify(execFile);
let fx: GrpcFixture;

before(async () => {
  fx = await startGrpcFixture({ tenants: [{ name: 'default', sessionTimeoutMs: 10_000 }] });
});
after(() => fx?.close());

test('python › the example generates stubs from proto/, takes a lock, observes an election and receives watch events, and runs again', async () => {
  const stubsBefore = new Set(readdirSync(tmpdir()));
  const { stdout } = await run('/usr/bin/python3', [projectFile('examples/python/zkgate_example.py'), `127.0.0.1:${fx.gw.grpcPort}`, '--prefix', '/py'], {
    timeout: 45_000,
  });
  const steps = stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  const of = (name: string) => steps.filter((s) => s.step === name);
  assert.equal(of('lease')[0]?.state, 'LEASE_STATE_ACTIVE');
  assert.deepEqual(of('keepalive')[0], { step: 'keepalive', type: 'KEEPALIVE_TYPE_REFRESHED', state: 'LEASE_STATE_ACTIVE' });
  const acquired = of('acquired')[0] as { node: string; fencing_token: string };
  assert.match(acquired.node, /^\/py\/lock\/_c_.+-lock-\d{10}$/);
  assert.match(acquired.fencing_token, /^\d+$/);
  assert.deepEqual(of('second_acquire')[0], { step: 'second_acquire', code: 'ABORTED', zkgate_code: 'LOCK_NOT_ACQUIRED' });
  assert.deepEqual(of('inspect')[0], { step: 'inspect', holder: acquired.node, queue: 1 });
  assert.deepEqual(of('released')[0], { step: 'released', released: true, reason: 'deleted' });
  assert.deepEqual(of('observed').map((s) => s.leader), [null, 'worker-1', null]);
  const watch = of('watch');
  assert.deepEqual(watch[0], { step: 'watch', id: 'cfg', type: 'current', exists: false });
  assert.deepEqual([watch[1]?.type, watch[1]?.data], ['created', 'color=red']);
  assert.deepEqual([watch[2]?.type, watch[2]?.data], ['data_changed', 'color=blue']);
  assert.ok(BigInt(watch[2]?.zxid as string) > BigInt(watch[1]?.zxid as string));
  assert.equal(of('unsubscribed')[0]?.id, 'cfg');
  assert.equal(steps.at(-1)?.step, 'done');
  // Nothing the example made is left behind, in ZooKeeper or in the temp dir, so it runs again.
  const root = await fx.client.unary<{ children: { name: string }[] }>('Znodes', 'Children', { path: '/' });
  assert.ok(!root.children.some((c) => c.name === 'py'), JSON.stringify(root.children));
  const again = await run('/usr/bin/python3', [projectFile('examples/python/zkgate_example.py'), `127.0.0.1:${fx.gw.grpcPort}`, '--prefix', '/py'], { timeout: 45_000 });
  assert.equal((JSON.parse(again.stdout.trim().split('\n').at(-1) as string) as { step: string }).step, 'done', 'a second run');
  assert.deepEqual(readdirSync(tmpdir()).filter((f) => f.startsWith('zkgate-stubs-') && !stubsBefore.has(f)), [], 'no stub directory left');
});
