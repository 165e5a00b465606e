/** REST znode routes: /v1/nodes/{path}, /v1/children/{path}, /v1/acl/{path}, /v1/sync/{path}. */
import { Router, type Request } from 'express';
import { z } from 'zod';
import { CREATE_MODES, invalidArgument, type AclEntry, type CreateMode, type Stat, type WatchEvent, type Znode } from '../../core/index.js';
import { decodeData, encodeData, parseEncoding, aclFromJson, aclToJson } from '../json.js';
import { boolParam, intParam, isRawBody, jsonBody, scopeOf, statHeaders, stringParam, wantsRaw } from './params.js';
import { pathRouter } from './path-router.js';
import { clientGone } from './request-signal.js';
import { longPollParams, pollState } from './watch.js';

/** Where a GET's answer came from: `cache` (the watch-fed read cache) or `zookeeper`. */
export const SOURCE_HEADER = 'X-Zkgate-Source';

/** Also used by the lock and election routes. */
export { pathRouter };

const createBody = z
  .object({
    data: z.string().optional(),
    encoding: z.string().optional(),
    mode: z.enum(CREATE_MODES as [CreateMode, ...CreateMode[]]).optional(),
    ttlMs: z.number().int().optional(),
    createParents: z.boolean().optional(),
    leaseId: z.string().optional(),
  })
  .strict();

const setBody = z.object({ data: z.string().optional(), encoding: z.string().optional(), version: z.number().int().optional() }).strict();

/** Parses with zod, turning the first issue into INVALID_ARGUMENT naming the field. */
export function parseWith<T>(schema: z.ZodType<T>, value: unknown): T {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  throw invalidArgument(issue?.path.join('.') || 'body', issue?.message ?? 'invalid');
}

function modeParam(req: Request): CreateMode | undefined {
  const m = stringParam(req, 'mode');
  if (m === undefined) return undefined;
  if (!(CREATE_MODES as readonly string[]).includes(m)) throw invalidArgument('mode', `must be one of ${CREATE_MODES.join(', ')}`);
  return m as CreateMode;
}

function toZnode(ev: WatchEvent): Znode {
  return { path: ev.path, data: ev.data ?? Buffer.alloc(0), stat: ev.stat as Stat };
}

export function nodesRouter(): Router {
  return pathRouter({
    GET: async (req, res, path) => {
      const encoding = parseEncoding(stringParam(req, 'encoding'));
      const poll = longPollParams(req);
      const nodes = scopeOf(res).nodes;
      const node = poll ? toZnode(await pollState(res, path, 'data', poll)) : await nodes.get(path, { sync: boolParam(req, 'sync') ?? false });
      res.set('X-Zkgate-Index', node.stat.mzxid);
      if (node.source) res.set(SOURCE_HEADER, node.source);
      if (wantsRaw(req)) {
        res.set(statHeaders(node.stat)).type('application/octet-stream').send(node.data);
        return;
      }
      res.json({ path: node.path, ...encodeData(node.data, encoding), stat: node.stat });
    },
    HEAD: async (req, res, path) => {
      const stat = await scopeOf(res).nodes.exists(path);
      if (!stat) {
        res.status(404).end();
        return;
      }
      res.set(statHeaders(stat)).status(200).end();
    },
    POST: async (req, res, path) => {
      let data: Buffer;
      let opts: { mode?: CreateMode; ttlMs?: number; createParents?: boolean; leaseId?: string };
      if (isRawBody(req)) {
        data = req.body as Buffer;
        opts = { mode: modeParam(req), ttlMs: intParam(req, 'ttlMs'), createParents: boolParam(req, 'createParents'), leaseId: stringParam(req, 'leaseId') };
      } else {
        const b = parseWith(createBody, jsonBody(req));
        data = decodeData(b.data, b.encoding);
        opts = { mode: b.mode, ttlMs: b.ttlMs, createParents: b.createParents, leaseId: b.leaseId };
      }
      const created = await scopeOf(res).nodes.create(path, data, { ...opts, signal: clientGone(res) });
      res.status(201).location(`/v1/nodes${created.split('/').map(encodeURIComponent).join('/')}`).json({ path: created });
    },
    PUT: async (req, res, path) => {
      let data: Buffer;
      let version: number | undefined;
      if (isRawBody(req)) {
        data = req.body as Buffer;
        version = intParam(req, 'version');
      } else {
        const b = parseWith(setBody, jsonBody(req));
        data = decodeData(b.data, b.encoding);
        version = b.version ?? intParam(req, 'version');
      }
      const stat = await scopeOf(res).nodes.set(path, data, { version });
      res.json({ path, stat });
    },
    DELETE: async (req, res, path) => {
      const recursive = boolParam(req, 'recursive');
      await scopeOf(res).nodes.delete(path, { version: intParam(req, 'version'), recursive });
      res.status(204).end();
    },
  });
}

export function childrenRouter(): Router {
  return pathRouter({
    GET: async (req, res, path) => {
      const opts = { withStats: boolParam(req, 'stat') ?? false, limit: intParam(req, 'limit'), cursor: stringParam(req, 'cursor') };
      const poll = longPollParams(req);
      const nodes = scopeOf(res).nodes;
      const state = poll ? await pollState(res, path, 'children', poll) : undefined;
      // After a wait the hub's names are paged; child stats (the hub keeps none) are read for the page.
      const listing = state ? await nodes.pageChildren(path, state.children ?? [], state.stat as Stat, opts) : await nodes.children(path, opts);
      res.set('X-Zkgate-Index', listing.stat.pzxid);
      res.json(listing);
    },
  });
}

/** `GET /v1/tree/{path}`: the subtree breadth-first (`ls -R`), bounded by `limit` (cut, marked truncated). */
export function treeRouter(): Router {
  return pathRouter({
    GET: async (req, res, path) => {
      const opts = { limit: intParam(req, 'limit'), depth: intParam(req, 'depth'), withStats: boolParam(req, 'stat') ?? false };
      res.json(await scopeOf(res).nodes.tree(path, opts));
    },
  });
}

const aclBody = z
  .object({
    acl: z.array(z.object({ scheme: z.string().min(1), id: z.string(), perms: z.string() }).strict()).min(1),
    version: z.number().int().optional(),
  })
  .strict();

export function aclRouter(): Router {
  return pathRouter({
    GET: async (req, res, path) => {
      const { acl, stat } = await scopeOf(res).nodes.getAcl(path);
      res.json({ path, acl: aclToJson(acl), stat });
    },
    PUT: async (req, res, path) => {
      const b = parseWith(aclBody, jsonBody(req));
      const acl: AclEntry[] = aclFromJson(b.acl);
      const stat = await scopeOf(res).nodes.setAcl(path, acl, { version: b.version ?? intParam(req, 'version') });
      res.json({ path, acl: aclToJson(acl), stat });
    },
  });
}

export function syncRouter(): Router {
  return pathRouter({
    POST: async (req, res, path) => {
      await scopeOf(res).nodes.sync(path);
      res.json({ path, synced: true });
    },
  });
}
