/**
 * Barriers in Curator 5.4's layouts, so Curator services and gateway clients meet at one barrier.
 *
 * Simple barrier (`DistributedBarrier`): the barrier is up while its node exists (persistent,
 * parents created persistent); waiters pass once it is deleted.
 *
 * Double barrier (`DistributedDoubleBarrier`): members are EPHEMERAL children `<uuid>` of the
 * barrier path (container parents), ours owned by the caller's lease; `ready` is created
 * (persistent) by the member that counts at least `memberQty` children, and enter returns once
 * it exists. Leave deletes our node and waits until no member is left, watching the highest
 * remaining member as Curator does; then `ready` is deleted so the path can be used again.
 * Curator's enter that times out leaves its node; ours deletes it, so a caller that gives up,
 * disconnects or loses its lease leaves nothing behind.
 */
import { randomUUID } from 'node:crypto';
import { ancestorsOf, joinPath, nameOf, type Stat, type ZkClient } from '../../zk/index.js';
import { ZkgateError, invalidArgument, toZkgateError } from '../errors.js';
import type { Lease, LeaseState } from '../leases/lease.js';
import type { OwnedNodes } from '../leases/owned-nodes.js';
import type { Tenant } from '../tenants/tenant.js';
import { checkRecipePath, checkWaitMs, childNode } from './lock.js';
import { reachable } from './reachable.js';
import { createContainers } from './sequential-queue.js';
import { wake } from './wake.js';

/** Curator's name for the double barrier's ready node. */
export const READY_NODE = 'ready';
/** Most members a double barrier may wait for. */
export const MAX_BARRIER_MEMBERS = 10_000;

export interface BarrierWaitOptions {
  /** How long to wait, ms (0 to 600000); 0 = look once. @defaultValue 0 */
  readonly waitMs?: number;
  /** Aborting gives the wait up (an enter's member node is deleted). */
  readonly signal?: AbortSignal;
}

/** A simple barrier's state. */
export interface BarrierState {
  readonly barrierPath: string;
  /** True while the barrier node exists. */
  readonly set: boolean;
}

/** A double-barrier member that has entered. */
export interface BarrierEntry {
  readonly barrierPath: string;
  /** Our member node (full path): the handle for leave. */
  readonly node: string;
  /** The threshold this member waited for. */
  readonly memberQty: number;
  /** Members (children other than `ready`) seen when it entered. */
  readonly members: number;
  readonly leaseId: string;
  readonly leaseState: LeaseState;
  /** ms from now the membership can be trusted without a fresh answer (`Lease.trustMs`). */
  readonly trustMs: number;
}

/** A double barrier as anyone sees it. */
export interface DoubleBarrierState {
  readonly barrierPath: string;
  /** True once `ready` exists (enough members entered, not all have left). */
  readonly ready: boolean;
  /** Member nodes in Curator's order (name order), with owner and creation time. */
  readonly members: readonly { readonly node: string; readonly ephemeralOwner: string; readonly ctimeMs: number }[];
}

const byName = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0); // Java String.compareTo

/** Curator's `filterAndSortChildren`: every child but `ready`, in name order. */
export function barrierMembers(children: readonly string[]): string[] {
  return children.filter((c) => c !== READY_NODE).sort(byName);
}

export class BarrierService {
  constructor(private readonly owned: OwnedNodes) {}

  /** Sets the simple barrier (creates its node and missing parents). Idempotent: `created` false when it was up. */
  async set(tenant: Tenant, path: string): Promise<BarrierState & { created: boolean }> {
    checkRecipePath(path);
    const client = tenant.client();
    for (const p of [...ancestorsOf(path), path]) {
      try {
        await client.create(p, Buffer.alloc(0), 'persistent');
      } catch (err) {
        if (toZkgateError(err, p).code !== 'NODE_EXISTS') throw toZkgateError(err, p);
        if (p === path) return { barrierPath: path, set: true, created: false };
      }
    }
    return { barrierPath: path, set: true, created: true };
  }

  /** Removes the simple barrier; idempotent (`removed` false when it was not up). @throws NOT_EMPTY */
  async remove(tenant: Tenant, path: string): Promise<BarrierState & { removed: boolean }> {
    checkRecipePath(path);
    try {
      await tenant.client().delete(path);
      return { barrierPath: path, set: false, removed: true };
    } catch (err) {
      if (toZkgateError(err, path).code !== 'NO_NODE') throw toZkgateError(err, path);
      return { barrierPath: path, set: false, removed: false };
    }
  }

  /** Whether the simple barrier is up. */
  async state(tenant: Tenant, path: string): Promise<BarrierState> {
    checkRecipePath(path);
    return { barrierPath: path, set: (await tenant.client().exists(path)) !== null };
  }

  /**
   * Waits up to `waitMs` until the simple barrier is removed (Curator's `waitOnBarrier`). A
   * connection loss does not end the wait: the barrier is looked at again once the session is back.
   * @throws BARRIER_TIMEOUT when it is still up at the end; UNAVAILABLE when ZooKeeper stays
   *   unreachable until the end; the signal's reason on abort
   */
  async waitRemoved(tenant: Tenant, path: string, opts: BarrierWaitOptions = {}): Promise<BarrierState> {
    checkRecipePath(path);
    const waitMs = checkWaitMs(opts.waitMs ?? 0);
    const deadline = Date.now() + waitMs;
    const signal = opts.signal ?? new AbortController().signal;
    for (;;) {
      signal.throwIfAborted();
      const up = await reachable(tenant, path, deadline, signal, () => tenant.client().exists(path));
      if (up === null) return { barrierPath: path, set: false };
      if (Date.now() >= deadline) throw timeout(path, waitMs, 'the barrier is still set');
      await this.until(tenant, [tenant], path, (ev) => !ev.stat, deadline, signal);
    }
  }

  /**
   * Enters the double barrier at `path` as a member owned by `lease` and waits up to `waitMs`
   * until `memberQty` members have entered (the `ready` node exists).
   * @throws BARRIER_TIMEOUT (our node deleted); the lease's end (410) or LEASE_UNCERTAIN;
   *   LIMIT_EXCEEDED (maxLocksPerTenant); the signal's reason on abort (our node deleted)
   */
  async enter(lease: Lease, path: string, memberQty: number, opts: BarrierWaitOptions & { data?: Buffer } = {}): Promise<BarrierEntry> {
    checkRecipePath(path);
    if (!Number.isInteger(memberQty) || memberQty < 1 || memberQty > MAX_BARRIER_MEMBERS) throw invalidArgument('members', `must be an integer from 1 to ${MAX_BARRIER_MEMBERS}`);
    const waitMs = checkWaitMs(opts.waitMs ?? 0);
    lease.assertUsable();
    const deadline = Date.now() + waitMs;
    const signal = opts.signal ? AbortSignal.any([opts.signal, lease.signal]) : lease.signal;
    const client = lease.tenant.client();
    const ready = joinPath(path, READY_NODE);
    // Cut by a connection loss, this look is sent again once the session is back, as the wait's are.
    const wasReady = (await reachable(lease, ready, deadline, signal, () => lease.tenant.client().exists(ready))) !== null;
    const release = lease.tenant.quotas.take('locks');
    const containers: string[] = [];
    let node: string;
    try {
      node = await this.owned.create(lease, joinPath(path, randomUUID()), {
        data: opts.data ?? Buffer.from(lease.id, 'utf8'),
        mode: 'ephemeral',
        kind: 'barrier_member',
        deadline: Math.max(deadline, Date.now() + 5000),
        signal,
        onNoNode: async () => void containers.push(...(await createContainers(client, path))),
      });
    } catch (err) {
      release();
      await this.dropEmpty(client, containers);
      throw err;
    }
    this.owned.own(lease, node, 'barrier_member', release);
    try {
      if (!wasReady) await this.awaitReady(lease, path, memberQty, deadline, signal, waitMs);
      const members = barrierMembers(await reachable(lease, path, Math.max(deadline, Date.now() + 5000), signal, () => this.list(lease.tenant.client(), path))).length;
      return { barrierPath: path, node, memberQty, members, leaseId: lease.id, leaseState: lease.state, trustMs: lease.trustMs() };
    } catch (err) {
      await this.owned.leases.deleteOwned(lease, node).catch(() => undefined);
      await this.dropEmpty(client, containers);
      if (lease.isEnded) lease.assertUsable();
      throw err;
    }
  }

  /**
   * Deletes the containers a failed enter created, deepest first, while they are empty: a member
   * that did not enter leaves the tree as it found it (ZooKeeper would sweep them only later).
   */
  private async dropEmpty(client: ZkClient, containers: readonly string[]): Promise<void> {
    for (const p of [...containers].reverse()) {
      try {
        await client.delete(p, 0);
      } catch (err) {
        if (toZkgateError(err).code !== 'NO_NODE') return; // someone else's node is inside now: leave the rest
      }
    }
  }

  /**
   * Leaves the double barrier: deletes our member `node`, then waits up to `waitMs` until every
   * member has left (Curator's `leave`), and deletes `ready`. A connection loss does not end the
   * wait: the members are counted again once the session is back.
   * @throws NOT_MEMBER when `node` is not this lease's member of `path`; BARRIER_TIMEOUT when
   *   members are still inside at the end (our node is gone already); the lease's end (410);
   *   UNAVAILABLE (LEASE_UNCERTAIN) when ZooKeeper stays unreachable until the end
   */
  async leave(lease: Lease, path: string, node: string, opts: BarrierWaitOptions = {}): Promise<{ barrierPath: string; node: string; left: true }> {
    checkRecipePath(path);
    const ours = childNode(path, node);
    const waitMs = checkWaitMs(opts.waitMs ?? 0);
    if (lease.isEnded) lease.assertUsable();
    if (lease.owns(ours) !== 'barrier_member') throw new ZkgateError('NOT_MEMBER', `double barrier ${path}: ${ours} is not a member node of lease ${lease.id}`, { barrierPath: path, node: ours });
    const deadline = Date.now() + waitMs;
    const signal = opts.signal ?? new AbortController().signal;
    let mine = true;
    try {
      for (;;) {
        signal.throwIfAborted();
        // A connection loss does not end the wait (as for enter): the members are counted again once the session is back.
        const members = barrierMembers(await reachable(lease, path, deadline, signal, () => this.list(lease.tenant.client(), path)));
        if (members.length === 0) break;
        const highest = members[members.length - 1] as string;
        if (mine) {
          await this.owned.leases.deleteOwned(lease, ours);
          mine = false;
        }
        if (members.length === 1 && highest === nameOf(ours)) break;
        if (highest === nameOf(ours)) continue; // it was ours: look again
        if (Date.now() >= deadline) throw timeout(path, waitMs, `${members.length} member(s) still inside`);
        await this.until(lease.tenant, [lease.tenant], joinPath(path, highest), (ev) => !ev.stat, deadline, signal);
      }
      const ready = joinPath(path, READY_NODE);
      await reachable(lease, ready, Math.max(deadline, Date.now() + 5000), signal, () =>
        lease.tenant
          .client()
          .delete(ready)
          .catch((err: unknown) => {
            if (toZkgateError(err).code !== 'NO_NODE') throw toZkgateError(err, ready);
          }),
      );
      return { barrierPath: path, node: ours, left: true };
    } finally {
      if (mine) await this.owned.leases.deleteOwned(lease, ours).catch(() => undefined);
    }
  }

  /** The double barrier's `ready` flag and members. A missing path has none. */
  async inspectDouble(tenant: Tenant, path: string): Promise<DoubleBarrierState> {
    checkRecipePath(path);
    const client = tenant.client();
    const children = await this.list(client, path);
    const stats = await Promise.all(barrierMembers(children).map(async (n) => [n, await this.exists(client, joinPath(path, n))] as const));
    const members = stats.flatMap(([n, s]) => (s ? [{ node: joinPath(path, n), ephemeralOwner: s.ephemeralOwner, ctimeMs: s.ctimeMs }] : []));
    return { barrierPath: path, ready: children.includes(READY_NODE), members };
  }

  /** Counts members until `memberQty` (then creates `ready`) or `ready` appears. */
  private async awaitReady(lease: Lease, path: string, memberQty: number, deadline: number, signal: AbortSignal, waitMs: number): Promise<void> {
    const ready = joinPath(path, READY_NODE);
    for (;;) {
      signal.throwIfAborted();
      const children = await reachable(lease, path, deadline, signal, () => this.list(lease.tenant.client(), path));
      if (children.includes(READY_NODE)) return;
      // Curator counts every child, as here (`ready` is absent). A create cut by a connection
      // loss is simply sent again: NODE_EXISTS says the first one was applied.
      if (children.length >= memberQty) {
        await reachable(lease, ready, deadline, signal, () =>
          lease.tenant
            .client()
            .create(ready, Buffer.alloc(0), 'persistent')
            .catch((err: unknown) => {
              if (toZkgateError(err).code !== 'NODE_EXISTS') throw toZkgateError(err, ready);
              return ready;
            }),
        );
        return;
      }
      if (Date.now() >= deadline) throw timeout(path, waitMs, `${children.length} of ${memberQty} members entered`);
      // Wake when `ready` appears, or when the member count changes (the last member may have died before creating it).
      const seen = children.length;
      await this.until(lease.tenant, [lease.tenant, lease], ready, (ev) => ev.stat !== null, deadline, signal, (w) =>
        this.owned.hub.follow(lease.tenant, 'children', path, { deliver: (ev) => void ((ev.children?.length ?? 0) >= memberQty && ev.children?.length !== seen ? w() : undefined), fail: () => w() }),
      );
    }
  }

  /** Waits (through the hub) until `path`'s data state passes `done`, the deadline, a state change or abort. */
  private async until(
    tenant: Tenant,
    states: Parameters<typeof wake>[0]['states'],
    path: string,
    done: (ev: { stat: Stat | null }) => boolean,
    deadline: number,
    signal: AbortSignal,
    also?: (w: () => void) => () => void,
  ): Promise<void> {
    const offs: (() => void)[] = [];
    try {
      await wake({
        deadline,
        signal,
        states,
        arm: (w) => {
          offs.push(this.owned.hub.follow(tenant, 'data', path, { deliver: (ev) => void (done(ev) ? w() : undefined), fail: () => w() }));
          if (also) offs.push(also(w));
        },
      });
    } finally {
      for (const off of offs) off();
    }
  }

  /** The children of `path` (none when it is missing). */
  private async list(client: ZkClient, path: string): Promise<string[]> {
    try {
      return (await client.children(path)).children;
    } catch (err) {
      if (toZkgateError(err).code === 'NO_NODE') return [];
      throw toZkgateError(err, path);
    }
  }

  /** The stat of `path`, null when missing, undefined when ZooKeeper cannot be reached. */
  private async exists(client: ZkClient, path: string): Promise<Stat | null | undefined> {
    try {
      return await client.exists(path);
    } catch (err) {
      if (toZkgateError(err).code === 'UNAVAILABLE') return undefined;
      throw toZkgateError(err, path);
    }
  }
}

function timeout(path: string, waitMs: number, why: string): ZkgateError {
  return new ZkgateError('BARRIER_TIMEOUT', `barrier ${path}: not passed within ${waitMs} ms (${why})`, { barrierPath: path, waitMs });
}
