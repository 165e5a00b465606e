/**
 * A TCP proxy between a ZooKeeper client (a gateway under test) and the server that can cut the
 * client's connection exactly when it sends its next request: that request never reaches
 * ZooKeeper and the client sees the connection reset at once (its outstanding requests fail with
 * connection loss), then reconnects through the proxy within milliseconds, to the same session.
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
   * Resets every client connection and refuses new ones (each is reset once accepted) until
   * `unblock()`: the client stays disconnected, its session alive on the server until it expires.
   */
  block(): void;
  unblock(): void;
  close(): Promise<void>;
}

/** Starts a proxy to ZooKeeper on `zkPort` (loopback). */
export async function startZkProxy(zkPort: number): Promise<ZkProxy> {
  let cut: { readonly pathPart: string; readonly done: (r: CutRequest) => void } | undefined;
  const pairs = new Set<{ client: Socket; up: Socket }>();
  let blocked = false;
  const server: Server = createServer((client) => {
    if (blocked) return void client.resetAndDestroy();
    const up = connect(zkPort, '127.0.0.1');
    const pair = { client, up };
    pairs.add(pair);
    up.pipe(client);
    let pending: Buffer = Buffer.alloc(0);
    let frames = 0;
    client.on('data', (chunk: Buffer) => {
      // Forwarded frame by frame (4-byte length, then the frame), so a request can be told apart:
      // after the connect request every frame starts with its xid; special ones are negative.
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      while (pending.length >= 4 && pending.length >= 4 + pending.readInt32BE(0)) {
        const frame = pending.subarray(0, 4 + pending.readInt32BE(0));
        pending = pending.subarray(frame.length);
        const path = cut && frames > 0 && frame.readInt32BE(4) > 0 ? pathOf(frame) : undefined;
        if (cut && path?.includes(cut.pathPart)) {
          const { done } = cut;
          cut = undefined;
          client.resetAndDestroy();
          up.destroy();
          done({ path, op: OPS[frame.readInt32BE(8)] ?? `type ${frame.readInt32BE(8)}` });
          return;
        }
        frames++;
        up.write(frame);
      }
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
    cutNextRequest: (pathPart) => new Promise<CutRequest>((done) => (cut = { pathPart, done })),
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

/** The path of a request frame (length, xid, type, then the path as a length-prefixed string), if it has one. */
function pathOf(frame: Buffer): string | undefined {
  if (frame.length < 16) return undefined;
  const length = frame.readInt32BE(12);
  return length > 0 && 16 + length <= frame.length ? frame.toString('utf8', 16, 16 + length) : undefined;
}
