/** RFC 9457 problem+json answers for every error (bodies from `problemOf` in ../json.ts). */
import type { ErrorRequestHandler, Response } from 'express';
import { ZkgateError, type Logger } from '../../core/index.js';
import { mapError } from '../error-table.js';
import { problemOf } from '../json.js';
import { countError } from '../metrics.js';

/** Writes the problem body for `err`. */
export function sendProblem(res: Response, err: unknown): void {
  const body = problemOf(err);
  if (body.code === 'UNAUTHENTICATED') res.set('WWW-Authenticate', 'Bearer realm="zkgate"');
  res.status(body.status).type('application/problem+json').send(JSON.stringify(body));
}

interface HttpError {
  type?: string;
  limit?: number;
  length?: number;
  status?: number;
  expose?: boolean;
}

/** Maps body-parser failures (malformed JSON, oversize body) to stable codes. */
function fromHttpError(err: HttpError & Error): ZkgateError | null {
  if (err.type === 'entity.parse.failed') return new ZkgateError('INVALID_ARGUMENT', `malformed JSON body: ${err.message}`, { field: 'body' });
  if (err.type === 'entity.too.large') {
    // body-parser's error carries the limit it enforced (limits.maxBodyBytes) and the declared length.
    const max = typeof err.limit === 'number' ? err.limit : undefined;
    const size = typeof err.length === 'number' ? err.length : undefined;
    return new ZkgateError('PAYLOAD_TOO_LARGE', `request body is ${size ?? 'more than'} bytes; the limit (limits.maxBodyBytes) is ${max ?? 'lower'}`, {
      limit: 'maxBodyBytes',
      ...(max !== undefined ? { max } : {}),
      ...(size !== undefined ? { size } : {}),
    });
  }
  if (err.type === 'encoding.unsupported' || err.type === 'charset.unsupported') {
    return new ZkgateError('INVALID_ARGUMENT', err.message, { field: 'body' });
  }
  return null;
}

/** The single error middleware: everything thrown in a route ends here. */
export function errorMiddleware(logger: Logger): ErrorRequestHandler {
  return (err: unknown, req, res, _next) => {
    const mapped = err instanceof Error ? (fromHttpError(err as HttpError & Error) ?? err) : err;
    const { error } = mapError(mapped);
    countError(error, 'rest');
    res.locals.errorCode = error.code;
    const reqId = res.locals.requestId as string | undefined;
    // Only the unexpected gets a stack at error level; every mapped outcome (4xx, 503
    // LEASE_UNCERTAIN, a client that went away mid-wait) is the access line's `code` plus this.
    if (error.code === 'INTERNAL') {
      logger.error({ err: mapped, reqId, method: req.method, url: req.originalUrl }, 'request failed');
    } else {
      logger.debug({ reqId, code: error.code, detail: error.message }, 'request answered with an error');
    }
    if (res.headersSent) {
      res.end();
      return;
    }
    if (!req.complete) {
      // Answered before the body was read (401 before parsing, 413): do not leave the rest of
      // the body in a kept-alive connection; discard it and close once the answer is sent.
      res.set('Connection', 'close');
      req.resume();
    }
    sendProblem(res, mapped);
  };
}
