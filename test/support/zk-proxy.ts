/**
 * A TCP proxy between a ZooKeeper client (a gateway under test) and the server that can cut the
 * client's connection exactly when it sends its next request: that request never reaches
 * ZooKeeper (or, with `cutNextAnswer`, is applied and only its answer is lost) and the client
 * sees the connection reset at once (its outstanding requests fail with connection loss), then
 * reconnects through the proxy within milliseconds, to the same session. `block()` keeps it
 * disconnected for as long as a test needs.
 *
 * A freeze (SIGSTOP) gives the same cut, but only once the client's own timeout (two thirds of the
 * session timeout) declares the connection lost: a call's bound (a registration's session
 * timeout, a run claim's 10 s) then races the reconnect after the thaw, which a loaded machine can
 * lose. Here the cut costs no time.
 */
import assert from 'node:assert/strict';
import { createServer, connect, type Server, type Socket } from 'node:net';

/** A request the proxy cut: its path and ZooKeeper operation (`getData`, `exists`, `create`…). */
export interface CutRequest {
  readonly path: string;
  readonly op: string;
}

/**
 * Which request to cut: one whose path contains this string, or for which this holds (given its
 * path and operation).
 */
export type CutMatch = string | ((path: string, op: string) => boolean);

/** ZooKeeper's request types (OpCode) by number, those with a path. */
const OPS: Readonly<Record<number, string>> = { 1: 'create', 2: 'delete', 3: 'exists', 4: 'getData', 5: 'setData', 6: 'getACL', 7: 'setACL', 8: 'getChildren', 9: 'sync', 12: 'getChildren2', 15: 'create2', 19: 'createContainer', 21: 'createTTL' };

export interface ZkProxy {
  /** `127.0.0.1:<port>`: what the client connects to. */
  readonly connectString: string;
  /**
   * Resets the client connection that sends the next request `match` accepts (a frame with a
   * positive xid — not a ping, an auth or a watch re-registration — and a path) instead of
   * forwarding it. Resolves with what it was once one was cut.
   */
  cutNextRequest(match: CutMatch): Promise<CutRequest>;
  /**
   * Forwards the next such request, and resets the client connection when ZooKeeper answers it
   * instead of passing the answer on: the request is applied, and the client never learns its
   * outcome. Resolves with what it was once its answer was cut.
   */
  cutNextAnswer(match: CutMatch): Promise<CutRequest>;
  /**
   * Resets every client connection and refuses new ones (each is reset once accepted) until
   * `unblock()`: the client stays disconnected, its session alive on the server until it expires.
   */
  block(): void;
  unblock(): void;
  close(): Promise<void>;
}

interface Cut {
  readonly matches: (path: string, op: string) => boolean;
  /** Cut the answer (the request is forwarded) rather than the request. */
  readonly answer: boolean;
  readonly done: (r: CutRequest) => void;
}

/** Starts a proxy to ZooKeeper on `zkPort` (loopback). */
export async function startZkProxy(zkPort: number): Promise<ZkProxy> {
  let cut: Cut | undefined;
  const pairs = new Set<{ client: Socket; up: Socket }>();
  let blocked = false;
  const server: Server = createServer((client) => {
    if (blocked) return void client.resetAndDestroy();
    const up = connect(zkPort, '127.0.0.1');
    const pair = { client, up };
    pairs.add(pair);
    const reset = (): void => {
      client.resetAndDestroy();
      up.destroy();
    };
    /** The request whose answer is to be cut on this connection: its xid, and what to report. */
    let awaited: { readonly xid: number; readonly request: CutRequest; readonly done: (r: CutRequest) => void } | undefined;
    // Forwarded frame by frame (4-byte length, then the frame), so a request and its answer can
    // be told apart: after the connect request and response, every frame starts with its xid
    // (special ones — pings, watch events, auth — are negative).
    frames(client, (frame, n) => {
      const path = cut && n > 0 && frame.readInt32BE(4) > 0 ? pathOf(frame) : undefined;
      const op = path === undefined ? '' : (OPS[frame.readInt32BE(8)] ?? `type ${frame.readInt32BE(8)}`);
      if (cut && path !== undefined && cut.matches(path, op)) {
        const { done, answer } = cut;
        cut = undefined;
        const request = { path, op };
        if (!answer) {
          reset();
          done(request);
          return false;
        }
        awaited = { xid: frame.readInt32BE(4), request, done };
      }
      up.write(frame);
      return true;
    });
    frames(up, (frame, n) => {
      if (awaited && n > 0 && frame.readInt32BE(4) === awaited.xid) {
        reset();
        awaited.done(awaited.request);
        return false;
      }
      client.write(frame);
      return true;
    });
    for (const [a, b] of [[client, up], [up, client]] as const) {
      a.on('error', () => b.destroy());
      a.on('close', () => {
        b.destroy();
        pairs.delete(pair);
      });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    connectString: `127.0.0.1:${port}`,
    cutNextRequest: (match) => new Promise<CutRequest>((done) => (cut = { matches: matcher(match), answer: false, done })),
    cutNextAnswer: (match) => new Promise<CutRequest>((done) => (cut = { matches: matcher(match), answer: true, done })),
    block: () => {
      blocked = true;
      for (const { client, up } of pairs) {
        client.resetAndDestroy();
        up.destroy();
      }
    },
    unblock: () => void (blocked = false),
    close: async () => {
      for (const { client, up } of pairs) {
        client.destroy();
        up.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function matcher(match: CutMatch): (path: string, op: string) => boolean {
  return typeof match === 'string' ? (path) => path.includes(match) : match;
}

/**
 * Calls `each` with every whole frame `from` sends (its 4-byte length included) and its index,
 * until `each` returns false (the connection was cut).
 */
function frames(from: Socket, each: (frame: Buffer, n: number) => boolean): void {
  let pending: Buffer = Buffer.alloc(0);
  let n = 0;
  from.on('data', (chunk: Buffer) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    while (pending.length >= 4 && pending.length >= 4 + pending.readInt32BE(0)) {
      const frame = pending.subarray(0, 4 + pending.readInt32BE(0));
      pending = pending.subarray(frame.length);
      if (!each(frame, n++)) return;
    }
  });
}

/** The path of a request frame (length, xid, type, then the path as a length-prefixed string), if it has one. */
function pathOf(frame: Buffer): string | undefined {
  if (frame.length < 16) return undefined;
  const length = frame.readInt32BE(12);
  return length > 0 && 16 + length <= frame.length ? frame.toString('utf8', 16, 16 + length) : undefined;
}

/** What `cutting` (`cutNextRequest`, `cutNextAnswer`) cut; rejects naming `what` when nothing was cut within `ms`. */
export function cutWithin(cutting: Promise<CutRequest>, what: string, ms = 15_000): Promise<CutRequest> {
  return Promise.race([cutting, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no request for ${what} was sent`)), ms).unref())]);
}

/**
 * Sends `call` with the answer to its first request `match` accepts cut, which must be a create
 * (asserted): the node is made, and the client does not know it. With `down`,
 * the client is then held disconnected (`block()`) until `down` settles: a call that gives up
 * meanwhile cannot learn the outcome. Resolves with the call's answer still pending (wrapped: an
 * async function would await it).
 */
export async function cutCreateAnswer<T>(
  proxy: ZkProxy,
  match: CutMatch,
  call: () => Promise<T>,
  down?: (pending: Promise<T>) => Promise<unknown>,
): Promise<{ pending: Promise<T> }> {
  const cutting = proxy.cutNextAnswer(match);
  const pending = call();
  // Blocked at once (before the client's reconnect, a later turn of the loop) when `down` asks.
  const { op, path } = await cutWithin(cutting, typeof match === 'string' ? `a create under ${match}` : 'the create').then((r) => (down && proxy.block(), r));
  try {
    assert.ok(['create', 'create2', 'createContainer', 'createTTL'].includes(op), `the answer cut is a create's, not ${op} ${path}'s`);
    await down?.(pending);
  } finally {
    if (down) proxy.unblock();
  }
  return { pending };
}
