/** REST lease routes: grant, inspect, keepalive, revoke. */
import { Router, type Response } from 'express';
import { z } from 'zod';
import type { Gateway, Lease } from '../../core/index.js';
import { jsonBody, principalOf } from './params.js';
import { parseWith } from './nodes.js';
import { methodNotAllowed } from './path-router.js';

const grantBody = z.object({ ttlMs: z.number().int() }).strict();

/** The JSON form of a lease. */
export function leaseJson(lease: Lease): ReturnType<Lease['info']> {
  return lease.info();
}

export function leasesRouter(gw: Gateway): Router {
  const r = Router();
  /** The caller's tenant, once the caller may use the lease `id` (its own, or any with lease admin). */
  const owned = (res: Response, id: string, action: 'lease.read' | 'lease.write') => gw.leaseAs(principalOf(res), id, action).tenant;
  r.post('/', (req, res) => {
    const p = principalOf(res);
    gw.auth.authorize(p, 'lease.write');
    const b = parseWith(grantBody, jsonBody(req));
    const lease = gw.leases.grant(p.tenant, b.ttlMs, p.keyId);
    res.status(201).location(`/v1/leases/${lease.id}`).json(leaseJson(lease));
  });
  r.get('/:id', (req, res) => {
    res.json(leaseJson(gw.leaseAs(principalOf(res), req.params.id, 'lease.read')));
  });
  r.post('/:id/keepalive', (req, res) => {
    res.json(leaseJson(gw.leases.keepAlive(owned(res, req.params.id, 'lease.write'), req.params.id)));
  });
  r.delete('/:id', async (req, res) => {
    res.json(leaseJson(await gw.leases.revoke(owned(res, req.params.id, 'lease.write'), req.params.id)));
  });
  r.all('/', methodNotAllowed(['POST']));
  r.all('/:id', methodNotAllowed(['GET', 'DELETE']));
  r.all('/:id/keepalive', methodNotAllowed(['POST']));
  return r;
}
