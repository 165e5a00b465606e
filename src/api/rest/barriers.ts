/**
 * REST barrier routes: /v1/barriers/{path} — PUT set, DELETE remove, GET state (`?wait=` waits
 * until removed); /v1/double-barriers/{path} — POST enter, DELETE leave (both wait), GET inspect.
 */
import type { Router } from 'express';
import { z } from 'zod';
import { invalidArgument } from '../../core/index.js';
import { decodeData } from '../json.js';
import { parseWith, pathRouter } from './nodes.js';
import { intParam, jsonBody, requiredParam, scopeOf } from './params.js';
import { clientGone } from './request-signal.js';

const enterBody = z
  .object({ leaseId: z.string().min(1), members: z.number().int(), waitMs: z.number().int().optional(), data: z.string().optional(), encoding: z.string().optional() })
  .strict();

export function barriersRouter(): Router {
  return pathRouter({
    PUT: async (_req, res, path) => {
      res.json(await scopeOf(res).barriers.set(path));
    },
    DELETE: async (_req, res, path) => {
      res.json(await scopeOf(res).barriers.remove(path));
    },
    GET: async (req, res, path) => {
      const wait = intParam(req, 'wait');
      const barriers = scopeOf(res).barriers;
      res.json(wait === undefined ? await barriers.state(path) : await barriers.wait(path, { waitMs: wait, signal: clientGone(res) }));
    },
  });
}

export function doubleBarriersRouter(): Router {
  return pathRouter({
    POST: async (req, res, path) => {
      const b = parseWith(enterBody, jsonBody(req));
      const data = b.data === undefined ? undefined : decodeData(b.data, b.encoding);
      res.json(await scopeOf(res).barriers.enter(path, b.leaseId, b.members, { waitMs: b.waitMs, data, signal: clientGone(res) }));
    },
    DELETE: async (req, res, path) => {
      const raw = intParam(req, 'waitMs') ?? jsonBody(req).waitMs;
      if (raw !== undefined && typeof raw !== 'number') throw invalidArgument('waitMs', 'must be an integer');
      const out = await scopeOf(res).barriers.leave(path, requiredParam(req, 'leaseId'), requiredParam(req, 'node'), { waitMs: raw, signal: clientGone(res) });
      res.json(out);
    },
    GET: async (_req, res, path) => {
      res.json(await scopeOf(res).barriers.inspectDouble(path));
    },
  });
}
