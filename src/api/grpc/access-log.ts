/**
 * One access-log line per gRPC call (a grpc-js server interceptor): method, status code name,
 * duration, tenant and key name, and the request id — the caller's `x-request-id` metadata when
 * it is short and plain, else a new UUID — echoed in the response's initial and trailing metadata.
 * The caller is the principal the handler authenticated (remembered by its metadata object), so
 * nothing is authenticated twice.
 */
import { randomUUID } from 'node:crypto';
import { Metadata, ResponderBuilder, ServerInterceptingCall, ServerListenerBuilder, status, type ServerInterceptor } from '@grpc/grpc-js';
import type { Logger, Principal } from '../../core/index.js';
import { callerFields, msSince, requestId } from '../access-log.js';
import { ERROR_CODE_METADATA } from './call-context.js';

/** Metadata key carrying the request id both ways (REST's `X-Request-Id`). */
export const REQUEST_ID_METADATA = 'x-request-id';

/** Who made a call, by the call's metadata (set where the handler authenticates it). */
const callers = new WeakMap<Metadata, Principal>();

/** Records the caller of the call whose metadata is `md`, for its access line. */
export function rememberCaller(md: Metadata, principal: Principal): void {
  callers.set(md, principal);
}

const STATUS_NAMES = Object.fromEntries(Object.entries(status).filter(([, v]) => typeof v === 'number').map(([k, v]) => [v, k])) as Record<number, string>;

/** What one call's access line says (grpc-js' calls and the fast path's alike). */
export interface CallLine {
  readonly reqId: string;
  /** `/package.Service/Method`. */
  readonly method: string;
  readonly code: number;
  /** `performance.now()` when the call started. */
  readonly started: number;
  readonly principal: Principal | undefined;
  /** The zkgate error code of a failed call. */
  readonly errorCode: unknown;
}

/** Writes a call's access line; health checks and reflection at debug so that probes do not drown calls. */
export function logCall(logger: Logger, c: CallLine): void {
  const level = c.method.startsWith('/grpc.') ? 'debug' : 'info';
  // Most deployments log calls at info; one that does not pays nothing per call (as REST's lines).
  if (!logger.isLevelEnabled(level)) return;
  const line = {
    reqId: c.reqId,
    method: c.method,
    status: STATUS_NAMES[c.code] ?? String(c.code),
    durationMs: msSince(c.started),
    ...callerFields(c.principal),
    ...(typeof c.errorCode === 'string' ? { code: c.errorCode } : {}),
  };
  logger[level](line, 'grpc call');
}

/** The interceptor. */
export function accessLogInterceptor(logger: Logger): ServerInterceptor {
  return (method, call) => {
    const started = performance.now();
    let reqId: string | undefined;
    let md: Metadata | undefined;
    return new ServerInterceptingCall(
      call,
      new ResponderBuilder()
        .withStart((next) =>
          next(
            new ServerListenerBuilder()
              .withOnReceiveMetadata((metadata, mdNext) => {
                md = metadata;
                reqId = requestId(metadata.get(REQUEST_ID_METADATA)[0]);
                mdNext(metadata);
              })
              .build(),
          ),
        )
        .withSendMetadata((metadata, next) => {
          metadata.set(REQUEST_ID_METADATA, (reqId ??= randomUUID()));
          next(metadata);
        })
        .withSendStatus((st, next) => {
          const trailers = st.metadata ?? new Metadata();
          trailers.set(REQUEST_ID_METADATA, (reqId ??= randomUUID()));
          logCall(logger, { reqId, method: method.path, code: st.code, started, principal: md && callers.get(md), errorCode: trailers.get(ERROR_CODE_METADATA)[0] });
          next({ ...st, metadata: trailers });
        })
        .build(),
    );
  };
}
