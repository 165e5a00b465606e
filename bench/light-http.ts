/**
 * A keep-alive HTTP/1.1 client light enough that the load generator does not bound the REST
 * read rows (`LightHttpGets`) or the lock loop's POST and DELETE (`LightHttpRequests`).
 * `node:http`'s client (ClientRequest, IncomingMessage, the agent's socket pool) costs the load
 * process more CPU per request than a cached read costs the gateway, so at 64
 * outstanding on two cores the rows measured the client (docs/benchmarks.md, "The REST rows'
 * load generator"). D, the baseline, has no HTTP at all. One request at a time per connection;
 * each connection writes a prebuilt request and reads `Content-Length` bytes of answer; any
 * status but 200, a chunked or unframed answer, or a closed connection fails the round.
 */
import { connect, type Socket } from 'node:net';

const CRLFCRLF = Buffer.from('\r\n\r\n');

class Connection {
  private buf: Buffer = Buffer.alloc(0);
  private waiting: { resolve: (body: Buffer) => void; reject: (e: Error) => void } | undefined;
  private failed: Error | undefined;

  constructor(
    private readonly socket: Socket,
    private readonly request: Buffer,
  ) {
    socket.setNoDelay(true);
    socket.on('data', (b: Buffer) => this.onData(b));
    const fail = (e: Error): void => {
      this.failed ??= e;
      this.waiting?.reject(this.failed);
      this.waiting = undefined;
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('light-http: the server closed the connection')));
  }

  get(): Promise<Buffer> {
    return this.send(this.request);
  }

  /** Writes a whole HTTP/1.1 request; resolves with the answer's body. */
  send(request: Buffer): Promise<Buffer> {
    if (this.failed) return Promise.reject(this.failed);
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
      this.socket.write(request);
    });
  }

  private onData(b: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, b]) : b;
    const end = this.buf.indexOf(CRLFCRLF);
    if (end < 0) return;
    const head = this.buf.toString('latin1', 0, end);
    const m = /\r\ncontent-length: *(\d+)/i.exec(head);
    if (!head.startsWith('HTTP/1.1 200 ') || !m) {
      this.socket.destroy(new Error(`light-http: unexpected answer: ${head.slice(0, 200)}`));
      return;
    }
    const total = end + 4 + Number(m[1]);
    if (this.buf.length < total) return;
    const body = this.buf.subarray(end + 4, total);
    this.buf = this.buf.subarray(total);
    const w = this.waiting;
    this.waiting = undefined;
    w?.resolve(body);
  }

  close(): void {
    this.socket.destroy();
  }
}

/** `size` keep-alive connections to `127.0.0.1:port`, each GETting `path`; worker `w` uses connection `w`. */
export class LightHttpGets {
  private constructor(private readonly conns: Connection[]) {}

  static async open(port: number, path: string, size: number): Promise<LightHttpGets> {
    return new LightHttpGets(await openConnections(port, path, size));
  }

  get(worker: number): Promise<unknown> {
    return (this.conns[worker] as Connection).get();
  }

  close(): void {
    for (const c of this.conns) c.close();
  }
}

/**
 * `size` keep-alive connections to `127.0.0.1:port`, each first GETting `path`: the gateway cuts
 * a connection that sends no request within its header deadline (408), and keep-alive idleness
 * is bounded by the far longer idle timeout.
 */
async function openConnections(port: number, path: string, size: number): Promise<Connection[]> {
  const request = Buffer.from(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`, 'latin1');
  const conns = await Promise.all(
    Array.from(
      { length: size },
      () =>
        new Promise<Connection>((resolve, reject) => {
          const s = connect(port, '127.0.0.1');
          s.once('connect', () => resolve(new Connection(s, request)));
          s.once('error', reject);
        }),
    ),
  );
  await Promise.all(conns.map((c) => c.get()));
  return conns;
}

/**
 * The same light client for any JSON request (the lock loop's POST and DELETE): `size`
 * connections, worker `w` uses connection `w`, one request at a time on each.
 */
export class LightHttpRequests {
  private constructor(
    private readonly port: number,
    private readonly conns: Connection[],
  ) {}

  /** Opens the connections, each GETting `path` once (see `openConnections`). */
  static async open(port: number, path: string, size: number): Promise<LightHttpRequests> {
    return new LightHttpRequests(port, await openConnections(port, path, size));
  }

  /** `method path` with `json` as the body if given; resolves with the answer's body (200 only). */
  request(worker: number, method: string, path: string, json?: unknown): Promise<Buffer> {
    const body = json === undefined ? '' : JSON.stringify(json);
    const head = `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1:${this.port}\r\n${body ? `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` : ''}\r\n`;
    return (this.conns[worker] as Connection).send(Buffer.from(head + body, 'utf8'));
  }

  close(): void {
    for (const c of this.conns) c.close();
  }
}
