/**
 * Several gateway instances behind one load balancer (docs/cluster.md): lease ids that name
 * their instance, the signed internal channel, and the forwarding facade.
 */
export { Cluster, instanceGone, type ClusterOptions, type ClusterStatus, type MembershipView } from './cluster.js';
export { LeaseElsewhere, type ClusterHooks } from './hooks.js';
export { LeaseIds, type LeaseOrigin } from './lease-ids.js';
export { RemoteLease } from './remote-lease.js';
export { ClusterQuotas, PUBLISH_INTERVAL_MS, RELEASE_DELAY_MS, type UsageBoard } from './quotas.js';
