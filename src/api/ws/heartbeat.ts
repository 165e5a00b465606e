/**
 * One ping timer for all the sockets of the endpoint (as `ws`' README does it) instead of one
 * interval per socket: at 10,000 idle sockets that is one timer, not 10,000. A socket is pinged
 * every `everyMs` and terminated at its next turn when no pong came in between, so a client has
 * `everyMs` to answer. The timer runs only while a socket is open.
 *
 * The sockets are pinged in groups spread over the interval (a tick every 100 ms, up to
 * `MAX_GROUPS` groups), each socket always in the same group, rather than all in one tick: a
 * ping is a socket write (~15–40 µs here) and its pong a read, so 10,000 of them at once held the
 * event loop ~0.3–0.4 s, and a change arriving meanwhile reached its subscribers that much later.
 * With ten groups a tick at 10,000 sockets was still ~1,000 pings and their pongs, some 30–60 ms
 * every 3 s, landing in most 2 s rounds of the fan-out bench; at 30 s a tick is now 1/300 of the
 * sockets (~33 at 10,000, about a millisecond).
 */
export interface Beating {
  beat(): void;
}

/** Most groups the sockets are pinged in; fewer when `everyMs` is short (a tick every ≥ 100 ms). */
const MAX_GROUPS = 300;

export class Heartbeat {
  private readonly groups: Set<Beating>[];
  /** Which group each socket is in. */
  private readonly groupOf = new Map<Beating, Set<Beating>>();
  /** The group the next tick pings. */
  private nextTick = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly everyMs: number) {
    this.groups = Array.from({ length: Math.max(1, Math.min(MAX_GROUPS, Math.floor(everyMs / 100))) }, () => new Set<Beating>());
  }

  add(m: Beating): void {
    if (this.groupOf.has(m)) return;
    // The smallest group, so that groups stay even as sockets come and go.
    let g = this.groups[0] as Set<Beating>;
    for (const x of this.groups) if (x.size < g.size) g = x;
    g.add(m);
    this.groupOf.set(m, g);
    this.timer ??= setInterval(() => this.tick(), this.everyMs / this.groups.length);
  }

  delete(m: Beating): void {
    this.groupOf.get(m)?.delete(m);
    this.groupOf.delete(m);
    if (this.groupOf.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  /** Pings the next group (the timer's tick; each group comes round once every `everyMs`). */
  tick(): void {
    const g = this.groups[this.nextTick++ % this.groups.length] as Set<Beating>;
    for (const m of g) m.beat();
  }
}
