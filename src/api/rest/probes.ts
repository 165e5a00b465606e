/**
 * The health probes' answers, one definition for both HTTP paths (express's routes in app.ts and
 * the fast path, which answers the exact probe URLs without express: a balancer checks every
 * instance several times a second).
 */
import type { Gateway } from '../../core/index.js';

/** The probe routes (openapi.yaml, tag `health`). */
export type Probe = '/healthz' | '/readyz';

const PROBES: ReadonlySet<string> = new Set<Probe>(['/healthz', '/readyz']);

/** `pathname` as a probe route, if it is exactly one. */
export function probeOf(pathname: string): Probe | undefined {
  return PROBES.has(pathname) ? (pathname as Probe) : undefined;
}

/**
 * A probe's status and JSON body: `/healthz` is 200 while the process serves HTTP; `/readyz` is
 * 200 when every tenant's session is connected, else 503 (also while shutting down), with each
 * tenant's state and, in a cluster, the members this instance sees.
 */
export function probeAnswer(gw: Gateway, probe: Probe): { readonly status: number; readonly body: object } {
  if (probe === '/healthz') return { status: 200, body: { status: 'ok' } };
  const h = gw.health();
  return { status: h.ready ? 200 : 503, body: h };
}
