/**
 * Znode CRUD inside one tenant's chroot. Input is validated before anything reaches ZooKeeper,
 * so a rejected request changes nothing.
 */
import { noNode, ancestorsOf, joinPath, parentOf, type AclEntry, type Stat } from '../../zk/index.js';
import { checkPath } from '../paths.js';
import { ZkgateError, dataTooLarge, invalidArgument, toZkgateError } from '../errors.js';
import type { Tenant } from '../tenants/tenant.js';
import { checkPathLimits } from '../limits/path-limits.js';
import { protectedPath, type OwnedNodes } from '../leases/owned-nodes.js';
import type { ChildEntry, ChildrenListing, ChildrenOptions, CreateOptions, DeleteOptions, TreeListing, TreeOptions, Znode } from '../types.js';
import { checkLimit, pageOf, walkTree } from './listing.js';

const TTL_MAX_MS = 2 ** 40 - 1; // ZooKeeper's EphemeralType.TTL limit

function checkVersion(version: number | undefined): number {
  if (version === undefined) return -1;
  if (!Number.isInteger(version) || version < -1 || version > 2 ** 31 - 1) {
    throw invalidArgument('version', 'must be an integer from -1 to 2147483647');
  }
  return version;
}

export class NodeService {
  /**
   * @param prefixes the caller's path prefixes (an API key's scope): `createParents` creates no
   *   ancestor above them, so a scoped key never creates nodes outside its scope. Empty = no bound.
   */
  constructor(
    private readonly tenant: Tenant,
    private readonly owned: OwnedNodes,
    private readonly prefixes: readonly string[] = [],
  ) {}

  private get leases(): OwnedNodes['leases'] {
    return this.owned.leases;
  }

  private async zk<T>(path: string, op: (c: ReturnType<Tenant['client']>) => Promise<T>): Promise<T> {
    const client = this.tenant.client();
    try {
      return await op(client);
    } catch (err) {
      throw toZkgateError(err, path);
    }
  }

  /** Syntax first, then the tenant's length and depth limits. */
  private check(path: string, sequential = false): void {
    checkPath(path, sequential);
    checkPathLimits(path, this.tenant.limits);
  }

  private checkData(data: Buffer): void {
    const max = this.tenant.limits.maxDataBytes;
    if (data.length > max) {
      throw dataTooLarge(data.length, max);
    }
  }

  /**
   * Data and stat: from the hub's watch-fed cache when it holds the node under a watch that
   * vouches for it, else read from ZooKeeper (`source` says which), with a watch that keeps the
   * node in the cache when read-through is on. With `sync`, ZooKeeper's `sync` first (the
   * leader's writes reach our server), then a read; with `cache: false` a plain read: never the cache.
   * @throws NO_NODE
   */
  async get(path: string, opts: { sync?: boolean; cache?: boolean } = {}): Promise<Znode> {
    this.check(path);
    if (opts.sync) await this.zk(path, (c) => c.sync(path));
    else if (opts.cache !== false) {
      const hub = this.owned.hub;
      const hit = hub.cached(this.tenant, path);
      if (hit) return { path, data: hit.data, stat: hit.stat, source: 'cache' };
      // Not cached: the read that sets the watch which caches it, one round trip as a plain read.
      const read = await this.zk(path, () => hub.readThrough(this.tenant, path));
      if (read === 'missing') throw toZkgateError(noNode(path), path);
      if (read) return { path, data: read.data, stat: read.stat, source: 'zookeeper' };
    }
    const { data, stat } = await this.zk(path, (c) => c.get(path));
    return { path, data, stat, source: 'zookeeper' };
  }

  /** Stat, or null when the node does not exist. */
  async exists(path: string): Promise<Stat | null> {
    this.check(path);
    return this.zk(path, (c) => c.exists(path));
  }

  /**
   * One page of the children, sorted by name, each with its stat when `withStats` (read for the
   * page only). Without `limit` a page holds up to the tenant's maxChildrenPerListing; `total`
   * always counts every child. @throws NO_NODE, INVALID_ARGUMENT (limit, cursor)
   */
  async children(path: string, opts: ChildrenOptions = {}): Promise<ChildrenListing> {
    this.check(path);
    const { children, stat } = await this.zk(path, (c) => c.children(path));
    return this.pageListing(path, children, stat, opts);
  }

  /** Pages a listing read elsewhere (the watch hub's children state for a long-poll). */
  async pageListing(path: string, children: readonly string[], stat: Stat, opts: ChildrenOptions = {}): Promise<ChildrenListing> {
    const page = pageOf(children, opts, this.tenant.limits.maxChildrenPerListing);
    let entries: ChildEntry[] = page.names.map((name) => ({ name }));
    if (opts.withStats) {
      const stats = await this.zk(path, (c) => Promise.all(page.names.map((n) => c.exists(joinPath(path, n)))));
      // A child deleted between the listing and its stat is left out rather than reported stale.
      entries = page.names.flatMap((name, i) => (stats[i] ? [{ name, stat: stats[i] as Stat }] : []));
    }
    return { path, children: entries, stat, total: page.total, ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}) };
  }

  /**
   * The subtree of `path` breadth-first (`ls -R`), at most `limit` nodes (default and maximum:
   * the tenant's maxChildrenPerListing) and `depth` levels below it; `truncated` when the bound
   * cut it. @throws NO_NODE, INVALID_ARGUMENT (limit, depth)
   */
  async tree(path: string, opts: TreeOptions = {}): Promise<TreeListing> {
    this.check(path);
    const limit = checkLimit(opts.limit, this.tenant.limits.maxChildrenPerListing);
    if (opts.depth !== undefined && (!Number.isInteger(opts.depth) || opts.depth < 0)) throw invalidArgument('depth', 'must be an integer from 0');
    const walk = await this.zk(path, (c) => walkTree(c, path, limit, opts.depth));
    const nodes = walk.nodes.map((n) => ({ path: n.path, depth: n.depth, ...(opts.withStats ? { stat: n.stat } : {}) }));
    return { path, nodes, truncated: walk.truncated, limit };
  }

  /**
   * Creates a node and resolves with its actual path (sequential modes append a 10-digit suffix).
   * @throws NODE_EXISTS, NO_NODE (missing parent without createParents), LEASE_REQUIRED, UNIMPLEMENTED (TTL disabled)
   */
  async create(path: string, data: Buffer, opts: CreateOptions = {}): Promise<string> {
    const mode = opts.mode ?? 'persistent';
    const sequential = mode.endsWith('sequential');
    this.check(path, sequential);
    if (path === '/') throw new ZkgateError('INVALID_PATH', 'cannot create the root node', { path });
    this.checkData(data);
    if (mode === 'ttl' || mode === 'ttl_sequential') {
      if (opts.ttlMs === undefined || !Number.isInteger(opts.ttlMs) || opts.ttlMs < 1 || opts.ttlMs > TTL_MAX_MS) {
        throw invalidArgument('ttlMs', `required for mode ${mode}: an integer from 1 to ${TTL_MAX_MS}`);
      }
    } else if (opts.ttlMs !== undefined) {
      throw invalidArgument('ttlMs', 'only allowed with modes ttl and ttl_sequential');
    }
    const ephemeral = mode === 'ephemeral' || mode === 'ephemeral_sequential';
    if (ephemeral && !opts.leaseId) {
      throw new ZkgateError('LEASE_REQUIRED', `mode ${mode} needs a lease (leaseId) to own the node`, { mode });
    }
    if (!ephemeral && opts.leaseId !== undefined) throw invalidArgument('leaseId', 'only ephemeral modes are owned by a lease');
    try {
      if (!ephemeral) {
        if (opts.createParents) await this.createParents(path);
        return await this.zk(path, (c) => c.create(path, data, mode, opts.ttlMs));
      }
      return await this.createEphemeral(path, data, mode, opts);
    } catch (err) {
      throw this.missingParent(err, path, opts.createParents === true);
    }
  }

  /**
   * A create's NO_NODE means a missing parent: the answer names it and how to get it created
   * (ZooKeeper's own "node does not exist" reads as if the new node were missing).
   */
  private missingParent(err: unknown, path: string, createParents: boolean): unknown {
    if (!(err instanceof ZkgateError) || err.code !== 'NO_NODE') return err;
    const at = typeof err.details.path === 'string' ? err.details.path : path;
    // `/tasks/` (a sequential create) makes `/tasks/<seq>`: its parent is `/tasks`.
    const parent = at.endsWith('/') ? at.slice(0, -1) : parentOf(at);
    const hint = createParents
      ? "it lies above this API key's path prefixes, where createParents creates nothing"
      : 'send createParents: true (or ?createParents=true) to create it and any missing ancestor';
    return new ZkgateError('NO_NODE', `cannot create ${path}: parent ${parent} does not exist; ${hint}`, { path, parent }, { cause: err });
  }

  /**
   * An ephemeral of the tenant's gateway session, owned (and watched) by the lease, created
   * with protection: a sequential node's name gets Curator's `_c_<uuid>-` prefix, so that a create
   * cut by a connection loss is found again once the session is back (for up to the session
   * timeout) instead of escaping its lease; a caller that gives up leaves no node behind. If the
   * lease ends while the create is in flight, the node is deleted at once.
   */
  private async createEphemeral(path: string, data: Buffer, mode: 'ephemeral' | 'ephemeral_sequential', opts: CreateOptions): Promise<string> {
    const lease = this.leases.usable(this.tenant, opts.leaseId as string);
    if (opts.createParents) await this.createParents(path);
    const target = mode === 'ephemeral_sequential' ? protectedPath(path) : path;
    try {
      return await this.owned.create(lease, target, { data, mode, kind: 'node', deadline: Date.now() + this.tenant.sessionTimeoutMs, signal: opts.signal });
    } catch (err) {
      throw toZkgateError(err, path);
    }
  }

  private async createParents(path: string): Promise<void> {
    // `/tasks/` (sequential, trailing slash) needs `/tasks` itself as well as its ancestors.
    const all = path.endsWith('/') ? [...ancestorsOf(path.slice(0, -1)), path.slice(0, -1)] : ancestorsOf(path);
    // Above a scoped caller's prefix nothing is created: a missing one there answers NO_NODE.
    const parents = this.prefixes.length === 0 ? all : all.filter((p) => this.prefixes.some((pre) => pre === '/' || p === pre || p.startsWith(`${pre}/`)));
    for (const p of parents) {
      await this.zk(p, (c) =>
        c.create(p, Buffer.alloc(0), 'persistent').catch((err: { code?: string }) => {
          if (err.code !== 'NODE_EXISTS') throw err;
          return p;
        }),
      );
    }
  }

  /** Replaces the data; with `version` it is a compare-and-set. @throws NO_NODE, BAD_VERSION */
  async set(path: string, data: Buffer, opts: { version?: number } = {}): Promise<Stat> {
    this.check(path);
    this.checkData(data);
    const version = checkVersion(opts.version);
    return this.zk(path, (c) => c.set(path, data, version));
  }

  /**
   * Deletes a node; `recursive` deletes its subtree first, refusing (before deleting anything)
   * a subtree larger than the tenant's limit. @throws NO_NODE, BAD_VERSION, NOT_EMPTY, SUBTREE_TOO_LARGE
   */
  async delete(path: string, opts: DeleteOptions = {}): Promise<void> {
    this.check(path);
    if (path === '/') throw new ZkgateError('INVALID_PATH', 'cannot delete the root node', { path });
    const version = checkVersion(opts.version);
    if (!opts.recursive) return this.remove(path, version);
    if (version !== -1) {
      // Check the expected version before touching the subtree, so a stale version changes nothing.
      const stat = await this.zk(path, (c) => c.exists(path));
      if (!stat) throw new ZkgateError('NO_NODE', `${path}: node does not exist`, { path });
      if (stat.version !== version) throw new ZkgateError('BAD_VERSION', `${path}: version does not match (compare-and-set failed)`, { path });
    }
    const nodes = await this.subtree(path, this.tenant.limits.maxRecursiveDeleteNodes);
    // Deepest first, so every node is empty when its turn comes.
    for (const p of nodes.slice(1).reverse()) await this.remove(p, -1, true);
    await this.remove(path, version);
  }

  /**
   * Deletes one node (`missingOk`: one already gone is fine) and disowns it: a lease node
   * deleted through the gateway is the caller's own delete, no loss of the lease. Every delete
   * of this service goes through here, so none can leave the disowning out.
   */
  private async remove(path: string, version: number, missingOk = false): Promise<void> {
    await this.zk(path, (c) =>
      c.delete(path, version).catch((err: { code?: string }) => {
        if (!missingOk || err.code !== 'NO_NODE') throw err;
      }),
    );
    this.leases.forget(this.tenant, path);
  }

  /** The subtree in breadth-first order (root first). @throws SUBTREE_TOO_LARGE past `limit` nodes */
  private async subtree(root: string, limit: number): Promise<string[]> {
    const out = [root];
    for (let i = 0; i < out.length; i++) {
      const p = out[i] as string;
      const { children } = await this.zk(p, (c) =>
        c.children(p).catch((err: { code?: string }) => {
          if (err.code === 'NO_NODE' && p !== root) return { children: [] as string[] };
          throw err;
        }),
      );
      for (const ch of children) out.push(joinPath(p, ch));
      if (out.length > limit) {
        throw new ZkgateError('SUBTREE_TOO_LARGE', `subtree of ${root} has more than ${limit} nodes; nothing was deleted`, {
          path: root,
          limit,
        });
      }
    }
    return out;
  }

  /** The node's ACL and stat. @throws NO_NODE */
  async getAcl(path: string): Promise<{ acl: AclEntry[]; stat: Stat }> {
    this.check(path);
    return this.zk(path, (c) => c.getAcl(path));
  }

  /** Replaces the ACL; `version` is the expected ACL version (aversion). @throws NO_NODE, BAD_VERSION, INVALID_ACL */
  async setAcl(path: string, acl: readonly AclEntry[], opts: { version?: number } = {}): Promise<Stat> {
    this.check(path);
    const version = checkVersion(opts.version);
    if (acl.length === 0) throw invalidArgument('acl', 'must have at least one entry');
    try {
      await this.zk(path, (c) => c.setAcl(path, acl, version));
    } finally {
      // Also when the outcome is unknown (connection loss): the change may have applied.
      this.owned.hub.aclChanged(this.tenant, path);
    }
    const stat = await this.exists(path);
    if (!stat) throw new ZkgateError('NO_NODE', `${path}: node does not exist`, { path });
    return stat;
  }

  /** Flushes the leader's pending writes to this gateway's server before the next read. */
  async sync(path: string): Promise<void> {
    this.check(path);
    await this.zk(path, (c) => c.sync(path));
  }
}
