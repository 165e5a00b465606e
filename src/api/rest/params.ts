/** Query-string and header parsing shared by the REST routes. */
import type { Request, RequestHandler, Response } from 'express';
import { invalidArgument, type Gateway, type Scope, type Stat } from '../../core/index.js';

/**
 * Authenticates every request it sees (before its body is read) from `Authorization` and
 * `Zkgate-Tenant`; what the caller may do is then `scopeOf(res)`.
 */
export function authenticate(gw: Gateway): RequestHandler {
  return (req, res, next) => {
    res.locals.scope = gw.as(
      gw.authenticate({
        authorization: req.get('authorization') || undefined,
        tenant: req.get('zkgate-tenant') || undefined,
      }),
    );
    next();
  };
}

/** The caller established by `authenticate`: every core call of a route goes through it. */
export function scopeOf(res: Response): Scope {
  return res.locals.scope as Scope;
}

/**
 * A query parameter given at most once, from a parsed query string (`node:querystring`'s shape,
 * express's "simple" parser): both HTTP paths read parameters through it. @throws INVALID_ARGUMENT when repeated
 */
export type Query = (name: string) => string | undefined;

/** The `Query` of a parsed query-string object. */
export function queryOf(parsed: Record<string, unknown>): Query {
  return (name) => {
    const v = parsed[name];
    if (v === undefined) return undefined;
    if (typeof v !== 'string') throw invalidArgument(name, 'must be given once');
    return v;
  };
}

/** `true`/`1`/empty or `false`/`0`. @throws INVALID_ARGUMENT */
export function boolValue(name: string, v: string | undefined): boolean | undefined {
  if (v === undefined) return undefined;
  if (v === 'true' || v === '1' || v === '') return true;
  if (v === 'false' || v === '0') return false;
  throw invalidArgument(name, 'must be true or false');
}

/** A decimal integer. @throws INVALID_ARGUMENT */
export function intValue(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!/^-?\d{1,16}$/.test(v)) throw invalidArgument(name, 'must be an integer');
  return Number(v);
}

function one(req: Request, name: string): string | undefined {
  return queryOf(req.query as Record<string, unknown>)(name);
}

export function boolParam(req: Request, name: string): boolean | undefined {
  return boolValue(name, one(req, name));
}

export function intParam(req: Request, name: string): number | undefined {
  return intValue(name, one(req, name));
}

export function stringParam(req: Request, name: string): string | undefined {
  return one(req, name);
}

/** True when the client asked for raw bytes rather than JSON. */
export function wantsRaw(req: Request): boolean {
  return req.accepts(['application/json', 'application/octet-stream']) === 'application/octet-stream' &&
    !String(req.get('accept') ?? '').includes('application/json');
}

/** True when the request body is raw bytes. */
export function isRawBody(req: Request): boolean {
  return req.is('application/octet-stream') === 'application/octet-stream';
}

/** The stat as response headers, for raw responses and HEAD. */
export function statHeaders(stat: Stat): Record<string, string> {
  return {
    'X-Zk-Czxid': stat.czxid,
    'X-Zk-Mzxid': stat.mzxid,
    'X-Zk-Pzxid': stat.pzxid,
    'X-Zk-Version': String(stat.version),
    'X-Zk-Cversion': String(stat.cversion),
    'X-Zk-Aversion': String(stat.aversion),
    'X-Zk-Ephemeral-Owner': stat.ephemeralOwner,
    'X-Zk-Data-Length': String(stat.dataLength),
    'X-Zk-Num-Children': String(stat.numChildren),
    'X-Zk-Ctime-Ms': String(stat.ctimeMs),
    'X-Zk-Mtime-Ms': String(stat.mtimeMs),
  };
}

/** The JSON object body, or an empty object when the body is absent. */
export function jsonBody(req: Request): Record<string, unknown> {
  return jsonObject(req.body);
}

/** A parsed body as a JSON object; an absent or empty body is an empty object. @throws INVALID_ARGUMENT */
export function jsonObject(b: unknown): Record<string, unknown> {
  if (b === undefined || (Buffer.isBuffer(b) && b.length === 0)) return {};
  // `null` is a JSON value of its own, not an absent body (typeof null is 'object').
  if (b === null || typeof b !== 'object' || Array.isArray(b) || Buffer.isBuffer(b)) throw invalidArgument('body', 'must be a JSON object');
  return b as Record<string, unknown>;
}

/** A required string given as `?name=` or as the same field of the JSON body. @throws INVALID_ARGUMENT */
export function requiredParam(req: Request, name: string): string {
  return requiredValue(name, queryOf(req.query as Record<string, unknown>), req.body);
}

/** `requiredParam` from a parsed query and body, as both HTTP paths have them. @throws INVALID_ARGUMENT */
export function requiredValue(name: string, query: Query, body: unknown): string {
  const v = query(name) ?? jsonObject(body)[name];
  if (typeof v !== 'string' || v === '') throw invalidArgument(name, 'is required (query parameter or JSON body field)');
  return v;
}
