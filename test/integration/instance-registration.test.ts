/**
 * The membership and handoff watches of an instance registration (src/zk/instance-registration.ts)
 * against a real ZooKeeper: one armed watch each, however often the membership changes, and a
 * watch that survives the server being away (connection loss while the watched read is made).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { registerInstance, type InstanceRegistration } from '../../src/zk/index.js';
import type { NativeZkClient } from '../../src/zk/native-client.js';
import { eventually } from '../support/test-gateway.js';
import { startZkServer, type ZkStandalone } from '../support/zk-server.js';

const PATH = '/zkgate/instances';

async function register(zk: ZkStandalone, id: string): Promise<InstanceRegistration> {
  const reg = await registerInstance({ connect: zk.connectString, path: PATH, instanceId: id, sessionTimeoutMs: 10_000, connectTimeoutMs: 10_000 });
  assert.ok(reg, `${id} registered`);
  return reg;
}

/** Counts the reads (`children` or `get`) the registration makes per path (its session handle is private). */
function countReads(reg: InstanceRegistration, method: 'children' | 'get'): Map<string, number> {
  const counts = new Map<string, number>();
  const client = (reg as unknown as { client: NativeZkClient }).client;
  const read = client[method].bind(client) as (path: string, watcher?: () => void) => Promise<unknown>;
  (client as unknown as Record<string, unknown>)[method] = (path: string, watcher?: () => void) => {
    counts.set(path, (counts.get(path) ?? 0) + 1);
    return read(path, watcher);
  };
  return counts;
}
const countChildrenReads = (reg: InstanceRegistration): Map<string, number> => countReads(reg, 'children');

describe('instance registration watches', () => {
  let zk: ZkStandalone;
  before(async () => {
    zk = await startZkServer();
  });
  after(async () => {
    await zk?.close();
  });

  test('membership changes do not pile up handoff watches: one handoff record is read once', async () => {
    const a = await register(zk, 'a');
    try {
      const reads = countChildrenReads(a);
      // Ten membership changes: each fires a's members watch and re-reads the handoff records.
      for (let i = 0; i < 5; i++) {
        const other = await register(zk, `other${i}`);
        await eventually(() => a.members().has(`other${i}`), 10_000, `a sees other${i}`);
        other.close();
        await eventually(() => !a.members().has(`other${i}`), 10_000, `a sees other${i} go`);
      }
      await new Promise((r) => setTimeout(r, 300));
      const before = reads.get(a.handoffPath) ?? 0;
      const recorder = await register(zk, 'recorder');
      try {
        await recorder.recordHandoff('gone.1234', { id: 'recorder', incarnation: 'x' });
        await eventually(() => a.handoffs().has('gone.1234'), 10_000, 'a sees the handoff record');
        await new Promise((r) => setTimeout(r, 500));
        // The recorder's own registration changed the membership once (one read), the record once.
        const after = (reads.get(a.handoffPath) ?? 0) - before;
        assert.ok(after <= 3, `handoff records read ${after} times after one record and one member (watch callbacks piled up)`);
      } finally {
        recorder.close();
      }
    } finally {
      a.close();
    }
  });

  test('a membership change after the server was away is still seen', async () => {
    const a = await register(zk, 'b');
    try {
      await zk.stop();
      await new Promise((r) => setTimeout(r, 1500));
      await zk.start();
      const other = await register(zk, 'late');
      try {
        await eventually(() => a.members().has('late'), 15_000, 'b sees the member that registered after the outage');
      } finally {
        other.close();
      }
      await eventually(() => !a.members().has('late'), 15_000, 'b sees it go');
    } finally {
      a.close();
    }
  });
  test('a usage write elsewhere is one read: only the node that changed is read again', async () => {
    const a = await register(zk, 'usage-a');
    const b = await register(zk, 'usage-b');
    const c = await register(zk, 'usage-c');
    try {
      b.publishUsage({ n: 0 });
      c.publishUsage({ n: 0 });
      await eventually(() => a.usage().has('usage-b') && a.usage().has('usage-c'), 10_000, 'a sees both usage nodes');
      await new Promise((r) => setTimeout(r, 300));
      const gets = countReads(a, 'get');
      const lists = countChildrenReads(a);
      for (let n = 1; n <= 5; n++) {
        b.publishUsage({ n });
        await eventually(() => (a.usage().get('usage-b') as { n: number } | undefined)?.n === n, 10_000, `a sees b's usage ${n}`);
      }
      await new Promise((r) => setTimeout(r, 300));
      // Before: every write re-read the list and every node (3 reads here, 1 per instance).
      assert.equal(gets.get(`${a.usagePath}/usage-b`), 5, 'b\'s node read once per write');
      assert.equal(gets.get(`${a.usagePath}/usage-c`) ?? 0, 0, 'c\'s node, unchanged, not read');
      assert.equal(lists.get(a.usagePath) ?? 0, 0, 'the list, unchanged, not read');
      // A node that goes and one that comes are still seen (the children watch).
      c.close();
      await eventually(() => !a.usage().has('usage-c'), 20_000, 'a sees c\'s usage node go');
      const d = await register(zk, 'usage-d');
      try {
        d.publishUsage({ n: 7 });
        await eventually(() => (a.usage().get('usage-d') as { n: number } | undefined)?.n === 7, 10_000, 'a sees d\'s usage');
      } finally {
        d.close();
      }
    } finally {
      a.close();
      b.close();
      c.close();
    }
  });
});
