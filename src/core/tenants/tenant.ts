/**
 * A tenant: a named ZooKeeper namespace (chroot) with its own long-lived gateway session.
 */
import { EventEmitter } from 'node:events';
import { NativeZkClient, ZkSession, ancestorsOf, backoffDelay, type AclEntry, type RebuildFailure, type StateChange, type ZkClient } from '../../zk/index.js';
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
  /** A session handed over by another instance, resumed instead of a new one (docs/cluster.md). */
  readonly resume?: { readonly sessionId: string; readonly password: string };
  /** Share these quotas (a handed-over session's tenant counts against the tenant's own). */
  readonly quotas?: TenantQuotas;
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
  /** Null once the chroot is known to exist (always for `/`), else why it is not yet. */
  private chrootProblem: string | null;
  private readonly stopped = new AbortController();
  private readonly options: TenantOptions;

  /**
   * The same tenant over a session another instance handed over (docs/cluster.md): same name,
   * chroot and quotas, the handed-over session instead of a new one. Not started.
   */
  withSession(resume: { sessionId: string; password: string }): Tenant {
    return new Tenant({ ...this.options, resume, quotas: this.quotas });
  }

  /**
   * Stops using the session without closing it, for another instance to resume (see
   * `ZkSession.detach`); the tenant is closed here. Null when there is nothing to hand over.
   */
  detachSession(): { sessionId: string; password: string } | null {
    const creds = this.session.detach();
    if (creds) {
      this.lifecycle = 'closed';
      this.stopped.abort();
    }
    return creds;
  }

  constructor(opts: TenantOptions) {
    super();
    const c = opts.config;
    this.name = c.name;
    this.chroot = c.chroot;
    this.limits = { ...opts.limits, ...c.limits };
    this.quotas = opts.quotas ?? new TenantQuotas(c.name, this.limits);
    this.connect = c.connect ?? opts.defaultConnect;
    this.log = opts.logger.child({ tenant: c.name });
    this.auth = c.digest ? [{ scheme: 'digest', credential: `${c.digest.user}:${c.digest.password}` }] : [];
    this.nodeAcl = c.nodeAcl ? c.nodeAcl.map((a, i) => ({ scheme: a.scheme, id: a.id, perms: lettersToPerms(a.perms, `nodeAcl.${i}.perms`) })) : null;
    this.sessionTimeoutMs = c.sessionTimeoutMs;
    const chrooted = c.chroot === '/' ? this.connect : `${this.connect}${c.chroot}`;
    this.chrootProblem = c.chroot === '/' ? null : 'not checked yet';
    this.session = new ZkSession({ connect: chrooted, sessionTimeoutMs: c.sessionTimeoutMs, auth: this.auth, ...(opts.resume ? { resume: opts.resume } : {}) });
    this.options = opts;
    this.session.on('state', (change: StateChange) => {
      const level = change.state === 'expired' || change.state === 'suspended' ? 'warn' : 'info';
      this.log[level]({ zkState: change.state, sessionId: change.sessionId, generation: change.generation }, 'zookeeper session state');
      this.emit('state', change);
    });
    // Only the first failure of a run is logged; the next `connected` state ends the run.
    this.session.on('rebuildFailed', (f: RebuildFailure) => {
      if (f.failures === 1) this.log.warn({ reason: f.reason, nextAttemptMs: f.nextAttemptMs }, 'zookeeper session cannot be rebuilt; retrying with backoff');
      else this.log.debug({ reason: f.reason, failures: f.failures, nextAttemptMs: f.nextAttemptMs }, 'zookeeper session rebuild failed again');
    });
  }

  /** True when the tenant's session is connected, its chroot exists, and requests can be served. */
  get ready(): boolean {
    return this.notReadyReason() === null;
  }

  /** Why requests cannot be served now, or null when they can. */
  notReadyReason(): string | null {
    if (this.chrootProblem !== null) return `chroot ${this.chroot} not created yet: ${this.chrootProblem}`;
    return this.session.isUsable ? null : `zookeeper session is ${this.session.state}`;
  }

  /**
   * Creates the chroot if needed and opens the session. Resolves when both are done or after
   * `timeoutMs`; whatever is not done by then goes on in the background (with backoff), and the
   * tenant is not ready until it is.
   */
  async start(timeoutMs = 15_000): Promise<void> {
    if (this.lifecycle !== 'idle') throw new Error(`tenant ${this.name}: already started`);
    this.lifecycle = 'running';
    const chroot = this.chroot === '/' ? Promise.resolve() : this.keepEnsuringChroot(timeoutMs);
    const session = this.session.start(timeoutMs).catch((err: Error) => {
      this.log.warn({ err: err.message }, 'zookeeper not reachable yet; retrying in the background');
    });
    const deadline = new Promise<void>((r) => setTimeout(r, timeoutMs).unref());
    await Promise.all([Promise.race([chroot, deadline]), session]);
  }

  /**
   * The client for this tenant's session.
   * @throws ZkgateError UNAVAILABLE (503) at once while the session is not connected or the chroot not created.
   */
  client(): ZkClient {
    const reason = this.notReadyReason();
    if (reason !== null) {
      throw new ZkgateError('UNAVAILABLE', `tenant ${this.name}: ${reason}`, {
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
    this.stopped.abort();
    this.session.close();
  }

  /** Tries to create the chroot until it exists or the tenant closes; logs once per new problem. */
  private async keepEnsuringChroot(attemptTimeoutMs: number): Promise<void> {
    for (let attempt = 0; !this.stopped.signal.aborted; attempt++) {
      try {
        await this.ensureChroot(Math.min(attemptTimeoutMs, 10_000));
        if (attempt > 0) this.log.info({ chroot: this.chroot }, 'chroot created; tenant can serve');
        this.chrootProblem = null;
        return;
      } catch (err) {
        const problem = (err as Error).message;
        if (problem !== this.chrootProblem) this.log.warn({ chroot: this.chroot, problem }, 'cannot create the chroot yet; retrying in the background');
        this.chrootProblem = problem;
        await abortableSleep(backoffDelay(attempt, 500, 30_000), this.stopped.signal);
      }
    }
  }

  private async ensureChroot(timeoutMs: number): Promise<void> {
    const boot = new NativeZkClient({ connect: this.connect, sessionTimeoutMs: 5000 });
    try {
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no zookeeper session with ${this.connect} within ${timeoutMs} ms`)), timeoutMs);
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

/** Resolves after `ms`, or at once when `signal` aborts. */
function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
