/**
 * A service's instance set followed through the watch hub: a children watch on the service node
 * and a data watch on each instance node. They are the hub's shared watches, so any number of
 * followers of one service cost one ZooKeeper watch per node and one read per change. The set is
 * recomputed from the latest events and only the latest is kept: a slow reader makes nothing
 * buffer. A state is offered only once every listed instance's data has been read.
 */
import { joinPath } from '../../zk/index.js';
import type { Tenant } from '../tenants/tenant.js';
import type { WatchHub } from '../watch/hub.js';
import type { WatchEvent } from '../watch/types.js';
import { FollowedState } from '../watch/followed.js';
import { instanceSetOf, type InstanceSet, type ServiceRef } from './instance-set.js';

export class InstanceSetWatch extends FollowedState<InstanceSet> {
  private pzxid: string | undefined;
  private listed: readonly string[] = [];
  private readonly data = new Map<string, { event: WatchEvent | undefined; stop: () => void }>();
  private readonly stopChildren: () => void;
  /** The set built from the events so far; cleared by every event. */
  private memo: InstanceSet | undefined;

  constructor(
    private readonly hub: WatchHub,
    private readonly tenant: Tenant,
    private readonly ref: ServiceRef,
  ) {
    super(ref.path);
    this.stopChildren = hub.follow(tenant, 'children', ref.path, { deliver: (ev) => this.onChildren(ev), fail: (err) => this.fail(err) });
  }

  /** The set, or undefined while some listed instance has not been read yet. */
  protected current(): InstanceSet | undefined {
    // Built once per change: a pick from memory costs no parse of the instance documents.
    this.memo ??= this.compute();
    return this.memo;
  }

  private compute(): InstanceSet | undefined {
    if (this.pzxid === undefined) return undefined;
    const nodes: { id: string; event: WatchEvent }[] = [];
    for (const id of this.listed) {
      const event = this.data.get(id)?.event;
      if (!event) return undefined;
      nodes.push({ id, event });
    }
    return instanceSetOf(this.ref, this.pzxid, nodes);
  }

  /**
   * The set when memory may answer for it: every watch it is built from (the children watch and
   * each listed instance's data watch) vouches for the state it delivered (`WatchHub.vouch`, the
   * read cache's rule); else undefined. @throws the watch's failure
   */
  vouched(): InstanceSet | undefined {
    const set = this.state();
    if (set === undefined) return undefined;
    const keys = [`children:${this.ref.path}`];
    for (const id of this.data.keys()) keys.push(`data:${joinPath(this.ref.path, id)}`);
    return this.hub.vouch(this.tenant, keys) ? set : undefined;
  }

  /** Stops following (the hub keeps quiet watches idle, within its bound). */
  close(): void {
    this.stopChildren();
    for (const d of this.data.values()) d.stop();
    this.data.clear();
  }

  private onChildren(ev: WatchEvent): void {
    this.memo = undefined;
    this.pzxid = ev.stat ? ev.stat.pzxid : '0';
    this.listed = ev.stat ? (ev.children ?? []) : [];
    const keep = new Set(this.listed);
    for (const [id, d] of this.data) {
      if (keep.has(id)) continue;
      d.stop();
      this.data.delete(id);
    }
    for (const id of this.listed) {
      if (this.data.has(id)) continue;
      const entry: { event: WatchEvent | undefined; stop: () => void } = { event: undefined, stop: () => undefined };
      this.data.set(id, entry);
      entry.stop = this.hub.follow(this.tenant, 'data', joinPath(this.ref.path, id), {
        deliver: (d) => {
          entry.event = d;
          this.memo = undefined;
          this.wake();
        },
        fail: (err) => this.fail(err),
      });
    }
    this.wake();
  }

}
