/**
 * One access-log line per REST request, and the request id: an incoming `X-Request-Id` that is
 * short and plain is kept, anything else is replaced by a new UUID; either way it is echoed in
 * the response's `X-Request-Id` and logged as `reqId` (also on the error line of a failure).
 */
import type { ServerResponse } from 'node:http';
import type { Request, RequestHandler, Response } from 'express';
import type { Logger, Principal, Scope } from '../../core/index.js';
import { REQUEST_ID_HEADER, callerFields, msSince, requestId } from '../access-log.js';

/** Header carrying the request id both ways. */
export { REQUEST_ID_HEADER, SANE_REQUEST_ID } from '../access-log.js';

/** Probes and scrapes: logged at debug so that they do not drown the requests. */
const QUIET_ROUTES = new Set(['/healthz', '/readyz', '/metrics']);
const PATH_FAMILIES = new Set(['nodes', 'children', 'acl', 'sync', 'locks', 'elections', 'watch']);

/** The route template of `path` (`/v1/nodes/{path}`, `/v1/leases/{id}/keepalive`…), never the raw path. */
export function routeTemplate(path: string): string {
  const seg = path.split('/').filter(Boolean);
  if (seg[0] === 'v1' && seg[1] !== undefined) {
    if (PATH_FAMILIES.has(seg[1])) return `/v1/${seg[1]}/{path}`;
    if (seg[1] === 'leases') {
      if (seg.length === 2) return '/v1/leases';
      if (seg.length === 3) return '/v1/leases/{id}';
      if (seg.length === 4 && seg[3] === 'keepalive') return '/v1/leases/{id}/keepalive';
    }
    if (seg[1] === 'ws' && seg.length === 2) return '/v1/ws';
  }
  if (seg[0] === 'docs' && seg[1] === 'assets') return '/docs/assets/{file}';
  const exact = `/${seg.join('/')}`;
  return ['/', '/healthz', '/readyz', '/metrics', '/openapi.yaml', '/docs', '/docs/init.js', '/docs/errors'].includes(exact) ? exact : '(unmatched)';
}

/** The request id of this exchange (set by `accessLog`). */
export function requestIdOf(res: Response): string | undefined {
  return res.locals.requestId as string | undefined;
}

/** Assigns the request id and logs one line when the exchange ends (answered or cut). */
export function accessLog(logger: Logger): RequestHandler {
  return (req: Request, res: Response, next) => {
    const incoming = req.get(REQUEST_ID_HEADER);
    const reqId = requestId(incoming);
    res.locals.requestId = reqId;
    res.set(REQUEST_ID_HEADER, reqId);
    const started = performance.now();
    res.once('close', () => {
      // req.path is relative to the router that handled it: judge the path the client sent.
      const pathname = new URL(req.originalUrl, 'http://x').pathname;
      logExchange(logger, res, { reqId, method: req.method, pathname, started, principal: (res.locals.scope as Scope | undefined)?.principal, code: res.locals.errorCode as string | undefined });
    });
    next();
  };
}

/** What an access line says about one exchange, besides its response's status. */
export interface Exchange {
  readonly reqId: string;
  readonly method: string | undefined;
  /** The URL's path as the client sent it. */
  readonly pathname: string;
  /** `performance.now()` when it began. */
  readonly started: number;
  /** `performance.now()` when it ended, for a line logged later (the fast path's); else now. */
  readonly ended?: number;
  readonly principal?: Principal;
  /** The error code of an error answer. */
  readonly code?: string;
}

/** Logs the access line of an exchange that ended (both HTTP paths: express and the fast path). */
export function logExchange(logger: Logger, res: Pick<ServerResponse, 'statusCode' | 'writableFinished'>, x: Exchange): void {
  // Quiet routes log at debug, the others at info: below info nothing is logged, and then the
  // line (and the route's template) is not worth building on every request.
  if (!logger.isLevelEnabled('info')) return;
  const route = routeTemplate(x.pathname);
  const level = QUIET_ROUTES.has(route) ? 'debug' : 'info';
  if (!logger.isLevelEnabled(level)) return;
  const line = {
    reqId: x.reqId,
    method: x.method,
    route,
    status: res.statusCode,
    durationMs: x.ended === undefined ? msSince(x.started) : Math.round((x.ended - x.started) * 10) / 10,
    ...callerFields(x.principal),
    ...(x.code ? { code: x.code } : {}),
    // The client went away before the answer was complete.
    ...(res.writableFinished ? {} : { aborted: true }),
  };
  logger[level](line, 'request');
}
