/** Reads a whole ZooKeeper tree (outside `/zookeeper`) with a plain client, to compare before/after. */
import { NativeZkClient, joinPath } from '../../src/zk/index.js';

/** A connected client; `auth` is added before it resolves (e.g. `digest`, `user:pass`). */
export async function connectRaw(connect: string, auth: { scheme: string; credential: string }[] = []): Promise<NativeZkClient> {
  const c = new NativeZkClient({ connect, sessionTimeoutMs: 4000 });
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no zookeeper at ${connect}`)), 10_000);
    c.once('connect', () => {
      clearTimeout(t);
      resolve();
    });
  });
  for (const a of auth) await c.addAuth(a.scheme, a.credential);
  return c;
}

/**
 * Runs `f` with a fresh client of its own, closed afterwards: a test's stand-in for another
 * ZooKeeper user (an operator with zkCli), never affected by what happens to the gateway's session.
 */
export async function withRawClient<T>(connect: string, f: (c: NativeZkClient) => Promise<T>): Promise<T> {
  const c = await connectRaw(connect);
  try {
    return await f(c);
  } finally {
    c.close();
  }
}

/**
 * Every node under `root` as `path → "mzxid cversion aversion dataLength"`; nodes this client may
 * not read show as `NO_AUTH` (their existence is still recorded, so a change is visible).
 */
export async function walkTree(client: NativeZkClient, root = '/'): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const visit = async (path: string): Promise<void> => {
    if (path === '/zookeeper') return;
    const stat = await client.exists(path);
    if (!stat) return;
    out.set(path, `${stat.mzxid} ${stat.cversion} ${stat.aversion} ${stat.dataLength}`);
    let children: string[];
    try {
      ({ children } = await client.children(path));
    } catch (err) {
      if ((err as { code?: string }).code === 'NO_NODE') return;
      if ((err as { code?: string }).code === 'NO_AUTH') {
        out.set(path, `${out.get(path)} NO_AUTH`);
        return;
      }
      throw err;
    }
    await Promise.all(children.map((ch) => visit(joinPath(path, ch))));
  };
  await visit(root);
  return out;
}
