/**
 * Znode data in JSON: bytes travel as UTF-8 text or base64, always with an explicit encoding.
 * Shared by the JSON transports (REST, WebSocket).
 */
import { ZkgateError, invalidArgument } from '../core/index.js';

export type Encoding = 'utf8' | 'base64';
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Decodes `data` given in `encoding` (default utf8). @throws INVALID_ARGUMENT for bad base64 */
export function decodeData(data: unknown, encoding: unknown): Buffer {
  if (data === undefined || data === null) return Buffer.alloc(0);
  if (typeof data !== 'string') throw invalidArgument('data', 'must be a string');
  const enc = parseEncoding(encoding) ?? 'utf8';
  if (enc === 'utf8') return Buffer.from(data, 'utf8');
  if (!BASE64.test(data)) throw invalidArgument('data', 'is not valid base64 (RFC 4648, with padding)');
  return Buffer.from(data, 'base64');
}

/** Parses an encoding name; undefined when absent. @throws INVALID_ARGUMENT */
export function parseEncoding(value: unknown): Encoding | undefined {
  if (value === undefined) return undefined;
  if (value === 'utf8' || value === 'base64') return value;
  if (value === 'utf-8') return 'utf8';
  throw invalidArgument('encoding', 'must be utf8 or base64');
}

/** Encodes bytes: as asked, else utf8 when they are valid UTF-8 and base64 otherwise. */
export function encodeData(data: Buffer, asked?: Encoding): { data: string; encoding: Encoding } {
  if (asked === 'base64') return { data: data.toString('base64'), encoding: 'base64' };
  try {
    return { data: utf8.decode(data), encoding: 'utf8' };
  } catch {
    if (asked === 'utf8') {
      throw new ZkgateError('INVALID_ARGUMENT', 'data is not valid UTF-8; ask for encoding=base64', { field: 'encoding' });
    }
    return { data: data.toString('base64'), encoding: 'base64' };
  }
}
