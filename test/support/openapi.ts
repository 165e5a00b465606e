/**
 * Checks REST responses against openapi.yaml (the REST contract) with Ajv (JSON Schema 2020-12),
 * and a small fetch-based client that checks every response it sees and records which
 * documented (method, path template, status) triples the tests produced.
 *
 * What is checked for a response: that its URL matches a documented path template (the znode
 * routes' `{path}` is a catch-all that may contain `/`), that the method and status are
 * documented there (`x-zkgate-unlisted-methods` on a path item, or the document's
 * `x-zkgate-unmatched-route`, describe the answers to anything else), that required response
 * headers are present and every documented header that is present matches its schema, that the
 * content type is one the response documents, and that a JSON body matches the schema. HEAD
 * responses are checked for status and headers only (they have no body).
 */
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { parse as parseYaml } from 'yaml';
import Ajv2020Module from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { projectFile } from '../../src/project-files.js';

// The two packages are CommonJS with `exports.default`; NodeNext sees the module object.
type AjvCtor = typeof Ajv2020Module.default;
const Ajv2020 = ((Ajv2020Module as unknown as { default?: AjvCtor }).default ?? Ajv2020Module) as AjvCtor;
type AddFormats = typeof addFormatsModule.default;
const addFormats = ((addFormatsModule as unknown as { default?: AddFormats }).default ?? addFormatsModule) as AddFormats;

type Obj = Record<string, unknown>;

/** What a response looked like, as far as the contract is concerned. */
export interface ResponseToCheck {
  readonly status: number;
  readonly headers: Headers;
  /** Parsed JSON for JSON media types, else the text or bytes (ignored for HEAD). */
  readonly body: unknown;
}

/** Which documented response a checked response was. */
export interface CheckResult {
  /** operationId, or `(unlisted method)` / `(unmatched route)`. */
  readonly operationId: string;
  /** The path template (`/v1/nodes/{path}`), or `*` for an unmatched URL. */
  readonly template: string;
  /** The key recorded for coverage: `METHOD template status` (METHOD is `OTHER` for unlisted methods). */
  readonly key: string;
}

const METHODS = ['get', 'head', 'post', 'put', 'delete', 'patch', 'options', 'trace'] as const;
const SCHEMA_DOC_ID = 'zkgate-openapi-schemas';

interface Route {
  readonly template: string;
  readonly regex: RegExp;
  /** Static characters in the template: more specific templates are tried first. */
  readonly weight: number;
}

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function templateRoute(template: string): Route {
  if (!template.includes('{')) {
    // express matches static routes with or without one trailing slash.
    const esc = template.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/\/$/, '');
    return { template, regex: new RegExp(`^${esc}/?$`), weight: 1000 + template.length };
  }
  let weight = 0;
  const source = template
    .split(/(\{[^}]+\})/)
    .map((part) => {
      const m = /^\{([^}]+)\}$/.exec(part);
      if (!m) {
        weight += part.length;
        return part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      }
      // `{path}` is the znode catch-all: the rest of the URL, slashes included.
      return m[1] === 'path' ? '(.+)' : '([^/]+)';
    })
    .join('');
  return { template, regex: new RegExp(`^${source}$`), weight };
}

/** Rewrites `#/components/schemas/X` references so Ajv resolves them in the registered schema document. */
function rewriteRefs(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(rewriteRefs);
  if (!isObj(value)) return value;
  const out: Obj = {};
  for (const [k, v] of Object.entries(value)) {
    if (k === '$ref' && typeof v === 'string' && v.startsWith('#/components/schemas/')) {
      out[k] = `${SCHEMA_DOC_ID}#/$defs/${v.slice('#/components/schemas/'.length)}`;
    } else {
      out[k] = rewriteRefs(v);
    }
  }
  return out;
}

function formatAjvErrors(errors: readonly ErrorObject[] | null | undefined): string {
  return (errors ?? [])
    .map((e) => `    ${e.instancePath || '(root)'} ${e.message ?? ''}${Object.keys(e.params).length ? ` ${JSON.stringify(e.params)}` : ''} [${e.schemaPath}]`)
    .join('\n');
}

function preview(body: unknown): string {
  if (body === undefined) return '(none)';
  if (Buffer.isBuffer(body)) return `<${body.length} bytes>`;
  const s = typeof body === 'string' ? body : JSON.stringify(body);
  return s.length > 600 ? `${s.slice(0, 600)}…` : s;
}

function isJsonMedia(mediaType: string): boolean {
  return mediaType === 'application/json' || mediaType.endsWith('+json');
}

/** The error thrown when a response does not match the contract. */
export class ContractError extends Error {
  override readonly name = 'ContractError';
}

/** openapi.yaml, loaded and ready to check responses against. */
export class OpenApiContract {
  readonly doc: Obj;
  private readonly ajv: InstanceType<AjvCtor>;
  private readonly routes: Route[];
  private readonly validators = new Map<string, ValidateFunction>();

  constructor(doc: Obj) {
    this.doc = doc;
    this.ajv = new Ajv2020({ strict: true, allErrors: true, allowUnionTypes: true });
    addFormats(this.ajv);
    const components = (doc.components ?? {}) as Obj;
    this.ajv.addSchema({ $id: SCHEMA_DOC_ID, $defs: rewriteRefs(components.schemas ?? {}) as Obj });
    this.routes = Object.keys(doc.paths as Obj)
      .map(templateRoute)
      .sort((a, b) => b.weight - a.weight);
  }

  /** Follows `$ref`s (JSON pointers into this document) until a concrete object. */
  resolve<T = Obj>(value: unknown): T {
    let v = value;
    for (let i = 0; i < 20 && isObj(v) && typeof v.$ref === 'string'; i++) {
      const ref = v.$ref;
      if (!ref.startsWith('#/')) throw new Error(`openapi: unsupported $ref ${ref}`);
      v = ref
        .slice(2)
        .split('/')
        .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
        .reduce<unknown>((node, key) => (isObj(node) ? node[key] : undefined), this.doc);
      if (v === undefined) throw new Error(`openapi: dangling $ref ${ref}`);
    }
    return v as T;
  }

  /** The path template a concrete URL path (percent-encoded, no query) belongs to. */
  templateOf(pathname: string): string | undefined {
    return this.routes.find((r) => r.regex.test(pathname))?.template;
  }

  /** Every documented `METHOD template status` (the keys `check` returns), for coverage. */
  documented(): string[] {
    const out: string[] = [];
    for (const [template, item] of Object.entries(this.doc.paths as Obj)) {
      const pathItem = this.resolve(item);
      for (const m of METHODS) {
        const op = pathItem[m];
        if (!isObj(op)) continue;
        for (const status of Object.keys(op.responses as Obj)) out.push(`${m.toUpperCase()} ${template} ${status}`);
      }
      const unlisted = pathItem['x-zkgate-unlisted-methods'];
      if (unlisted) out.push(`OTHER ${template} ${this.statusOfExtension(unlisted)}`);
    }
    const unmatched = this.doc['x-zkgate-unmatched-route'];
    if (unmatched) out.push(`OTHER * ${this.statusOfExtension(unmatched)}`);
    return out;
  }

  /**
   * Compiles every response and header schema of the document in Ajv's strict mode, so a typo
   * in a response no test produces is still caught. Returns how many schemas were compiled.
   * @throws Error from Ajv naming the bad keyword
   */
  compileAll(): number {
    let n = 0;
    const compileResponse = (where: string, r: unknown): void => {
      const response = this.resolve(r);
      for (const [name, h] of Object.entries((response.headers ?? {}) as Obj)) {
        const header = this.resolve(h);
        if (header.schema === undefined) continue;
        this.validator(`${where} header ${name}`, header.schema);
        n++;
      }
      for (const [type, media] of Object.entries((response.content ?? {}) as Obj)) {
        const schema = this.resolve(media).schema;
        if (schema === undefined) continue;
        this.validator(`${where} ${type}`, schema);
        n++;
      }
    };
    for (const [template, item] of Object.entries(this.doc.paths as Obj)) {
      const pathItem = this.resolve(item);
      for (const m of METHODS) {
        const op = pathItem[m];
        if (!isObj(op)) continue;
        for (const [status, r] of Object.entries(op.responses as Obj)) compileResponse(`${m.toUpperCase()} ${template} ${status}`, r);
      }
    }
    for (const [name, schema] of Object.entries(((this.doc.components as Obj).schemas ?? {}) as Obj)) {
      this.validator(`component ${name}`, schema);
      n++;
    }
    return n;
  }

  private statusOfExtension(ext: unknown): string {
    const response = this.resolve(ext);
    const content = (response.content ?? {}) as Obj;
    const schema = this.resolve<Obj>(Object.values(content)[0] ?? {}).schema as Obj | undefined;
    const allOf = (schema?.allOf ?? []) as Obj[];
    for (const part of allOf) {
      const status = ((part.properties ?? {}) as Obj).status as Obj | undefined;
      if (status && typeof status.const === 'number') return String(status.const);
    }
    throw new Error('openapi: an x-zkgate response extension must pin its status with `status: {const: N}`');
  }

  /**
   * Checks one response.
   * @param method - the request method (any case).
   * @param url - the request URL or path (`/v1/nodes/a/b?x=1`), percent-encoded as sent.
   * @throws ContractError naming the operation, the status and every mismatch.
   */
  check(method: string, url: string, res: ResponseToCheck): CheckResult {
    const where = `${method.toUpperCase()} ${url} → ${res.status}`;
    const target = this.locate(method, rawPathname(url));
    if (!target) throw new ContractError(`openapi: ${where}: undocumented path or method`);
    const { operationId, keyMethod, keyTemplate, responses } = target;
    const status = String(res.status);
    const documentedStatus = [status, `${status[0]}XX`, 'default'].find((s) => s in responses);
    const name = `${operationId} (${keyMethod} ${keyTemplate}${documentedStatus ? ` ${documentedStatus}` : ''})`;
    const fail = (why: string): never => {
      throw new ContractError(`openapi: ${where} does not match ${name}: ${why}\n  body: ${preview(res.body)}`);
    };
    if (!documentedStatus) return fail(`status ${status} is not documented (documented: ${Object.keys(responses).join(', ')})`);
    const response = this.resolve(responses[documentedStatus]);
    const problems = this.headerProblems(response, res.headers);
    // HEAD responses have no body, whatever their status.
    if (method.toLowerCase() !== 'head') problems.push(...this.bodyProblems(response, res, `${keyMethod} ${keyTemplate} ${documentedStatus}`));
    if (problems.length) fail(`\n  - ${problems.join('\n  - ')}`);
    return { operationId, template: keyTemplate, key: `${keyMethod} ${keyTemplate} ${documentedStatus}` };
  }

  /** The documented responses for a method and URL path, or undefined when nothing describes them. */
  private locate(method: string, pathname: string): { operationId: string; keyMethod: string; keyTemplate: string; responses: Obj } | undefined {
    const template = this.templateOf(pathname);
    const pathItem = template ? this.resolve((this.doc.paths as Obj)[template]) : undefined;
    const op = pathItem?.[method.toLowerCase()];
    if (template && isObj(op)) {
      const keyMethod = method.toUpperCase();
      return { operationId: String(op.operationId ?? `${keyMethod} ${template}`), keyMethod, keyTemplate: template, responses: op.responses as Obj };
    }
    const unlisted = pathItem?.['x-zkgate-unlisted-methods'];
    const ext = unlisted ?? this.doc['x-zkgate-unmatched-route'];
    if (!ext) return undefined;
    return {
      operationId: unlisted ? '(unlisted method)' : '(unmatched route)',
      keyMethod: 'OTHER',
      keyTemplate: unlisted ? (template as string) : '*',
      responses: { [this.statusOfExtension(ext)]: ext },
    };
  }

  /** Required headers that are missing, and present documented headers that do not match their schema. */
  private headerProblems(response: Obj, headers: Headers): string[] {
    const problems: string[] = [];
    for (const [name, h] of Object.entries((response.headers ?? {}) as Obj)) {
      const header = this.resolve(h);
      const value = headers.get(name);
      if (value === null) {
        if (header.required === true) problems.push(`required header ${name} is missing`);
        continue;
      }
      if (!header.schema) continue;
      const validate = this.validator(`header ${JSON.stringify(header.schema)}`, header.schema);
      // Header values are text; numeric schemas are checked against the number they spell.
      const numeric = /^-?\d+(\.\d+)?$/.test(value);
      if (!validate(value) && !(numeric && validate(Number(value)))) {
        problems.push(`header ${name}: ${JSON.stringify(value)} does not match\n${formatAjvErrors(validate.errors)}`);
      }
    }
    return problems;
  }

  /** Content-type and (for JSON) schema mismatches of the body. */
  private bodyProblems(response: Obj, res: ResponseToCheck, cacheKey: string): string[] {
    const content = response.content as Obj | undefined;
    const contentType = res.headers.get('content-type');
    const empty = res.body === undefined || res.body === '' || (Buffer.isBuffer(res.body) && res.body.length === 0);
    if (!content) return empty ? [] : [`no body is documented but one was sent (${contentType ?? 'no content type'})`];
    if (!contentType) return [`no Content-Type; documented: ${Object.keys(content).join(', ')}`];
    const mediaType = (contentType.split(';')[0] as string).trim().toLowerCase();
    const key = [mediaType, `${mediaType.split('/')[0]}/*`, '*/*'].find((k) => k in content);
    if (!key) return [`content type ${mediaType} is not documented (documented: ${Object.keys(content).join(', ')})`];
    const schema = this.resolve(content[key]).schema;
    if (!isJsonMedia(mediaType) || schema === undefined) return [];
    const validate = this.validator(`${cacheKey} ${key}`, schema);
    return validate(res.body) ? [] : [`body does not match the ${key} schema:\n${formatAjvErrors(validate.errors)}`];
  }

  private validator(cacheKey: string, schema: unknown): ValidateFunction {
    let v = this.validators.get(cacheKey);
    if (!v) {
      v = this.ajv.compile(rewriteRefs(schema) as Obj);
      this.validators.set(cacheKey, v);
    }
    return v;
  }
}

/** The path part of a URL as sent (no normalisation of `.`/`..` or percent-escapes). */
function rawPathname(url: string): string {
  const noScheme = url.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/]*/i, '');
  const end = noScheme.search(/[?#]/);
  return end < 0 ? noScheme : noScheme.slice(0, end);
}

let loaded: OpenApiContract | undefined;

/** The repository's openapi.yaml (parsed once). */
export function contract(): OpenApiContract {
  loaded ??= new OpenApiContract(parseYaml(readFileSync(projectFile('openapi.yaml'), 'utf8')) as Obj);
  return loaded;
}

/**
 * Checks a response against openapi.yaml.
 * @throws ContractError naming the operation, the status and the Ajv errors when the response is
 *   undocumented or does not match.
 */
export function checkResponse(method: string, url: string, res: ResponseToCheck): CheckResult {
  return contract().check(method, url, res);
}

// ---------------------------------------------------------------------------------------------
// A validating client
// ---------------------------------------------------------------------------------------------

/** A response as the tests see it; it has already been checked against the contract. */
export interface RestResponse {
  readonly status: number;
  readonly headers: Headers;
  /** Parsed JSON (JSON media types), text (text, YAML, JavaScript), else the bytes; undefined for HEAD and empty bodies. */
  readonly body: unknown;
  readonly bytes: Buffer;
  readonly operationId: string;
}

export interface RequestOptions {
  /** Extra request headers. */
  readonly headers?: Readonly<Record<string, string>>;
  /** Query parameters, appended to the path. */
  readonly query?: Readonly<Record<string, string | number | boolean>>;
  /**
   * Send the path exactly as given (node:http instead of fetch), so `.`/`..` segments and odd
   * escapes reach the server un-normalised.
   */
  readonly exactPath?: boolean;
}

export interface RestClient {
  readonly baseUrl: string;
  /** `METHOD template status` of every checked response. */
  readonly covered: Set<string>;
  /**
   * A JSON request: an object body is serialised; a string body is sent verbatim as
   * `application/json` (for malformed JSON); no body when undefined. Asks for JSON.
   */
  json(method: string, path: string, body?: unknown, opts?: RequestOptions): Promise<RestResponse>;
  /** A raw request: bytes sent as `application/octet-stream` (none when undefined); asks for raw bytes. */
  raw(method: string, path: string, bytes?: Uint8Array, opts?: RequestOptions): Promise<RestResponse>;
  /** Any request; `body` is sent as is. */
  request(method: string, path: string, init?: RequestOptions & { body?: string | Uint8Array }): Promise<RestResponse>;
}

function withQuery(path: string, query: RequestOptions['query']): string {
  if (!query) return path;
  const qs = Object.entries(query)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`)
    .join('&');
  return qs ? `${path}${path.includes('?') ? '&' : '?'}${qs}` : path;
}

function decodeBody(method: string, headers: Headers, bytes: Buffer): unknown {
  if (method.toUpperCase() === 'HEAD' || bytes.length === 0) return undefined;
  const mediaType = ((headers.get('content-type') ?? '').split(';')[0] as string).trim().toLowerCase();
  if (isJsonMedia(mediaType)) {
    try {
      return JSON.parse(bytes.toString('utf8')) as unknown;
    } catch {
      return bytes.toString('utf8');
    }
  }
  if (/^text\/|yaml|javascript/.test(mediaType)) return bytes.toString('utf8');
  return bytes;
}

function exactRequest(
  url: URL,
  path: string,
  method: string,
  headers: Record<string, string>,
  body: string | Uint8Array | undefined,
): Promise<{ status: number; headers: Headers; bytes: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: url.hostname, port: url.port, method, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const h = new Headers();
        for (let i = 0; i < res.rawHeaders.length; i += 2) h.append(res.rawHeaders[i] as string, res.rawHeaders[i + 1] as string);
        resolve({ status: res.statusCode ?? 0, headers: h, bytes: Buffer.concat(chunks) });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * A client for a gateway at `baseUrl` (`http://127.0.0.1:PORT`) that checks every response
 * against openapi.yaml (throwing `ContractError`) and records it in `covered`.
 * @param opts.coverage - a set shared by several clients, e.g. one per gateway.
 */
export function restClient(baseUrl: string, opts: { coverage?: Set<string> } = {}): RestClient {
  const base = new URL(baseUrl);
  const covered = opts.coverage ?? new Set<string>();
  const c = contract();

  async function request(method: string, path: string, init: RequestOptions & { body?: string | Uint8Array } = {}): Promise<RestResponse> {
    const target = withQuery(path, init.query);
    const headers: Record<string, string> = { ...init.headers };
    let status: number;
    let resHeaders: Headers;
    let bytes: Buffer;
    if (init.exactPath) {
      if (init.body !== undefined) headers['content-length'] = String(Buffer.byteLength(init.body));
      ({ status, headers: resHeaders, bytes } = await exactRequest(base, target, method, headers, init.body));
    } else {
      const res = await fetch(new URL(target, base), { method, headers, body: init.body as unknown as BodyInit | undefined, redirect: 'manual' });
      status = res.status;
      resHeaders = res.headers;
      bytes = Buffer.from(await res.arrayBuffer());
    }
    const body = decodeBody(method, resHeaders, bytes);
    const checked = c.check(method, target, { status, headers: resHeaders, body });
    covered.add(checked.key);
    return { status, headers: resHeaders, body, bytes, operationId: checked.operationId };
  }

  return {
    baseUrl,
    covered,
    request,
    json(method, path, body, o = {}) {
      const headers: Record<string, string> = { accept: 'application/json', ...o.headers };
      let payload: string | undefined;
      if (body !== undefined) {
        headers['content-type'] ??= 'application/json';
        payload = typeof body === 'string' ? body : JSON.stringify(body);
      }
      return request(method, path, { ...o, headers, body: payload });
    },
    raw(method, path, bytes, o = {}) {
      const headers: Record<string, string> = { accept: 'application/octet-stream', ...o.headers };
      if (bytes !== undefined) headers['content-type'] ??= 'application/octet-stream';
      return request(method, path, { ...o, headers, body: bytes });
    },
  };
}
