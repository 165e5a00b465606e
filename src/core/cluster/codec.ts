/**
 * The values of a forwarded facade call, as JSON: Buffers, AbortSignals (the caller's
 * cancellation, re-created on the owner), leases (by info) and undefined survive the trip.
 */
import { Lease, type LeaseInfo } from '../leases/lease.js';
import { LazySignal, signalOf, type Abort } from '../recipes/wake.js';

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

/** The cancellation `args` carry (the call may wait), as found: a lazy one is not made. */
export function findAbort(v: unknown, depth = 0): Abort | undefined {
  if (v instanceof AbortSignal || v instanceof LazySignal) return v;
  if (depth > 2 || v === null || typeof v !== 'object' || Buffer.isBuffer(v) || v instanceof Lease) return undefined;
  for (const x of Array.isArray(v) ? v : Object.values(v as Record<string, unknown>)) {
    const s = findAbort(x, depth + 1);
    if (s) return s;
  }
  return undefined;
}

/** The cancellation signal `args` carry; a lazy one is made now (a call that goes elsewhere needs the signal itself). */
export function findSignal(v: unknown): AbortSignal | undefined {
  const a = findAbort(v);
  return a && signalOf(a);
}

/** `v` with the abort `from` (an AbortSignal, or a lazy one or its signal) replaced by `to` (as deep as `findAbort` looks); the rest shared. */
export function withSignal<T>(v: T, from: Abort, to: Abort, depth = 0): T {
  if (v === from || (v instanceof LazySignal && !(from instanceof LazySignal) && v.signal === from)) return to as T;
  if (depth > 2 || v === null || typeof v !== 'object' || Buffer.isBuffer(v) || v instanceof Lease || v instanceof AbortSignal) return v;
  if (Array.isArray(v)) return v.map((x: unknown) => withSignal(x, from, to, depth + 1)) as T;
  if (Object.getPrototypeOf(v) !== Object.prototype) return v;
  return Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, withSignal(x, from, to, depth + 1)])) as T;
}

/**
 * `abort` or a handoff of this instance, whichever comes first. A lazy abort (a REST lock
 * acquire's) stays lazy: the `AbortSignal.any` (a signal, weak references and a finalizer: ~30 µs
 * of CPU with its garbage on Node 20) is made only when the call waits here, not for a call that
 * goes to another instance (whose own signal is what travels) or holds at once.
 */
export function stoppedByHandoff(abort: Abort, handingOff: AbortSignal): Abort {
  return abort instanceof LazySignal ? new HandoffStoppable(abort, handingOff) : AbortSignal.any([abort, handingOff]);
}

class HandoffStoppable extends LazySignal {
  private made: AbortSignal | undefined;

  constructor(
    private readonly abort: LazySignal,
    private readonly handingOff: AbortSignal,
  ) {
    super();
  }

  throwIfAborted(): void {
    if (this.made) return this.made.throwIfAborted();
    this.abort.throwIfAborted();
    this.handingOff.throwIfAborted();
  }

  get signal(): AbortSignal {
    return (this.made ??= AbortSignal.any([this.abort.signal, this.handingOff]));
  }
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
