/**
 * The JSON forms of queue (and barrier) answers, shared by REST and WebSocket: data as UTF-8
 * text or base64 with an explicit encoding, 64-bit numbers as strings.
 */
import type { ClaimOutcome, Delivery, QueueInspection, QueueItem } from '../core/index.js';
import { encodeData, type Encoding } from './json.js';

/** An item read from a queue (a take's answer without its mode, or an inspection's head). */
export function queueItemJson(i: QueueItem, encoding?: Encoding): Record<string, unknown> {
  return { queuePath: i.queuePath, item: i.item, node: i.node, ...encodeData(i.data, encoding), czxid: i.stat.czxid, ctimeMs: i.stat.ctimeMs };
}

/** A take's answer: the item, and for a claim the claim node, fencing token and lease. */
export function deliveryJson(d: Delivery, encoding?: Encoding): Record<string, unknown> {
  const out: Record<string, unknown> = { mode: d.mode, ...queueItemJson(d, encoding) };
  if (d.mode === 'claim') Object.assign(out, { claim: d.claim, fencingToken: d.fencingToken, leaseId: d.leaseId, leaseState: d.leaseState, trustMs: d.trustMs });
  return out;
}

export function queueInspectionJson(q: QueueInspection, encoding?: Encoding): Record<string, unknown> {
  return { queuePath: q.queuePath, length: q.length, claimed: q.claimed, head: q.head && queueItemJson(q.head, encoding) };
}

/** An ack (`acked`) or a release (`released`). */
export function claimOutcomeJson(o: ClaimOutcome, verb: 'acked' | 'released'): Record<string, unknown> {
  return { [verb]: o.done, reason: o.reason, queuePath: o.queuePath, item: o.item, leaseId: o.leaseId, leaseState: o.leaseState };
}
