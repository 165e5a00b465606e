/**
 * The routes that carry load, answered in plain `node:http` in front of express: `/v1/nodes/{path}`
 * (GET with or without the long-poll, HEAD, POST, PUT, DELETE), `GET /v1/children/{path}`,
 * `POST /v1/leases/{id}/keepalive`, lock acquire and release (`POST`, `DELETE /v1/locks/{path}`;
 * their translation is locks.ts's) and the probes `GET`/`HEAD /healthz` and `/readyz` (probes.ts;
 * a balancer checks every instance several times a second, also while it shuts down). Express,
 * its router and body parsers cost a quarter of a GET's CPU and most of its garbage
 * (docs/benchmarks.md). The translation itself is shared:
 * node-routes.ts parses, validates, makes the core call and shapes the answer for both paths, and
 * the access line, request id, metrics and problem bodies come from the same functions. This file
 * only routes, reads the body and writes the answer, as express would (same headers, same
 * `Content-Type`s, `Connection: close` on an answer given before the body was read).
 *
 * Whatever it is not sure to answer exactly as express does goes to express unchanged: another
 * route, an `Accept` that could ask for raw bytes, a body that is chunked, compressed, in
 * another type or charset than JSON (UTF-8) or `application/octet-stream`, a body on a route
 * that takes none, a shutdown in progress. test/integration/rest-fast-path.test.ts holds the two
 * paths to identical answers.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parse as parseQuery } from 'node:querystring';
import { cancelled, type Gateway, type Principal, type Scope } from '../../core/index.js';
import { leaseJson, problemOf } from '../json.js';
import { observeHttp, routeTemplates } from '../metrics.js';
import { requestId } from '../access-log.js';
import { openapiPaths } from './app.js';
import { REQUEST_ID_HEADER, logExchange } from './access-log.js';
import { createNode, deleteNode, getNode, headNode, listChildren, setNode, type NodeAnswer, type NodeRequest } from './node-routes.js';
import { acquireLock, releaseLock } from './locks.js';
import { queryOf } from './params.js';
import { probeAnswer, probeOf, type Probe } from './probes.js';
import { bodyTooLarge, discardUnreadBody, malformedJson, noteError } from './problem.js';
import { exchangeSignal, lazyExchangeSignal } from './request-signal.js';
import { znodePathFromUrl } from './znode-path.js';

/** A `node:http` request listener (express apps are one). */
export type RequestListener = (req: IncomingMessage, res: ServerResponse) => void;

type NodeHandler = (r: NodeRequest) => Promise<NodeAnswer>;
type Family = 'nodes' | 'children' | 'locks';
/** How the request's body is read: none, JSON (UTF-8) or raw bytes. */
type BodyKind = 'none' | 'json' | 'raw';

type FastRoute =
  | { readonly kind: 'node'; readonly family: Family; readonly handler: NodeHandler; readonly rest: string; readonly search: string; readonly body: BodyKind }
  | { readonly kind: 'keepalive'; readonly id: string }
  | { readonly kind: 'probe'; readonly probe: Probe };

const PREFIX: Record<Family, string> = { nodes: '/v1/nodes', children: '/v1/children', locks: '/v1/locks' };
const KEEPALIVE = /^\/v1\/leases\/([A-Za-z0-9_.:-]{1,200})\/keepalive$/;
const NODE_METHODS: Record<string, NodeHandler> = { GET: getNode, HEAD: headNode, POST: createNode, PUT: setNode, DELETE: deleteNode };
/** Lock acquire and release (a cycle is one of each); inspection and raw bodies stay with express. */
const LOCK_METHODS: Record<string, NodeHandler> = { POST: acquireLock, DELETE: releaseLock };
/** Methods whose route reads a body; on the others a body goes to express (it parses and ignores it). */
const TAKES_BODY = new Set(['POST', 'PUT']);

/** Routes `req` to a fast handler, or undefined for express (exported for the tests). */
export function fastRoute(req: Pick<IncomingMessage, 'method' | 'url' | 'headers'>): FastRoute | undefined {
  const url = req.url ?? '';
  const q = url.indexOf('?');
  const pathname = q < 0 ? url : url.slice(0, q);
  const search = q < 0 ? '' : url.slice(q + 1);
  const method = req.method ?? '';
  const body = bodyKind(req);
  if (body === undefined || (body !== 'none' && !TAKES_BODY.has(method))) return undefined;
  const family: Family | undefined = pathname.startsWith('/v1/nodes/')
    ? 'nodes'
    : pathname.startsWith('/v1/children/')
      ? 'children'
      : pathname.startsWith('/v1/locks/')
        ? 'locks'
        : undefined;
  if (family) {
    const handler =
      family === 'nodes' ? NODE_METHODS[method] : family === 'locks' ? (body === 'raw' ? undefined : LOCK_METHODS[method]) : method === 'GET' ? listChildren : undefined;
    if (!handler || (method === 'GET' && !acceptsJson(req.headers.accept))) return undefined;
    return { kind: 'node', family, handler, rest: pathname.slice(PREFIX[family].length), search, body };
  }
  if (method === 'POST' && body === 'none' && search === '') {
    const m = KEEPALIVE.exec(pathname);
    if (m) return { kind: 'keepalive', id: m[1] as string };
  }
  const probe = (method === 'GET' || method === 'HEAD') && body === 'none' ? probeOf(pathname) : undefined;
  return probe && { kind: 'probe', probe };
}

/**
 * The body as express's parsers would take it, or undefined when only express can say: a
 * declared length (no chunking, no compression) in JSON as UTF-8 or raw bytes, or no body.
 */
function bodyKind(req: Pick<IncomingMessage, 'headers'>): BodyKind | undefined {
  const h = req.headers;
  if (h['transfer-encoding'] !== undefined || (h['content-encoding'] !== undefined && h['content-encoding'].toLowerCase() !== 'identity')) return undefined;
  const length = h['content-length'];
  if (length === undefined) return 'none';
  const type = h['content-type']?.toLowerCase().replace(/\s+/g, '');
  if (type === undefined) return length === '0' ? 'none' : undefined;
  if (type === 'application/json' || type === 'application/json;charset=utf-8') return 'json';
  if (type === 'application/octet-stream') return 'raw';
  return undefined;
}

/** Accept headers for which express's content negotiation picks JSON for sure. */
function acceptsJson(accept: string | undefined): boolean {
  return accept === undefined || accept === '*/*' || accept.includes('application/json');
}

/** Wraps `app` (express) with the fast routes. */
export function withFastPath(gw: Gateway, app: RequestListener): RequestListener {
  const metricRoute = metricRoutes();
  return (req, res) => {
    const route = fastRoute(req);
    // While shutting down express refuses new work; the probes go on answering (503 for /readyz).
    if (route && (route.kind === 'probe' || !gw.shuttingDown)) serve(gw, route, metricRoute(route), req, res);
    else app(req, res);
  };
}

/**
 * The metrics' route label of a fast route, as express's metrics middleware computes it from
 * openapi.yaml's templates: every path of a family but its root falls under the same template,
 * so one representative URL per shape is matched once instead of every request's.
 */
function metricRoutes(): (route: FastRoute) => string {
  const routeOf = routeTemplates(openapiPaths());
  const labels = {
    nodes: { node: routeOf(`${PREFIX.nodes}/x`), root: routeOf(`${PREFIX.nodes}/`) },
    children: { node: routeOf(`${PREFIX.children}/x`), root: routeOf(`${PREFIX.children}/`) },
    locks: { node: routeOf(`${PREFIX.locks}/x`), root: routeOf(`${PREFIX.locks}/`) },
    keepalive: routeOf('/v1/leases/x/keepalive'),
    probe: { '/healthz': routeOf('/healthz'), '/readyz': routeOf('/readyz') },
  };
  return (r) => (r.kind === 'keepalive' ? labels.keepalive : r.kind === 'probe' ? labels.probe[r.probe] : r.rest === '/' ? labels[r.family].root : labels[r.family].node);
}

function serve(gw: Gateway, route: FastRoute, metricRoute: string, req: IncomingMessage, res: ServerResponse): void {
  const started = performance.now();
  const reqId = requestId(req.headers['x-request-id']);
  const method = req.method ?? 'GET';
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader(REQUEST_ID_HEADER, reqId);
  let principal: Principal | undefined;
  let code: string | undefined;
  res.once('close', () => {
    // As it was when the exchange ended (a cut one's `end()` may still come from its handler).
    const ended = performance.now();
    const outcome = { statusCode: res.statusCode, writableFinished: res.writableFinished };
    const error = code;
    afterwards(() => {
      // As express's metrics middleware (on 'finish'): exchanges that finished, not cut ones.
      if (outcome.writableFinished) observeHttp(metricRoute, method, outcome.statusCode, ended - started);
      const url = req.url ?? '/';
      const q = url.indexOf('?');
      logExchange(gw.logger, outcome, { reqId, method, pathname: q < 0 ? url : url.slice(0, q), started, ended, principal, code: error });
    });
  });
  const fail = (err: unknown): void => {
    code = noteError(gw.logger, err, reqId, method, req.url);
    if (res.headersSent || res.destroyed) return void res.end();
    discardUnreadBody(req, res);
    const body = problemOf(err);
    if (body.code === 'UNAUTHENTICATED') res.setHeader('WWW-Authenticate', 'Bearer realm="zkgate"');
    send(res, body.status, 'application/problem+json; charset=utf-8', JSON.stringify(body), method === 'HEAD');
  };
  if (route.kind === 'probe') {
    // Unauthenticated, as express's probe routes (outside /v1).
    const a = probeAnswer(gw, route.probe);
    send(res, a.status, JSON_TYPE, JSON.stringify(a.body), method === 'HEAD');
    return;
  }
  try {
    principal = gw.authenticate({ authorization: req.headers.authorization || undefined, tenant: header(req, 'zkgate-tenant') });
    const scope = gw.as(principal);
    if (route.kind === 'keepalive') {
      // A promise: in a cluster, a lease of another instance is kept alive on its owner.
      scope.leases.keepAlive(route.id).then((lease) => send(res, 200, JSON_TYPE, JSON.stringify(leaseJson(lease)), false), fail);
      return;
    }
    const run = (body: unknown): Promise<void> =>
      route.handler(nodeRequest(gw, scope, route, res, body)).then((a) => answer(res, a, method === 'HEAD'));
    if (route.body === 'none') run(undefined).catch(fail);
    else readBody(req, scope.limits.maxBodyBytes, route.body).then(run).catch(fail);
  } catch (err) {
    fail(err);
  }
}

/** Accounting of exchanges whose answer has gone (metrics, access line), done in a batch. */
const accounting: (() => void)[] = [];

/**
 * Runs `f` in the loop's check phase (`setImmediate`) instead of right after the answer is
 * written: 'close' comes in the same tick as the write, before the loop reads the client's next
 * request — which at 1 client is already there — so the exchange's metrics and access line
 * (~4 % of a lock cycle's CPU, prom-client's label handling mostly) delayed every next request.
 * In the check phase they run once that request is read and its ZooKeeper call sent, while
 * ZooKeeper works (docs/benchmarks.md, locks, 11:00 UTC). Done within the same loop turn.
 */
function afterwards(f: () => void): void {
  if (accounting.push(f) === 1) setImmediate(settle);
}

function settle(): void {
  const batch = accounting.splice(0);
  for (const f of batch) f();
}

function nodeRequest(gw: Gateway, scope: Scope, route: Extract<FastRoute, { kind: 'node' }>, res: ServerResponse, body: unknown): NodeRequest {
  return {
    scope,
    path: znodePathFromUrl(route.rest),
    query: queryOf(route.search === '' ? {} : parseQuery(route.search)),
    body,
    rawBody: route.body === 'raw',
    wantsRaw: false, // fastRoute leaves every Accept that might ask for raw bytes to express
    res,
    signal: () => exchangeSignal(res, gw.drainSignal),
    lazySignal: () => lazyExchangeSignal(res, gw.drainSignal),
  };
}

/**
 * The body, within the caller's tenant's `limits.maxBodyBytes` (as express's parsers: a declared
 * length over it is refused before reading). JSON is parsed as body-parser does (UTF-8, a BOM
 * dropped, empty means `{}`). A client that goes away mid-body rejects it.
 */
function readBody(req: IncomingMessage, limit: number, kind: 'json' | 'raw'): Promise<unknown> {
  const declared = Number(req.headers['content-length']);
  if (declared > limit) return Promise.reject(bodyTooLarge(limit, declared));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.once('error', () => undefined); // a reset mid-body: 'close' below says it
    req.once('close', () => {
      if (!req.complete) reject(cancelled('client_gone', 'http: client disconnected'));
    });
    req.once('end', () => {
      const buf = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
      if (kind === 'raw') return resolve(buf);
      const text = buf.toString('utf8');
      if (text.length === 0) return resolve({});
      try {
        resolve(JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text));
      } catch (err) {
        reject(malformedJson((err as Error).message));
      }
    });
  });
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return (Array.isArray(v) ? v.join(', ') : v) || undefined;
}

const JSON_TYPE = 'application/json; charset=utf-8';

/** Writes a node route's answer as express's `res.json`, `res.send` and `res.end` do. */
function answer(res: ServerResponse, a: NodeAnswer, head: boolean): void {
  if ('json' in a) send(res, a.status, JSON_TYPE, JSON.stringify(a.json), head);
  else if ('raw' in a) send(res, a.status, 'application/octet-stream', a.raw, head);
  else {
    res.statusCode = a.status;
    res.end();
  }
}

/** Writes the answer as express's `res.send` does: status, type, length, and no body for HEAD. */
function send(res: ServerResponse, status: number, type: string, body: string | Buffer, head: boolean): void {
  res.statusCode = status;
  res.setHeader('Content-Type', type);
  res.setHeader('Content-Length', typeof body === 'string' ? Buffer.byteLength(body) : body.length);
  res.end(head ? undefined : body);
}
