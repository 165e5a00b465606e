/**
 * A tenant: a named ZooKeeper namespace (chroot) with its own long-lived gateway session.
 */
import { EventEmitter } from 'node:events';
import { NativeZkClient, ZkSession, ancestorsOf, type AclEntry, type StateChange, type ZkClient } from '../../zk/index.js';
import { lettersToPerms } from '../acl-perms.js';
import { AclOnCreateClient } from './acl-on-create.js';
import { ZkgateError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { TenantConfig } from '../gateway-config.js';
import type { Limits } from '../limits/limits.js';
import { TenantQuotas } from '../limits/quotas.js';

export interface TenantOptions {
  readonly config: TenantConfig;
  /** Connect string used when the tenant names none. */
  readonly defaultConnect: string;
  readonly limits: Limits;
  readonly logger: Logger;
}

/** Emits `state` (a `StateChange`) whenever the tenant's ZooKeeper session changes state. */
export class Tenant extends EventEmitter {
  readonly name: string;
  readonly chroot: string;
  readonly limits: Limits;
  readonly quotas: TenantQuotas;
  readonly session: ZkSession;
  /** The session timeout requested from ZooKeeper, ms. */
  readonly sessionTimeoutMs: number;
  private readonly connect: string;
  private readonly log: Logger;
  private readonly auth: { scheme: string; credential: string }[];
  /** ACL given to every node the gateway creates for this tenant, if configured. */
  readonly nodeAcl: readonly AclEntry[] | null;
  private lifecycle: 'idle' | 'running' | 'closed' = 'idle';

  constructor(opts: TenantOptions) {
    super();
    const c = opts.config;
    this.name = c.name;
    this.chroot = c.chroot;
    this.limits = { ...opts.limits, ...c.limits };
    this.quotas = new TenantQuotas(c.name, this.limits);
    this.connect = c.connect ?? opts.defaultConnect;
    this.log = opts.logger.child({ tenant: c.name });
    this.auth = c.digest ? [{ scheme: 'digest', credential: `${c.digest.user}:${c.digest.password}` }] : [];
    this.nodeAcl = c.nodeAcl ? c.nodeAcl.map((a, i) => ({ scheme: a.scheme, id: a.id, perms: lettersToPerms(a.perms, `nodeAcl.${i}.perms`) })) : null;
    this.sessionTimeoutMs = c.sessionTimeoutMs;
    const chrooted = c.chroot === '/' ? this.connect : `${this.connect}${c.chroot}`;
    this.session = new ZkSession({ connect: chrooted, sessionTimeoutMs: c.sessionTimeoutMs, auth: this.auth });
    this.session.on('state', (change: StateChange) => {
      const level = change.state === 'expired' || change.state === 'suspended' ? 'warn' : 'info';
      this.log[level]({ zkState: change.state, sessionId: change.sessionId, generation: change.generation }, 'zookeeper session state');
      this.emit('state', change);
    });
  }

  /** True when the tenant's session is connected and requests can be served. */
  get ready(): boolean {
    return this.session.isUsable;
  }

  /**
   * Creates the chroot if needed, then opens the session. Resolves when connected or after
   * `timeoutMs`; the session keeps trying in the background either way.
   */
  async start(timeoutMs = 15_000): Promise<void> {
    if (this.lifecycle !== 'idle') throw new Error(`tenant ${this.name}: already started`);
    this.lifecycle = 'running';
    if (this.chroot !== '/') await this.ensureChroot(timeoutMs);
    await this.session.start(timeoutMs).catch((err: Error) => {
      this.log.warn({ err: err.message }, 'zookeeper not reachable yet; retrying in the background');
    });
  }

  /**
   * The client for this tenant's session.
   * @throws ZkgateError UNAVAILABLE (503) at once while the session is not connected.
   */
  client(): ZkClient {
    if (!this.session.isUsable) {
      throw new ZkgateError('UNAVAILABLE', `tenant ${this.name}: zookeeper session is ${this.session.state}`, {
        tenant: this.name,
        zkState: this.session.state,
      });
    }
    const client = this.session.client();
    return this.nodeAcl ? new AclOnCreateClient(client, this.nodeAcl) : client;
  }

  close(): void {
    if (this.lifecycle === 'closed') return;
    this.lifecycle = 'closed';
    this.session.close();
  }

  private async ensureChroot(timeoutMs: number): Promise<void> {
    const boot = new NativeZkClient({ connect: this.connect, sessionTimeoutMs: 5000 });
    try {
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`tenant ${this.name}: no zookeeper at ${this.connect}`)), timeoutMs);
        boot.once('connect', () => {
          clearTimeout(t);
          resolve();
        });
      });
      for (const a of this.auth) await boot.addAuth(a.scheme, a.credential);
      for (const p of ancestorsOf(this.chroot)) await createIfMissing(boot, p);
      // The chroot itself is the tenant's: it gets the tenant's ACL when the gateway creates it.
      await createIfMissing(this.nodeAcl ? new AclOnCreateClient(boot, this.nodeAcl) : boot, this.chroot);
    } finally {
      boot.close();
    }
  }
}

async function createIfMissing(client: ZkClient, path: string): Promise<void> {
  await client.create(path, Buffer.alloc(0), 'persistent').catch((err: { code?: string }) => {
    if (err.code !== 'NODE_EXISTS') throw err;
  });
}
