/** RFC 9457 problem+json answers for every error (bodies from `problemOf` in ../json.ts). */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ErrorRequestHandler, Response } from 'express';
import { ZkgateError, payloadTooLarge, type Logger } from '../../core/index.js';
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
  if (err.type === 'entity.parse.failed') return malformedJson(err.message);
  // The router could not percent-decode a path parameter (`/v1/jobs/%ZZ`): the client's URL.
  if (err instanceof URIError && err.status === 400) {
    return new ZkgateError('INVALID_ARGUMENT', `malformed percent-escape in the URL path: ${err.message}`, { field: 'path' });
  }
  if (err.type === 'entity.too.large') {
    // body-parser's error carries the limit it enforced (limits.maxBodyBytes; raw-body always sets
    // it) and the declared length.
    return bodyTooLarge(err.limit ?? 0, typeof err.length === 'number' ? err.length : undefined);
  }
  if (err.type === 'encoding.unsupported' || err.type === 'charset.unsupported') {
    return new ZkgateError('INVALID_ARGUMENT', err.message, { field: 'body' });
  }
  return null;
}

/** A body that is not JSON (`message`: the parser's). */
export function malformedJson(message: string): ZkgateError {
  return new ZkgateError('INVALID_ARGUMENT', `malformed JSON body: ${message}`, { field: 'body' });
}

/** A body over `limits.maxBodyBytes` (`limit`, bytes), `size` bytes when declared. */
export function bodyTooLarge(limit: number, size: number | undefined): ZkgateError {
  return payloadTooLarge('request body', limit, 'maxBodyBytes', size);
}

/**
 * Counts and logs an error answer, as both HTTP paths do (express's error middleware and the
 * fast path); returns its code for the access line.
 */
export function noteError(logger: Logger, err: unknown, reqId: string | undefined, method: string | undefined, url: string | undefined): string {
  const { error } = mapError(err);
  countError(error, 'rest');
  // Only the unexpected gets a stack at error level; every mapped outcome (4xx, 503
  // LEASE_UNCERTAIN, a client that went away mid-wait) is the access line's `code` plus this.
  if (error.code === 'INTERNAL') logger.error({ err, reqId, method, url }, 'request failed');
  else logger.debug({ reqId, code: error.code, detail: error.message }, 'request answered with an error');
  return error.code;
}

/**
 * Answered before the body was read (401 before parsing, 413): do not leave the rest of the
 * body in a kept-alive connection; discard it and close once the answer is sent. A request
 * without a body keeps its connection (whether its parser has finished yet is only timing).
 */
export function discardUnreadBody(req: IncomingMessage, res: ServerResponse): void {
  const length = req.headers['content-length'];
  const hasBody = (length !== undefined && length !== '0') || req.headers['transfer-encoding'] !== undefined;
  if (!hasBody || req.complete) return;
  res.setHeader('Connection', 'close');
  req.resume();
}

/** The single error middleware: everything thrown in a route ends here. */
export function errorMiddleware(logger: Logger): ErrorRequestHandler {
  return (err: unknown, req, res, _next) => {
    const mapped = err instanceof Error ? (fromHttpError(err as HttpError & Error) ?? err) : err;
    res.locals.errorCode = noteError(logger, mapped, res.locals.requestId as string | undefined, req.method, req.originalUrl);
    if (res.headersSent) {
      res.end();
      return;
    }
    discardUnreadBody(req, res);
    sendProblem(res, mapped);
  };
}
