/**
 * zkgate's core: tenants and their sessions, znode operations, leases, the lock and election
 * recipes and the watch hub. Each capability is implemented here once; transports only translate.
 */
export { Gateway, type ClusterHealth, type ClusterMembership, type TenantHealth } from './gateway.js';
export { Cluster, RemoteLease, type ClusterStatus, type MembershipView } from './cluster/index.js';
export type { ApiKeyConfig, GatewayConfig, TenantConfig, WatchConfig } from './gateway-config.js';
export { LIMIT_DEFAULTS, type Limits } from './limits/limits.js';
export { Scope } from './facade/scope.js';
export type { ScopedNodes } from './facade/nodes.js';
export type { LeaseListEntry, ScopedLeases } from './facade/leases.js';
export type { ScopedElections, ScopedLocks, ResignResult } from './facade/recipes.js';
export type { ScopedConnection } from './facade/connection.js';
export type { Delivery, ScopedQueues, TakeOptions } from './facade/queues.js';
export { QueueService, DELIVERY_MODES, ITEM_PREFIX, CLAIMS_NODE, queueOrder, type ClaimOutcome, type DeliveryMode, type QueueClaim, type QueueInspection, type QueueItem, type QueuedItem } from './recipes/queue.js';
export type { ScopedSemaphores } from './facade/semaphores.js';
export type { ScopedJobs } from './facade/jobs.js';
export { JOB_STATES, RUN_OUTCOMES, RUN_STATES, type Assignment, type JobInfo, type JobState, type MemberView, type RunOutcome, type RunRecord, type RunState } from './jobs/index.js';
export { ERROR_CODES, ZkgateError, cancelled, invalidArgument, toZkgateError, type ErrorCode } from './errors.js';
export { createLogger, flushLogs, silentLogger, type Logger } from './logger.js';
export { NodeService } from './nodes/node-service.js';
export { checkPath } from './paths.js';
export { Tenant } from './tenants/tenant.js';
export { TenantRegistry } from './tenants/registry.js';
export { CREATE_MODES } from './types.js';
export type { ChildEntry, ChildrenListing, ChildrenOptions, TreeListing, TreeOptions, CreateOptions, DeleteOptions, Znode, AclEntry, CreateMode, Stat } from './types.js';
export { Lease, type LeaseInfo, type LeaseState, type LeaseStateEvent, type OwnedKind } from './leases/lease.js';
export { LeaseManager, LEASE_DEFAULTS, type LeaseLimits } from './leases/lease-manager.js';
export { Authenticator, type Credentials, type Principal } from './auth/authenticator.js';
export { ACTION_ROLES, ROLES, roleAllows, type Action, type Role } from './auth/roles.js';
export { API_KEY_PREFIX, generateApiKey, hashApiKey, isApiKeyShaped, keyIdOf } from './auth/api-key.js';
export { isLoopback, exposureCheck, type Exposure } from './auth/exposure.js';
export { TenantQuotas, QUOTA_LIMITS, type QuotaKind, type QuotaUsage } from './limits/quotas.js';
export { checkPathLimits } from './limits/path-limits.js';
export { lettersToPerms, permsToLetters } from './acl-perms.js';
export { LOCK_FLAVOURS, curatorFlavour, curatorSortKey, kazooFlavour, lockFlavour, type LockFlavour, type QueueFlavour } from './recipes/flavours.js';
export { SequentialQueue, listContenders, type Contender, type EnqueueOptions, type LeaveOutcome, type QueueOutcome } from './recipes/sequential-queue.js';
export { LockService, LOCK_DEFAULTS, MAX_WAIT_MS, type AcquireOptions, type LockHold, type LockInspection, type LockListing, type ReleaseResult } from './recipes/lock.js';
export { ElectionService, type CampaignOptions, type ElectionListing, type ElectionSummary, type Leader, type LeaderPoll, type LeaderState, type Leadership } from './recipes/election.js';
export { SemaphoreService, MAX_PERMITS, MAX_PERMITS_PER_ACQUIRE, type Permit, type SemaphoreAcquireOptions, type SemaphoreGrant, type SemaphoreInspection, type SemaphoreRelease } from './recipes/semaphore.js';
export { findQueues, type CatalogBounds, type CatalogOptions } from './recipes/catalog.js';
export { checkLimit, pageOf, walkTree, type Page, type PageOptions, type TreeNode, type TreeWalk } from './nodes/listing.js';
export { WatchHub, type WatchStream } from './watch/hub.js';
export { QueuedIterator, type Cleanup } from './watch/queued-iterator.js';
export { blockingRead, type BlockingReadOptions, type BlockingReadResult } from './watch/long-poll.js';
export { WATCH_KINDS, type WatchEvent, type WatchEventType, type WatchKind, type WatchLimits, type WatchOptions, type WatchStats } from './watch/types.js';
export { keepAliveWhileOpen } from './leases/lease-binding.js';
export { TokenBucket } from './limits/token-bucket.js';
