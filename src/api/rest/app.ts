/** The express application: body parsing, routes, docs and the single error middleware. */
import express, { type Express, type RequestHandler } from 'express';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import type { Gateway, Principal, Scope } from '../../core/index.js';
import { projectFile } from '../../project-files.js';
import { metricsHandler, httpMetrics } from '../metrics.js';
import { aclRouter, childrenRouter, nodesRouter, syncRouter, treeRouter } from './nodes.js';
import { errorMiddleware } from './problem.js';
import { accessLog } from './access-log.js';
import { refuseWhileShuttingDown } from './request-signal.js';
import { leasesRouter } from './leases.js';
import { authenticate, scopeOf } from './params.js';
import { lockListRouter, locksRouter } from './locks.js';
import { electionListRouter, electionsRouter } from './elections.js';
import { semaphoresRouter } from './semaphores.js';
import { rwLocksRouter } from './rw-locks.js';
import { watchRouter } from './watch.js';
import { queueClaimRouter, queueTakeRouter, queuesRouter } from './queues.js';
import { jobsRouter } from './jobs.js';
import { registryRouter } from './registry.js';
import { barriersRouter, doubleBarriersRouter } from './barriers.js';
import { ZkgateError } from '../../core/index.js';
import { docsRouter } from './docs.js';
import { probeAnswer } from './probes.js';
import { methodNotAllowed } from './path-router.js';

/** Builds the REST app for a started or starting gateway. */
export function createRestApp(gw: Gateway): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use((_req, res, next) => {
    // Binary data must never be sniffed into something executable by a browser.
    res.set('X-Content-Type-Options', 'nosniff');
    next();
  });
  app.use(accessLog(gw.logger));
  app.use(httpMetrics(openapiPaths()));
  app.use(refuseWhileShuttingDown(gw));
  // Authentication first, then the body parsers, and both only under /v1 (no other route takes a
  // body): no caller's body is read, not even parsed as JSON, before the caller is authenticated.
  app.use(
    '/v1',
    authenticate(gw),
    bodyParsers(gw),
    (req, _res, next) => {
      // A body neither parser took (a form from `curl -d`, text/plain…) must not be silently dropped.
      const length = req.get('content-length');
      const hasBody = (length !== undefined && length !== '0') || req.get('transfer-encoding') !== undefined;
      if (hasBody && req.body === undefined) {
        throw new ZkgateError('UNSUPPORTED_MEDIA_TYPE', `content-type ${req.get('content-type') ?? '(none)'} is not supported: send application/json or application/octet-stream`, {});
      }
      next();
    },
  );

  // The exact probe URLs are answered by the fast path (fast-path.ts) unless it is off.
  for (const probe of ['/healthz', '/readyz'] as const) {
    app.get(probe, (_req, res) => {
      const a = probeAnswer(gw, probe);
      res.status(a.status).json(a.body);
    });
  }
  app.get('/metrics', metricsHandler(gw));
  app.all(['/healthz', '/readyz', '/metrics'], methodNotAllowed(['GET', 'HEAD']));

  app.use(docsRouter());

  app.get('/v1/whoami', (_req, res) => {
    res.json(whoami(scopeOf(res).principal));
  });
  // The web console: static files shipped with the package (no CDN, no build step).
  app.use('/ui', express.static(projectFile('ui'), { index: 'index.html', redirect: true }));

  app.use('/v1/nodes', nodesRouter());
  app.use('/v1/children', childrenRouter());
  app.use('/v1/tree', treeRouter());
  app.use('/v1/acl', aclRouter());
  app.use('/v1/sync', syncRouter());
  app.use('/v1/leases', leasesRouter());
  app.use('/v1/locks', locksRouter());
  app.use('/v1/elections', electionsRouter());
  app.use('/v1/semaphores', semaphoresRouter());
  app.use('/v1/rwlocks', rwLocksRouter());
  app.use('/v1/recipes/locks', lockListRouter());
  app.use('/v1/recipes/elections', electionListRouter());
  app.use('/v1/watch', watchRouter(gw));
  app.use('/v1/queues', queuesRouter());
  app.use('/v1/queue-take', queueTakeRouter());
  app.use('/v1/queue-ack', queueClaimRouter('ack'));
  app.use('/v1/queue-release', queueClaimRouter('release'));
  app.use('/v1/jobs', jobsRouter());
  app.use('/v1/services', registryRouter(gw));
  app.use('/v1/barriers', barriersRouter());
  app.use('/v1/double-barriers', doubleBarriersRouter());

  app.use(() => {
    throw new ZkgateError('NOT_FOUND', 'no such route; see /docs', {});
  });
  app.use(errorMiddleware(gw.logger));
  return app;
}

/** Who the caller is, for a console or a script deciding what to offer (never the key). */
function whoami(p: Principal): { tenant: string; role: string; keyId: string; prefixes: readonly string[]; authRequired: boolean } {
  return { tenant: p.tenant.name, role: p.role, keyId: p.keyId, prefixes: p.prefixes, authRequired: p.keyId !== 'anonymous' };
}

/**
 * The JSON and raw body parsers at the caller's tenant's `limits.maxBodyBytes` (the caller is
 * known: authentication runs first); one pair per distinct limit.
 */
function bodyParsers(gw: Gateway): RequestHandler {
  const pairs = new Map<number, [RequestHandler, RequestHandler]>();
  const pair = (limit: number): [RequestHandler, RequestHandler] => {
    let p = pairs.get(limit);
    if (!p) {
      p = [express.json({ limit, type: ['application/json', 'application/*+json'], strict: false }), express.raw({ limit, type: 'application/octet-stream' })];
      pairs.set(limit, p);
    }
    return p;
  };
  return (req, res, next) => {
    const scope = res.locals.scope as Scope | undefined;
    const [json, raw] = pair(scope?.limits.maxBodyBytes ?? gw.config.limits.maxBodyBytes);
    json(req, res, (err?: unknown) => (err ? next(err) : raw(req, res, next)));
  };
}

let templates: readonly string[] | undefined;

/** The route templates of openapi.yaml: the only values of the request metrics' route label (parsed once: the file is large). */
export function openapiPaths(): readonly string[] {
  templates ??= Object.keys((parse(readFileSync(projectFile('openapi.yaml'), 'utf8')) as { paths?: Record<string, unknown> }).paths ?? {});
  return templates;
}
