/**
 * The fault campaign's load: gateway clients (plain HTTP to a gateway process) taking a lock,
 * running for leadership and doing CAS writes, a Server-Sent-Events watch subscriber, and a
 * supervisor that keeps Curator/Kazoo peer processes running (restarting them when a fault
 * makes them give up).
 */
import { appendLine, startPeer, type Peer } from '../support/peers.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Answer of one HTTP call; `status` 0 = no answer (network error or our timeout). */
interface Answer {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

async function call(base: string, method: string, path: string, body: unknown, timeoutMs: number): Promise<Answer> {
  try {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    let parsed: Record<string, unknown> = {};
    try {
      parsed = text ? (JSON.parse(text) as Record<string, unknown>) : {};
    } catch {
      /* not JSON */
    }
    return { status: res.status, body: parsed };
  } catch {
    return { status: 0, body: {} };
  }
}

/** Something that runs until `stop()`. */
export interface Worker {
  stop(): Promise<void>;
}

/**
 * A lease kept alive in the background; `lost` turns true (and `onLoss` runs) when the gateway
 * says the lease is lost or uncertain, so the holder can report it before anyone overlaps.
 */
class KeptLease {
  id = '';
  lost = false;
  private timer: NodeJS.Timeout | undefined;
  constructor(
    private readonly base: string,
    private readonly ttlMs: number,
    private readonly onLoss: () => void,
  ) {}
  async grant(): Promise<boolean> {
    const r = await call(this.base, 'POST', '/v1/leases', { ttlMs: this.ttlMs }, 5000);
    if (r.status !== 201 && r.status !== 200) return false;
    this.id = String(r.body.id);
    this.lost = false;
    clearInterval(this.timer);
    this.timer = setInterval(() => void this.keepAlive(), 1000);
    return true;
  }
  private async keepAlive(): Promise<void> {
    const r = await call(this.base, 'POST', `/v1/leases/${this.id}/keepalive`, undefined, 3000);
    const state = r.body.state;
    if (r.status === 410 || r.status === 404 || (r.status === 503 && r.body.code === 'LEASE_UNCERTAIN') || state === 'lost' || state === 'uncertain') this.markLost();
  }
  markLost(): void {
    if (this.lost) return;
    this.lost = true;
    this.onLoss();
  }
  close(): void {
    clearInterval(this.timer);
    void call(this.base, 'DELETE', `/v1/leases/${this.id}`, undefined, 3000);
  }
}

/** Options shared by the gateway clients. */
export interface ClientOptions {
  readonly base: string;
  readonly id: string;
  readonly logFile: string;
  readonly holdMs: number;
}

/**
 * A gateway client that takes the lock at `lockPath` (`flavour` curator or kazoo) in a loop:
 * ENTER (with the fencing token) when the gateway says it holds, EXIT when it stops acting as
 * holder (before releasing, as the peers do), LOSS when the gateway reports its lease lost.
 */
export function lockClient(o: ClientOptions & { readonly lockPath: string; readonly flavour: 'curator' | 'kazoo' }): Worker {
  return loopClient(o, 'ENTER', 'EXIT', async (leaseId) => {
    const r = await call(o.base, 'POST', `/v1/locks${o.lockPath}`, { leaseId, waitMs: 2000, flavour: o.flavour }, 6000);
    if (r.status !== 200) return undefined;
    const node = String(r.body.node);
    return {
      token: String(r.body.fencingToken),
      ...trustOf(r.body),
      release: () => call(o.base, 'DELETE', `/v1/locks${o.lockPath}?leaseId=${leaseId}&node=${encodeURIComponent(node)}&flavour=${o.flavour}`, undefined, 5000),
    };
  });
}

/** A gateway client that runs for leadership at `path`: LEAD when elected, UNLEAD before resigning. */
export function electionClient(o: ClientOptions & { readonly path: string }): Worker {
  return loopClient(o, 'LEAD', 'UNLEAD', async (leaseId) => {
    const r = await call(o.base, 'POST', `/v1/elections${o.path}`, { leaseId, value: o.id, waitMs: 2000 }, 6000);
    if (r.status !== 200 || r.body.leader !== true) return undefined;
    const node = String(r.body.node);
    return {
      token: String(r.body.term),
      ...trustOf(r.body),
      release: () => call(o.base, 'DELETE', `/v1/elections${o.path}?leaseId=${leaseId}&node=${encodeURIComponent(node)}`, undefined, 5000),
    };
  });
}

type Acquire = (leaseId: string) => Promise<{ token: string; trustMs?: number; release: () => Promise<Answer> } | undefined>;

/** The answer's trust window (`trustMs`), where the gateway gives one. */
function trustOf(body: Record<string, unknown>): { trustMs?: number } {
  return typeof body.trustMs === 'number' ? { trustMs: body.trustMs } : {};
}

function loopClient(o: ClientOptions, enter: string, exit: string, acquire: Acquire): Worker {
  let running = true;
  let holding = false;
  const lease = new KeptLease(o.base, 15_000, () => {
    if (holding) appendLine(o.logFile, `LOSS ${o.id}`);
  });
  const done = (async () => {
    let round = 0;
    while (running) {
      if (!lease.id || lease.lost) {
        if (lease.id) lease.close();
        if (!(await lease.grant())) {
          await sleep(200);
          continue;
        }
      }
      const sentAt = Date.now();
      const got = await acquire(lease.id);
      // The documented holder rule (README "Trust window"): the hold can be trusted until
      // sentAt + trustMs; do not act on it unless the whole hold fits in that window.
      const trusted = got?.trustMs === undefined || Date.now() + o.holdMs <= sentAt + got.trustMs;
      if (!got || !running || !trusted) {
        if (got) await got.release();
        await sleep(20);
        continue;
      }
      round++;
      holding = true;
      appendLine(o.logFile, `${enter} ${o.id} ${round} ${got.token}`);
      await sleep(o.holdMs);
      appendLine(o.logFile, `${exit} ${o.id} ${round}`);
      holding = false;
      const r = await got.release();
      if (r.status === 410) lease.markLost();
      await sleep(Math.random() * 20);
    }
    lease.close();
  })();
  return {
    async stop() {
      running = false;
      await done;
    },
  };
}

/** What the CAS writers saw, by token. */
export interface WriteLog {
  readonly acked: Set<string>;
  readonly failed: Set<string>;
  readonly unknown: Set<string>;
}

/**
 * A CAS writer: reads the JSON array at `path`, appends its next token and sets it with the
 * version it read. 2xx = acknowledged; any other answer = reported failed; no answer = unknown.
 */
export function casWriter(base: string, path: string, id: string, log: WriteLog): Worker {
  let running = true;
  const done = (async () => {
    let n = 0;
    while (running) {
      const g = await call(base, 'GET', `/v1/nodes${path}`, undefined, 3000);
      if (g.status !== 200) {
        await sleep(100);
        continue;
      }
      const history = JSON.parse(String(g.body.data)) as string[];
      const token = `${id}.${++n}`;
      const version = (g.body.stat as { version: number }).version;
      const r = await call(base, 'PUT', `/v1/nodes${path}`, { data: JSON.stringify([...history, token]), version }, 3000);
      if (r.status >= 200 && r.status < 300) log.acked.add(token);
      else if (r.status === 0) log.unknown.add(token);
      else log.failed.add(token);
      await sleep(10 + Math.random() * 20);
    }
  })();
  return {
    async stop() {
      running = false;
      await done;
    },
  };
}

/** A watch subscriber over Server-Sent Events; re-subscribes when the stream ends. */
export function sseSubscriber(base: string, path: string, seen: { type: string; version: number }[]): Worker {
  let running = true;
  let abort = new AbortController();
  const done = (async () => {
    while (running) {
      try {
        const res = await fetch(`${base}/v1/watch${path}?kind=data`, { headers: { accept: 'text/event-stream' }, signal: abort.signal });
        if (!res.body) throw new Error('no body');
        let buf = '';
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          buf += Buffer.from(chunk).toString('utf8');
          let end: number;
          while ((end = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, end);
            buf = buf.slice(end + 2);
            const data = block.split('\n').find((l) => l.startsWith('data: '));
            if (!data) continue;
            const ev = JSON.parse(data.slice(6)) as { type: string; stat?: { version: number } };
            seen.push({ type: ev.type, version: ev.stat ? ev.stat.version : -1 });
          }
        }
      } catch {
        /* stream broke (gateway frozen, restarted, or we stopped) */
      }
      if (running) await sleep(200);
      abort = new AbortController();
    }
  })();
  return {
    async stop() {
      running = false;
      abort.abort();
      await done;
    },
  };
}

/**
 * Keeps one peer process running: when it exits (a fault made it give up), starts it again
 * under a new id (`<id>.<generation>`) so its rounds stay distinguishable in the log.
 */
export function supervisedPeer(kind: 'curator' | 'kazoo', id: string, args: (peerId: string) => string[]): Worker {
  let running = true;
  let current: Peer | undefined;
  const done = (async () => {
    for (let gen = 1; running; gen++) {
      try {
        current = await startPeer(kind, args(`${id}.${gen}`), { PEER_WAIT_MS: '5000' }, `${id}.${gen}`);
        if (!running) current.proc.kill('SIGTERM');
        await current.exited;
      } catch {
        await sleep(500);
      }
      current = undefined;
    }
  })();
  return {
    async stop() {
      running = false;
      current?.proc.kill('SIGTERM');
      await done;
    },
  };
}
