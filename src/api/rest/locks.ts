/** REST lock routes: /v1/locks/{path} — POST acquire, DELETE release, GET inspect. */
import type { Router } from 'express';
import { z } from 'zod';
import { LOCK_FLAVOURS, type LockFlavour } from '../../core/index.js';
import { decodeData, lockInspectionJson, lockListingJson } from '../json.js';
import { parseWith, pathRouter } from './nodes.js';
import { intParam, jsonBody, requiredParam, scopeOf, stringParam } from './params.js';
import { clientGone } from './request-signal.js';

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

export function locksRouter(): Router {
  return pathRouter({
    POST: async (req, res, path) => {
      const b = parseWith(acquireBody, jsonBody(req));
      const data = b.data === undefined ? undefined : decodeData(b.data, b.encoding);
      const hold = await scopeOf(res).locks.acquire(path, b.leaseId, { flavour: b.flavour, waitMs: b.waitMs, data, signal: clientGone(res) });
      res.json(hold);
    },
    DELETE: async (req, res, path) => {
      res.json(await scopeOf(res).locks.release(path, requiredParam(req, 'leaseId'), requiredParam(req, 'node')));
    },
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
