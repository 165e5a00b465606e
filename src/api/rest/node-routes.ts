/**
 * The REST translation of the node routes (`/v1/nodes/{path}`: get, long-poll, head, create,
 * set, delete) and of `GET /v1/children/{path}`, written once for both HTTP paths: express
 * (nodes.ts) and the plain `node:http` fast path (fast-path.ts) hand over the request's parts,
 * these parse and validate them, make the one core call, set the response headers on `res`
 * and return the answer's status and body; each path writes that body its own way. Errors are
 * thrown, as everywhere, and become problem bodies in the transport.
 */
import type { ServerResponse } from 'node:http';
import { z } from 'zod';
import { CREATE_MODES, invalidArgument, type CreateMode, type LazySignal, type Scope, type Stat, type WatchEvent, type Znode } from '../../core/index.js';
import { decodeData, encodeData, parseEncoding } from '../json.js';
import { boolValue, intValue, jsonObject, statHeaders, type Query } from './params.js';
import { longPollParams, pollState } from './watch.js';

/** Where a GET's answer came from: `cache` (the watch-fed read cache) or `zookeeper`. */
export const SOURCE_HEADER = 'X-Zkgate-Source';

/** One request to a node route, as either HTTP path parsed it. */
export interface NodeRequest {
  readonly scope: Scope;
  /** The znode path from the URL (znode-path.ts). */
  readonly path: string;
  readonly query: Query;
  /** The parsed JSON body, or raw bytes when `rawBody`; undefined when there is none. */
  readonly body: unknown;
  readonly rawBody: boolean;
  /** The client asked for `application/octet-stream` rather than JSON. */
  readonly wantsRaw: boolean;
  /** Headers are set on it as the answer takes shape (they stay on an error answer too). */
  readonly res: ServerResponse;
  /** Aborted when the client goes away or a shutdown's drain time ends (made on first use). */
  readonly signal: () => AbortSignal;
  /** The same, its `AbortSignal` made only if something listens to it (`lazyExchangeSignal`). */
  readonly lazySignal: () => LazySignal;
}

/** The answer's status and body: JSON, raw bytes (`application/octet-stream`), or none. */
export type NodeAnswer = { readonly status: number; readonly json: unknown } | { readonly status: number; readonly raw: Buffer } | { readonly status: number };

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

function modeParam(query: Query): CreateMode | undefined {
  const m = query('mode');
  if (m === undefined) return undefined;
  if (!(CREATE_MODES as readonly string[]).includes(m)) throw invalidArgument('mode', `must be one of ${CREATE_MODES.join(', ')}`);
  return m as CreateMode;
}

function toZnode(ev: WatchEvent): Znode {
  return { path: ev.path, data: ev.data ?? Buffer.alloc(0), stat: ev.stat as Stat };
}

function setHeaders(res: ServerResponse, headers: Record<string, string>): void {
  for (const k in headers) res.setHeader(k, headers[k] as string);
}

/** `GET /v1/nodes/{path}` (`?encoding=`, `?sync=`, `?cache=`, the long-poll's `?wait=&index=`). */
export async function getNode(r: NodeRequest): Promise<NodeAnswer> {
  const encoding = parseEncoding(r.query('encoding'));
  const poll = longPollParams(r.query);
  const node = poll
    ? toZnode(await pollState(r.scope, r.res, r.signal(), r.path, 'data', poll))
    : await r.scope.nodes.get(r.path, { sync: boolValue('sync', r.query('sync')) ?? false, cache: boolValue('cache', r.query('cache')) ?? true });
  r.res.setHeader('X-Zkgate-Index', node.stat.mzxid);
  if (node.source) r.res.setHeader(SOURCE_HEADER, node.source);
  if (r.wantsRaw) {
    setHeaders(r.res, statHeaders(node.stat));
    return { status: 200, raw: node.data };
  }
  return { status: 200, json: { path: node.path, ...encodeData(node.data, encoding), stat: node.stat } };
}

/** `HEAD /v1/nodes/{path}`: the stat as headers, 404 without a body when the node does not exist. */
export async function headNode(r: NodeRequest): Promise<NodeAnswer> {
  const stat = await r.scope.nodes.exists(r.path);
  if (!stat) return { status: 404 };
  setHeaders(r.res, statHeaders(stat));
  return { status: 200 };
}

/** `POST /v1/nodes/{path}`: JSON body or raw bytes with the options in the query. */
export async function createNode(r: NodeRequest): Promise<NodeAnswer> {
  let data: Buffer;
  let opts: { mode?: CreateMode; ttlMs?: number; createParents?: boolean; leaseId?: string };
  if (r.rawBody) {
    data = r.body as Buffer;
    opts = { mode: modeParam(r.query), ttlMs: intValue('ttlMs', r.query('ttlMs')), createParents: boolValue('createParents', r.query('createParents')), leaseId: r.query('leaseId') };
  } else {
    const b = parseWith(createBody, jsonObject(r.body));
    data = decodeData(b.data, b.encoding);
    opts = { mode: b.mode, ttlMs: b.ttlMs, createParents: b.createParents, leaseId: b.leaseId };
  }
  const created = await r.scope.nodes.create(r.path, data, { ...opts, signal: r.signal() });
  r.res.setHeader('Location', `/v1/nodes${created.split('/').map(encodeURIComponent).join('/')}`);
  return { status: 201, json: { path: created } };
}

/** `PUT /v1/nodes/{path}`: compare-and-set with `version` (body field, else query). */
export async function setNode(r: NodeRequest): Promise<NodeAnswer> {
  let data: Buffer;
  let version: number | undefined;
  if (r.rawBody) {
    data = r.body as Buffer;
    version = intValue('version', r.query('version'));
  } else {
    const b = parseWith(setBody, jsonObject(r.body));
    data = decodeData(b.data, b.encoding);
    version = b.version ?? intValue('version', r.query('version'));
  }
  const stat = await r.scope.nodes.set(r.path, data, { version });
  return { status: 200, json: { path: r.path, stat } };
}

/** `DELETE /v1/nodes/{path}` (`?version=`, `?recursive=`). */
export async function deleteNode(r: NodeRequest): Promise<NodeAnswer> {
  const recursive = boolValue('recursive', r.query('recursive'));
  await r.scope.nodes.delete(r.path, { version: intValue('version', r.query('version')), recursive });
  return { status: 204 };
}

/** `GET /v1/children/{path}` (`?stat=&limit=&cursor=`, the long-poll's `?wait=&index=`). */
export async function listChildren(r: NodeRequest): Promise<NodeAnswer> {
  const opts = { withStats: boolValue('stat', r.query('stat')) ?? false, limit: intValue('limit', r.query('limit')), cursor: r.query('cursor') };
  const poll = longPollParams(r.query);
  const nodes = r.scope.nodes;
  const state = poll ? await pollState(r.scope, r.res, r.signal(), r.path, 'children', poll) : undefined;
  // After a wait the hub's names are paged; child stats (the hub keeps none) are read for the page.
  const listing = state ? await nodes.pageChildren(r.path, state.children ?? [], state.stat as Stat, opts) : await nodes.children(r.path, opts);
  r.res.setHeader('X-Zkgate-Index', listing.stat.pzxid);
  return { status: 200, json: listing };
}
