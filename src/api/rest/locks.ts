/**
 * REST lock routes: /v1/locks/{path} — POST acquire, DELETE release, GET inspect. Acquire and
 * release are written once for both HTTP paths (express here, the `node:http` fast path in
 * fast-path.ts), as node-routes.ts does for the node routes.
 */
import type { Router } from 'express';
import { z } from 'zod';
import { LOCK_FLAVOURS, type LockFlavour } from '../../core/index.js';
import { decodeData, lockInspectionJson, lockListingJson } from '../json.js';
import type { NodeAnswer, NodeRequest } from './node-routes.js';
import { parseWith, pathRouter, route } from './nodes.js';
import { intParam, jsonObject, requiredValue, scopeOf, stringParam } from './params.js';

const flavour = z.enum(LOCK_FLAVOURS as [LockFlavour, ...LockFlavour[]]);
const acquireBody = z
  .object({
    leaseId: z.string().min(1),
    waitMs: z.number().int().optional(),
    flavour: flavour.optional(),
    data: z.string().optional(),
    encoding: z.string().optional(),
  })
  .strict();

/** `POST /v1/locks/{path}`: acquire for a lease, waiting up to `waitMs`; a client that goes away gives up the wait. */
export async function acquireLock(r: NodeRequest): Promise<NodeAnswer> {
  const b = parseWith(acquireBody, jsonObject(r.body));
  const data = b.data === undefined ? undefined : decodeData(b.data, b.encoding);
  return { status: 200, json: await r.scope.locks.acquire(r.path, b.leaseId, { flavour: b.flavour, waitMs: b.waitMs, data, signal: r.lazySignal() }) };
}

/** `DELETE /v1/locks/{path}?leaseId=&node=` (or the two in a JSON body): release, fenced by the node. */
export async function releaseLock(r: NodeRequest): Promise<NodeAnswer> {
  return { status: 200, json: await r.scope.locks.release(r.path, requiredValue('leaseId', r.query, r.body), requiredValue('node', r.query, r.body)) };
}

export function locksRouter(): Router {
  return pathRouter({
    POST: route(acquireLock),
    DELETE: route(releaseLock),
    GET: async (req, res, path) => {
      const f = parseWith(flavour.optional(), stringParam(req, 'flavour'));
      const lock = await scopeOf(res).locks.inspect(path, f);
      res.json(lockInspectionJson(lock));
    },
  });
}

/** `GET /v1/recipes/locks/{path}`: every lock at or under the path, with holder and queue. */
export function lockListRouter(): Router {
  return pathRouter({
    GET: async (req, res, path) => {
      res.json(lockListingJson(await scopeOf(res).locks.list(path, { limit: intParam(req, 'limit') })));
    },
  });
}
