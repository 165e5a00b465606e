/** REST znode routes: /v1/nodes/{path}, /v1/children/{path}, /v1/acl/{path}, /v1/sync/{path}. */
import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import { aclFromJson, aclToJson } from '../json.js';
import { boolParam, intParam, isRawBody, jsonBody, queryOf, scopeOf, wantsRaw } from './params.js';
import { pathRouter } from './path-router.js';
import { clientGone, lazyExchangeSignal } from './request-signal.js';
import { createNode, deleteNode, getNode, headNode, listChildren, parseWith, setNode, type NodeAnswer, type NodeRequest } from './node-routes.js';
import type { AclEntry } from '../../core/index.js';

export { SOURCE_HEADER, parseWith } from './node-routes.js';

/** Also used by the lock and election routes. */
export { pathRouter };

/** The express request as node-routes.ts takes it. */
function nodeRequest(req: Request, res: Response, path: string): NodeRequest {
  return {
    scope: scopeOf(res),
    path,
    query: queryOf(req.query as Record<string, unknown>),
    body: req.body as unknown,
    rawBody: isRawBody(req),
    wantsRaw: req.method === 'GET' && wantsRaw(req),
    res,
    signal: () => clientGone(res),
    lazySignal: () => lazyExchangeSignal(res, res.locals.drainSignal as AbortSignal | undefined),
  };
}

/** Writes a node route's answer with express. */
function answer(res: Response, a: NodeAnswer): void {
  res.status(a.status);
  if ('json' in a) res.json(a.json);
  else if ('raw' in a) res.type('application/octet-stream').send(a.raw);
  else res.end();
}

/** Runs a node-routes.ts handler (or one of its shape: the lock routes') on an express exchange. */
export function route(handler: (r: NodeRequest) => Promise<NodeAnswer>): (req: Request, res: Response, path: string) => Promise<void> {
  return async (req, res, path) => answer(res, await handler(nodeRequest(req, res, path)));
}

export function nodesRouter(): Router {
  return pathRouter({ GET: route(getNode), HEAD: route(headNode), POST: route(createNode), PUT: route(setNode), DELETE: route(deleteNode) });
}

export function childrenRouter(): Router {
  return pathRouter({ GET: route(listChildren) });
}

/** `GET /v1/tree/{path}`: the subtree breadth-first (`ls -R`), bounded by `limit` (cut, marked truncated). */
export function treeRouter(): Router {
  return pathRouter({
    GET: async (req, res, path) => {
      const opts = { limit: intParam(req, 'limit'), depth: intParam(req, 'depth'), withStats: boolParam(req, 'stat') ?? false };
      res.json(await scopeOf(res).nodes.tree(path, opts));
    },
  });
}

const aclBody = z
  .object({
    acl: z.array(z.object({ scheme: z.string().min(1), id: z.string(), perms: z.string() }).strict()).min(1),
    version: z.number().int().optional(),
  })
  .strict();

export function aclRouter(): Router {
  return pathRouter({
    GET: async (req, res, path) => {
      const { acl, stat } = await scopeOf(res).nodes.getAcl(path);
      res.json({ path, acl: aclToJson(acl), stat });
    },
    PUT: async (req, res, path) => {
      const b = parseWith(aclBody, jsonBody(req));
      const acl: AclEntry[] = aclFromJson(b.acl);
      const stat = await scopeOf(res).nodes.setAcl(path, acl, { version: b.version ?? intParam(req, 'version') });
      res.json({ path, acl: aclToJson(acl), stat });
    },
  });
}

export function syncRouter(): Router {
  return pathRouter({
    POST: async (req, res, path) => {
      await scopeOf(res).nodes.sync(path);
      res.json({ path, synced: true });
    },
  });
}
