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

/** The interceptor; health checks and reflection are logged at debug so that probes do not drown calls. */
export function accessLogInterceptor(logger: Logger): ServerInterceptor {
  return (method, call) => {
    const started = performance.now();
    let reqId: string = randomUUID();
    let md: Metadata | undefined;
    const quiet = method.path.startsWith('/grpc.');
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
          metadata.set(REQUEST_ID_METADATA, reqId);
          next(metadata);
        })
        .withSendStatus((st, next) => {
          const trailers = st.metadata ?? new Metadata();
          trailers.set(REQUEST_ID_METADATA, reqId);
          const code = trailers.get(ERROR_CODE_METADATA)[0];
          const principal = md && callers.get(md);
          const line = {
            reqId,
            method: method.path,
            status: STATUS_NAMES[st.code] ?? String(st.code),
            durationMs: msSince(started),
            ...callerFields(principal),
            ...(typeof code === 'string' ? { code } : {}),
          };
          logger[quiet ? 'debug' : 'info'](line, 'grpc call');
          next({ ...st, metadata: trailers });
        })
        .build(),
    );
  };
}
