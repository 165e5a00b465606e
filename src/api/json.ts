/**
 * The JSON forms every JSON transport (REST, Server-Sent Events, WebSocket, and the WebSocket
 * upgrade's refusals) shares, in one module: znode data as UTF-8 text or base64 with an explicit
 * encoding, watch events, ACLs, lock and election answers, leases and problem bodies.
 */
import {
  ZkgateError,
  invalidArgument,
  lettersToPerms,
  permsToLetters,
  type AclEntry,
  type Contender,
  type ElectionListing,
  type LockInspection,
  type LockListing,
  type SemaphoreInspection,
  type RwContender,
  type RwInspection,
  type Leader,
  type LeaderState,
  type Leadership,
  type Lease,
  type LeaseInfo,
  type LeaseListEntry,
  type LeaseListing,
  type Stat,
  type WatchEvent,
  type WatchEventType,
} from '../core/index.js';
import { mapError } from './error-table.js';

// ---- znode data

export type Encoding = 'utf8' | 'base64';
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Decodes `data` given in `encoding` (default utf8). @throws INVALID_ARGUMENT for bad base64 */
export function decodeData(data: unknown, encoding: unknown): Buffer {
  if (data === undefined || data === null) return Buffer.alloc(0);
  if (typeof data !== 'string') throw invalidArgument('data', 'must be a string');
  const enc = parseEncoding(encoding) ?? 'utf8';
  if (enc === 'utf8') return Buffer.from(data, 'utf8');
  if (!BASE64.test(data)) throw invalidArgument('data', 'is not valid base64 (RFC 4648, with padding)');
  return Buffer.from(data, 'base64');
}

/** Parses an encoding name; undefined when absent. @throws INVALID_ARGUMENT */
export function parseEncoding(value: unknown): Encoding | undefined {
  if (value === undefined) return undefined;
  if (value === 'utf8' || value === 'base64') return value;
  if (value === 'utf-8') return 'utf8';
  throw invalidArgument('encoding', 'must be utf8 or base64');
}

/** Encodes bytes: as asked, else utf8 when they are valid UTF-8 and base64 otherwise. */
export function encodeData(data: Buffer, asked?: Encoding): { data: string; encoding: Encoding } {
  if (asked === 'base64') return { data: data.toString('base64'), encoding: 'base64' };
  try {
    return { data: utf8.decode(data), encoding: 'utf8' };
  } catch {
    if (asked === 'utf8') {
      throw new ZkgateError('INVALID_ARGUMENT', 'data is not valid UTF-8; ask for encoding=base64', { field: 'encoding' });
    }
    return { data: data.toString('base64'), encoding: 'base64' };
  }
}

// ---- watch events

export interface WatchEventJson {
  type: WatchEventType;
  path: string;
  /** mzxid (data), pzxid (children), "0" when the node does not exist; long-poll `index`. */
  zxid: string;
  stat: Stat | null;
  data?: string;
  encoding?: Encoding;
  children?: string[];
  note?: string;
}

/** `base64` forces base64; otherwise data is UTF-8 text when valid, else base64. */
export function watchEventJson(ev: WatchEvent, encoding?: Encoding): WatchEventJson {
  const out: WatchEventJson = { type: ev.type, path: ev.path, zxid: ev.zxid, stat: ev.stat };
  if (ev.data !== undefined) Object.assign(out, encodeData(ev.data, encoding === 'base64' ? 'base64' : undefined));
  if (ev.children !== undefined) out.children = [...ev.children];
  if (ev.note !== undefined) out.note = ev.note;
  return out;
}

/**
 * `JSON.stringify(watchEventJson(ev, encoding))`, computed once per event and encoding: the hub
 * hands the same event object to every subscriber, so a change with 10,000 WebSocket or SSE
 * subscribers is serialized once, not 10,000 times.
 */
export function watchEventText(ev: WatchEvent, encoding?: Encoding): string {
  // watchEventJson treats every encoding but base64 alike.
  const key = encoding === 'base64' ? 'base64' : 'auto';
  let texts = eventTexts.get(ev);
  if (!texts) {
    texts = {};
    eventTexts.set(ev, texts);
  }
  return (texts[key] ??= JSON.stringify(watchEventJson(ev, encoding === 'base64' ? 'base64' : undefined)));
}
const eventTexts = new WeakMap<WatchEvent, { base64?: string; auto?: string }>();

// ---- ACLs (permissions as zkCli's letters: c create, d delete, r read, w write, a admin)

export interface AclJson {
  scheme: string;
  id: string;
  perms: string;
}

export function aclToJson(acl: readonly AclEntry[]): AclJson[] {
  return acl.map((a) => ({ scheme: a.scheme, id: a.id, perms: permsToLetters(a.perms) }));
}

export function aclFromJson(acl: readonly AclJson[]): AclEntry[] {
  return acl.map((a, i) => ({ scheme: a.scheme, id: a.id, perms: lettersToPerms(a.perms, `acl.${i}.perms`) }));
}

// ---- locks and elections

/** A queue node: its data with an explicit encoding, fencing token and owner. */
export function contenderJson(c: Contender): Record<string, unknown> {
  return { node: c.node, ...encodeData(c.data), fencingToken: c.fencingToken, ephemeralOwner: c.ephemeralOwner, ctimeMs: c.stat.ctimeMs };
}

function leaderJson(l: Leader): Record<string, unknown> {
  const { data, encoding } = encodeData(l.value);
  return { node: l.node, value: data, encoding, term: l.term, version: l.version };
}

export function leaderStateJson(s: LeaderState & { unchanged?: boolean }): Record<string, unknown> {
  const out: Record<string, unknown> = { electionPath: s.electionPath, leader: s.leader ? leaderJson(s.leader) : null, index: s.index };
  if (s.unchanged !== undefined) out.unchanged = s.unchanged;
  return out;
}

export function leadershipJson(l: Leadership): Record<string, unknown> {
  const { data, encoding } = encodeData(l.value);
  return { electionPath: l.electionPath, leader: true, node: l.node, term: l.term, value: data, encoding, leaseId: l.leaseId, leaseState: l.leaseState, trustMs: l.trustMs };
}

/** A lock as anyone sees it: holder and queue in order. */
export function lockInspectionJson(lock: LockInspection): Record<string, unknown> {
  return { lockPath: lock.lockPath, flavour: lock.flavour, holder: lock.holder && contenderJson(lock.holder), queue: lock.queue.map(contenderJson) };
}

/** The locks under a path (`GET /v1/recipes/locks/{path}`). */
export function lockListingJson(l: LockListing): Record<string, unknown> {
  return { path: l.path, locks: l.locks.map(lockInspectionJson), truncated: l.truncated, limit: l.limit };
}

/** A semaphore's holders, waiting lease node and internal lock queue. */
export function semaphoreInspectionJson(s: SemaphoreInspection): Record<string, unknown> {
  return { semaphorePath: s.semaphorePath, maxPermits: s.maxPermits, holders: s.holders.map(contenderJson), waiting: s.waiting.map(contenderJson), lockQueue: s.lockQueue.map(contenderJson) };
}

/** A read-write lock's holding writer or readers and its queue, each with its mode. */
export function rwInspectionJson(l: RwInspection): Record<string, unknown> {
  const c = (x: RwContender): Record<string, unknown> => ({ ...contenderJson(x), mode: x.mode });
  return { lockPath: l.lockPath, writer: l.writer && c(l.writer), readers: l.readers.map(c), queue: l.queue.map(c) };
}

/** The elections under a path (`GET /v1/recipes/elections/{path}`). */
export function electionListingJson(l: ElectionListing): Record<string, unknown> {
  const elections = l.elections.map((e) => ({
    electionPath: e.electionPath,
    leader: e.leader ? leaderJson(e.leader) : null,
    candidates: e.candidates.map(contenderJson),
  }));
  return { path: l.path, elections, truncated: l.truncated, limit: l.limit };
}

// ---- leases

/** The JSON form of a lease. */
export function leaseJson(lease: Lease): LeaseInfo {
  return lease.info();
}

/** A lease listing (REST, WebSocket): `incomplete` and `unanswered` only when an instance did not answer. */
export function leaseListingJson(l: LeaseListing): { leases: LeaseListEntry[]; incomplete?: true; unanswered?: LeaseListing['unanswered'] } {
  return l.unanswered.length > 0 ? { leases: l.leases, incomplete: true, unanswered: l.unanswered } : { leases: l.leases };
}

// ---- problem bodies (RFC 9457)

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  details?: Record<string, string | number | boolean>;
}

/** The problem body for `err` (also the `error` event of a Server-Sent Events stream). */
export function problemOf(err: unknown): Problem {
  const { error, mapping } = mapError(err);
  const body: Problem = {
    type: `/docs/errors#${error.code}`,
    title: mapping.title,
    status: mapping.http,
    detail: error.message,
    code: error.code,
  };
  if (Object.keys(error.details).length) body.details = { ...error.details };
  return body;
}
