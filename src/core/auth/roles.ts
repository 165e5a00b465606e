/**
 * Roles and the actions they allow. Roles are ordered read < write < admin; every transport
 * names the action it is about to perform and core decides, from this one table.
 */
export type Role = 'read' | 'write' | 'admin';

export const ROLES: readonly Role[] = ['read', 'write', 'admin'];

/** The least role each action needs. */
export const ACTION_ROLES = {
  /** get, exists, children, sync */
  'node.read': 'read',
  /** create, set, delete of one node */
  'node.write': 'write',
  /** delete of a whole subtree */
  'node.delete_recursive': 'admin',
  'acl.read': 'read',
  'acl.write': 'admin',
  /** inspect a lease of one's own key */
  'lease.read': 'read',
  /** grant, keep alive and revoke leases of one's own key */
  'lease.write': 'write',
  /** inspect, keep alive and revoke any lease of the tenant */
  'lease.admin': 'admin',
  /** subscribe to data, children or subtree changes */
  watch: 'read',
  /** acquire and release locks */
  lock: 'write',
  /** inspect a lock's holder and queue, an election's leader */
  'lock.read': 'read',
  /** campaign, proclaim, resign */
  election: 'write',
  /** put, take, claim, ack and release queue items */
  queue: 'write',
  /** set and remove a barrier, enter and leave a double barrier */
  barrier: 'write',
  /** inspect a queue (length, head) */
  'queue.read': 'read',
  /** inspect a barrier, wait for a simple barrier to be removed */
  'barrier.read': 'read',
  /** jobs: create and configure, pause/resume/disable, claim and complete runs, join/leave/sync as a member */
  job: 'write',
  /** jobs: read a job, its runs and its shard assignment */
  'job.read': 'read',
} as const satisfies Record<string, Role>;

export type Action = keyof typeof ACTION_ROLES;

const RANK: Readonly<Record<Role, number>> = { read: 0, write: 1, admin: 2 };

/** True when `role` may perform `action`. */
export function roleAllows(role: Role, action: Action): boolean {
  return RANK[role] >= RANK[ACTION_ROLES[action]];
}
