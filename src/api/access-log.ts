/**
 * What every transport's access-log lines share: the request-id rule and the caller's fields.
 * REST logs one line per request (rest/access-log.ts), gRPC one per call (grpc/access-log.ts),
 * WebSocket one per call op and one per connection when it closes (ws/connection.ts).
 */
import { randomUUID } from 'node:crypto';
import type { Principal } from '../core/index.js';

/** An incoming request id kept as is; anything else is replaced. */
/** The header every transport reads a request id from and echoes it in (gRPC: metadata key, lower case). */
export const REQUEST_ID_HEADER = 'X-Request-Id';

export const SANE_REQUEST_ID = /^[A-Za-z0-9._:@/+=-]{1,128}$/;

/** The incoming request id when it is short and plain, else a new UUID. */
export function requestId(incoming: unknown): string {
  return typeof incoming === 'string' && SANE_REQUEST_ID.test(incoming) ? incoming : randomUUID();
}

/** The caller's fields of an access line: tenant and key name (else key id). */
export function callerFields(principal: Principal | undefined): { tenant?: string; key?: string } {
  return principal ? { tenant: principal.tenant.name, key: principal.keyName ?? principal.keyId } : {};
}

/** Milliseconds since `started` (a `performance.now()`), to a tenth. */
export function msSince(started: number): number {
  return Math.round((performance.now() - started) * 10) / 10;
}
