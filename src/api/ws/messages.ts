/**
 * The WebSocket protocol's messages (documented in docs/websocket.md): JSON text frames, client
 * messages discriminated on `op`, server messages on `type`. Parsing validates every field and
 * turns the first problem into a ZkgateError naming it.
 */
import { z } from 'zod';
import { WATCH_KINDS, ZkgateError, invalidArgument, type InstanceSet, type LeaseInfo, type LeaseState, type OwnedKind, type WatchKind } from '../../core/index.js';
import type { WatchEventJson, leaderStateJson } from '../json.js';

type LeaderStateJson = ReturnType<typeof leaderStateJson>;

const subscriptionId = z.string().min(1).max(128);

const subscribe = z
  .object({
    op: z.literal('subscribe'),
    /** Chosen by the client; unique among the socket's open subscriptions. */
    id: subscriptionId,
    path: z.string(),
    kind: z.enum(WATCH_KINDS as [WatchKind, ...WatchKind[]]).default('data'),
    encoding: z.enum(['utf8', 'base64']).optional(),
  })
  .strict();
const unsubscribe = z.object({ op: z.literal('unsubscribe'), id: subscriptionId }).strict();
const observe = z.object({ op: z.literal('observe'), id: subscriptionId, path: z.string() }).strict();
/** Follows a service's instance set (the registry; `base` default /services). */
const instances = z.object({ op: z.literal('instances'), id: subscriptionId, service: z.string(), base: z.string().optional() }).strict();
const leaseGrant = z.object({ op: z.literal('lease_grant'), ttlMs: z.number().int() }).strict();
const leaseAttach = z.object({ op: z.literal('lease_attach'), leaseId: z.string().min(1).max(200) }).strict();
/** A request/response call (src/api/ws/calls.ts): `method` is a gRPC RPC name, `params` its request. */
const call = z.object({ op: z.literal('call'), id: subscriptionId, method: z.string().min(1).max(64), params: z.record(z.string(), z.unknown()).optional() }).strict();
const ping = z.object({ op: z.literal('ping'), data: z.unknown().optional() }).strict();

const SCHEMAS = {
  subscribe,
  unsubscribe,
  observe,
  instances,
  lease_grant: leaseGrant,
  lease_attach: leaseAttach,
  call,
  ping,
} as const;

export type ClientOp = keyof typeof SCHEMAS;
export const CLIENT_OPS = Object.keys(SCHEMAS) as ClientOp[];

/** A validated client message. */
export type ClientMessage = { [K in ClientOp]: z.output<(typeof SCHEMAS)[K]> }[ClientOp];

/** Server → client messages. */
export type ServerMessage =
  | {
      type: 'welcome';
      tenant: string;
      heartbeatMs: number;
      maxMessageBytes: number;
      messagesPerSecond: number;
      maxSubscriptions: number;
      queueSize: number;
      ops: ClientOp[];
    }
  | { type: 'subscribed'; id: string; path: string; kind: WatchKind | 'election' | 'service' }
  | { type: 'unsubscribed'; id: string }
  | { type: 'event'; id: string; event: WatchEventJson }
  | { type: 'leader'; id: string; state: LeaderStateJson }
  | { type: 'instances'; id: string; set: InstanceSet }
  | { type: 'lease'; lease: LeaseInfo }
  | { type: 'lease_state'; leaseId: string; state: LeaseState; reason: string; trustMs: number; owned: { path: string; kind: OwnedKind }[] }
  | { type: 'result'; id: string; method: string; result: unknown }
  | { type: 'pong'; data?: unknown; lease?: LeaseInfo }
  | { type: 'error'; op?: string; id?: string; code: string; message: string; details?: Record<string, string | number | boolean> };

/** The `op` and `id` of a message that failed validation, for the error reply. */
export interface MessageContext {
  readonly op?: string;
  readonly id?: string;
}

/**
 * Parses one text frame.
 * @throws ZkgateError INVALID_ARGUMENT (malformed JSON, unknown op, bad field) with `context`
 */
export function parseClientMessage(text: string): ClientMessage {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw invalidArgument('message', `not valid JSON (${(err as Error).message})`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw invalidArgument('message', 'must be a JSON object');
  const op = (raw as Record<string, unknown>).op;
  if (typeof op !== 'string' || !(op in SCHEMAS)) {
    throw new ZkgateError('INVALID_ARGUMENT', `op: unknown operation ${JSON.stringify(op)}; one of ${CLIENT_OPS.join(', ')}`, { field: 'op' });
  }
  const r = SCHEMAS[op as ClientOp].safeParse(raw);
  if (r.success) return r.data as ClientMessage;
  const issue = r.error.issues[0];
  throw invalidArgument(issue?.path.join('.') || 'message', issue?.message ?? 'invalid');
}

/** Best-effort `op`/`id` of a raw frame, so an error reply can name what it answers. */
export function messageContext(text: string): MessageContext {
  try {
    const raw = JSON.parse(text) as Record<string, unknown>;
    return {
      op: typeof raw.op === 'string' ? raw.op.slice(0, 64) : undefined,
      id: typeof raw.id === 'string' ? raw.id.slice(0, 128) : undefined,
    };
  } catch {
    return {};
  }
}
