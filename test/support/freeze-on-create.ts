/**
 * Freezes ZooKeeper exactly when the gateway sends one create, so that create's outcome is
 * unknown to the gateway (the connection-loss case of a protected create).
 */
import type { CreateMode, ZkClient } from '../../src/zk/index.js';
import { eventually } from './test-gateway.js';

/**
 * Hooks `client`'s creates (plain and create2: the ownership module sends create2 for the
 * fencing token and czxid): the first create for which `match(path, mode)` holds calls `freeze`
 * before it is sent, then the hooks are removed. Returns the function that removes them sooner.
 */
export function freezeOnCreate(client: ZkClient, match: (path: string, mode: CreateMode) => boolean, freeze: () => void): () => void {
  const create = client.create.bind(client);
  const createWithStat = client.createWithStat.bind(client);
  const restore = (): void => {
    client.create = create;
    client.createWithStat = createWithStat;
  };
  const hit = (path: string, mode: CreateMode): void => {
    if (!match(path, mode)) return;
    restore();
    freeze();
  };
  client.create = (p, d, m, ttl) => {
    hit(p, m);
    return create(p, d, m, ttl);
  };
  client.createWithStat = (p, d, m) => {
    hit(p, m);
    return createWithStat(p, d, m);
  };
  return restore;
}

/**
 * Starts `call` with ZooKeeper (`zk`) paused the moment the gateway sends the first create
 * `match` accepts, resumes it once `suspended()` says the gateway's session is suspended (the
 * create's outcome is then unknown to it), and resolves with the call's answer.
 */
export async function callWithCreateCut<T>(
  client: ZkClient,
  match: (path: string, mode: CreateMode) => boolean,
  zk: { pause(): void; resume(): void },
  suspended: () => boolean,
  call: () => Promise<T>,
): Promise<T> {
  const restore = freezeOnCreate(client, match, () => zk.pause());
  let pending: Promise<T>;
  try {
    pending = call();
    await eventually(suspended, 15_000, 'the session to be suspended');
  } finally {
    restore();
    zk.resume();
  }
  return pending;
}
