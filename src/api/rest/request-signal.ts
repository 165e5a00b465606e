/**
 * Ties core waits to the HTTP exchange: a client that goes away aborts what it was waiting for,
 * and so does the end of a graceful shutdown's drain time (the wait is then answered 503).
 */
import type { ServerResponse } from 'node:http';
import type { RequestHandler, Response } from 'express';
import { LazySignal, ZkgateError, cancelled, type Gateway } from '../../core/index.js';

/** Routes still answered while shutting down: probes must see the gateway going away. */
const PROBES = new Set(['/healthz', '/readyz', '/metrics']);

/**
 * Once a shutdown has begun, answers new requests 503 UNAVAILABLE and closes their connection;
 * requests already running keep their drain signal (`clientGone`).
 */
export function refuseWhileShuttingDown(gw: Gateway): RequestHandler {
  return (req, res, next) => {
    res.locals.drainSignal = gw.drainSignal;
    if (!gw.shuttingDown || PROBES.has(req.path)) {
      next();
      return;
    }
    res.set('Connection', 'close');
    throw new ZkgateError('UNAVAILABLE', 'gateway: shutting down', {});
  };
}

/**
 * An AbortSignal aborted when the client disconnects before the response is sent, or when a
 * graceful shutdown's drain time is over (reason: UNAVAILABLE). (The request's own `close`
 * event fires once its body is read, so the response's is the one to use.)
 */
export function clientGone(res: Response): AbortSignal {
  return exchangeSignal(res, res.locals.drainSignal as AbortSignal | undefined);
}

/** `clientGone` for any `node:http` response (the fast path's), with the gateway's drain signal. */
export function exchangeSignal(res: ServerResponse, drain: AbortSignal | undefined): AbortSignal {
  const ac = new AbortController();
  if (drain?.aborted) {
    ac.abort(drain.reason);
    return ac.signal;
  }
  // Made late (`lazyExchangeSignal`): the exchange may have ended already.
  if (res.closed) {
    if (!res.writableFinished) ac.abort(gone());
    return ac.signal;
  }
  // One set per drain signal rather than AbortSignal.any, which makes a signal and weak
  // references per call on the gateway-long drain signal (a lock cycle asks for one), or a
  // listener per exchange on it (a warning past ten waiters).
  const open = drain && exchangesOf(drain);
  open?.add(ac);
  res.on('close', () => {
    open?.delete(ac);
    if (!res.writableFinished) ac.abort(gone());
  });
  return ac.signal;
}

function gone(): Error {
  return cancelled('client_gone', 'http: client disconnected');
}

/**
 * `exchangeSignal` made only when something listens to it (a lock acquire that waits): checking
 * it reads the exchange's state instead. Most acquires hold at once and only check it; making
 * the signal for each was ~2 % of a lock cycle's CPU (docs/benchmarks.md, locks2).
 */
export function lazyExchangeSignal(res: ServerResponse, drain: AbortSignal | undefined): LazySignal {
  return new ExchangeAbort(res, drain);
}

class ExchangeAbort extends LazySignal {
  private made: AbortSignal | undefined;

  constructor(
    private readonly res: ServerResponse,
    private readonly drain: AbortSignal | undefined,
  ) {
    super();
  }

  throwIfAborted(): void {
    if (this.made) return this.made.throwIfAborted();
    if (this.drain?.aborted) throw this.drain.reason;
    // As the signal's 'close' listener: closed before the answer was finished.
    if (this.res.closed && !this.res.writableFinished) throw gone();
  }

  get signal(): AbortSignal {
    return (this.made ??= exchangeSignal(this.res, this.drain));
  }
}

/** The exchanges waiting under each drain signal; its end aborts them all. */
const draining = new WeakMap<AbortSignal, Set<AbortController>>();

function exchangesOf(drain: AbortSignal): Set<AbortController> {
  let open = draining.get(drain);
  if (!open) {
    const all = (open = new Set());
    draining.set(drain, all);
    drain.addEventListener('abort', () => {
      for (const ac of all) ac.abort(drain.reason);
    }, { once: true });
  }
  return open;
}
