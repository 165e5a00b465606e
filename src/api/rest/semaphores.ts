/** REST semaphore routes: /v1/semaphores/{path} — POST acquire, DELETE release, GET inspect. */
import type { Router } from 'express';
import { z } from 'zod';
import { decodeData, semaphoreInspectionJson } from '../json.js';
import { parseWith, pathRouter } from './nodes.js';
import { intParam, jsonBody, requiredParam, scopeOf, stringParam } from './params.js';
import { clientGone } from './request-signal.js';

const acquireBody = z
  .object({
    leaseId: z.string().min(1),
    permits: z.number().int().optional(),
    maxPermits: z.number().int().optional(),
    countPath: z.string().optional(),
    waitMs: z.number().int().optional(),
    data: z.string().optional(),
    encoding: z.string().optional(),
  })
  .strict();

export function semaphoresRouter(): Router {
  return pathRouter({
    POST: async (req, res, path) => {
      const { data, encoding, leaseId, ...b } = parseWith(acquireBody, jsonBody(req));
      const grant = await scopeOf(res).semaphores.acquire(path, leaseId, { ...b, data: data === undefined ? undefined : decodeData(data, encoding), signal: clientGone(res) });
      res.json(grant);
    },
    DELETE: async (req, res, path) => {
      res.json(await scopeOf(res).semaphores.release(path, requiredParam(req, 'leaseId'), stringParam(req, 'node') || undefined));
    },
    GET: async (req, res, path) => {
      const s = await scopeOf(res).semaphores.inspect(path, { maxPermits: intParam(req, 'maxPermits'), countPath: stringParam(req, 'countPath') });
      res.json(semaphoreInspectionJson(s));
    },
  });
}
