/**
 * One ephemeral znode per running gateway instance, `<path>/<instanceId>`, held by a session of
 * its own: a second process started with the same `instanceId` finds it and refuses to start
 * (lease ids carry the instance id, so two processes sharing one would route and expire each
 * other's leases). Membership (issue 11) will build on these nodes.
 */
import { hostname } from 'node:os';
import { ancestorsOf } from './paths.js';
import { ZkError } from './errors.js';
import { NativeZkClient } from './native-client.js';

/** Thrown when another live process holds the instance id; its message is the line to print. */
export class DuplicateInstanceError extends Error {
  override readonly name = 'DuplicateInstanceError';
}

export interface InstanceRegistrationOptions {
  /** Connect string of the ensemble (no chroot). */
  readonly connect: string;
  /** Parent znode of the instance nodes, e.g. `/zkgate/instances`. */
  readonly path: string;
  readonly instanceId: string;
  /** Session timeout of the registration's session, ms: also how long a node left by a crashed predecessor is waited for. */
  readonly sessionTimeoutMs: number;
  /** How long to wait for a session at start, ms. */
  readonly connectTimeoutMs: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Creates the instance node and resolves with a handle whose `close` removes it (by closing the
 * session). Resolves with `null` when no session could be made in time (nothing to check against).
 * @throws DuplicateInstanceError when the node stays held by another session past `sessionTimeoutMs`
 */
export async function registerInstance(opts: InstanceRegistrationOptions): Promise<{ close(): void } | null> {
  const client = new NativeZkClient({ connect: opts.connect, sessionTimeoutMs: opts.sessionTimeoutMs });
  const connected = await new Promise<boolean>((resolve) => {
    const t = setTimeout(() => resolve(false), opts.connectTimeoutMs);
    client.once('connect', () => {
      clearTimeout(t);
      resolve(true);
    });
  });
  if (!connected) {
    client.close();
    return null;
  }
  const node = `${opts.path}/${opts.instanceId}`;
  const data = Buffer.from(JSON.stringify({ host: hostname(), pid: process.pid, startedAt: new Date().toISOString() }));
  try {
    for (const p of [...ancestorsOf(opts.path), opts.path]) {
      await client.create(p, Buffer.alloc(0), 'persistent').catch((err: unknown) => {
        if (!(err instanceof ZkError && err.code === 'NODE_EXISTS')) throw err;
      });
    }
    // A node left by a predecessor that crashed goes within its session timeout: wait that long.
    const deadline = Date.now() + opts.sessionTimeoutMs + 2000;
    for (;;) {
      try {
        await client.create(node, data, 'ephemeral');
        return { close: () => client.close() };
      } catch (err) {
        if (!(err instanceof ZkError && err.code === 'NODE_EXISTS')) throw err;
      }
      if (Date.now() > deadline) {
        const holder = await client.get(node).then((d) => d.data.toString('utf8'), () => 'unknown');
        throw new DuplicateInstanceError(
          `zkgate: instanceId ${opts.instanceId} is already in use by another running gateway (znode ${node}: ${holder}); give each gateway its own instanceId`,
        );
      }
      await sleep(500);
    }
  } catch (err) {
    client.close();
    throw err;
  }
}
