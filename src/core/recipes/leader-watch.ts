/**
 * An election's leader state followed through the watch hub (so its ZooKeeper watches are the
 * hub's: shared with every other observer and subscriber, counted, idle ones bounded): a
 * children watch on the election node picks the leader (first in LeaderLatch's order) and a data
 * watch on the leader's node follows its value. The state is recomputed from the latest events
 * and only the latest is kept, so a slow reader never makes anything buffer.
 */
import { joinPath } from '../../zk/index.js';
import type { Tenant } from '../tenants/tenant.js';
import type { WatchHub } from '../watch/hub.js';
import type { WatchEvent } from '../watch/types.js';
import { FollowedState } from '../watch/followed.js';
import type { QueueFlavour } from './flavours.js';

/** The leader state as `election.ts` reports it (kept structural here to avoid a cycle). */
export interface FollowedLeader {
  readonly electionPath: string;
  readonly leader: { readonly node: string; readonly value: Buffer; readonly term: string; readonly version: number } | null;
  readonly index: string;
}

const maxZxid = (a: string, b: string): string => (BigInt(a) >= BigInt(b) ? a : b);

export class LeaderWatch extends FollowedState<FollowedLeader> {
  private pzxid: string | undefined;
  private leaderNode: string | null = null;
  private leaderData: WatchEvent | undefined;
  private stopLeader = (): void => undefined;
  private readonly stopChildren: () => void;

  constructor(
    private readonly hub: WatchHub,
    private readonly tenant: Tenant,
    private readonly electionPath: string,
    private readonly flavour: QueueFlavour,
  ) {
    super(electionPath);
    this.stopChildren = hub.follow(tenant, 'children', electionPath, { deliver: (ev) => this.onChildren(ev), fail: (err) => this.fail(err) });
  }

  /** The leader state, or undefined while it is not known yet (first reads, a leader just gone). */
  protected current(): FollowedLeader | undefined {
    if (this.pzxid === undefined) return undefined;
    if (this.leaderNode === null) return { electionPath: this.electionPath, leader: null, index: this.pzxid };
    const d = this.leaderData;
    if (!d?.stat) return undefined; // the children watch will name the next leader
    return {
      electionPath: this.electionPath,
      leader: { node: this.leaderNode, value: d.data ?? Buffer.alloc(0), term: d.stat.czxid, version: d.stat.version },
      index: maxZxid(this.pzxid, d.stat.mzxid),
    };
  }

  /** Stops following (the hub keeps a quiet watch idle, within its bound). */
  close(): void {
    this.stopChildren();
    this.stopLeader();
  }

  private onChildren(ev: WatchEvent): void {
    this.pzxid = ev.stat ? ev.stat.pzxid : '0';
    const first = ev.stat ? this.flavour.order(ev.children ?? [])[0] : undefined;
    const node = first === undefined ? null : joinPath(this.electionPath, first);
    if (node !== this.leaderNode) {
      this.stopLeader();
      this.leaderNode = node;
      this.leaderData = undefined;
      this.stopLeader = node
        ? this.hub.follow(this.tenant, 'data', node, { deliver: (d) => this.onLeaderData(node, d), fail: (err) => this.fail(err) })
        : () => undefined;
    }
    this.wake();
  }

  private onLeaderData(node: string, ev: WatchEvent): void {
    if (node !== this.leaderNode) return;
    this.leaderData = ev;
    this.wake();
  }

}
