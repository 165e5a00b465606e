/**
 * Self-test of the real-ZooKeeper harness (test/support/zk-server.ts): standalone lifecycle,
 * data persistence across restart, pause/resume, forced session expiry, a 3-node ensemble
 * surviving a stopped follower, and cleanup (temp dirs gone, no JVM left behind).
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import {
  expireSession,
  fourLetter,
  parseMntr,
  sessionExists,
  startZkEnsemble,
  startZkServer,
  type ZkEnsemble,
  type ZkStandalone,
} from '../support/zk-server.js';

// --- a minimal typed view of the `zookeeper` npm client -------------------------------------
interface Client {
  readonly client_id: string;
  readonly client_password: string;
  on(event: 'connect' | 'close' | 'connecting', listener: () => void): this;
  once(event: 'connect' | 'close' | 'connecting', listener: () => void): this;
  init(config: object): Client;
  close(): void;
  create(path: string, data: string | Buffer, flags: number): Promise<string>;
  get(path: string, watch: boolean): Promise<[object, Buffer | string | null]>;
  pathExists(path: string, watch: boolean): Promise<boolean>;
}
interface ClientCtor {
  new (config: { connect: string; timeout: number; debug_level: number; data_as_buffer?: boolean }): Client;
  readonly constants: { readonly ZOO_PERSISTENT: number; readonly ZOO_EPHEMERAL: number };
}
const ZooKeeper = createRequire(import.meta.url)('zookeeper') as ClientCtor;
const { ZOO_PERSISTENT, ZOO_EPHEMERAL } = ZooKeeper.constants;

const openClients = new Set<Client>();

function connectClient(connect: string, timeoutMs = 15_000): Promise<Client> {
  return new Promise<Client>((resolve, reject) => {
    const zk = new ZooKeeper({ connect, timeout: 4000, debug_level: 0, data_as_buffer: true });
    openClients.add(zk);
    const timer = setTimeout(() => {
      closeClient(zk);
      reject(new Error(`no connection to ${connect} in ${timeoutMs} ms`));
    }, timeoutMs);
    zk.once('connect', () => {
      clearTimeout(timer);
      resolve(zk);
    });
    zk.init({});
  });
}

function closeClient(zk: Client): void {
  if (openClients.delete(zk)) zk.close();
}

async function getText(zk: Client, path: string): Promise<string> {
  const [, data] = await zk.get(path, false);
  return data === null ? '' : data.toString();
}

async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

after(() => {
  for (const zk of openClients) zk.close();
  openClients.clear();
});

describe('standalone ZooKeeper', () => {
  let zk: ZkStandalone;

  before(async () => {
    zk = await startZkServer();
  });
  after(async () => {
    await zk?.close();
  });

  test('starts and answers ruok / srvr / mntr', async () => {
    assert.equal(zk.connectString, `127.0.0.1:${zk.clientPort}`);
    assert.equal(await fourLetter(zk.clientPort, 'ruok'), 'imok');
    assert.match(await fourLetter(zk.clientPort, 'srvr'), /^Mode: standalone$/m);
    assert.equal(parseMntr(await fourLetter(zk.clientPort, 'mntr')).get('zk_server_state'), 'standalone');
    assert.equal(await zk.mode(), 'standalone');
    assert.ok(zk.running && zk.pid !== undefined);
  });

  test('a znode created with the zookeeper npm client is visible', async () => {
    const a = await connectClient(zk.connectString);
    await a.create('/harness', 'hello', ZOO_PERSISTENT);
    const b = await connectClient(zk.connectString);
    assert.equal(await getText(b, '/harness'), 'hello');
    closeClient(a);
    closeClient(b);
  });

  test('stop() then start() keeps the data, port and data dir', async () => {
    const oldPid = zk.pid as number;
    await zk.stop();
    assert.equal(zk.running, false);
    assert.equal(zk.pid, undefined);
    assert.equal(isAlive(oldPid), false);
    await assert.rejects(fourLetter(zk.clientPort, 'ruok', 1000));
    await zk.start();
    assert.equal(await fourLetter(zk.clientPort, 'ruok'), 'imok');
    assert.notEqual(zk.pid, oldPid);
    const c = await connectClient(zk.connectString);
    assert.equal(await getText(c, '/harness'), 'hello');
    closeClient(c);
  });

  test('pause() freezes the server, resume() thaws it', async () => {
    zk.pause();
    assert.equal(zk.paused, true);
    await assert.rejects(fourLetter(zk.clientPort, 'ruok', 500), /no complete answer/);
    zk.resume();
    assert.equal(zk.paused, false);
    assert.equal(await fourLetter(zk.clientPort, 'ruok', 3000), 'imok');
  });

  test('expireSession kills the session: the original handle emits close, its ephemerals vanish', async () => {
    const victim = await connectClient(zk.connectString);
    const closed = new Promise<void>((resolve) => victim.once('close', resolve));
    await victim.create('/eph', 'x', ZOO_EPHEMERAL);
    const id = victim.client_id;
    assert.match(id, /^[0-9a-f]+$/);
    assert.equal(await sessionExists(zk.connectString, id), true);
    assert.equal(await sessionExists(zk.connectString, `0x${id}`), true);

    await expireSession(zk.connectString, id, victim.client_password);
    assert.equal(await sessionExists(zk.connectString, id), false);
    await within(closed, 10_000, 'close event of the expired handle');
    openClients.delete(victim); // dead already

    const observer = await connectClient(zk.connectString);
    assert.equal(await observer.pathExists('/eph', false), false);
    closeClient(observer);
  });

  test('close() removes the temp dir and leaves no JVM behind; it is idempotent', async () => {
    const pid = zk.pid as number;
    assert.ok(isAlive(pid));
    await zk.close();
    await zk.close();
    assert.equal(isAlive(pid), false);
    assert.equal(existsSync(zk.rootDir), false);
    assert.equal(existsSync(zk.dataDir), false);
  });
});

describe('3-node ensemble', () => {
  let ens: ZkEnsemble;

  before(async () => {
    ens = await startZkEnsemble(3);
  });
  after(async () => {
    await ens?.close();
  });

  test('elects exactly one leader', async () => {
    const leader = await ens.leaderIndex();
    const modes = await Promise.all(ens.members.map((m) => m.mode()));
    assert.equal(modes[leader], 'leader');
    assert.deepEqual(modes.filter((m) => m === 'follower').length, 2);
    assert.equal(ens.connectString, ens.members.map((m) => `127.0.0.1:${m.clientPort}`).join(','));
    assert.deepEqual(
      ens.members.map((m) => m.serverId),
      [1, 2, 3],
    );
  });

  test('survives a stopped follower; the member rejoins after start()', async () => {
    const client = await connectClient(ens.connectString);
    await client.create('/before', 'b', ZOO_PERSISTENT);

    const leader = await ens.leaderIndex();
    const follower = ens.members[(leader + 1) % 3];
    assert.ok(follower);
    const pid = follower.pid as number;
    await follower.stop();
    assert.equal(isAlive(pid), false);

    // Two of three still form a quorum: writes and reads keep working.
    await client.create('/during', 'd', ZOO_PERSISTENT);
    assert.equal(await getText(client, '/during'), 'd');
    assert.equal(await ens.leaderIndex(), leader);

    await follower.start();
    assert.equal(await follower.mode(), 'follower');
    const direct = await connectClient(follower.connectString);
    assert.equal(await getText(direct, '/before'), 'b');
    assert.equal(await getText(direct, '/during'), 'd');
    closeClient(direct);
    closeClient(client);
  });

  test('expireSession works against the ensemble', async () => {
    const victim = await connectClient(ens.connectString);
    const closed = new Promise<void>((resolve) => victim.once('close', resolve));
    assert.equal(await sessionExists(ens.connectString, victim.client_id), true);
    await expireSession(ens.connectString, victim.client_id, victim.client_password);
    assert.equal(await sessionExists(ens.connectString, victim.client_id), false);
    await within(closed, 10_000, 'close event of the expired handle');
    openClients.delete(victim);
  });

  test('close() removes the temp dirs and leaves no JVM behind', async () => {
    const pids = ens.members.map((m) => m.pid as number);
    assert.ok(pids.every(isAlive));
    await ens.close();
    await ens.close();
    assert.deepEqual(pids.map(isAlive), [false, false, false]);
    assert.equal(existsSync(ens.rootDir), false);
  });
});
