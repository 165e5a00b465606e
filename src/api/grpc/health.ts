/**
 * grpc.health.v1 over the tenants' sessions: every zkgate service (and the overall "" service)
 * is SERVING only while every tenant's ZooKeeper session is connected, NOT_SERVING otherwise.
 * Watch calls get each change.
 */
import { HealthImplementation, type ServingStatus } from 'grpc-health-check';
import type { Gateway } from '../../core/index.js';

/** A health service whose statuses follow `gw.health()`; `stop()` detaches it from the tenants. */
export function gatewayHealth(gw: Gateway, serviceNames: readonly string[]): { health: HealthImplementation; stop(): void } {
  const current = (): ServingStatus => (gw.health().ready ? 'SERVING' : 'NOT_SERVING');
  const names = ['', ...serviceNames];
  const health = new HealthImplementation(Object.fromEntries(names.map((n) => [n, current()])));
  const update = (): void => {
    const s = current();
    for (const n of names) health.setStatus(n, s);
  };
  const detach = gw.onHealthChange(update);
  return {
    health,
    stop: () => {
      detach();
      for (const n of names) health.setStatus(n, 'NOT_SERVING');
    },
  };
}
