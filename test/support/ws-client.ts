/** A small test client over the `ws` package: collects JSON messages and waits for matching ones. */
import WebSocket from 'ws';

/** A received message; loosely typed so tests can reach into it. */
export type Json = Record<string, any>;

export class WsTestClient {
  /** Messages received and not yet taken by `take`. */
  readonly inbox: Json[] = [];
  /** Every message received, in order. */
  readonly all: Json[] = [];
  private waiters: (() => void)[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const msg = JSON.parse(data.toString()) as Json;
      this.inbox.push(msg);
      this.all.push(msg);
      for (const w of this.waiters.splice(0)) w();
    });
    this.closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  }

  /** Opens a socket and resolves after the server's `welcome`. */
  static async open(url: string, headers: Record<string, string> = {}): Promise<WsTestClient> {
    const c = new WsTestClient(new WebSocket(url, { headers })); // listens before the welcome can arrive
    await new Promise<void>((resolve, reject) => {
      c.ws.once('open', () => resolve());
      c.ws.once('error', reject);
      c.ws.once('unexpected-response', (_req, res) => {
        // The refusal carries the REST problem body: keep its code in the error.
        const chunks: Buffer[] = [];
        res.on('data', (b: Buffer) => chunks.push(b));
        res.on('end', () => {
          let code = '';
          let detail = '';
          try {
            const p = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { code?: string; detail?: string };
            code = String(p.code ?? '');
            detail = String(p.detail ?? '');
          } catch {
            // not JSON: the status alone
          }
          reject(Object.assign(new Error(`upgrade refused: HTTP ${res.statusCode}${code ? ` ${code}` : ''}${detail ? `: ${detail}` : ''}`), { status: res.statusCode, code }));
        });
      });
    });
    await c.take((m) => m.type === 'welcome');
    return c;
  }

  send(msg: Json | string): void {
    this.ws.send(typeof msg === 'string' ? msg : JSON.stringify(msg));
  }

  /** Removes and returns the first message matching `pred`, waiting up to `timeoutMs` for it. */
  async take(pred: (m: Json) => boolean, timeoutMs = 10_000): Promise<Json> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.inbox.findIndex(pred);
      if (i >= 0) return this.inbox.splice(i, 1)[0] as Json;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no matching message within ${timeoutMs} ms; inbox: ${JSON.stringify(this.inbox).slice(0, 2000)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** The next event of subscription `id` (optionally of `type`). */
  event(id: string, type?: string, timeoutMs?: number): Promise<Json> {
    return this.take((m) => m.type === 'event' && m.id === id && (!type || m.event.type === type), timeoutMs);
  }

  close(): void {
    this.ws.close();
  }
}
