/**
 * Safe by default: without API keys anyone who reaches a listener is an admin of every tenant,
 * so the gateway then listens on loopback only unless the operator explicitly allows otherwise.
 */
import { isIP } from 'node:net';

/** True for `localhost`, 127.0.0.0/8 and ::1 (also IPv4-mapped). */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost') return true;
  const v4 = h.startsWith('::ffff:') ? h.slice(7) : h;
  if (isIP(v4) === 4) return v4.startsWith('127.');
  return isIP(h) === 6 && (h === '::1' || h === '0:0:0:0:0:0:0:1');
}

export interface Exposure {
  /** Set when the gateway must not start; says why and how to allow it. */
  readonly refuse?: string;
  /** Set when the gateway starts without authentication (logged as a warning). */
  readonly warn?: string;
}

/**
 * What to do with listeners on `binds` given whether API keys are configured and whether an
 * unauthenticated public bind is explicitly allowed.
 */
export function exposureCheck(binds: readonly string[], keysConfigured: boolean, allowPublic: boolean): Exposure {
  if (keysConfigured) return {};
  const open = binds.filter((b) => !isLoopback(b));
  if (open.length === 0) {
    return { warn: 'NO API KEYS CONFIGURED: every local caller is an admin of every tenant; listening on loopback only (see README, Security)' };
  }
  if (!allowPublic) {
    return {
      refuse:
        `refusing to listen on ${open.join(', ')} without API keys: anyone reaching the port would be an admin of every tenant. ` +
        'Configure tenants[].apiKeys (zkgate keygen), bind 127.0.0.1, or allow it explicitly with ' +
        'security.allowUnauthenticatedPublicBind, ZKGATE_ALLOW_UNAUTHENTICATED_PUBLIC_BIND=1 or --allow-unauthenticated-public-bind',
    };
  }
  return { warn: `NO API KEYS CONFIGURED and listening on ${open.join(', ')}: ANYONE WHO REACHES THE PORT IS AN ADMIN OF EVERY TENANT` };
}
