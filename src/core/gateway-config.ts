/**
 * What core needs to be configured with, owned by core: config (src/config) parses and
 * validates a file into a `Config` that must satisfy `GatewayConfig` (checked at compile time
 * there), so core never imports config.
 */
import type { Role } from './auth/roles.js';
import type { LeaseLimits } from './leases/lease-manager.js';
import type { Limits } from './limits/limits.js';
import type { WatchLimits } from './watch/types.js';

/** An API key as configured: only the SHA-256 of the key, never the key itself. */
export interface ApiKeyConfig {
  /** A label for logs and metrics (never the key). */
  readonly name?: string;
  /** Lowercase hex SHA-256 of the key. */
  readonly sha256: string;
  readonly role: Role;
  /** Path prefixes (inside the chroot) the key is limited to; absent = the whole chroot. */
  readonly prefixes?: readonly string[];
}

/** One tenant: a named ZooKeeper namespace (chroot) with its own session, keys and limits. */
export interface TenantConfig {
  readonly name: string;
  /** ZooKeeper connect string; absent = the gateway's. */
  readonly connect?: string;
  readonly chroot: string;
  /** Session timeout asked of ZooKeeper, ms. */
  readonly sessionTimeoutMs: number;
  /** ZooKeeper digest credentials added to every session of this tenant. */
  readonly digest?: { readonly user: string; readonly password: string };
  readonly apiKeys: readonly ApiKeyConfig[];
  /** ACL set on every node the gateway creates for this tenant (perms as cdrwa letters). */
  readonly nodeAcl?: readonly { readonly scheme: string; readonly id: string; readonly perms: string }[];
  /** Overrides of the gateway-wide limits. */
  readonly limits?: Partial<Limits>;
}

/** Watch hub limits plus the heartbeat transports use for pings and SSE keep-alives. */
export interface WatchConfig extends WatchLimits {
  /** Interval of WebSocket pings and SSE keep-alive comments, ms. */
  readonly heartbeatMs: number;
  /** Bytes a push transport may hold for a client that does not read before it drops it (SLOW_CONSUMER). */
  readonly maxSendBufferBytes: number;
}

/** Everything `Gateway` reads. */
export interface GatewayConfig {
  readonly tenants: readonly TenantConfig[];
  readonly limits: Limits;
  readonly watch: WatchConfig;
  readonly leases?: Partial<LeaseLimits>;
  /** Prefix of lease ids (so a load balancer can route a lease back); absent = random. */
  readonly instanceId?: string;
  /** Several instances (docs/cluster.md); forwarding is on when `secret` is set. */
  readonly cluster?: { readonly secret?: string; readonly forwardTimeoutMs?: number; readonly leasePlacement?: 'tenant' | 'local' };
}
