/**
 * REST service registry routes (Curator x-discovery layout, `?base=` default `/services`):
 *   GET    /v1/services                                  service names
 *   GET    /v1/services/{service}                        instances (long-poll with ?wait=&index=)
 *   POST   /v1/services/{service}/instances              register (owned by a lease)
 *   GET    /v1/services/{service}/instances/{id}         one instance
 *   PUT    /v1/services/{service}/instances/{id}         update
 *   DELETE /v1/services/{service}/instances/{id}         deregister
 *   GET    /v1/services/{service}/pick                   one instance by strategy
 *   GET    /v1/services/{service}/watch                  Server-Sent Events of the instance set
 */
import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import { invalidArgument, type Gateway } from '../../core/index.js';
import { problemOf } from '../json.js';
import { SOURCE_HEADER, parseWith } from './nodes.js';
import { boolParam, intParam, jsonBody, requiredParam, scopeOf, stringParam } from './params.js';
import { methodNotAllowed } from './path-router.js';
import { clientGone } from './request-signal.js';
import { drained, sseFrame } from './watch.js';

/** Fields a provider sets; their values are checked by core (which names the bad one). */
const any = z.unknown().optional();
const fields = { address: any, port: any, sslPort: any, payload: any, uriSpec: any, enabled: any };
const registerBody = z.object({ leaseId: z.string().min(1), id: z.string().optional(), replace: z.boolean().optional(), serviceType: z.literal('DYNAMIC').optional(), ...fields }).strict();
const updateBody = z.object({ leaseId: z.string().min(1), ...fields }).strict();

type Fields = Record<string, unknown>;
const fieldsOf = (b: Fields): Fields => Object.fromEntries(Object.keys(fields).filter((k) => b[k] !== undefined).map((k) => [k, b[k]]));
const base = (req: Request): string | undefined => stringParam(req, 'base');
const param = (req: Request, name: string): string => String(req.params[name]);
/** `?sync=true`: ZooKeeper's sync, then a read; `?cache=false`: a read. Neither answers from memory. */
const listOptions = (req: Request): { sync: boolean; cache: boolean } => ({ sync: boolParam(req, 'sync') ?? false, cache: boolParam(req, 'cache') ?? true });

/** Answers a listing or pick: where it came from in `X-Zkgate-Source` (as node reads), the rest as JSON. */
function sourced<T extends { source: string }>(res: Response, answer: T): Omit<T, 'source'> {
  const { source, ...body } = answer;
  res.set(SOURCE_HEADER, source);
  return body;
}

/** `?wait=&index=` of the instance list; undefined without `wait`. */
function poll(req: Request): { waitMs: number; index?: string } | undefined {
  const waitMs = intParam(req, 'wait');
  const index = stringParam(req, 'index');
  if (index !== undefined && !/^\d{1,20}$/.test(index)) throw invalidArgument('index', 'must be an index (decimal zxid) from an earlier answer');
  if (waitMs === undefined) {
    if (index !== undefined) throw invalidArgument('index', 'only with wait');
    return undefined;
  }
  return { waitMs, index };
}

/** Streams the instance set as Server-Sent Events (`event: instances`, `id:` the index). */
async function watchSse(gw: Gateway, req: Request, res: Response): Promise<void> {
  const conn = scopeOf(res).connect();
  res.on('close', () => conn.close());
  const ac = new AbortController();
  res.on('close', () => ac.abort());
  const sets = conn.instances(base(req), param(req, 'service'), { signal: ac.signal });
  res.status(200).set({ 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', 'X-Accel-Buffering': 'no' });
  res.flushHeaders();
  const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), gw.config.watch.heartbeatMs);
  try {
    // The observation only reads on demand: a slow client gets the latest set, never a backlog.
    for await (const set of sets) {
      if (!res.write(sseFrame('instances', set.index, set))) await drained(res);
      if (res.destroyed) break; // the reader went away: let go of the observation and the heartbeat
    }
  } catch (err) {
    res.write(sseFrame('error', undefined, problemOf(err)));
  } finally {
    clearInterval(heartbeat);
    conn.close();
    res.end();
  }
}

export function registryRouter(gw: Gateway): Router {
  const r = Router();
  r.get('/', async (req, res) => {
    res.json(await scopeOf(res).registry.services(base(req)));
  });
  r.all('/', methodNotAllowed(['GET']));
  r.get('/:service', async (req, res) => {
    const reg = scopeOf(res).registry;
    const p = poll(req);
    const set = p ? await reg.waitForChange(base(req), param(req, 'service'), p.index, p.waitMs, clientGone(res)) : sourced(res, await reg.instances(base(req), param(req, 'service'), listOptions(req)));
    res.set('X-Zkgate-Index', set.index).json(set);
  });
  r.all('/:service', methodNotAllowed(['GET']));
  r.post('/:service/instances', async (req, res) => {
    const b = parseWith(registerBody, jsonBody(req));
    const out = await scopeOf(res).registry.register(base(req), param(req, 'service'), { leaseId: b.leaseId, id: b.id, replace: b.replace, fields: fieldsOf(b), signal: clientGone(res) });
    res.status(201).json(out);
  });
  r.all('/:service/instances', methodNotAllowed(['POST']));
  r.get('/:service/instances/:id', async (req, res) => {
    res.json(await scopeOf(res).registry.instance(base(req), param(req, 'service'), param(req, 'id')));
  });
  r.put('/:service/instances/:id', async (req, res) => {
    const b = parseWith(updateBody, jsonBody(req));
    res.json(await scopeOf(res).registry.update(base(req), param(req, 'service'), param(req, 'id'), b.leaseId, fieldsOf(b)));
  });
  r.delete('/:service/instances/:id', async (req, res) => {
    res.json(await scopeOf(res).registry.deregister(base(req), param(req, 'service'), param(req, 'id'), requiredParam(req, 'leaseId')));
  });
  r.all('/:service/instances/:id', methodNotAllowed(['GET', 'PUT', 'DELETE']));
  r.get('/:service/pick', async (req, res) => {
    res.json(sourced(res, await scopeOf(res).registry.pick(base(req), param(req, 'service'), stringParam(req, 'strategy'), stringParam(req, 'caller'), listOptions(req))));
  });
  r.all('/:service/pick', methodNotAllowed(['GET']));
  r.get('/:service/watch', (req, res) => watchSse(gw, req, res));
  r.all('/:service/watch', methodNotAllowed(['GET']));
  return r;
}
