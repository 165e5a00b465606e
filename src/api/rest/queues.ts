/**
 * REST queue routes: /v1/queues/{path} — POST put, GET inspect (length, claimed, head);
 * /v1/queue-take/{path} — POST take (at_most_once, or claim with a lease; waits up to waitMs);
 * /v1/queue-ack/{path} and /v1/queue-release/{path} — POST with the lease and the item.
 */
import type { Router } from 'express';
import { z } from 'zod';
import { DELIVERY_MODES, type DeliveryMode } from '../../core/index.js';
import { decodeData, parseEncoding } from '../json.js';
import { claimOutcomeJson, deliveryJson, queueInspectionJson } from '../queue-json.js';
import { parseWith, pathRouter } from './nodes.js';
import { isRawBody, jsonBody, scopeOf, stringParam } from './params.js';
import { clientGone } from './request-signal.js';

const encoding = z.enum(['utf8', 'base64', 'utf-8']).optional();
const putBody = z.object({ data: z.string(), encoding }).strict();
const takeBody = z
  .object({ mode: z.enum(DELIVERY_MODES as [DeliveryMode, ...DeliveryMode[]]).optional(), leaseId: z.string().min(1).optional(), waitMs: z.number().int().optional(), encoding })
  .strict();
const claimBody = z.object({ leaseId: z.string().min(1), item: z.string().min(1) }).strict();

export function queuesRouter(): Router {
  return pathRouter({
    POST: async (req, res, path) => {
      // Raw bytes (application/octet-stream) or JSON {data, encoding}.
      const data = isRawBody(req) ? (req.body as Buffer) : (({ data: d, encoding: e }) => decodeData(d, e))(parseWith(putBody, jsonBody(req)));
      res.json(await scopeOf(res).queues.put(path, data));
    },
    GET: async (req, res, path) => {
      const enc = parseEncoding(stringParam(req, 'encoding'));
      res.json(queueInspectionJson(await scopeOf(res).queues.inspect(path), enc));
    },
  });
}

export function queueTakeRouter(): Router {
  return pathRouter({
    POST: async (req, res, path) => {
      const b = parseWith(takeBody, jsonBody(req));
      const enc = parseEncoding(b.encoding);
      const got = await scopeOf(res).queues.take(path, { mode: b.mode, leaseId: b.leaseId, waitMs: b.waitMs, signal: clientGone(res) });
      res.json(deliveryJson(got, enc));
    },
  });
}

/** `/v1/queue-ack/{path}` (the item is deleted) or `/v1/queue-release/{path}` (claimable again). */
export function queueClaimRouter(verb: 'ack' | 'release'): Router {
  return pathRouter({
    POST: async (req, res, path) => {
      const b = parseWith(claimBody, jsonBody(req));
      const queues = scopeOf(res).queues;
      const out = verb === 'ack' ? await queues.ack(path, b.leaseId, b.item) : await queues.release(path, b.leaseId, b.item);
      res.json(claimOutcomeJson(out, verb === 'ack' ? 'acked' : 'released'));
    },
  });
}
