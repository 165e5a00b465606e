/**
 * The command-line client's view of a gateway: JSON requests over REST with the caller's key and
 * tenant, problem bodies turned into typed errors, and Server-Sent Events read as an async
 * iterator. Uses Node's own fetch (undici), so the client adds no dependency.
 */

/** Where and as whom the client talks. */
export interface ClientOptions {
  /** The gateway's base URL, e.g. `http://127.0.0.1:8080`. */
  readonly url: string;
  /** An API key (sent as `Authorization: Bearer`). */
  readonly key?: string;
  /** The tenant (sent as `Zkgate-Tenant`); needed only when a key does not choose it. */
  readonly tenant?: string;
}

/** A refusal by the gateway: its HTTP status and the problem body's stable `code`. */
export class GatewayProblem extends Error {
  override readonly name = 'GatewayProblem';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: Readonly<Record<string, unknown>> = {},
  ) {
    super(message);
  }
}

/** The gateway could not be reached (refused, reset, DNS…), or answered something that is not zkgate. */
export class GatewayUnreachable extends Error {
  override readonly name = 'GatewayUnreachable';
}

export type Query = Readonly<Record<string, string | number | boolean | undefined>>;

/** One Server-Sent Event: its `event:` name and its `data:` parsed as JSON. */
export interface ServerEvent {
  readonly event: string;
  readonly data: unknown;
}

/**
 * `/v1/<api>` followed by a znode path, each segment percent-encoded (the gateway refuses
 * encoded slashes, so a segment can never smuggle one).
 */
export function routeOf(api: string, path: string): string {
  const segments = path.split('/').filter((s) => s !== '');
  return `/v1/${api}${segments.length ? '/' + segments.map(encodeURIComponent).join('/') : ''}`;
}

export class GatewayClient {
  constructor(private readonly opts: ClientOptions) {}

  private url(route: string, query: Query = {}): string {
    const u = new URL(route, this.opts.url.endsWith('/') ? this.opts.url : `${this.opts.url}/`);
    for (const [k, v] of Object.entries(query)) if (v !== undefined) u.searchParams.set(k, String(v));
    return u.toString();
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    const h: Record<string, string> = { accept: 'application/json', ...extra };
    if (this.opts.key) h.authorization = `Bearer ${this.opts.key}`;
    if (this.opts.tenant) h['zkgate-tenant'] = this.opts.tenant;
    return h;
  }

  private async send(method: string, route: string, query: Query, body: unknown, signal?: AbortSignal, accept?: string): Promise<Response> {
    const init: RequestInit = { method, headers: this.headers(body === undefined ? {} : { 'content-type': 'application/json' }), signal };
    if (accept) (init.headers as Record<string, string>).accept = accept;
    if (body !== undefined) init.body = JSON.stringify(body);
    try {
      return await fetch(this.url(route, query), init);
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new GatewayUnreachable(`cannot reach the gateway at ${this.opts.url}: ${cause?.code ?? cause?.message ?? (err as Error).message}`);
    }
  }

  /** Throws the answer's problem as a `GatewayProblem` unless it is a 2xx. */
  private static async check(res: Response): Promise<void> {
    if (res.ok) return;
    const text = await res.text();
    let p: { code?: unknown; detail?: unknown; details?: unknown } = {};
    try {
      p = JSON.parse(text) as typeof p;
    } catch {
      throw new GatewayUnreachable(`HTTP ${res.status} that is not a zkgate answer: ${text.slice(0, 200)}`);
    }
    const details = typeof p.details === 'object' && p.details !== null ? (p.details as Record<string, unknown>) : {};
    throw new GatewayProblem(res.status, String(p.code ?? `HTTP_${res.status}`), String(p.detail ?? `HTTP ${res.status}`), details);
  }

  /**
   * One JSON request. Resolves with the parsed body (`null` for 204).
   * @throws GatewayProblem for a refusal, GatewayUnreachable when there is no zkgate answer
   */
  async request<T>(method: string, route: string, opts: { query?: Query; body?: unknown; signal?: AbortSignal } = {}): Promise<T> {
    const res = await this.send(method, route, opts.query ?? {}, opts.body, opts.signal);
    await GatewayClient.check(res);
    if (res.status === 204) return null as T;
    return (await res.json()) as T;
  }

  /** Reads a Server-Sent Events stream until it ends or `signal` aborts. */
  async *events(route: string, query: Query, signal: AbortSignal): AsyncGenerator<ServerEvent> {
    const res = await this.send('GET', route, query, undefined, signal, 'text/event-stream');
    await GatewayClient.check(res);
    if (!res.body) return;
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const ev = parseEvent(block);
          if (ev) yield ev;
        }
      }
    } catch (err) {
      if (signal.aborted) return;
      throw new GatewayUnreachable(`event stream from ${this.opts.url} broke: ${(err as Error).message}`);
    }
  }
}

/** One SSE block (`event:`, `id:`, `data:` lines; `:` comments are keep-alives). */
function parseEvent(block: string): ServerEvent | null {
  let event = 'message';
  const data: string[] = [];
  for (const line of block.split('\n')) {
    if (line.startsWith('event:')) event = line.slice(6).trim();
    else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
  }
  if (data.length === 0) return null;
  const text = data.join('\n');
  try {
    return { event, data: JSON.parse(text) as unknown };
  } catch {
    return { event, data: text };
  }
}
