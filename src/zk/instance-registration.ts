/**
 * One ephemeral znode per running gateway instance, `<path>/<instanceId>`, held by a session of
 * its own: a second process started with the same `instanceId` finds it and refuses to start
 * (lease ids carry the instance id, so two processes sharing one would route and expire each
 * other's leases). The node's data is the instance's member record (JSON); the registration also
 * watches its siblings, so every instance sees the cluster's membership (docs/cluster.md).
 */
import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import { ancestorsOf, parentOf } from './paths.js';
import { ZkError } from './errors.js';
import { NativeZkClient } from './native-client.js';

/** Thrown when another live process holds the instance id; its message is the line to print. */
export class DuplicateInstanceError extends Error {
  override readonly name = 'DuplicateInstanceError';
}

/** What an instance publishes about itself (the JSON data of its node). */
export interface MemberRecord {
  readonly id: string;
  /** Random per process start: lease ids carry it, so a restarted instance's old leases are told apart. */
  readonly incarnation: string;
  /** Internal URL other instances forward calls to (`''` when it forwards nothing). */
  readonly address: string;
  readonly version: string;
  /** ISO time the process started. */
  readonly startedAt: string;
  readonly host: string;
  readonly pid: number;
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
  /** The rest of the member record. @defaultValue no address, version 0, incarnation '' */
  readonly record?: Partial<Omit<MemberRecord, 'id' | 'host' | 'pid'>>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const exists = (err: unknown): boolean => err instanceof ZkError && err.code === 'NODE_EXISTS';

/** A handle that connects within `ms`, or null. */
async function connectWithin(connect: string, sessionTimeoutMs: number, ms: number): Promise<NativeZkClient | null> {
  const client = new NativeZkClient({ connect, sessionTimeoutMs });
  const ok = await new Promise<boolean>((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    client.once('connect', () => {
      clearTimeout(t);
      resolve(true);
    });
  });
  if (ok) return client;
  client.close();
  return null;
}

/** Which live instance now holds the leases granted by a gone start of an instance. */
export interface HandoffTarget {
  readonly id: string;
  readonly incarnation: string;
}

/**
 * The instance's registration: holds its node, keeps the membership view (every registered
 * instance, by id) current through a children watch, and re-creates its node with a new session
 * if its session expires. Emits `change` when the membership view changes.
 */
export class InstanceRegistration extends EventEmitter {
  private view = new Map<string, MemberRecord>();
  private moved = new Map<string, HandoffTarget>();
  private state: 'running' | 'closed' = 'running';
  /**
   * Persistent `<parent of path>/handoffs/<instanceId>.<incarnation>` nodes: the leases that
   * start of an instance granted are now held by the instance named in the data (docs/cluster.md).
   */
  readonly handoffPath: string;
  /**
   * Ephemeral `<parent of path>/usage/<instanceId>` nodes in each registration's session: what
   * the instance holds of each tenant's quotas (docs/cluster.md "Quotas across the cluster").
   * An instance's node goes with its registration, so a dead instance's units come back.
   */
  readonly usagePath: string;
  /** Usage nodes as last read: instance id → parsed data. */
  private usageView = new Map<string, unknown>();
  /** Usage nodes with a data watch armed (one per node, so watches never pile up). */
  private readonly usageArmed = new Set<string>();
  private usageChildrenArmed = false;
  /** A children watch is armed on the members / on the handoff records (one each, see reload). */
  private membersArmed = false;
  private handoffsArmed = false;
  /** This instance's latest usage: written once a write in flight is done, and again after a session expiry. */
  private usageOut: Buffer | null = null;
  private usageLast: Buffer | null = null;
  private usageWriting = false;
  private usageReading = false;
  /** What the next read covers: the children list (and every node not read yet), and nodes whose data changed. */
  private usageListDirty = true;
  private readonly usageDirty = new Set<string>();

  constructor(
    private client: NativeZkClient,
    private readonly opts: InstanceRegistrationOptions,
    readonly record: MemberRecord,
  ) {
    super();
    const base = parentOf(opts.path) === '/' ? '' : parentOf(opts.path);
    this.handoffPath = `${base}/handoffs`;
    this.usagePath = `${base}/usage`;
    this.onClose();
    void this.reload().catch(() => undefined);
    this.rereadUsage();
  }

  /** Every other instance's published usage as last seen (changes are announced by a `usage` event). */
  usage(): ReadonlyMap<string, unknown> {
    return this.usageView;
  }

  /**
   * Publishes this instance's usage (any JSON). Writes are serialized and coalesced: while one
   * is in flight only the latest value waits, so the cost is at most one ZooKeeper write at a
   * time, whatever the call rate.
   */
  publishUsage(value: unknown): void {
    this.usageOut = Buffer.from(JSON.stringify(value));
    void this.flushUsage();
  }

  private async flushUsage(): Promise<void> {
    if (this.usageWriting) return;
    this.usageWriting = true;
    try {
      while (this.usageOut && this.state === 'running') {
        const data = this.usageOut;
        this.usageOut = null;
        try {
          await this.writeUsage(data);
          this.usageLast = data;
        } catch {
          // ZooKeeper unreachable: keep the value (unless a newer one came) and try again.
          this.usageOut ??= data;
          await sleep(500);
        }
      }
    } finally {
      this.usageWriting = false;
    }
  }

  private async writeUsage(data: Buffer): Promise<void> {
    const node = `${this.usagePath}/${this.opts.instanceId}`;
    const client = this.client;
    try {
      await client.set(node, data);
      return;
    } catch (err) {
      if (!(err instanceof ZkError && err.code === 'NO_NODE')) throw err;
    }
    await client.create(this.usagePath, Buffer.alloc(0), 'persistent').catch((err: unknown) => {
      if (!exists(err)) throw err;
    });
    await client.create(node, data, 'ephemeral').catch(async (err: unknown) => {
      if (!exists(err)) throw err;
      await client.set(node, data);
    });
  }

  /**
   * Reads usage again soon: every watch event lands here — `name` when that instance's node
   * changed (only it is read again: one read per write elsewhere, where reading every node was
   * one per instance), none when the list of nodes may have. Reads are serialized (one in flight;
   * events meanwhile are gathered for the next), so the last read starts after the last event.
   */
  private rereadUsage(name?: string): void {
    if (this.state === 'closed') return;
    if (name === undefined) this.usageListDirty = true;
    else this.usageDirty.add(name);
    this.readPendingUsage();
  }

  /** Starts one read of what events asked for, unless one is in flight (it starts the next). */
  private readPendingUsage(): void {
    if (this.usageReading || this.state === 'closed' || (!this.usageListDirty && this.usageDirty.size === 0)) return;
    this.usageReading = true;
    const list = this.usageListDirty;
    const changed = [...this.usageDirty];
    this.usageListDirty = false;
    this.usageDirty.clear();
    void this.reloadUsage(list, changed)
      .catch(() => undefined)
      .finally(() => {
        this.usageReading = false;
        this.readPendingUsage();
      });
  }

  /**
   * Reads the usage nodes named in `changed`, and with `list` the children list and every node
   * not in the view yet; keeps one children watch and one data watch per node armed.
   */
  private async reloadUsage(list: boolean, changed: readonly string[]): Promise<void> {
    const client = this.client;
    let names = [...this.usageView.keys()];
    if (list) {
      const fired = (): void => {
        this.usageChildrenArmed = false;
        this.rereadUsage();
      };
      const arm = !this.usageChildrenArmed;
      this.usageChildrenArmed = true;
      try {
        names = (await client.children(this.usagePath, arm ? fired : undefined)).children.filter((n) => n !== this.opts.instanceId);
      } catch {
        // No usage node yet: watch for the parent's creation instead (created meanwhile: read again).
        this.usageChildrenArmed = false;
        const stat = await client.exists(this.usagePath, fired).catch(() => 'unreachable' as const);
        if (stat === 'unreachable') setTimeout(() => this.rereadUsage(), 1000).unref();
        else if (stat) this.usageListDirty = true;
        else this.usageChildrenArmed = true;
        names = [];
      }
    }
    const next = new Map<string, unknown>();
    const read = new Set(changed);
    await Promise.all(
      names.map(async (name) => {
        // Read again: a node whose data changed, and one without a watch armed (new in the
        // list, a failed read, a new session); the others' data is as last read.
        next.set(name, read.has(name) || !this.usageArmed.has(name) || !this.usageView.has(name) ? await this.readUsage(name) : this.usageView.get(name));
      }),
    );
    for (const name of [...this.usageArmed]) if (!next.has(name)) this.usageArmed.delete(name);
    this.usageView = next;
    this.emit('usage');
  }

  private async readUsage(name: string): Promise<unknown> {
    const arm = !this.usageArmed.has(name);
    this.usageArmed.add(name);
    const fired = (): void => {
      this.usageArmed.delete(name);
      this.rereadUsage(name);
    };
    const got = await this.client.get(`${this.usagePath}/${name}`, arm ? fired : undefined).catch((err: unknown) => {
      if (arm) this.usageArmed.delete(name);
      // Gone: the children watch drops it. Unreachable: nothing is armed for it, so read it again.
      if (!(err instanceof ZkError && err.code === 'NO_NODE')) setTimeout(() => this.rereadUsage(name), 1000).unref();
      return null;
    });
    try {
      return got ? (JSON.parse(got.data.toString('utf8')) as unknown) : null;
    } catch {
      return null;
    }
  }

  /** Handoff records as last seen: `<instanceId>.<incarnation>` → the instance holding its leases now. */
  handoffs(): ReadonlyMap<string, HandoffTarget> {
    return this.moved;
  }

  /** Records (persistently) that the leases of `origin` (`<instanceId>.<incarnation>`) are now held by `target`. */
  async recordHandoff(origin: string, target: HandoffTarget): Promise<void> {
    const node = `${this.handoffPath}/${origin}`;
    const data = Buffer.from(JSON.stringify(target));
    await this.client.create(this.handoffPath, Buffer.alloc(0), 'persistent').catch((err: unknown) => {
      if (!exists(err)) throw err;
    });
    await this.client.create(node, data, 'persistent').catch(async (err: unknown) => {
      if (!exists(err)) throw err;
      await this.client.set(node, data);
    });
    this.moved.set(origin, target);
  }

  /**
   * Deletes the handoff record of `origin` if it still names `target` (read again, deleted at
   * that version: a record rewritten meanwhile by a later handoff stays). Resolves true when it
   * is gone. @throws ZkError when ZooKeeper cannot be reached
   */
  async clearHandoff(origin: string, target: HandoffTarget): Promise<boolean> {
    const node = `${this.handoffPath}/${origin}`;
    const got = await this.client.get(node).catch((err: unknown) => {
      if (err instanceof ZkError && err.code === 'NO_NODE') return null;
      throw err;
    });
    if (got) {
      const t = parseTarget(got.data);
      if (!t || t.id !== target.id || t.incarnation !== target.incarnation) return false;
      try {
        await this.client.delete(node, got.stat.version);
      } catch (err) {
        if (err instanceof ZkError && err.code === 'NO_NODE') return true;
        if (err instanceof ZkError && err.code === 'BAD_VERSION') return false;
        throw err;
      }
    }
    const next = new Map(this.moved);
    next.delete(origin);
    this.moved = next;
    return true;
  }

  /** The members as last seen (this instance included while registered). */
  members(): ReadonlyMap<string, MemberRecord> {
    return this.view;
  }

  /**
   * Reads the membership from ZooKeeper now (after a `sync`, so an instance that registered
   * before this call is seen). @throws ZkError when ZooKeeper cannot be reached
   */
  async refresh(): Promise<ReadonlyMap<string, MemberRecord>> {
    await this.client.sync(this.opts.path);
    return this.reload(false);
  }

  /** Removes the node by closing its session; idempotent. */
  close(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.client.close();
  }

  /**
   * Reads the membership (and the handoff records). With `watch`, keeps exactly one children
   * watch armed on each: a watch is armed only when none is (a C-client watcher registered twice
   * fires twice, so re-arming on every read would pile callbacks up), and a read that fails is
   * retried, since a watch that fired has nothing armed behind it.
   */
  private async reload(watch = true): Promise<ReadonlyMap<string, MemberRecord>> {
    const client = this.client;
    const arm = watch && !this.membersArmed;
    if (arm) this.membersArmed = true;
    let children: string[];
    try {
      children = (await client.children(this.opts.path, arm ? () => this.membersFired(client) : undefined)).children;
    } catch (err) {
      if (arm) this.retryWhenFailed(client, () => (this.membersArmed = false), () => this.reload());
      throw err;
    }
    const next = new Map<string, MemberRecord>();
    await Promise.all(
      children.map(async (name) => {
        const got = await client.get(`${this.opts.path}/${name}`).catch(() => null);
        const rec = got ? parseRecord(got.data, name) : null;
        if (rec) next.set(name, rec);
      }),
    );
    const changed = next.size !== this.view.size || [...next].some(([k, v]) => this.view.get(k)?.incarnation !== v.incarnation);
    this.view = next;
    await this.reloadHandoffs(watch);
    if (changed) this.emit('change', next);
    return next;
  }

  private membersFired(client: NativeZkClient): void {
    if (client !== this.client) return; // a replaced session's watch: the new session armed its own
    this.membersArmed = false;
    void this.reload().catch(() => undefined);
  }

  private handoffsFired(client: NativeZkClient): void {
    if (client !== this.client) return;
    this.handoffsArmed = false;
    void this.reloadHandoffs(true).catch(() => undefined);
  }

  /** After a failed watched read: nothing is armed any more, so read (and arm) again in a second. */
  private retryWhenFailed(client: NativeZkClient, disarm: () => void, again: () => Promise<unknown>): void {
    disarm();
    setTimeout(() => {
      if (this.state === 'running' && client === this.client) void again().catch(() => undefined);
    }, 1000).unref();
  }

  private async reloadHandoffs(watch: boolean): Promise<void> {
    const client = this.client;
    const arm = watch && !this.handoffsArmed;
    if (arm) this.handoffsArmed = true;
    const rearm = arm ? () => this.handoffsFired(client) : undefined;
    let names: string[];
    try {
      names = (await client.children(this.handoffPath, rearm)).children;
    } catch {
      // No record yet: watch for the parent's creation instead.
      if (!rearm) return;
      const stat = await client.exists(this.handoffPath, rearm).catch(() => 'unreachable' as const);
      if (stat === 'unreachable') this.retryWhenFailed(client, () => (this.handoffsArmed = false), () => this.reloadHandoffs(true));
      else if (stat) {
        // Created between the two calls: its creation will not fire, so read (and arm) again.
        this.handoffsArmed = false;
        return this.reloadHandoffs(true);
      }
      return;
    }
    const next = new Map<string, HandoffTarget>();
    await Promise.all(
      names.map(async (name) => {
        const got = await client.get(`${this.handoffPath}/${name}`).catch(() => null);
        const t = got ? parseTarget(got.data) : null;
        if (t) next.set(name, t);
      }),
    );
    this.moved = next;
  }

  /** On session expiry: a new session, the node again (same record), the watch again. */
  private onClose(): void {
    this.client.once('close', () => {
      if (this.state === 'closed') return;
      void (async () => {
        while (this.state === 'running') {
          const c = await connectWithin(this.opts.connect, this.opts.sessionTimeoutMs, this.opts.connectTimeoutMs);
          if (c && this.state === 'running') {
            try {
              await c.create(`${this.opts.path}/${this.opts.instanceId}`, encodeRecord(this.record), 'ephemeral');
              this.client = c;
              this.onClose();
              // The old session's watches are gone with it: arm new ones.
              this.membersArmed = false;
              this.handoffsArmed = false;
              await this.reload();
              // The old session's watches and usage node are gone with it.
              this.usageArmed.clear();
              this.usageChildrenArmed = false;
              this.rereadUsage();
              if (this.usageLast && !this.usageOut) this.publishUsage(JSON.parse(this.usageLast.toString('utf8')));
              return;
            } catch {
              c.close();
            }
          } else c?.close();
          await sleep(1000);
        }
      })();
    });
  }
}

/** A handoff record's target, or null when the data is not one. */
function parseTarget(data: Buffer): HandoffTarget | null {
  try {
    const t = JSON.parse(data.toString('utf8')) as Partial<HandoffTarget>;
    return t && typeof t.id === 'string' && typeof t.incarnation === 'string' ? { id: t.id, incarnation: t.incarnation } : null;
  } catch {
    return null;
  }
}

function encodeRecord(r: MemberRecord): Buffer {
  return Buffer.from(JSON.stringify(r));
}

/** A member record from a node's data; older gateways wrote only host, pid and startedAt. */
function parseRecord(data: Buffer, name: string): MemberRecord | null {
  try {
    const v = JSON.parse(data.toString('utf8')) as Partial<MemberRecord>;
    return {
      id: name,
      incarnation: typeof v.incarnation === 'string' ? v.incarnation : '',
      address: typeof v.address === 'string' ? v.address : '',
      version: typeof v.version === 'string' ? v.version : '',
      startedAt: typeof v.startedAt === 'string' ? v.startedAt : '',
      host: typeof v.host === 'string' ? v.host : '',
      pid: typeof v.pid === 'number' ? v.pid : 0,
    };
  } catch {
    return null;
  }
}

/**
 * Creates the instance node and resolves with the registration (whose `close` removes it).
 * Resolves with `null` when no session could be made in time (nothing to check against).
 * @throws DuplicateInstanceError when the node stays held by another session past `sessionTimeoutMs`
 */
export async function registerInstance(opts: InstanceRegistrationOptions): Promise<InstanceRegistration | null> {
  const client = await connectWithin(opts.connect, opts.sessionTimeoutMs, opts.connectTimeoutMs);
  if (!client) return null;
  const node = `${opts.path}/${opts.instanceId}`;
  const record: MemberRecord = {
    id: opts.instanceId,
    incarnation: opts.record?.incarnation ?? '',
    address: opts.record?.address ?? '',
    version: opts.record?.version ?? '0',
    startedAt: opts.record?.startedAt ?? new Date().toISOString(),
    host: hostname(),
    pid: process.pid,
  };
  try {
    for (const p of [...ancestorsOf(opts.path), opts.path]) {
      await client.create(p, Buffer.alloc(0), 'persistent').catch((err: unknown) => {
        if (!exists(err)) throw err;
      });
    }
    // A node left by a predecessor that crashed goes within its session timeout: wait that long.
    const deadline = Date.now() + opts.sessionTimeoutMs + 2000;
    for (;;) {
      try {
        await client.create(node, encodeRecord(record), 'ephemeral');
        return new InstanceRegistration(client, opts, record);
      } catch (err) {
        if (!exists(err)) throw err;
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
