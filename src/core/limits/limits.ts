/**
 * Per-tenant limits: core owns their shape and defaults; config (src/config/schema.ts) only
 * validates what a file says against them. Documented in the README's limits table.
 */

/** Every bound core and the transports enforce per tenant. */
export interface Limits {
  /** Largest znode payload accepted, bytes; ZooKeeper's jute.maxbuffer is 1 MiB per packet. */
  readonly maxDataBytes: number;
  /** Largest HTTP request body, bytes (base64 inflates data by 4/3). */
  readonly maxBodyBytes: number;
  /** Largest subtree a recursive delete removes; larger ones are refused before any delete. */
  readonly maxRecursiveDeleteNodes: number;
  /** Longest znode path inside the tenant's chroot, UTF-8 bytes. */
  readonly maxPathBytes: number;
  /** Most segments in a znode path. */
  readonly maxPathDepth: number;
  /** Most children one listing answers. */
  readonly maxChildrenPerListing: number;
  /** Live leases per tenant. */
  readonly maxLeasesPerTenant: number;
  /** Held or waiting locks (and election candidacies) per tenant. */
  readonly maxLocksPerTenant: number;
  /** Watch subscriptions, election observes and long-polls per tenant, over every transport. */
  readonly maxSubscriptionsPerTenant: number;
  /** Open streaming connections (WebSockets, SSE streams, gRPC streams) per tenant. */
  readonly maxConnectionsPerTenant: number;
  /** Largest WebSocket message a client may send, bytes. */
  readonly wsMaxMessageBytes: number;
  /** WebSocket messages a client may send per second (token bucket, burst of the same size). */
  readonly wsMessagesPerSecond: number;
}

/** Defaults of every limit. */
export const LIMIT_DEFAULTS = {
  maxDataBytes: 1_046_528,
  maxBodyBytes: 1_500_000,
  maxRecursiveDeleteNodes: 1000,
  maxPathBytes: 4096,
  maxPathDepth: 128,
  maxChildrenPerListing: 10_000,
  maxLeasesPerTenant: 1000,
  maxLocksPerTenant: 1000,
  maxSubscriptionsPerTenant: 1000,
  maxConnectionsPerTenant: 100,
  wsMaxMessageBytes: 1_500_000,
  wsMessagesPerSecond: 100,
} as const satisfies Limits;
