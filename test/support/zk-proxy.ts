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
import { createServer, connect, type Server, type Socket } from 'node:net';

/** A request the proxy cut: its path and ZooKeeper operation (`getData`, `exists`, `create`…). */
export interface CutRequest {
  readonly path: string;
  readonly op: string;
}

/** ZooKeeper's request types (OpCode) by number, those with a path. */
const OPS: Readonly<Record<number, string>> = { 1: 'create', 2: 'delete', 3: 'exists', 4: 'getData', 5: 'setData', 6: 'getACL', 7: 'setACL', 8: 'getChildren', 9: 'sync', 12: 'getChildren2', 15: 'create2', 19: 'createContainer', 21: 'createTTL' };

export interface ZkProxy {
  /** `127.0.0.1:<port>`: what the client connects to. */
  readonly connectString: string;
  /**
   * Resets the client connection that sends the next request for a path containing `pathPart`
   * (a frame with a positive xid — not a ping, an auth or a watch re-registration — whose path
   * field contains it) instead of forwarding it. Resolves with what it was once one was cut.
   */
  cutNextRequest(pathPart: string): Promise<CutRequest>;
  /**
   * Forwards the next such request, and resets the client connection when ZooKeeper answers it
   * instead of passing the answer on: the request is applied, and the client never learns its
   * outcome. Resolves with what it was once its answer was cut.
   */
  cutNextAnswer(pathPart: string): Promise<CutRequest>;
  /**
   * Resets every client connection and refuses new ones (each is reset once accepted) until
   * `unblock()`: the client stays disconnected, its session alive on the server until it expires.
   */
  block(): void;
  unblock(): void;
  close(): Promise<void>;
}

interface Cut {
  readonly pathPart: string;
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
      if (cut && path?.includes(cut.pathPart)) {
        const { done, answer } = cut;
        cut = undefined;
        const request = { path, op: OPS[frame.readInt32BE(8)] ?? `type ${frame.readInt32BE(8)}` };
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
    cutNextRequest: (pathPart) => new Promise<CutRequest>((done) => (cut = { pathPart, answer: false, done })),
    cutNextAnswer: (pathPart) => new Promise<CutRequest>((done) => (cut = { pathPart, answer: true, done })),
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
