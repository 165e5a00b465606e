/**
 * One access-log line per REST request, and the request id: an incoming `X-Request-Id` that is
 * short and plain is kept, anything else is replaced by a new UUID; either way it is echoed in
 * the response's `X-Request-Id` and logged as `reqId` (also on the error line of a failure).
 */
import type { Request, RequestHandler, Response } from 'express';
import type { Logger, Scope } from '../../core/index.js';
import { callerFields, requestId } from '../access-log.js';

/** Header carrying the request id both ways. */
export const REQUEST_ID_HEADER = 'X-Request-Id';
export { SANE_REQUEST_ID } from '../access-log.js';

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
      const route = routeTemplate(new URL(req.originalUrl, 'http://x').pathname);
      const principal = (res.locals.scope as Scope | undefined)?.principal;
      const line = {
        reqId,
        method: req.method,
        route,
        status: res.statusCode,
        durationMs: Math.round((performance.now() - started) * 10) / 10,
        ...callerFields(principal),
        ...(res.locals.errorCode ? { code: res.locals.errorCode as string } : {}),
        // The client went away before the answer was complete.
        ...(res.writableFinished ? {} : { aborted: true }),
      };
      logger[QUIET_ROUTES.has(route) ? 'debug' : 'info'](line, 'request');
    });
    next();
  };
}
