/**
 * Lease ids in a cluster: `<instanceId>.<incarnation 8 hex><random 16 hex><mac 16 hex>`. Any
 * instance can tell from an id which instance (and which start of it) granted the lease, and
 * that an instance of this cluster did: the MAC is an HMAC of the cluster secret, so a made-up
 * id stays LEASE_NOT_FOUND (404) instead of being reported gone (410).
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** Who granted a lease, as its id says. */
export interface LeaseOrigin {
  readonly instanceId: string;
  readonly incarnation: string;
}

const TAIL = /^([0-9a-f]{8})([0-9a-f]{16})([0-9a-f]{16})$/;

export class LeaseIds {
  constructor(
    private readonly secret: string,
    readonly instanceId: string,
    readonly incarnation: string,
  ) {}

  /** A new lease id of this instance. */
  mint(): string {
    const body = `${this.instanceId}.${this.incarnation}${randomBytes(8).toString('hex')}`;
    return `${body}${this.mac(body)}`;
  }

  /** The instance that minted `id`, or null when no instance of this cluster did. */
  origin(id: string): LeaseOrigin | null {
    const dot = id.indexOf('.');
    if (dot <= 0) return null;
    const m = TAIL.exec(id.slice(dot + 1));
    if (!m) return null;
    const body = id.slice(0, id.length - 16);
    const want = Buffer.from(this.mac(body), 'hex');
    if (!timingSafeEqual(want, Buffer.from(m[3] as string, 'hex'))) return null;
    return { instanceId: id.slice(0, dot), incarnation: m[1] as string };
  }

  /** True for an id minted by this very process. */
  isMine(o: LeaseOrigin): boolean {
    return o.instanceId === this.instanceId && o.incarnation === this.incarnation;
  }

  private mac(body: string): string {
    return createHmac('sha256', this.secret).update(`lease-id\n${body}`).digest('hex').slice(0, 16);
  }
}
