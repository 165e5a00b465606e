/**
 * Znode operations for one caller: each authorizes the action on the path (role and path
 * prefixes), checks that an ephemeral's lease is the caller's, then makes one NodeService call.
 */
import type { AclEntry, Stat } from '../../zk/index.js';
import type { NodeService } from '../nodes/node-service.js';
import type { ChildrenListing, ChildrenOptions, CreateOptions, DeleteOptions, TreeListing, TreeOptions, Znode } from '../types.js';
import { blockingRead, type BlockingReadOptions, type BlockingReadResult } from '../watch/long-poll.js';
import type { ScopeContext } from './scope.js';

export class ScopedNodes {
  constructor(private readonly ctx: ScopeContext) {}

  /** The node service bounded by the caller's prefixes, once `action` on `path` is allowed. */
  private service(action: Parameters<ScopeContext['authorize']>[0], path: string, sequential = false): NodeService {
    this.ctx.authorize(action, path, { sequential });
    return this.ctx.services.nodes(this.ctx.tenant, this.ctx.principal.prefixes);
  }

  /** Data and stat (from the read cache unless `sync` or `cache: false`; see `NodeService.get`). @throws NO_NODE, INVALID_PATH, PERMISSION_DENIED */
  get(path: string, opts: { sync?: boolean; cache?: boolean } = {}): Promise<Znode> {
    return this.service('node.read', path).get(path, opts);
  }

  /** Stat, or null when the node does not exist. */
  exists(path: string): Promise<Stat | null> {
    return this.service('node.read', path).exists(path);
  }

  /** One page of the children, sorted by name (see `NodeService.children`). @throws NO_NODE, INVALID_ARGUMENT */
  children(path: string, opts: ChildrenOptions = {}): Promise<ChildrenListing> {
    return this.service('node.read', path).children(path, opts);
  }

  /** Pages children names read elsewhere (a long-poll's state), with the stats of the page when asked. */
  pageChildren(path: string, children: readonly string[], stat: Stat, opts: ChildrenOptions = {}): Promise<ChildrenListing> {
    return this.service('node.read', path).pageListing(path, children, stat, opts);
  }

  /** `ls -R`: the subtree breadth-first, cut (and marked) at `limit` nodes. @throws NO_NODE, INVALID_ARGUMENT */
  tree(path: string, opts: TreeOptions = {}): Promise<TreeListing> {
    return this.service('node.read', path).tree(path, opts);
  }

  /**
   * Creates a node; an ephemeral's lease must be the caller's (or the caller a lease admin).
   * Resolves with the created path. @throws NODE_EXISTS, NO_NODE, LEASE_REQUIRED, LEASE_NOT_FOUND, PERMISSION_DENIED
   */
  async create(path: string, data: Buffer, opts: CreateOptions = {}): Promise<string> {
    const nodes = this.service('node.write', path, opts.mode?.endsWith('sequential') ?? false);
    if (opts.leaseId !== undefined && opts.mode?.startsWith('ephemeral')) this.ctx.lease(opts.leaseId, 'lease.write');
    return nodes.create(path, data, opts);
  }

  /** Replaces the data (compare-and-set with `version`). @throws NO_NODE, BAD_VERSION */
  set(path: string, data: Buffer, opts: { version?: number } = {}): Promise<Stat> {
    return this.service('node.write', path).set(path, data, opts);
  }

  /** Deletes a node; `recursive` needs the admin role. @throws NO_NODE, BAD_VERSION, NOT_EMPTY, SUBTREE_TOO_LARGE */
  delete(path: string, opts: DeleteOptions = {}): Promise<void> {
    return this.service(opts.recursive ? 'node.delete_recursive' : 'node.write', path).delete(path, opts);
  }

  /** The node's ACL and stat. @throws NO_NODE */
  getAcl(path: string): Promise<{ acl: AclEntry[]; stat: Stat }> {
    return this.service('acl.read', path).getAcl(path);
  }

  /** Replaces the ACL (admin). @throws NO_NODE, BAD_VERSION, INVALID_ACL */
  setAcl(path: string, acl: readonly AclEntry[], opts: { version?: number } = {}): Promise<Stat> {
    return this.service('acl.write', path).setAcl(path, acl, opts);
  }

  /** Flushes the leader's pending writes to this gateway's server. */
  async sync(path: string): Promise<void> {
    await this.service('node.read', path).sync(path);
  }

  /**
   * A long-poll read of `path` (see `blockingRead`): one unit of the tenant's subscriptions
   * while it waits. A node that does not exist answers a state with a null stat.
   * @throws LIMIT_EXCEEDED, UNAVAILABLE
   */
  blockingRead(path: string, kind: 'data' | 'children', opts: BlockingReadOptions): Promise<BlockingReadResult> {
    this.ctx.authorize('node.read', path);
    return blockingRead(this.ctx.services.watches, this.ctx.tenant, path, kind, opts);
  }
}
