/** Ties core waits to the HTTP exchange: a client that goes away aborts what it was waiting for. */
import type { Response } from 'express';
import { cancelled } from '../../core/index.js';

/**
 * An AbortSignal aborted when the client disconnects before the response is sent. (The
 * request's own `close` event fires once its body is read, so the response's is the one to use.)
 */
export function clientGone(res: Response): AbortSignal {
  const ac = new AbortController();
  res.on('close', () => {
    if (!res.writableFinished) ac.abort(cancelled('client_gone', 'http: client disconnected'));
  });
  return ac.signal;
}
