/**
 * A subtree subscription built from shared node watches: a data watch and a children watch on
 * every node below the root (so it shares ZooKeeper watches with other subscribers). A children
 * listing decides which nodes are tracked; each node's data watch reports its own changes.
 * Subscribers see `current` for every node at the start, then `created`, `deleted`,
 * `data_changed` and `resync` per node. Past the node limit the stream ends with SUBTREE_TOO_LARGE.
 */
import { joinPath } from '../../zk/index.js';
import { ZkgateError } from '../errors.js';
import type { NodeWatchKind, Sink } from './node-watch.js';
import type { QueuedIterator } from './queued-iterator.js';
import type { WatchEvent } from './types.js';

/** Where a subtree attaches its node watches (the tenant's shared ones). */
export interface SubtreeHost {
  attach(kind: NodeWatchKind, path: string, sink: Sink): void;
  detach(kind: NodeWatchKind, path: string, sink: Sink): void;
}

interface Tracked {
  readonly path: string;
  /** How the node's first state is reported: `current` during the initial walk, else `created`. */
  readonly first: 'current' | 'created';
  exists: boolean;
  seen: boolean;
  listed: boolean;
  children: Set<string>;
  readonly dataSink: Sink;
  readonly childSink: Sink;
}

export class SubtreeWatch {
  private readonly nodes = new Map<string, Tracked>();

  constructor(
    private readonly host: SubtreeHost,
    private readonly root: string,
    private readonly out: QueuedIterator<WatchEvent>,
    private readonly maxNodes: number,
  ) {}

  /** Starts tracking the root; stopping `out` releases every node watch. */
  start(): void {
    this.out.onStop(() => {
      for (const path of [...this.nodes.keys()]) this.release(path);
    });
    this.track(this.root, 'current');
  }

  private track(path: string, first: Tracked['first']): void {
    if (this.out.isStopped || this.nodes.has(path)) return;
    if (this.nodes.size >= this.maxNodes) {
      this.out.stop(
        new ZkgateError('SUBTREE_TOO_LARGE', `watch: subtree of ${this.root} has more than ${this.maxNodes} nodes`, {
          path: this.root,
          limit: 'watch.maxSubtreeNodes',
          max: this.maxNodes,
        }),
      );
      return;
    }
    const fail = (err: ZkgateError): void => this.out.stop(err);
    const node: Tracked = {
      path,
      first,
      exists: false,
      seen: false,
      listed: false,
      children: new Set(),
      dataSink: { deliver: (ev) => this.onData(node, ev), fail },
      childSink: { deliver: (ev) => this.onChildren(node, ev), fail },
    };
    this.nodes.set(path, node);
    this.host.attach('data', path, node.dataSink);
    this.host.attach('children', path, node.childSink);
  }

  private onData(node: Tracked, ev: WatchEvent): void {
    if (this.out.isStopped) return;
    const first = !node.seen;
    node.seen = true;
    const existed = node.exists;
    node.exists = ev.stat !== null;
    if (first) {
      // A node gone before its first read is not news, except the root's absence at the start.
      if (ev.stat || (node.path === this.root && node.first === 'current')) this.out.push({ ...ev, type: node.first });
      return;
    }
    if (!ev.stat && !existed && ev.type !== 'resync') return;
    this.out.push(ev);
  }

  private onChildren(node: Tracked, ev: WatchEvent): void {
    if (this.out.isStopped) return;
    const initial = !node.listed && node.first === 'current' && ev.type === 'current';
    node.listed = true;
    const names = new Set(ev.children ?? []);
    for (const name of node.children) {
      if (!names.has(name)) this.release(joinPath(node.path, name));
    }
    const added = [...names].filter((n) => !node.children.has(n));
    node.children = names;
    for (const name of added) this.track(joinPath(node.path, name), initial ? 'current' : 'created');
  }

  /** Stops tracking a node and everything below it, reporting the ones still believed to exist. */
  private release(path: string): void {
    const node = this.nodes.get(path);
    if (!node) return;
    for (const name of node.children) this.release(joinPath(path, name));
    this.nodes.delete(path);
    this.host.detach('data', path, node.dataSink);
    this.host.detach('children', path, node.childSink);
    if (node.exists && !this.out.isStopped) this.out.push({ type: 'deleted', path, stat: null, zxid: '0' });
  }
}
