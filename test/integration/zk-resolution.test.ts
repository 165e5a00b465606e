/**
 * The gateway's ZooKeeper client does not look its servers up again after every response
 * (patches/README.md, the resolution-delay patch). By default the C client re-resolves the connect string each time it
 * checks the socket: getaddrinfo (a netlink dump) plus a `read` of /dev/urandom to reseed its
 * shuffle, so the process's read-syscall count (`syscr` in /proc/self/io; socket `recv` calls do
 * not count there) grows by at least one per response. The raw binding with its default shows
 * that the probe sees it; the gateway's client must not. Counts only, no timing.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { NativeZkClient } from '../../src/zk/native-client.js';
import { connectRaw } from '../support/zk-tree.js';
import { startZkServer, type ZkStandalone } from '../support/zk-server.js';

const CALLS = 300;
const syscr = (): number => Number(/^syscr: (\d+)$/m.exec(readFileSync('/proc/self/io', 'utf8'))?.[1]);

/**
 * Read syscalls of this process while `CALLS` requests run one after the other, each sent a loop
 * turn after the previous answer: the binding reads an answer that is already waiting in the
 * same turn as the one before it, without checking the socket (and resolving) in between
 * (patches/README.md, waiting-answers), so back-to-back calls would hide part of the default's
 * per-response resolution from the probe.
 */
async function readsDuring(call: () => Promise<unknown>): Promise<number> {
  const paced = async (): Promise<void> => {
    await call();
    await new Promise((r) => setImmediate(r));
  };
  for (let i = 0; i < 20; i++) await paced(); // warm up: nothing lazy is counted
  const before = syscr();
  for (let i = 0; i < CALLS; i++) await paced();
  return syscr() - before;
}

interface RawHandle {
  on(event: 'connect', cb: () => void): void;
  init(config: object): void;
  exists(path: string, watch: boolean): Promise<unknown>;
  close(): void;
}
const ZooKeeper = createRequire(import.meta.url)('zookeeper') as new (config: object) => RawHandle;

let zk: ZkStandalone;
before(async () => {
  zk = await startZkServer();
});
after(async () => {
  await zk?.close();
});

test('responses do not make the client resolve its servers again', { skip: !existsSync('/proc/self/io') && 'no /proc/self/io' }, async () => {
  // The binding's default: one resolution per response, which the probe must see.
  const raw = new ZooKeeper({ connect: zk.connectString, timeout: 4000, debug_level: 0, host_order_deterministic: false });
  await new Promise<void>((resolve) => {
    raw.on('connect', resolve);
    raw.init({});
  });
  const rawReads = await readsDuring(() => raw.exists('/', false));
  raw.close();
  assert.ok(rawReads >= CALLS, `the probe sees the default's per-response resolution (${rawReads} reads for ${CALLS} calls)`);

  const c: NativeZkClient = await connectRaw(zk.connectString);
  try {
    const reads = await readsDuring(() => c.exists('/'));
    assert.ok(reads < CALLS / 10, `${reads} read syscalls for ${CALLS} calls of the gateway's client (the default made ${rawReads})`);
  } finally {
    c.close();
  }
});
