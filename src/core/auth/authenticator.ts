/**
 * Who is calling and what they may do: the one auth layer every transport uses. REST and
 * WebSocket pass the `Authorization` header, gRPC its `authorization` metadata; core decides.
 *
 * With API keys configured (on any tenant) every request needs one, the key alone selects the
 * tenant, and its role and path prefixes bound what it may do. With none configured every
 * caller is an admin of the tenant it names (the gateway then listens on loopback only).
 */
import type { GatewayConfig } from '../gateway-config.js';
import { checkPath } from '../paths.js';
import { ZkgateError } from '../errors.js';
import { checkPathLimits } from '../limits/path-limits.js';
import type { Lease } from '../leases/lease.js';
import type { TenantRegistry } from '../tenants/registry.js';
import type { Tenant } from '../tenants/tenant.js';
import { hashApiKey, isApiKeyShaped, keyIdOf } from './api-key.js';
import { ACTION_ROLES, roleAllows, type Action, type Role } from './roles.js';

/** The caller of a request, as established by `authenticate`. */
export interface Principal {
  readonly tenant: Tenant;
  readonly role: Role;
  /** Path prefixes inside the chroot the caller is limited to; empty means the whole chroot. */
  readonly prefixes: readonly string[];
  /** Non-secret id of the API key (first 12 hex digits of its SHA-256); `anonymous` without keys. */
  readonly keyId: string;
  /** The key's `name` from the config (for logs), when it has one. */
  readonly keyName?: string;
}

/** What a transport hands over, unparsed. */
export interface Credentials {
  /** The `Authorization` header or metadata value (`Bearer <key>`). */
  readonly authorization?: string;
  /** The `Zkgate-Tenant` header or metadata value. */
  readonly tenant?: string;
}

interface KeyEntry {
  readonly tenant: Tenant;
  readonly role: Role;
  readonly prefixes: readonly string[];
  readonly keyId: string;
  readonly keyName?: string;
}

const BEARER = /^Bearer +(\S+) *$/i;

/** Authenticates credentials into a `Principal` and authorizes its actions. */
export class Authenticator {
  private readonly byHash = new Map<string, KeyEntry>();
  private readonly names = new Map<string, string>();

  constructor(
    config: GatewayConfig,
    private readonly tenants: TenantRegistry,
  ) {
    for (const t of config.tenants) {
      for (const k of t.apiKeys) {
        this.byHash.set(k.sha256, { tenant: tenants.get(t.name), role: k.role, prefixes: k.prefixes ?? [], keyId: keyIdOf(k.sha256), ...(k.name ? { keyName: k.name } : {}) });
        if (k.name) this.names.set(keyIdOf(k.sha256), k.name);
      }
    }
  }

  /** True when API keys are configured, so every request must carry one. */
  get required(): boolean {
    return this.byHash.size > 0;
  }

  /**
   * The caller behind `credentials`. Without keys configured: an admin of the named (or default)
   * tenant. The error never repeats the credential.
   * @throws ZkgateError UNAUTHENTICATED (no, malformed or unknown key), PERMISSION_DENIED (a
   * `Zkgate-Tenant` naming another tenant than the key's), NOT_FOUND / INVALID_ARGUMENT (no keys:
   * unknown or ambiguous tenant).
   */
  authenticate(credentials: Credentials): Principal {
    if (!this.required) {
      const tenant = credentials.tenant ? this.tenants.get(credentials.tenant) : this.defaultTenant();
      return { tenant, role: 'admin', prefixes: [], keyId: 'anonymous' };
    }
    const header = credentials.authorization;
    if (!header) throw unauthenticated('missing', 'an API key is required: send Authorization: Bearer <key>');
    const m = BEARER.exec(header);
    if (!m) throw unauthenticated('malformed', 'the Authorization value must be Bearer <key>');
    const key = m[1] as string;
    const entry = isApiKeyShaped(key) ? this.byHash.get(hashApiKey(key)) : undefined;
    if (!entry) throw unauthenticated('invalid', 'the API key is not valid');
    if (credentials.tenant && credentials.tenant !== entry.tenant.name) {
      throw new ZkgateError('PERMISSION_DENIED', 'this API key belongs to another tenant; with API keys the key alone selects the tenant', {
        reason: 'tenant_mismatch',
      });
    }
    return { tenant: entry.tenant, role: entry.role, prefixes: entry.prefixes, keyId: entry.keyId, ...(entry.keyName ? { keyName: entry.keyName } : {}) };
  }

  /**
   * The caller of a call forwarded by another instance of the cluster, from its tenant name and
   * key id, re-checked against this instance's own configuration (a key removed here is refused).
   * @throws ZkgateError UNAUTHENTICATED, NOT_FOUND (unknown tenant)
   */
  principalFor(tenantName: string, keyId: string): Principal {
    const tenant = this.tenants.get(tenantName);
    if (!this.required) {
      if (keyId !== 'anonymous') throw unauthenticated('invalid', 'the forwarded API key is not configured on this instance');
      return { tenant, role: 'admin', prefixes: [], keyId };
    }
    for (const e of this.byHash.values()) {
      if (e.keyId === keyId && e.tenant === tenant) {
        return { tenant, role: e.role, prefixes: e.prefixes, keyId, ...(e.keyName ? { keyName: e.keyName } : {}) };
      }
    }
    throw unauthenticated('invalid', 'the forwarded API key is not configured on this instance');
  }

  /**
   * Checks that `principal` may perform `action`, and on `path` when one is given. The path is
   * validated first (ZooKeeper's syntax, then the tenant's length and depth limits), so scopes
   * are always compared on a valid, normalised path. For a sequential create (`sequential`)
   * the created node differs from `path`, so `path` must lie strictly below a prefix.
   * @throws ZkgateError INVALID_PATH, PERMISSION_DENIED
   */
  authorize(principal: Principal, action: Action, path?: string, opts: { sequential?: boolean } = {}): void {
    if (path !== undefined) {
      checkPath(path, opts.sequential);
      checkPathLimits(path, principal.tenant.limits);
    }
    if (!roleAllows(principal.role, action)) {
      throw new ZkgateError('PERMISSION_DENIED', `role ${principal.role} may not ${action} (needs ${ACTION_ROLES[action]})`, {
        action,
        role: principal.role,
        required: ACTION_ROLES[action],
      });
    }
    if (path !== undefined && !inScope(principal.prefixes, path, opts.sequential ?? false)) {
      throw new ZkgateError('PERMISSION_DENIED', `${path}: outside the path prefixes of this API key`, { action, path, reason: 'scope' });
    }
  }

  /**
   * Checks that `principal` may use `lease` with `action` (`lease.read` or `lease.write`):
   * a lease belongs to the key that granted it; other keys of the tenant need `lease.admin`.
   * @throws ZkgateError PERMISSION_DENIED
   */
  authorizeLease(principal: Principal, lease: Lease, action: 'lease.read' | 'lease.write'): void {
    this.authorize(principal, lease.owner === principal.keyId ? action : 'lease.admin');
  }

  /** The configured name (label) of the key with id `keyId`, if it has one. */
  keyName(keyId: string): string | undefined {
    return this.names.get(keyId);
  }

  /** True when `principal` may see and use every lease of its tenant, not only its own key's. */
  isLeaseAdmin(principal: Principal): boolean {
    return roleAllows(principal.role, 'lease.admin');
  }

  private defaultTenant(): Tenant {
    const t = this.tenants.defaultTenant();
    if (!t) throw new ZkgateError('INVALID_ARGUMENT', 'several tenants are configured: name one', {});
    return t;
  }
}

function unauthenticated(reason: string, message: string): ZkgateError {
  return new ZkgateError('UNAUTHENTICATED', message, { reason });
}

/** True when no prefixes bound the caller or `path` is at or below one (strictly below for sequential creates). */
function inScope(prefixes: readonly string[], path: string, sequential: boolean): boolean {
  if (prefixes.length === 0) return true;
  return prefixes.some((p) => p === '/' || (!sequential && path === p) || path.startsWith(`${p}/`));
}
