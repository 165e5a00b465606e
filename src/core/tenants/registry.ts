/** All tenants of this gateway, by name. */
import type { GatewayConfig } from '../gateway-config.js';
import { ZkgateError } from '../errors.js';
import type { Logger } from '../logger.js';
import { Tenant } from './tenant.js';

export class TenantRegistry {
  private readonly byName = new Map<string, Tenant>();

  constructor(config: GatewayConfig, connect: string, logger: Logger) {
    for (const t of config.tenants) {
      this.byName.set(t.name, new Tenant({ config: t, defaultConnect: connect, limits: config.limits, logger }));
    }
  }

  /** Starts every tenant's session in parallel. */
  async start(timeoutMs?: number): Promise<void> {
    await Promise.all([...this.byName.values()].map((t) => t.start(timeoutMs)));
  }

  /** @throws ZkgateError NOT_FOUND when no such tenant is configured. */
  get(name: string): Tenant {
    const t = this.byName.get(name);
    if (!t) throw new ZkgateError('NOT_FOUND', `tenant ${name} is not configured`, { tenant: name });
    return t;
  }

  all(): Tenant[] {
    return [...this.byName.values()];
  }

  /** The tenant requests go to when they name none: the only one, or the one named `default`. */
  defaultTenant(): Tenant | undefined {
    const all = this.all();
    return all.length === 1 ? all[0] : this.byName.get('default');
  }

  close(): void {
    for (const t of this.byName.values()) t.close();
  }
}
