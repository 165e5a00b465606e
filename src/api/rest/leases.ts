/** REST lease routes: grant, inspect, keepalive, revoke. */
import { Router } from 'express';
import { z } from 'zod';
import type { Gateway, Lease } from '../../core/index.js';
import { jsonBody, tenantOf } from './params.js';
import { parseWith } from './nodes.js';

const grantBody = z.object({ ttlMs: z.number().int() }).strict();

/** The JSON form of a lease. */
export function leaseJson(lease: Lease): ReturnType<Lease['info']> {
  return lease.info();
}

export function leasesRouter(gw: Gateway): Router {
  const r = Router();
  r.post('/', (req, res) => {
    const b = parseWith(grantBody, jsonBody(req));
    const lease = gw.leases.grant(tenantOf(gw, req), b.ttlMs);
    res.status(201).location(`/v1/leases/${lease.id}`).json(leaseJson(lease));
  });
  r.get('/:id', (req, res) => {
    res.json(leaseJson(gw.leases.lookup(tenantOf(gw, req), req.params.id)));
  });
  r.post('/:id/keepalive', (req, res) => {
    res.json(leaseJson(gw.leases.keepAlive(tenantOf(gw, req), req.params.id)));
  });
  r.delete('/:id', async (req, res) => {
    res.json(leaseJson(await gw.leases.revoke(tenantOf(gw, req), req.params.id)));
  });
  return r;
}
