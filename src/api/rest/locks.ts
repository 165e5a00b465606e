/** REST lock routes: /v1/locks/{path} — POST acquire, DELETE release, GET inspect. */
import type { Router } from 'express';
import { z } from 'zod';
import { LOCK_FLAVOURS, type Gateway, type LockFlavour } from '../../core/index.js';
import { decodeData } from '../json-data.js';
import { parseWith, pathRouter } from './nodes.js';
import { jsonBody, requiredParam, stringParam, leaseFor, tenantFor } from './params.js';
import { contenderJson } from './recipes-json.js';
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

export function locksRouter(gw: Gateway): Router {
  return pathRouter({
    POST: async (req, res, path) => {
      const b = parseWith(acquireBody, jsonBody(req));
      const data = b.data === undefined ? undefined : decodeData(b.data, b.encoding);
      const lease = leaseFor(gw, res, 'lock', path, b.leaseId);
      const hold = await gw.locks.acquire(lease, path, { flavour: b.flavour, waitMs: b.waitMs, data, signal: clientGone(res) });
      res.json(hold);
    },
    DELETE: async (req, res, path) => {
      const lease = leaseFor(gw, res, 'lock', path, requiredParam(req, 'leaseId'));
      res.json(await gw.locks.release(lease, path, requiredParam(req, 'node')));
    },
    GET: async (req, res, path) => {
      const f = parseWith(flavour.optional(), stringParam(req, 'flavour'));
      const lock = await gw.locks.inspect(tenantFor(gw, res, 'lock.read', path), path, f);
      res.json({ lockPath: lock.lockPath, flavour: lock.flavour, holder: lock.holder && contenderJson(lock.holder), queue: lock.queue.map(contenderJson) });
    },
  });
}
