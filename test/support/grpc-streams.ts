/** Reading gRPC client streams in tests: wait for the next message that matches, with a timeout. */
import type { ClientDuplexStream, ClientReadableStream } from '@grpc/grpc-js';

export type Msg = Record<string, unknown>;

/** Collects a stream's messages; `next(pred)` resolves with (and consumes up to) the first match. */
export interface StreamReader {
  next(pred?: (m: Msg) => boolean, timeoutMs?: number): Promise<Msg>;
  /** Messages received and not consumed yet. */
  readonly pending: readonly Msg[];
  /** Resolves with the stream's error (or null when it ended cleanly). */
  readonly ended: Promise<Error | null>;
}

export function readStream(stream: ClientReadableStream<Msg> | ClientDuplexStream<Msg, Msg>): StreamReader {
  const seen: Msg[] = [];
  const waiters: (() => void)[] = [];
  const wakeAll = (): void => {
    for (const w of waiters.splice(0)) w();
  };
  stream.on('data', (m: Msg) => {
    seen.push(m);
    wakeAll();
  });
  const ended = new Promise<Error | null>((resolve) => {
    stream.on('error', (e: Error) => resolve(e));
    stream.on('end', () => resolve(null));
  });
  return {
    pending: seen,
    ended,
    next: (pred = () => true, timeoutMs = 10_000) =>
      new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no matching message in ${timeoutMs} ms; saw ${JSON.stringify(seen).slice(0, 2000)}`)), timeoutMs);
        const check = (): void => {
          const i = seen.findIndex(pred);
          if (i >= 0) {
            clearTimeout(t);
            resolve(seen.splice(0, i + 1).pop() as Msg);
          } else waiters.push(check);
        };
        check();
      }),
  };
}
