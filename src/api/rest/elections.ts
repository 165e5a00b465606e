/** REST election routes: /v1/elections/{path} — POST campaign, GET leader (long-poll), PUT proclaim, DELETE resign. */
import type { Router } from 'express';
import { z } from 'zod';
import { invalidArgument } from '../../core/index.js';
import { decodeData, electionListingJson, leaderStateJson, leadershipJson } from '../json.js';
import { parseWith, pathRouter } from './nodes.js';
import { intParam, jsonBody, requiredParam, scopeOf, stringParam } from './params.js';
import { clientGone } from './request-signal.js';

const campaignBody = z
  .object({ leaseId: z.string().min(1), value: z.string().optional(), encoding: z.string().optional(), waitMs: z.number().int().optional() })
  .strict();
const proclaimBody = z.object({ leaseId: z.string().min(1), node: z.string().min(1), value: z.string(), encoding: z.string().optional() }).strict();

export function electionsRouter(): Router {
  return pathRouter({
    POST: async (req, res, path) => {
      const b = parseWith(campaignBody, jsonBody(req));
      const value = b.value === undefined ? undefined : decodeData(b.value, b.encoding);
      res.json(leadershipJson(await scopeOf(res).elections.campaign(path, b.leaseId, value, { waitMs: b.waitMs, signal: clientGone(res) })));
    },
    GET: async (req, res, path) => {
      const elections = scopeOf(res).elections;
      const wait = intParam(req, 'wait');
      const after = stringParam(req, 'after');
      if (after !== undefined && !/^\d{1,20}$/.test(after)) throw invalidArgument('after', 'must be an index (decimal zxid) from an earlier answer');
      if (wait === undefined) {
        if (after !== undefined) throw invalidArgument('after', 'only with wait');
        res.json(leaderStateJson(await elections.leader(path)));
        return;
      }
      res.json(leaderStateJson(await elections.waitForChange(path, after, wait, clientGone(res))));
    },
    PUT: async (req, res, path) => {
      const b = parseWith(proclaimBody, jsonBody(req));
      res.json(leadershipJson(await scopeOf(res).elections.proclaim(path, b.leaseId, b.node, decodeData(b.value, b.encoding))));
    },
    DELETE: async (req, res, path) => {
      const out = await scopeOf(res).elections.resign(path, requiredParam(req, 'leaseId'), requiredParam(req, 'node'));
      res.json({ resigned: out.left, reason: out.reason, node: out.node, leaseId: out.leaseId, leaseState: out.leaseState, trustMs: out.trustMs });
    },
  });
}

/** `GET /v1/recipes/elections/{path}`: every election at or under the path, with leader and candidates. */
export function electionListRouter(): Router {
  return pathRouter({
    GET: async (req, res, path) => {
      res.json(electionListingJson(await scopeOf(res).elections.list(path, { limit: intParam(req, 'limit') })));
    },
  });
}
