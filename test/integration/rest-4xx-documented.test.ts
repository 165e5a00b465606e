/**
 * Every client error the REST API gives is documented for its route in openapi.yaml. For every
 * documented (path template, method) this sends the bad requests any route of its kind can get —
 * the root of a `{path}` route, a bad path or name, malformed JSON, an unknown field, a wrong
 * content type, a non-number in each integer query parameter, an oversize body, data over
 * `maxDataBytes`, an unknown tenant — and checks each answer against openapi.yaml (status,
 * content type and body schema, e.g. `details.limit` a number). A status or body a route gives
 * but does not document fails here, naming the route and the request, instead of waiting for a
 * user to meet it.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateApiKey, hashApiKey } from '../../src/core/index.js';
import { contract, ContractError, restClient, type RestClient } from '../support/openapi.js';
import { startTestGateway, zkAndGateway, type TestGateway } from '../support/test-gateway.js';

type Obj = Record<string, unknown>;
const METHODS = ['get', 'put', 'post', 'delete'] as const;
const LIMITS = { maxDataBytes: 64, maxBodyBytes: 2048 };
const KEYS = { admin: generateApiKey(), scoped: generateApiKey() };
const as = (key: string | undefined, extra: Record<string, string> = {}): Record<string, string> => (key ? { authorization: `Bearer ${key}`, ...extra } : extra);
/** The roots of the recipe routes (and of the watch stream): this file produces every answer they document but 429 and 500. */
const ROOTS = /^\S+ \/v1\/(locks|semaphores|rwlocks|elections|queues|queue-take|queue-ack|queue-release|barriers|double-barriers|watch) /;

/** A concrete URL for a template: every parameter a valid-looking value. */
function concrete(template: string, path = 'x/y'): string {
  return template.replace(/\{path\}/, path).replace(/\{(\w+)\}/g, (_m, name: string) => (name === 'id' ? 'gw-none.00' : name === 'runId' ? 't' : 'n1'));
}

/** Integer query parameters documented for an operation (path-level ones included). */
function integerQueries(doc: Obj, template: string, method: string): string[] {
  const item = (doc.paths as Obj)[template] as Obj;
  const op = item[method] as Obj;
  const resolve = (p: Obj): Obj => (typeof p.$ref === 'string' ? ((doc.components as Obj).parameters as Obj)[p.$ref.split('/').pop() as string] as Obj : p);
  const params = [...((item.parameters ?? []) as Obj[]), ...((op.parameters ?? []) as Obj[])].map(resolve);
  return params.filter((p) => p.in === 'query' && (p.schema as Obj | undefined)?.type === 'integer').map((p) => p.name as string);
}

interface Probe {
  readonly what: string;
  readonly send: (rest: RestClient) => Promise<unknown>;
  /** Sent to the gateway without API keys (with keys, a tenant header naming another tenant is 403, not 404). */
  readonly keyless?: boolean;
}

function probes(doc: Obj, template: string, method: string): Probe[] {
  const op = ((doc.paths as Obj)[template] as Obj)[method] as Obj;
  const M = method.toUpperCase();
  const url = concrete(template);
  const hasBody = op.requestBody !== undefined;
  // A stream's root (the whole tree) and odd-looking names are valid streams, not errors.
  const streams = JSON.stringify(((op.responses as Obj)['200'] as Obj | undefined)?.content ?? {}).includes('text/event-stream');
  const out: Probe[] = [
    { what: 'an unknown tenant', send: (r) => r.json(M, url, hasBody ? {} : undefined, { headers: { 'zkgate-tenant': 'no-such-tenant' } }), keyless: true },
    { what: 'another tenant', send: (r) => r.json(M, url, hasBody ? {} : undefined, { headers: { 'zkgate-tenant': 'no-such-tenant' } }) },
    { what: 'no API key', send: (r) => r.json(M, url, hasBody ? {} : undefined, { headers: { authorization: '' } }) },
    { what: 'a key scoped elsewhere', send: (r) => r.json(M, url, hasBody ? {} : undefined, { headers: as(KEYS.scoped) }) },
  ];
  if (streams) {
    if (template === '/v1/watch') {
      out.push({ what: 'the root with a bad kind', send: (r) => r.json(M, template, undefined, { query: { kind: 'nope' } }) });
      out.push({ what: 'the root with a wrong method', send: (r) => r.json('PATCH', template, {}) });
    }
    if (template.includes('{path}')) out.push({ what: 'a bad path', send: (r) => r.json(M, concrete(template, 'a//b'), undefined, { exactPath: true }) });
  } else if (template.includes('{path}')) {
    const root = template.slice(0, template.indexOf('{path}'));
    const bare = root.slice(0, -1);
    out.push({ what: `the root (${root})`, send: (r) => r.json(M, root, hasBody ? {} : undefined) });
    out.push({ what: `the root (${bare})`, send: (r) => r.json(M, bare, hasBody ? {} : undefined) });
    for (const [what, headers] of [['no API key', { authorization: '' }], ['a key scoped elsewhere', as(KEYS.scoped)], ['another tenant', { 'zkgate-tenant': 'no-such-tenant' }]] as const) {
      out.push({ what: `the root with ${what}`, send: (r) => r.json(M, bare, hasBody ? {} : undefined, { headers }) });
    }
    out.push({ what: 'the root with an unknown tenant', send: (r) => r.json(M, bare, hasBody ? {} : undefined, { headers: { 'zkgate-tenant': 'no-such-tenant' } }), keyless: true });
    if (hasBody) {
      out.push({ what: 'the root with a text/plain body', send: (r) => r.request(M, bare, { headers: { 'content-type': 'text/plain', accept: 'application/json' }, body: 'x' }) });
      out.push({ what: 'the root with a body over maxBodyBytes', send: (r) => r.json(M, bare, { data: 'x'.repeat(LIMITS.maxBodyBytes * 2) }) });
    }
    out.push({ what: 'the root with a wrong method', send: (r) => r.json('PATCH', bare, {}) });
    out.push({ what: 'a bad path', send: (r) => r.json(M, concrete(template, 'a//b'), hasBody ? {} : undefined, { exactPath: true }) });
    out.push({ what: 'a NUL in the path', send: (r) => r.json(M, concrete(template, 'a%00b'), hasBody ? {} : undefined, { exactPath: true }) });
  } else if (/\{(job|service|memberId|runId)\}/.test(template)) {
    out.push({ what: 'a bad name', send: (r) => r.json(M, template.replace(/\{path\}/, 'x').replace(/\{(\w+)\}/g, (_m, n: string) => (n === 'id' ? 'gw-none.00' : '.bad')), hasBody ? {} : undefined) });
  }
  for (const q of integerQueries(doc, template, method)) {
    out.push({ what: `?${q}=x`, send: (r) => r.json(M, url, hasBody ? {} : undefined, { query: { [q]: 'x' } }) });
  }
  if (hasBody) {
    out.push({ what: 'malformed JSON', send: (r) => r.json(M, url, '{') });
    out.push({ what: 'an unknown field', send: (r) => r.json(M, url, { bogusField: 1 }) });
    out.push({ what: 'a text/plain body', send: (r) => r.request(M, url, { headers: { 'content-type': 'text/plain', accept: 'application/json' }, body: 'x' }) });
    out.push({ what: 'a body over maxBodyBytes', send: (r) => r.json(M, url, { data: 'x'.repeat(LIMITS.maxBodyBytes * 2) }) });
    out.push({ what: 'data over maxDataBytes', send: (r) => r.json(M, url, { data: 'x'.repeat(LIMITS.maxDataBytes + 1) }) });
  }
  return out;
}

const env = zkAndGateway({
  limits: LIMITS,
  tenants: [
    {
      name: 'default',
      sessionTimeoutMs: 15_000,
      apiKeys: [
        { sha256: hashApiKey(KEYS.admin), role: 'admin' },
        { sha256: hashApiKey(KEYS.scoped), role: 'write', prefixes: ['/elsewhere'] },
      ],
    },
  ],
});

let keyless: TestGateway | undefined;
after(() => keyless?.close());

/** `rest` with the admin key on every request that names no authorization of its own. */
function keyed(rest: RestClient): RestClient {
  const h = (o: { headers?: Readonly<Record<string, string>> } = {}) => ({ ...o, headers: { authorization: `Bearer ${KEYS.admin}`, ...o.headers } });
  return {
    baseUrl: rest.baseUrl,
    covered: rest.covered,
    json: (m, path, body, o) => rest.json(m, path, body, h(o)),
    raw: (m, path, bytes, o) => rest.raw(m, path, bytes, h(o)),
    request: (m, path, init) => rest.request(m, path, h(init)),
  };
}

test('rest › every 4xx a route answers to a bad request is documented for that route in openapi.yaml', async (t) => {
  const doc = contract().doc;
  const problems: string[] = [];
  const rest = keyed(env.g.rest);
  keyless = await startTestGateway(env.zk.connectString, { tenants: [{ name: 'default', sessionTimeoutMs: 15_000 }] });
  const open = restClient(keyless.base, { coverage: rest.covered });
  let sent = 0;
  for (const template of Object.keys(doc.paths as Obj)) {
    if (!template.startsWith('/v1/') || template === '/v1/ws') continue;
    for (const method of METHODS) {
      if (!((doc.paths as Obj)[template] as Obj)[method]) continue;
      for (const p of probes(doc, template, method)) {
        sent++;
        try {
          const res = (await Promise.race([p.send(p.keyless ? open : rest), new Promise((_r, reject) => setTimeout(() => reject(new Error('no answer in 10 s')), 10_000).unref())])) as { status: number };
          if (res.status >= 500) problems.push(`${method.toUpperCase()} ${template} with ${p.what}: ${res.status}`);
        } catch (err) {
          if (!(err instanceof ContractError) && !/no answer/.test(String(err))) throw err;
          problems.push(`${method.toUpperCase()} ${template} with ${p.what}: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
    }
  }
  t.diagnostic(`${sent} bad requests over ${Object.keys(doc.paths as Obj).length} documented paths`);
  assert.deepEqual(problems, []);
  // The roots are no other suite's: every client error they document was produced here (their
  // successes are the root watch stream's; 429, 500 and 503 need a quota, a bug or an outage).
  const roots = contract()
    .documented()
    .filter((k) => ROOTS.test(k) && !/ (200|429|500|503)$/.test(k));
  assert.deepEqual(roots.filter((k) => !rest.covered.has(k)), []);
});
