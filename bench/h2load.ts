/**
 * The same GET driven by `h2load` (Debian's `nghttp2-client`, a C load generator) for both
 * transports: h2c with `application/grpc` and a framed `zkgate.v1.Znodes/Get` request for
 * gRPC, `--h1` keep-alive for REST. grpc-js' client costs more CPU per call than the gateway's
 * server side does (docs/benchmarks.md), so on a 2-core machine a grpc-js load generator
 * measures itself; h2load costs both transports about the same and little, so "gRPC ÷ REST"
 * with it says what the gateway's two servers cost. h2load cannot read gRPC trailers: a call
 * is checked once with `node:http2` (grpc-status 0, the node's path in the message) before the
 * rounds, so an error answer cannot pass for throughput.
 */
import { execFile } from 'node:child_process';
import { connect } from 'node:http2';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { loadContract } from '../src/api/grpc/server.js';

const run = promisify(execFile);

export interface H2Target {
  readonly httpPort: number;
  readonly grpcPort: number;
}

/** A framed `Znodes/Get` request for `path` (`noCache`: every call reads ZooKeeper), written to a file for h2load's `-d`. */
export function grpcGetBody(path: string): { bytes: Buffer; file: string } {
  const codec = (loadContract()['zkgate.v1.Znodes'] as unknown as Record<string, { requestSerialize(v: unknown): Buffer }>).Get as { requestSerialize(v: unknown): Buffer };
  const message = codec.requestSerialize({ path, noCache: true });
  const bytes = Buffer.alloc(5 + message.length);
  bytes.writeUInt32BE(message.length, 1);
  message.copy(bytes, 5);
  const file = join(tmpdir(), `zkgate-bench-get-${process.pid}.bin`);
  writeFileSync(file, bytes);
  return { bytes, file };
}

/** One gRPC Get over `node:http2` with the body h2load sends: throws unless it answers OK with the node. */
export async function checkGrpcGet(port: number, body: Buffer, path: string): Promise<void> {
  const session = connect(`http://127.0.0.1:${port}`);
  try {
    const answer = await new Promise<{ status: string | undefined; data: Buffer }>((resolve, reject) => {
      const req = session.request({ ':method': 'POST', ':path': '/zkgate.v1.Znodes/Get', 'content-type': 'application/grpc', te: 'trailers' });
      const chunks: Buffer[] = [];
      let status: string | undefined;
      req.on('response', (h) => (status ??= h['grpc-status'] as string | undefined));
      req.on('trailers', (t) => (status = t['grpc-status'] as string | undefined));
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('error', reject);
      req.on('close', () => resolve({ status, data: Buffer.concat(chunks) }));
      req.end(body);
    });
    if (answer.status !== '0' || !answer.data.includes(Buffer.from(path))) throw new Error(`h2load's gRPC request is not answered OK (grpc-status ${answer.status})`);
  } finally {
    session.close();
  }
}

/**
 * One h2load round: `outstanding` 1 is one connection, one request at a time, for both; 64 is
 * 64 keep-alive connections for REST (as the node:http agent) and 64 streams on one connection
 * for gRPC (as a grpc-js channel). Requests per second; throws unless every answer was 2xx.
 */
export async function h2loadRound(target: H2Target, kind: 'rest' | 'grpc', outstanding: number, ms: number, grpcBodyFile: string): Promise<number> {
  // A round too short for any answer on a loaded machine (`--quick`'s 300 ms at load 13 saw 64
  // streams started and none done) is run again, longer; a failed answer still throws.
  for (let attempt = 0; ; attempt++) {
    const rate = await h2loadOnce(target, kind, outstanding, ms * 2 ** attempt, grpcBodyFile);
    if (rate !== null || attempt >= 3) return rate ?? 0;
  }
}

/** One h2load run: requests per second, or null when none finished (and none failed) in the time. */
async function h2loadOnce(target: H2Target, kind: 'rest' | 'grpc', outstanding: number, ms: number, grpcBodyFile: string): Promise<number | null> {
  const duration = ['-D', `${Math.max(1, Math.round(ms))}ms`];
  const args =
    kind === 'rest'
      ? ['--h1', '-c', String(outstanding), '-m', '1', ...duration, `http://127.0.0.1:${target.httpPort}/v1/nodes/bench?cache=false`]
      : ['-c', '1', '-m', String(outstanding), ...duration, '-d', grpcBodyFile, '-H', 'content-type: application/grpc', '-H', 'te: trailers', `http://127.0.0.1:${target.grpcPort}/zkgate.v1.Znodes/Get`];
  const { stdout } = await run('h2load', args, { maxBuffer: 1 << 20 });
  const rate = /finished in [^,]+, ([\d.]+) req\/s/.exec(stdout);
  const codes = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(stdout);
  const done = /requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored/.exec(stdout);
  if (!rate || !codes || !done) throw new Error(`h2load: unexpected output\n${stdout}`);
  if (Number(done[1]) === 0 && Number(done[3]) + Number(done[4]) === 0) return null;
  if (Number(codes[1]) === 0 || Number(codes[3]) + Number(codes[4]) > 0 || Number(done[3]) + Number(done[4]) > 0) {
    throw new Error(`h2load ${kind}: not every answer succeeded\n${stdout}`);
  }
  return Number(rate[1]);
}
