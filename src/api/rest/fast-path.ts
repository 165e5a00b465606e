/**
 * The hot REST routes answered in plain `node:http`, in front of express: `GET` and `HEAD
 * /v1/nodes/{path}` and `POST /v1/leases/{id}/keepalive`, in their plain form only (no query
 * string, no request body, a JSON-accepting `GET`). Everything else — every other route, a query
 * (long-poll, encoding, version…), a body, raw bytes, a shutdown in progress — goes to express
 * unchanged. Express, its router and body parsers cost a quarter of a GET's CPU and most of its
 * garbage (docs/benchmarks.md); these routes do the same work without them: the same headers
 * (`X-Content-Type-Options`, `X-Request-Id`, the stat headers, `X-Zkgate-Index`), the same
 * authentication and path rules (the same core calls), the same problem bodies, access-log
 * line and metrics. test/integration/rest-fast-path.test.ts holds the two paths to identical answers.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Gateway, Principal } from '../../core/index.js';
import { mapError } from '../error-table.js';
import { encodeData, leaseJson, problemOf } from '../json.js';
import { countError, observeHttp, routeTemplates } from '../metrics.js';
import { openapiPaths } from './app.js';
import { REQUEST_ID_HEADER, SANE_REQUEST_ID, routeTemplate } from './access-log.js';
import { SOURCE_HEADER } from './nodes.js';
import { statHeaders } from './params.js';
import { znodePathFromUrl } from './znode-path.js';

/** A `node:http` request listener (express apps are one). */
export type RequestListener = (req: IncomingMessage, res: ServerResponse) => void;

type FastRoute = { readonly kind: 'get' | 'head'; readonly rest: string } | { readonly kind: 'keepalive'; readonly id: string };

const NODES = '/v1/nodes';
const KEEPALIVE = /^\/v1\/leases\/([A-Za-z0-9_.:-]{1,200})\/keepalive$/;

/** Routes `req` to a fast handler, or undefined for express. */
function fastRoute(req: IncomingMessage): FastRoute | undefined {
  const url = req.url ?? '';
  if (url.includes('?') || hasBody(req)) return undefined;
  if (req.method === 'GET' || req.method === 'HEAD') {
    if (!url.startsWith(`${NODES}/`)) return undefined;
    if (req.method === 'GET' && !acceptsJson(req.headers.accept)) return undefined;
    return { kind: req.method === 'GET' ? 'get' : 'head', rest: url.slice(NODES.length) };
  }
  if (req.method === 'POST') {
    const m = KEEPALIVE.exec(url);
    if (m) return { kind: 'keepalive', id: m[1] as string };
  }
  return undefined;
}

function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return (length !== undefined && length !== '0') || req.headers['transfer-encoding'] !== undefined;
}

/** Accept headers for which express's content negotiation picks JSON for sure. */
function acceptsJson(accept: string | undefined): boolean {
  return accept === undefined || accept === '*/*' || accept.includes('application/json');
}

/** Wraps `app` (express) with the fast routes. */
export function withFastPath(gw: Gateway, app: RequestListener): RequestListener {
  const metricRoute = metricRoutes();
  return (req, res) => {
    const route = gw.shuttingDown ? undefined : fastRoute(req);
    if (route) serve(gw, route, metricRoute(route), req, res);
    else app(req, res);
  };
}

/**
 * The metrics' route label of a fast route, as express's metrics middleware computes it from
 * openapi.yaml's templates: every node path but the root falls under the same template, so one
 * representative URL per shape is matched once instead of every request's.
 */
function metricRoutes(): (route: FastRoute) => string {
  const routeOf = routeTemplates(openapiPaths());
  const labels = { node: routeOf(`${NODES}/x`), root: routeOf(`${NODES}/`), keepalive: routeOf('/v1/leases/x/keepalive') };
  return (r) => (r.kind === 'keepalive' ? labels.keepalive : r.rest === '/' ? labels.root : labels.node);
}

function serve(gw: Gateway, route: FastRoute, metricRoute: string, req: IncomingMessage, res: ServerResponse): void {
  const started = performance.now();
  const incoming = req.headers['x-request-id'];
  const reqId = typeof incoming === 'string' && SANE_REQUEST_ID.test(incoming) ? incoming : randomUUID();
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader(REQUEST_ID_HEADER, reqId);
  let principal: Principal | undefined;
  let code: string | undefined;
  res.once('close', () => {
    const template = routeTemplate(req.url ?? '/');
    // As express's metrics middleware: exchanges that finished (not cut ones).
    if (res.writableFinished) observeHttp(metricRoute, req.method ?? 'GET', res.statusCode, performance.now() - started);
    gw.logger.info(
      {
        reqId,
        method: req.method,
        route: template,
        status: res.statusCode,
        durationMs: Math.round((performance.now() - started) * 10) / 10,
        ...(principal ? { tenant: principal.tenant.name, key: principal.keyName ?? principal.keyId } : {}),
        ...(code ? { code } : {}),
        ...(res.writableFinished ? {} : { aborted: true }),
      },
      'request',
    );
  });
  const fail = (err: unknown): void => {
    const body = problemOf(err);
    code = body.code;
    countError(mapError(err).error, 'rest');
    if (body.code === 'INTERNAL') gw.logger.error({ err, reqId, method: req.method, url: req.url }, 'request failed');
    else gw.logger.debug({ reqId, code: body.code, detail: body.detail }, 'request answered with an error');
    if (res.headersSent) return void res.end();
    if (body.code === 'UNAUTHENTICATED') res.setHeader('WWW-Authenticate', 'Bearer realm="zkgate"');
    send(res, body.status, 'application/problem+json; charset=utf-8', JSON.stringify(body), req.method === 'HEAD');
  };
  try {
    principal = gw.authenticate({ authorization: req.headers.authorization || undefined, tenant: header(req, 'zkgate-tenant') });
    const scope = gw.as(principal);
    if (route.kind === 'keepalive') {
      // A promise: in a cluster, a lease of another instance is kept alive on its owner.
      scope.leases.keepAlive(route.id).then((lease) => sendJson(res, 200, leaseJson(lease), false), fail);
      return;
    }
    const path = znodePathFromUrl(route.rest);
    if (route.kind === 'head') {
      scope.nodes.exists(path).then((stat) => {
        if (!stat) return send(res, 404, undefined, '', true);
        for (const [k, v] of Object.entries(statHeaders(stat))) res.setHeader(k, v);
        send(res, 200, undefined, '', true);
      }, fail);
      return;
    }
    scope.nodes.get(path).then((node) => {
      res.setHeader('X-Zkgate-Index', node.stat.mzxid);
      if (node.source) res.setHeader(SOURCE_HEADER, node.source);
      sendJson(res, 200, { path: node.path, ...encodeData(node.data), stat: node.stat }, false);
    }, fail);
  } catch (err) {
    fail(err);
  }
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return (Array.isArray(v) ? v.join(', ') : v) || undefined;
}

function sendJson(res: ServerResponse, status: number, body: unknown, head: boolean): void {
  send(res, status, 'application/json; charset=utf-8', JSON.stringify(body), head);
}

/** Writes the answer as express's `res.send` does: status, type, length, and no body for HEAD. */
function send(res: ServerResponse, status: number, type: string | undefined, body: string, head: boolean): void {
  res.statusCode = status;
  if (type !== undefined) {
    res.setHeader('Content-Type', type);
    res.setHeader('Content-Length', Buffer.byteLength(body));
  }
  res.end(head ? undefined : body);
}
