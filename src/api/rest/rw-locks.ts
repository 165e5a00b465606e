/** REST read-write lock routes: /v1/rwlocks/{path} — POST acquire, DELETE release, GET inspect. */
import type { Router } from 'express';
import { z } from 'zod';
import { RW_MODES, type RwMode } from '../../core/index.js';
import { decodeData, rwInspectionJson } from '../json.js';
import { parseWith, pathRouter } from './nodes.js';
import { jsonBody, requiredParam, scopeOf } from './params.js';
import { clientGone } from './request-signal.js';

const acquireBody = z
  .object({
    leaseId: z.string().min(1),
    mode: z.enum(RW_MODES as [RwMode, ...RwMode[]]),
    waitMs: z.number().int().optional(),
    data: z.string().optional(),
    encoding: z.string().optional(),
  })
  .strict();

export function rwLocksRouter(): Router {
  return pathRouter({
    POST: async (req, res, path) => {
      const b = parseWith(acquireBody, jsonBody(req));
      const data = b.data === undefined ? undefined : decodeData(b.data, b.encoding);
      res.json(await scopeOf(res).rwLocks.acquire(path, b.leaseId, { mode: b.mode, waitMs: b.waitMs, data, signal: clientGone(res) }));
    },
    DELETE: async (req, res, path) => {
      res.json(await scopeOf(res).rwLocks.release(path, requiredParam(req, 'leaseId'), requiredParam(req, 'node')));
    },
    GET: async (_req, res, path) => {
      res.json(rwInspectionJson(await scopeOf(res).rwLocks.inspect(path)));
    },
  });
}
