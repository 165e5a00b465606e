/**
 * Lease ids in a cluster: `<instanceId>.<incarnation 8 hex><random 16 hex><mac 16 hex>`. Any
 * instance can tell from an id which instance (and which start of it) granted the lease, and
 * that an instance of this cluster did: the MAC is an HMAC of the cluster secret, so a made-up
 * id stays LEASE_NOT_FOUND (404) instead of being reported gone (410).
 */
import { createHmac, randomBytes, timingSafeEqual, type KeyObject } from 'node:crypto';
import { secretKey } from './channel.js';

/** Who granted a lease, as its id says. */
export interface LeaseOrigin {
  readonly instanceId: string;
  readonly incarnation: string;
}

const TAIL = /^([0-9a-f]{8})([0-9a-f]{16})([0-9a-f]{16})$/;
/** Ids whose MAC was checked, remembered (a forwarded call asks up to three times per call). */
const KNOWN_MAX = 10_000;

export class LeaseIds {
  private readonly key: KeyObject;
  /** id → its origin, for ids whose MAC matched (an id never changes, so the answer cannot either). */
  private readonly known = new Map<string, LeaseOrigin>();

  constructor(
    secret: string,
    readonly instanceId: string,
    readonly incarnation: string,
  ) {
    this.key = secretKey(secret);
  }

  /** A new lease id of this instance. */
  mint(): string {
    const body = `${this.instanceId}.${this.incarnation}${randomBytes(8).toString('hex')}`;
    return `${body}${this.mac(body)}`;
  }

  /** The instance that minted `id`, or null when no instance of this cluster did. */
  origin(id: string): LeaseOrigin | null {
    const seen = this.known.get(id);
    if (seen) return seen;
    const dot = id.indexOf('.');
    if (dot <= 0) return null;
    const m = TAIL.exec(id.slice(dot + 1));
    if (!m) return null;
    const body = id.slice(0, id.length - 16);
    const want = Buffer.from(this.mac(body), 'hex');
    if (!timingSafeEqual(want, Buffer.from(m[3] as string, 'hex'))) return null;
    const o = { instanceId: id.slice(0, dot), incarnation: m[1] as string };
    // Only genuine ids are kept (made-up ones cannot fill the map), oldest forgotten first.
    if (this.known.size >= KNOWN_MAX) this.known.delete(this.known.keys().next().value as string);
    this.known.set(id, o);
    return o;
  }

  /** True for an id minted by this very process. */
  isMine(o: LeaseOrigin): boolean {
    return o.instanceId === this.instanceId && o.incarnation === this.incarnation;
  }

  private mac(body: string): string {
    return createHmac('sha256', this.key).update(`lease-id\n${body}`).digest('hex').slice(0, 16);
  }
}
