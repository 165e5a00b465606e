/**
 * The service instance document, byte-compatible with Curator 5.4 x-discovery's
 * `JsonInstanceSerializer`: one JSON object per instance node `<base>/<service>/<id>` with the
 * fields in Curator's order (name, id, address, port, sslPort, payload, registrationTimeUTC,
 * serviceType, uriSpec). Curator 5.4 does not write `enabled` but reads it; it is written here
 * only when false. Curator cannot read a payload that is a JSON array (its payload carries
 * Jackson type information), so one is refused; an object payload read back as a Java class by
 * a Curator consumer needs that class's `"@class"` member, which is passed through untouched.
 */
import { invalidArgument } from '../errors.js';

/** Curator's `ServiceType`; lease-owned instances are always `DYNAMIC` (ephemeral nodes). */
export const SERVICE_TYPES = ['DYNAMIC', 'STATIC', 'PERMANENT', 'DYNAMIC_SEQUENTIAL'] as const;
export type ServiceType = (typeof SERVICE_TYPES)[number];

/** One token of a Curator `UriSpec`: a literal, or a variable replaced when the URI is built. */
export interface UriSpecPart {
  readonly value: string;
  readonly variable: boolean;
}

/** Curator's `UriSpec` as it is serialized. */
export interface UriSpec {
  readonly parts: readonly UriSpecPart[];
}

/** A JSON value (a payload). */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** The document of one instance, as Curator reads and writes it. */
export interface InstanceDocument {
  readonly name: string;
  readonly id: string;
  readonly address: string | null;
  readonly port: number | null;
  readonly sslPort: number | null;
  readonly payload: JsonValue;
  /** ms since the epoch. */
  readonly registrationTimeUTC: number;
  readonly serviceType: ServiceType;
  readonly uriSpec: UriSpec | null;
  /** Absent from Curator 5.4's documents: true. */
  readonly enabled: boolean;
}

/** What a provider may set on its instance (register and update). */
export interface InstanceFields {
  readonly address?: string;
  readonly port?: number | null;
  readonly sslPort?: number | null;
  readonly payload?: JsonValue;
  /** A template (`{scheme}://{address}:{port}/api`) or Curator's serialized form. */
  readonly uriSpec?: string | UriSpec | null;
  readonly enabled?: boolean;
}

const MAX_ADDRESS = 1024;

function port(field: string, v: unknown): number | null {
  if (v === null) return null;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 65535) throw invalidArgument(field, 'must be an integer from 0 to 65535, or null');
  return v;
}

/**
 * Parses a URI template the way Curator's `UriSpec(String)` does: `{name}` is a variable (its
 * name trimmed), everything else literal text; `[` and `]` as variables stand for braces.
 * @throws INVALID_ARGUMENT naming `uriSpec`
 */
export function parseUriTemplate(template: string): UriSpec {
  const parts: UriSpecPart[] = [];
  let inside = false;
  for (const token of template.split(/([{}])/)) {
    if (token === '') continue;
    if (token === '{') {
      if (inside) throw invalidArgument('uriSpec', '{ is not allowed inside of a variable specification');
      inside = true;
    } else if (token === '}') {
      if (!inside) throw invalidArgument('uriSpec', '} must be preceded by {');
      inside = false;
    } else {
      parts.push({ value: inside ? token.trim() : token, variable: inside });
    }
  }
  if (inside) throw invalidArgument('uriSpec', 'final variable not closed - expected }');
  return { parts };
}

function uriSpecOf(v: unknown): UriSpec | null {
  if (v === null) return null;
  if (typeof v === 'string') return parseUriTemplate(v);
  const parts = typeof v === 'object' && !Array.isArray(v) ? (v as { parts?: unknown }).parts : undefined;
  if (!Array.isArray(parts) || Object.keys(v as object).length !== 1) {
    throw invalidArgument('uriSpec', 'must be a template string such as "{scheme}://{address}:{port}", {"parts": [...]}, or null');
  }
  return {
    parts: parts.map((p: unknown, i) => {
      const part = p as { value?: unknown; variable?: unknown };
      if (typeof p !== 'object' || p === null || typeof part.value !== 'string' || typeof part.variable !== 'boolean' || Object.keys(p).length !== 2) {
        throw invalidArgument(`uriSpec.parts.${i}`, 'must be {"value": string, "variable": boolean}');
      }
      return { value: part.value, variable: part.variable };
    }),
  };
}

function payloadOf(v: unknown): JsonValue {
  // Curator's payload carries Jackson type information: it cannot read a bare array.
  if (Array.isArray(v)) throw invalidArgument('payload', 'a JSON array cannot be read by Curator (wrap it in an object)');
  return v as JsonValue;
}

/**
 * Validates the provider-settable fields of a request (absent ones stay absent).
 * @throws INVALID_ARGUMENT naming the first bad field
 */
export function checkFields(input: Record<string, unknown>): InstanceFields {
  const out: { -readonly [K in keyof InstanceFields]: InstanceFields[K] } = {};
  if (input.address !== undefined) {
    const a = input.address;
    if (typeof a !== 'string' || a.trim() === '' || a.length > MAX_ADDRESS) throw invalidArgument('address', `must be a host name or IP address (1 to ${MAX_ADDRESS} characters)`);
    out.address = a;
  }
  if (input.port !== undefined) out.port = port('port', input.port);
  if (input.sslPort !== undefined) out.sslPort = port('sslPort', input.sslPort);
  if (input.payload !== undefined) out.payload = payloadOf(input.payload);
  if (input.uriSpec !== undefined) out.uriSpec = uriSpecOf(input.uriSpec);
  if (input.enabled !== undefined) {
    if (typeof input.enabled !== 'boolean') throw invalidArgument('enabled', 'must be true or false');
    out.enabled = input.enabled;
  }
  return out;
}

/** A new DYNAMIC instance's document. */
export function newDocument(name: string, id: string, f: InstanceFields, now = Date.now()): InstanceDocument {
  if (f.address === undefined) throw invalidArgument('address', 'is required');
  return withFields({ name, id, address: null, port: null, sslPort: null, payload: null, registrationTimeUTC: now, serviceType: 'DYNAMIC', uriSpec: null, enabled: true }, f);
}

/** The document with `f`'s fields replaced (name, id, registration time and type never change). */
export function withFields(doc: InstanceDocument, f: InstanceFields): InstanceDocument {
  const uriSpec = f.uriSpec === undefined ? doc.uriSpec : typeof f.uriSpec === 'string' ? parseUriTemplate(f.uriSpec) : f.uriSpec;
  return {
    ...doc,
    ...(f.address !== undefined ? { address: f.address } : {}),
    ...(f.port !== undefined ? { port: f.port } : {}),
    ...(f.sslPort !== undefined ? { sslPort: f.sslPort } : {}),
    ...(f.payload !== undefined ? { payload: f.payload } : {}),
    ...(f.enabled !== undefined ? { enabled: f.enabled } : {}),
    uriSpec,
  };
}

/** The bytes Curator's `JsonInstanceSerializer` would write (its field order; `enabled` only when false). */
export function serialize(doc: InstanceDocument): Buffer {
  const { name, id, address, port: p, sslPort, payload, registrationTimeUTC, serviceType, uriSpec, enabled } = doc;
  const out: Record<string, unknown> = { name, id, address, port: p, sslPort, payload, registrationTimeUTC, serviceType, uriSpec };
  if (!enabled) out.enabled = false;
  return Buffer.from(JSON.stringify(out), 'utf8');
}

const intOrNull = (v: unknown): number | null => (typeof v === 'number' && Number.isInteger(v) ? v : null);

/**
 * Reads a document written by Curator or the gateway; `id` and `name` come from the node's
 * path when the document lacks them. Returns a reason string when the bytes are no instance.
 */
export function deserialize(bytes: Buffer, name: string, id: string): InstanceDocument | string {
  let raw: unknown;
  try {
    raw = JSON.parse(bytes.toString('utf8'));
  } catch {
    return 'not JSON';
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return 'not a JSON object';
  const r = raw as Record<string, unknown>;
  let uriSpec: UriSpec | null = null;
  try {
    uriSpec = r.uriSpec === undefined || r.uriSpec === null ? null : uriSpecOf(r.uriSpec);
  } catch {
    return 'uriSpec is not a Curator UriSpec';
  }
  const type = SERVICE_TYPES.includes(r.serviceType as ServiceType) ? (r.serviceType as ServiceType) : 'DYNAMIC';
  return {
    name: typeof r.name === 'string' ? r.name : name,
    id: typeof r.id === 'string' ? r.id : id,
    address: typeof r.address === 'string' ? r.address : null,
    port: intOrNull(r.port),
    sslPort: intOrNull(r.sslPort),
    payload: (r.payload ?? null) as JsonValue,
    registrationTimeUTC: typeof r.registrationTimeUTC === 'number' ? r.registrationTimeUTC : 0,
    serviceType: type,
    uriSpec,
    enabled: r.enabled !== false,
  };
}

/**
 * The instance's URI, built as Curator's `UriSpec.build(instance)`: `scheme` is http, or https
 * when sslPort is set; unknown variables are left out. Null without a uriSpec.
 */
export function buildUri(doc: InstanceDocument): string | null {
  if (!doc.uriSpec) return null;
  const vars: Record<string, string> = {
    '[': '{',
    ']': '}',
    scheme: doc.sslPort !== null ? 'https' : 'http',
    name: doc.name,
    id: doc.id,
    address: doc.address ?? '',
    port: doc.port === null ? '' : String(doc.port),
    'ssl-port': doc.sslPort === null ? '' : String(doc.sslPort),
    'registration-time-utc': String(doc.registrationTimeUTC),
    'service-type': doc.serviceType.toLowerCase(),
  };
  return doc.uriSpec.parts.map((p) => (p.variable ? (vars[p.value] ?? '') : p.value)).join('');
}
