/**
 * A `ZkClient` that gives every node it creates the tenant's configured ACL. The `zookeeper`
 * package can only create with the open ACL (world:anyone:cdrwa), so the ACL is set by a second
 * call right after the create: between the two the node is open (a window of one round trip,
 * documented in the README). If the second call fails the node is deleted and the create fails.
 */
import type { AclEntry, ChildrenResult, CreateMode, Created, NodeData, Stat, Watcher, ZkClient } from '../../zk/index.js';

export class AclOnCreateClient implements ZkClient {
  constructor(
    private readonly inner: ZkClient,
    private readonly acl: readonly AclEntry[],
  ) {}

  get sessionId(): string {
    return this.inner.sessionId;
  }

  /** Creates, then sets the ACL; deletes the node again if setting the ACL fails. */
  async create(path: string, data: Buffer, mode: CreateMode, ttlMs?: number): Promise<string> {
    return this.withAcl(await this.inner.create(path, data, mode, ttlMs));
  }

  /** As `create`; the stat is the create's (its `aversion` predates the ACL set right after). */
  async createWithStat(path: string, data: Buffer, mode: Exclude<CreateMode, 'ttl' | 'ttl_sequential'>): Promise<Created> {
    const created = await this.inner.createWithStat(path, data, mode);
    await this.withAcl(created.path);
    return created;
  }

  private async withAcl(created: string): Promise<string> {
    try {
      await this.inner.setAcl(created, this.acl, -1);
    } catch (err) {
      await this.inner.delete(created).catch(() => undefined);
      throw err;
    }
    return created;
  }

  get(path: string, watcher?: Watcher): Promise<NodeData> {
    return this.inner.get(path, watcher);
  }
  exists(path: string, watcher?: Watcher): Promise<Stat | null> {
    return this.inner.exists(path, watcher);
  }
  children(path: string, watcher?: Watcher): Promise<ChildrenResult> {
    return this.inner.children(path, watcher);
  }
  set(path: string, data: Buffer, version?: number): Promise<Stat> {
    return this.inner.set(path, data, version);
  }
  delete(path: string, version?: number): Promise<void> {
    return this.inner.delete(path, version);
  }
  getAcl(path: string): Promise<{ acl: AclEntry[]; stat: Stat }> {
    return this.inner.getAcl(path);
  }
  setAcl(path: string, acl: readonly AclEntry[], version?: number): Promise<void> {
    return this.inner.setAcl(path, acl, version);
  }
  sync(path: string): Promise<void> {
    return this.inner.sync(path);
  }
  addAuth(scheme: string, auth: string): Promise<void> {
    return this.inner.addAuth(scheme, auth);
  }
}
