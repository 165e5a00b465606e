/**
 * Bounded listings: children in pages (sorted by name, `limit` plus an opaque cursor) and the
 * recursive tree walk (`ls -R`) behind the tree answer and the lock / election catalogues.
 *
 * Paging contract: names are sorted by UTF-16 code unit (ZooKeeper's and Java's order); a cursor
 * says "after this name", so a child created or deleted between pages never shifts the others
 * (a name created before the cursor is not seen; one deleted after it is simply not returned).
 * `total` is the number of children when the page was read.
 *
 * Tree contract: breadth-first, so a truncated answer holds every node down to some depth and
 * part of the next level. It truncates (with `truncated: true`) rather than refusing: a read
 * has no all-or-nothing need (a recursive delete does, and refuses before deleting anything),
 * and the shallow part answers most questions; narrow `path` or lower `depth` for the rest.
 */
import { joinPath, type Stat, type ZkClient } from '../../zk/index.js';
import { ZkgateError, invalidArgument, toZkgateError } from '../errors.js';

/** One page of a sorted name list. */
export interface Page {
  readonly names: readonly string[];
  /** All children when the page was read. */
  readonly total: number;
  /** Pass back as `cursor` for the next page; absent on the last page. */
  readonly nextCursor?: string;
}

/** Options of a paged listing. */
export interface PageOptions {
  /** Names per page, 1 to the tenant's maxChildrenPerListing. @defaultValue maxChildrenPerListing */
  readonly limit?: number;
  /** `nextCursor` of the previous page. */
  readonly cursor?: string;
}

const CURSOR_PREFIX = 'a:';

/** Opaque to clients: base64url of `a:<last name returned>`. */
function encodeCursor(after: string): string {
  return Buffer.from(CURSOR_PREFIX + after, 'utf8').toString('base64url');
}

function decodeCursor(cursor: string): string {
  const text = /^[A-Za-z0-9_-]{1,8192}$/.test(cursor) ? Buffer.from(cursor, 'base64url').toString('utf8') : '';
  if (!text.startsWith(CURSOR_PREFIX) || text.length === CURSOR_PREFIX.length) {
    throw invalidArgument('cursor', 'not a cursor from an earlier answer (pass nextCursor back unchanged)');
  }
  return text.slice(CURSOR_PREFIX.length);
}

/** Validates a listing bound. @throws INVALID_ARGUMENT naming `field` */
export function checkLimit(limit: number | undefined, max: number, field = 'limit'): number {
  if (limit === undefined) return max;
  if (!Number.isInteger(limit) || limit < 1 || limit > max) throw invalidArgument(field, `must be an integer from 1 to ${max} (limits.maxChildrenPerListing)`);
  return limit;
}

/** Sorts `children` and cuts the page after `opts.cursor`. @throws INVALID_ARGUMENT (limit, cursor) */
export function pageOf(children: readonly string[], opts: PageOptions, max: number): Page {
  const limit = checkLimit(opts.limit, max);
  const after = opts.cursor === undefined || opts.cursor === '' ? undefined : decodeCursor(opts.cursor);
  const sorted = [...children].sort();
  const rest = after === undefined ? sorted : sorted.filter((n) => n > after);
  const names = rest.slice(0, limit);
  const more = rest.length > limit;
  return { names, total: sorted.length, ...(more ? { nextCursor: encodeCursor(names[names.length - 1] as string) } : {}) };
}

/** One node of a tree walk. */
export interface TreeNode {
  readonly path: string;
  /** Depth below the walk's root (the root is 0). */
  readonly depth: number;
  /** The node's stat (read with its children, so it comes for free). */
  readonly stat: Stat;
  /** Child names, sorted; empty for nodes at the depth bound that were not listed. */
  readonly children: readonly string[];
}

export interface TreeWalk {
  readonly nodes: readonly TreeNode[];
  /** True when nodes were left out because `limit` was reached. */
  readonly truncated: boolean;
}

/** How many listings a walk has in flight at once. */
const WALK_CONCURRENCY = 8;

/**
 * Walks the subtree of `root` breadth-first, at most `limit` nodes and `depth` levels below it.
 * Nodes deleted during the walk are left out. @throws NO_NODE when `root` does not exist
 */
export async function walkTree(client: ZkClient, root: string, limit: number, depth = Infinity): Promise<TreeWalk> {
  const nodes: TreeNode[] = [];
  let level: { path: string; depth: number }[] = [{ path: root, depth: 0 }];
  let truncated = false;
  while (level.length > 0) {
    const room = limit - nodes.length;
    if (level.length > room) {
      truncated = true;
      level = level.slice(0, room);
    }
    const read: (TreeNode | null)[] = [];
    for (let i = 0; i < level.length; i += WALK_CONCURRENCY) {
      read.push(...(await Promise.all(level.slice(i, i + WALK_CONCURRENCY).map((n) => readNode(client, n.path, n.depth, n.depth < depth, n.path === root)))));
    }
    const next: { path: string; depth: number }[] = [];
    for (const n of read) {
      if (!n) continue;
      nodes.push(n);
      for (const c of n.children) next.push({ path: joinPath(n.path, c), depth: n.depth + 1 });
    }
    if (truncated) break;
    level = next;
  }
  return { nodes, truncated };
}

async function readNode(client: ZkClient, path: string, depth: number, list: boolean, isRoot: boolean): Promise<TreeNode | null> {
  try {
    if (list) {
      const { children, stat } = await client.children(path);
      return { path, depth, stat, children: [...children].sort() };
    }
    const stat = await client.exists(path);
    if (stat) return { path, depth, stat, children: [] };
    if (!isRoot) return null;
    throw new ZkgateError('NO_NODE', `${path}: node does not exist`, { path });
  } catch (err) {
    const e = toZkgateError(err, path);
    if (e.code === 'NO_NODE' && !isRoot) return null; // deleted since its parent was listed
    throw e;
  }
}
