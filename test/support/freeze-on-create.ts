/**
 * Freezes ZooKeeper exactly when the gateway sends one create, so that create's outcome is
 * unknown to the gateway (the connection-loss case of a protected create).
 */
import type { CreateMode, ZkClient } from '../../src/zk/index.js';

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
