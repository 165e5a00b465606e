/**
 * Requests made with the real curl binary (as the seed walk-throughs and cron scripts do); every
 * answer is checked against openapi.yaml like the validating client's.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { checkResponse } from './openapi.js';

const run = promisify(execFile);

export interface CurlAnswer {
  readonly status: number;
  readonly body: unknown;
}

/** `curl -s -i -X METHOD base+path [-d json]`; parses the status, headers and JSON body. */
export async function curl(base: string, method: string, path: string, json?: unknown): Promise<CurlAnswer> {
  const args = ['-s', '-i', '-X', method, `${base}${path}`];
  if (json !== undefined) args.push('-H', 'content-type: application/json', '-d', JSON.stringify(json));
  const { stdout } = await run('/usr/bin/curl', args, { maxBuffer: 4 << 20 });
  const split = stdout.indexOf('\r\n\r\n');
  const head = stdout.slice(0, split).split('\r\n');
  const text = stdout.slice(split + 4);
  const status = Number((head[0] as string).split(' ')[1]);
  const headers = new Headers();
  for (const line of head.slice(1)) {
    const i = line.indexOf(':');
    headers.append(line.slice(0, i).trim(), line.slice(i + 1).trim());
  }
  const body: unknown = text && (headers.get('content-type') ?? '').includes('json') ? JSON.parse(text) : text || undefined;
  checkResponse(method, `${base}${path}`, { status, headers, body });
  return { status, body };
}
