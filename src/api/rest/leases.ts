/** REST lease routes: grant, list, inspect, keepalive, revoke. */
import { Router } from 'express';
import { z } from 'zod';
import { leaseJson, leaseListingJson } from '../json.js';
import { boolParam, jsonBody, scopeOf } from './params.js';
import { parseWith } from './nodes.js';
import { methodNotAllowed } from './path-router.js';

const grantBody = z.object({ ttlMs: z.number().int() }).strict();

export function leasesRouter(): Router {
  const r = Router();
  r.post('/', async (req, res) => {
    const b = parseWith(grantBody, jsonBody(req));
    const lease = await scopeOf(res).leases.grant(b.ttlMs);
    res.status(201).location(`/v1/leases/${lease.id}`).json(leaseJson(lease));
  });
  r.get('/', async (req, res) => {
    res.json(leaseListingJson(await scopeOf(res).leases.listing({ includeEnded: boolParam(req, 'ended') ?? false })));
  });
  r.get('/:id', async (req, res) => {
    res.json(leaseJson(await scopeOf(res).leases.get(req.params.id)));
  });
  r.post('/:id/keepalive', async (req, res) => {
    res.json(leaseJson(await scopeOf(res).leases.keepAlive(req.params.id)));
  });
  r.delete('/:id', async (req, res) => {
    res.json(leaseJson(await scopeOf(res).leases.revoke(req.params.id)));
  });
  r.all('/', methodNotAllowed(['GET', 'POST']));
  r.all('/:id', methodNotAllowed(['GET', 'DELETE']));
  r.all('/:id/keepalive', methodNotAllowed(['POST']));
  return r;
}
