/**
 * Finding the locks and elections under a path: a bounded tree walk (as `ls -R`), then every
 * node whose children look like contenders of a flavour is read as a queue. Detection goes by
 * node names, copied from the libraries: Curator's mutex `…lock-<seq>`, its LeaderLatch
 * `…latch-<seq>`, Kazoo's `…__lock__<seq>`.
 */
import type { Tenant } from '../tenants/tenant.js';
import { checkPath } from '../paths.js';
import { checkLimit, walkTree, type TreeNode } from '../nodes/listing.js';
import { toZkgateError } from '../errors.js';
import type { LockFlavour } from './flavours.js';

/** Options of a lock or election listing. */
export interface CatalogOptions {
  /** Most nodes walked under the path (the root included), 1 to maxChildrenPerListing. @defaultValue maxChildrenPerListing */
  readonly limit?: number;
}

/** What a catalogue answer says besides its entries. */
export interface CatalogBounds {
  /** The path searched. */
  readonly path: string;
  /** True when the walk stopped at `limit` nodes: recipes deeper or later may be missing. */
  readonly truncated: boolean;
  /** The bound applied. */
  readonly limit: number;
}

const PATTERNS: Readonly<Record<'curator' | 'kazoo' | 'latch', RegExp>> = {
  curator: /lock-\d{10}$/,
  kazoo: /__lock__-?\d{10}$/,
  latch: /latch-\d{10}$/,
};

/** A queue found by the walk: its parent path and the flavour its children follow. */
export interface FoundQueue {
  readonly path: string;
  readonly flavour: LockFlavour | 'latch';
}

/**
 * The queues under `path` (itself included) whose children match `kinds`, in walk order.
 * A path that does not exist has none. @throws INVALID_PATH, INVALID_ARGUMENT (limit), UNAVAILABLE
 */
export async function findQueues(
  tenant: Tenant,
  path: string,
  kinds: readonly (LockFlavour | 'latch')[],
  opts: CatalogOptions,
): Promise<{ queues: FoundQueue[] } & CatalogBounds> {
  checkPath(path);
  const limit = checkLimit(opts.limit, tenant.limits.maxChildrenPerListing);
  let nodes: readonly TreeNode[] = [];
  let truncated = false;
  try {
    ({ nodes, truncated } = await walkTree(tenant.client(), path, limit));
  } catch (err) {
    if (toZkgateError(err, path).code !== 'NO_NODE') throw toZkgateError(err, path);
  }
  const queues = nodes.flatMap((n) => kinds.filter((k) => n.children.some((c) => PATTERNS[k].test(c))).map((flavour) => ({ path: n.path, flavour })));
  return { path, queues, truncated, limit };
}
