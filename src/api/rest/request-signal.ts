/** Ties core waits to the HTTP exchange: a client that goes away aborts what it was waiting for. */
import type { Response } from 'express';

/**
 * An AbortSignal aborted when the client disconnects before the response is sent. (The
 * request's own `close` event fires once its body is read, so the response's is the one to use.)
 */
export function clientGone(res: Response): AbortSignal {
  const ac = new AbortController();
  res.on('close', () => {
    if (!res.writableFinished) ac.abort(new Error('http: client disconnected'));
  });
  return ac.signal;
}
