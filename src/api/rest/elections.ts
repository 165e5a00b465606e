/** REST election routes: /v1/elections/{path} — POST campaign, GET leader (long-poll), PUT proclaim, DELETE resign. */
import type { Router } from 'express';
import { z } from 'zod';
import { invalidArgument, type Gateway } from '../../core/index.js';
import { decodeData } from '../json-data.js';
import { parseWith, pathRouter } from './nodes.js';
import { intParam, jsonBody, requiredParam, stringParam, leaseFor, tenantFor } from './params.js';
import { leaderStateJson, leadershipJson } from './recipes-json.js';
import { clientGone } from './request-signal.js';

const campaignBody = z
  .object({ leaseId: z.string().min(1), value: z.string().optional(), encoding: z.string().optional(), waitMs: z.number().int().optional() })
  .strict();
const proclaimBody = z.object({ leaseId: z.string().min(1), node: z.string().min(1), value: z.string(), encoding: z.string().optional() }).strict();

export function electionsRouter(gw: Gateway): Router {
  return pathRouter({
    POST: async (req, res, path) => {
      const b = parseWith(campaignBody, jsonBody(req));
      const lease = leaseFor(gw, res, 'election', path, b.leaseId);
      const value = b.value === undefined ? undefined : decodeData(b.value, b.encoding);
      res.json(leadershipJson(await gw.elections.campaign(lease, path, value, { waitMs: b.waitMs, signal: clientGone(res) })));
    },
    GET: async (req, res, path) => {
      const tenant = tenantFor(gw, res, 'lock.read', path);
      const wait = intParam(req, 'wait');
      const after = stringParam(req, 'after');
      if (after !== undefined && !/^\d{1,20}$/.test(after)) throw invalidArgument('after', 'must be an index (decimal zxid) from an earlier answer');
      if (wait === undefined) {
        if (after !== undefined) throw invalidArgument('after', 'only with wait');
        res.json(leaderStateJson(await gw.elections.leader(tenant, path)));
        return;
      }
      res.json(leaderStateJson(await gw.elections.waitForChange(tenant, path, after, wait, clientGone(res))));
    },
    PUT: async (req, res, path) => {
      const b = parseWith(proclaimBody, jsonBody(req));
      const lease = leaseFor(gw, res, 'election', path, b.leaseId);
      res.json(leadershipJson(await gw.elections.proclaim(lease, path, b.node, decodeData(b.value, b.encoding))));
    },
    DELETE: async (req, res, path) => {
      const lease = leaseFor(gw, res, 'election', path, requiredParam(req, 'leaseId'));
      const out = await gw.elections.resign(lease, path, requiredParam(req, 'node'));
      res.json({ resigned: out.left, reason: out.reason, node: out.node, leaseId: out.leaseId, leaseState: out.leaseState });
    },
  });
}
