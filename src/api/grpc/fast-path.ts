/**
 * The hot unary reads (`zkgate.v1.Znodes/Get`, `Exists`, `Children`) answered on the HTTP/2
 * stream itself, in front of grpc-js' per-call machinery: its intercepting-call chain, stream
 * decoder, metadata objects and call trackers cost more CPU than the read they carry (a grpc-js
 * unary call took ~3× a REST GET's server CPU, docs/benchmarks.md). These calls do the same work
 * without it: the same decoding (the registered service's deserializer, malformed bytes →
 * INVALID_ARGUMENT), authentication, core call, serialization, error table and trailers, request
 * id in initial and trailing metadata, access-log line, and deadline (`grpc-timeout`, which
 * nearly every real client sends: it ends the call with DEADLINE_EXCEEDED and drops the read's
 * late result, as grpc-js' deadline timer does). Anything out of the plain form — a compressed
 * or non-proto body, a timeout grpc-js would refuse, a shutdown in progress — goes to grpc-js
 * unchanged. test/integration/grpc-fast-path.test.ts holds both paths to identical answers.
 */
import { status, type Metadata } from '@grpc/grpc-js';
import type { IncomingHttpHeaders, OutgoingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import type { Gateway, Principal, Scope } from '../../core/index.js';
import { requestId } from '../access-log.js';
import { logCall, REQUEST_ID_METADATA } from './access-log.js';
import { AUTHORIZATION_METADATA, ERROR_CODE_METADATA, TENANT_METADATA, toServiceError } from './call-context.js';
import { checkDecoded } from './malformed.js';

/** A method answered here: its (lenient) codec as registered with grpc-js, and the body grpc-js' handler runs too. */
export interface FastMethod {
  readonly requestDeserialize: (bytes: Buffer) => unknown;
  readonly responseSerialize: (value: never) => Buffer;
  readonly body: (scope: Scope, request: never) => unknown;
}

/**
 * Takes a new stream when it is a fast call in plain form (then calls `opened` first, for
 * grpc-js' idle accounting, and answers it) and returns true; false leaves it to grpc-js.
 */
export type FastStreams = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, opened: () => void) => boolean;

const FRAME_HEADER = 5;
/** grpc-js' response headers (it always offers these encodings and answers in identity). */
const RESPONSE_HEADERS = { ':status': 200, 'content-type': 'application/grpc+proto', 'grpc-accept-encoding': 'identity,deflate,gzip', 'grpc-encoding': 'identity' };

function header(headers: IncomingHttpHeaders, key: string): string | undefined {
  const v = headers[key];
  const first = Array.isArray(v) ? v[0] : v;
  return first === '' ? undefined : first;
}

/** grpc-js' reading of `grpc-timeout` (its regex, units and rounding), so both paths time a call alike. */
const TIMEOUT = /(\d{1,8})\s*([HMSmun])/;
const TIMEOUT_UNIT_MS: Readonly<Record<string, number>> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 };

/** The call's timeout in ms; undefined without one; null when grpc-js would refuse it (INTERNAL). */
function timeoutMs(headers: IncomingHttpHeaders): number | undefined | null {
  const value = headers['grpc-timeout'];
  if (value === undefined) return undefined;
  const m = TIMEOUT.exec(String(value));
  return m ? (Number(m[1]) * (TIMEOUT_UNIT_MS[m[2] as string] as number)) | 0 : null;
}

/** The request is in the form answered here; else grpc-js answers it. */
function plainForm(headers: IncomingHttpHeaders): boolean {
  const type = headers['content-type'];
  const encoding = headers['grpc-encoding'];
  return (type === 'application/grpc' || type === 'application/grpc+proto') && (encoding === undefined || encoding === 'identity');
}

let fastCalls = 0;
/** How many calls the fast path has taken in this process (tests tell the two paths apart by it). */
export function fastCallsTaken(): number {
  return fastCalls;
}

/** The fast path over `methods` (keyed by `/package.Service/Method`). */
export function grpcFastPath(gw: Gateway, methods: ReadonlyMap<string, FastMethod>, maxMessageBytes: number): FastStreams {
  return (stream, headers, opened) => {
    const path = headers[':path'];
    const method = path === undefined ? undefined : methods.get(path);
    if (!method || gw.shuttingDown || !plainForm(headers)) return false;
    const timeout = timeoutMs(headers);
    if (timeout === null) return false;
    opened();
    fastCalls++;
    serve(gw, method, path as string, maxMessageBytes, stream, headers, timeout);
    return true;
  };
}

function serve(gw: Gateway, method: FastMethod, path: string, maxMessageBytes: number, stream: ServerHttp2Stream, headers: IncomingHttpHeaders, timeout: number | undefined): void {
  const started = performance.now();
  const reqId = requestId(header(headers, REQUEST_ID_METADATA));
  let principal: Principal | undefined;
  let answered = false;
  // As grpc-js: an error event is followed by close, and nothing useful can be sent after it.
  stream.once('error', () => undefined);
  // The deadline: the call ends with DEADLINE_EXCEEDED and whatever ZooKeeper answers later is
  // dropped (`answered`); the reads taken here have no wait to cut short. grpc-js' wording.
  let deadline: NodeJS.Timeout | undefined;
  if (timeout !== undefined) {
    deadline = setTimeout(() => fail(status.DEADLINE_EXCEEDED, 'Deadline exceeded'), timeout);
    stream.once('close', () => clearTimeout(deadline));
  }
  const settle = (): boolean => {
    if (answered) return false;
    answered = true;
    if (deadline !== undefined) clearTimeout(deadline);
    return true;
  };

  /** Ends the call with a non-OK status (a trailers-only response) and its access line. */
  const fail = (code: number, details: string, metadata?: Metadata): void => {
    if (!settle()) return;
    const trailers: OutgoingHttpHeaders = { 'grpc-status': code, 'grpc-message': encodeURI(details), ':status': 200, 'content-type': 'application/grpc+proto', ...metadata?.toHttp2Headers() };
    trailers[REQUEST_ID_METADATA] = reqId;
    logCall(gw.logger, { reqId, method: path, code, started, principal, errorCode: metadata?.get(ERROR_CODE_METADATA)[0] });
    if (!stream.closed && !stream.destroyed) stream.respond(trailers, { endStream: true });
    stream.resume(); // drop whatever else the client sends
  };
  const failWith = (err: unknown): void => {
    const e = toServiceError(err, gw.logger);
    fail(e.code ?? status.INTERNAL, e.details ?? e.message, e.metadata);
  };
  const succeed = (value: unknown): void => {
    if (!settle()) return;
    let message: Buffer | undefined;
    let code: number = status.OK;
    let details = 'OK';
    try {
      message = method.responseSerialize(value as never);
    } catch {
      [code, details] = [status.INTERNAL, 'Error serializing response'];
    }
    if (message && message.length > maxMessageBytes) {
      [code, details] = [status.RESOURCE_EXHAUSTED, `Sent message larger than max (${message.length + FRAME_HEADER} vs. ${maxMessageBytes})`];
    }
    logCall(gw.logger, { reqId, method: path, code, started, principal, errorCode: undefined });
    if (stream.closed || stream.destroyed) return;
    // As grpc-js: the headers go first, then the message, or the status that replaces it.
    stream.respond({ ...RESPONSE_HEADERS, [REQUEST_ID_METADATA]: reqId }, { waitForTrailers: true });
    const trailers: OutgoingHttpHeaders = { 'grpc-status': code, 'grpc-message': encodeURI(details), [REQUEST_ID_METADATA]: reqId };
    stream.once('wantTrailers', () => stream.sendTrailers(trailers));
    if (code !== status.OK || !message) return void stream.end();
    const frame = Buffer.allocUnsafe(FRAME_HEADER + message.length);
    frame[0] = 0;
    frame.writeUInt32BE(message.length, 1);
    message.copy(frame, FRAME_HEADER);
    stream.end(frame);
  };
  const run = (body: Buffer): void => {
    try {
      // In grpc-js' order: an undecodable message is refused before the caller is authenticated.
      const request = checkDecoded(method.requestDeserialize(body.subarray(FRAME_HEADER)));
      principal = gw.authenticate({ authorization: header(headers, AUTHORIZATION_METADATA), tenant: header(headers, TENANT_METADATA) });
      Promise.resolve(method.body(gw.as(principal), request as never)).then(succeed, failWith);
    } catch (err) {
      failWith(err);
    }
  };

  const chunks: Buffer[] = [];
  let received = 0;
  stream.on('data', (chunk: Buffer) => {
    if (answered) return;
    chunks.push(chunk);
    received += chunk.length;
    if (received < FRAME_HEADER) return;
    const head = chunks.length === 1 ? chunk : Buffer.concat(chunks);
    const length = head.readUInt32BE(1);
    // grpc-js' limit and wording for a message over grpc.maxMessageBytes.
    if (length > maxMessageBytes) fail(status.RESOURCE_EXHAUSTED, `Received message larger than max (${length} vs ${maxMessageBytes})`);
    else if (received > FRAME_HEADER + length) fail(status.UNIMPLEMENTED, `Received a second request message for server streaming method ${path}`);
  });
  stream.once('end', () => {
    if (answered) return;
    const body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
    // A unary call carries exactly one message (grpc-js' wording, streaming method included).
    if (body.length < FRAME_HEADER || body.length < FRAME_HEADER + body.readUInt32BE(1)) return fail(status.UNIMPLEMENTED, `Received no request message for server streaming method ${path}`);
    run(body);
  });
}
