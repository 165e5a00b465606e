/**
 * One ping timer for all the sockets of the endpoint (as `ws`' README does it) instead of one
 * interval per socket: at 10,000 idle sockets that is one timer, not 10,000. A socket is pinged
 * on every tick and terminated on the next one when no pong came in between, so a client has
 * at least `everyMs` to answer. The timer runs only while a socket is open.
 */
export interface Beating {
  beat(): void;
}

export class Heartbeat {
  private readonly members = new Set<Beating>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly everyMs: number) {}

  add(m: Beating): void {
    this.members.add(m);
    this.timer ??= setInterval(() => {
      for (const x of this.members) x.beat();
    }, this.everyMs);
  }

  delete(m: Beating): void {
    this.members.delete(m);
    if (this.members.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }
}
