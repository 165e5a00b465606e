/**
 * The values of a forwarded facade call, as JSON: Buffers, AbortSignals (the caller's
 * cancellation, re-created on the owner), leases (by info) and undefined survive the trip.
 */
import { Lease, type LeaseInfo } from '../leases/lease.js';
import { LazySignal } from '../recipes/wake.js';

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Encodes `v`; a function (not a value) cannot travel. */
export function encode(v: unknown): Json {
  if (v === undefined) return { $u: 1 };
  if (v === null || typeof v === 'boolean' || typeof v === 'string') return v;
  if (typeof v === 'number') return Number.isFinite(v) ? v : { $num: String(v) };
  if (typeof v === 'bigint') return { $big: v.toString() };
  if (Buffer.isBuffer(v) || v instanceof Uint8Array) return { $b: Buffer.from(v).toString('base64') };
  if (v instanceof AbortSignal || v instanceof LazySignal) return { $s: 1 };
  if (v instanceof Lease) return { $l: v.info() as unknown as Json };
  if (Array.isArray(v)) return v.map(encode);
  if (typeof v === 'object') {
    const out: Record<string, Json> = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) if (x !== undefined && typeof x !== 'function') out[k] = encode(x);
    return out;
  }
  throw new TypeError(`cluster: cannot forward a ${typeof v}`);
}

/** What decoding needs from its side of the channel. */
export interface DecodeContext {
  /** The signal standing for the caller's cancellation (on the owner). */
  readonly signal?: AbortSignal;
  /** Turns a lease's info into the lease object of this side. */
  lease(info: LeaseInfo): Lease;
}

export function decode(v: Json, ctx: DecodeContext): unknown {
  if (v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) return v.map((x) => decode(x, ctx));
  if ('$u' in v) return undefined;
  if ('$num' in v) return Number(v.$num);
  if ('$big' in v) return BigInt(v.$big as string);
  if ('$b' in v) return Buffer.from(v.$b as string, 'base64');
  if ('$s' in v) return ctx.signal ?? new AbortController().signal;
  if ('$l' in v) return ctx.lease(v.$l as unknown as LeaseInfo);
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) out[k] = decode(x, ctx);
  return out;
}

/** True when `args` carry a cancellation signal (the call may wait). */
export function findSignal(v: unknown, depth = 0): AbortSignal | undefined {
  if (v instanceof AbortSignal) return v;
  if (v instanceof LazySignal) return v.signal; // a call that goes elsewhere needs the signal itself
  if (depth > 2 || v === null || typeof v !== 'object' || Buffer.isBuffer(v) || v instanceof Lease) return undefined;
  for (const x of Array.isArray(v) ? v : Object.values(v as Record<string, unknown>)) {
    const s = findSignal(x, depth + 1);
    if (s) return s;
  }
  return undefined;
}

/** `v` with the signal `from` replaced by `to` (as deep as `findSignal` looks); the rest shared. */
export function withSignal<T>(v: T, from: AbortSignal, to: AbortSignal, depth = 0): T {
  if (v === from || (v instanceof LazySignal && v.signal === from)) return to as T;
  if (depth > 2 || v === null || typeof v !== 'object' || Buffer.isBuffer(v) || v instanceof Lease || v instanceof AbortSignal) return v;
  if (Array.isArray(v)) return v.map((x: unknown) => withSignal(x, from, to, depth + 1)) as T;
  if (Object.getPrototypeOf(v) !== Object.prototype) return v;
  return Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, withSignal(x, from, to, depth + 1)])) as T;
}

/**
 * `v` with the `waitMs` of each options object carrying a signal (as deep as `findSignal` looks)
 * lowered by the ms since `since`, not below 0; the rest shared. A wait run again — on the
 * successor after a handoff, or sent again to the lease's new owner — then waits no longer in
 * all than its caller asked (`waitMs` is relative to when a call starts).
 */
export function withWaitLeft<T>(v: T, since: number, depth = 0): T {
  const spent = Date.now() - since;
  if (spent <= 0 || depth > 2 || v === null || typeof v !== 'object' || Buffer.isBuffer(v) || v instanceof Lease || v instanceof AbortSignal || v instanceof LazySignal) return v;
  if (Array.isArray(v)) return v.map((x: unknown) => withWaitLeft(x, since, depth + 1)) as T;
  if (Object.getPrototypeOf(v) !== Object.prototype) return v;
  const o = v as Record<string, unknown>;
  if (typeof o.waitMs === 'number' && Number.isInteger(o.waitMs) && o.waitMs > 0 && (o.signal instanceof AbortSignal || o.signal instanceof LazySignal)) {
    return { ...o, waitMs: Math.max(0, o.waitMs - spent) } as T;
  }
  return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, withWaitLeft(x, since, depth + 1)])) as T;
}
