/**
 * The error catalogue is enforced (as fastify's test/internals/errors.test.js does): every code
 * in ERROR_CODES has a row in the error table, a section in docs/errors.md stating the same
 * mapping, and a place in openapi.yaml — in the `ErrorCode` enum and in the problem response
 * documented for its HTTP status.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { ERROR_CODES } from '../../src/core/index.js';
import { ERROR_TABLE } from '../../src/api/error-table.js';
import { projectFile } from '../../src/project-files.js';

const GRPC_NAMES: Readonly<Record<number, string>> = {
  0: 'OK',
  1: 'CANCELLED',
  2: 'UNKNOWN',
  3: 'INVALID_ARGUMENT',
  4: 'DEADLINE_EXCEEDED',
  5: 'NOT_FOUND',
  6: 'ALREADY_EXISTS',
  7: 'PERMISSION_DENIED',
  8: 'RESOURCE_EXHAUSTED',
  9: 'FAILED_PRECONDITION',
  10: 'ABORTED',
  11: 'OUT_OF_RANGE',
  12: 'UNIMPLEMENTED',
  13: 'INTERNAL',
  14: 'UNAVAILABLE',
  15: 'DATA_LOSS',
  16: 'UNAUTHENTICATED',
};

const docs = readFileSync(projectFile('docs/errors.md'), 'utf8');
type Obj = Record<string, unknown>;
const openapi = parseYaml(readFileSync(projectFile('openapi.yaml'), 'utf8')) as Obj;
const components = openapi.components as { schemas: Record<string, Obj>; responses: Record<string, Obj> };

/** Body of the `## CODE` section (up to the next `## `). */
function section(code: string): string | undefined {
  const start = docs.indexOf(`\n## ${code}\n`);
  if (start < 0) return undefined;
  const rest = docs.slice(start + code.length + 5);
  const end = rest.indexOf('\n## ');
  return end < 0 ? rest : rest.slice(0, end);
}

/** Codes each documented problem response allows, by its pinned HTTP status. */
function problemCodesByStatus(): Map<number, Set<string>> {
  const out = new Map<number, Set<string>>();
  for (const response of Object.values(components.responses)) {
    const content = (response.content ?? {}) as Record<string, { schema?: Obj }>;
    const schema = content['application/problem+json']?.schema;
    if (!schema) continue;
    for (const part of (schema.allOf ?? []) as Obj[]) {
      const props = (part.properties ?? {}) as Record<string, Obj>;
      const status = props.status?.const;
      const code = props.code;
      if (typeof status !== 'number' || !code) continue;
      const codes = Array.isArray(code.enum) ? (code.enum as string[]) : [code.const as string];
      const set = out.get(status) ?? new Set<string>();
      for (const c of codes) set.add(c);
      out.set(status, set);
    }
  }
  return out;
}

describe('error catalogue', () => {
  test('every code has exactly one row in the error table', () => {
    assert.deepEqual(Object.keys(ERROR_TABLE).sort(), [...ERROR_CODES].sort());
    for (const code of ERROR_CODES) {
      const row = ERROR_TABLE[code];
      assert.ok(row.http >= 400 && row.http <= 599, `${code}: HTTP ${row.http}`);
      assert.ok(GRPC_NAMES[row.grpc] && row.grpc !== 0, `${code}: gRPC ${row.grpc}`);
      assert.ok(row.ws === 1003 || row.ws === 1009 || row.ws === 1011 || row.ws === 1013 || (row.ws >= 4000 && row.ws <= 4999), `${code}: ws ${row.ws}`);
      assert.ok(row.title.length > 0, `${code}: title`);
    }
  });

  test('docs/errors.md has a section per code stating its mapping', () => {
    for (const code of ERROR_CODES) {
      const body = section(code);
      assert.ok(body !== undefined, `docs/errors.md lacks "## ${code}"`);
      const row = ERROR_TABLE[code];
      const line = `HTTP ${row.http} · gRPC ${row.grpc} ${GRPC_NAMES[row.grpc]} · WebSocket ${row.ws}`;
      assert.ok(body.includes(line), `docs/errors.md "## ${code}" should state: ${line}`);
      assert.match(body, /\*\*Meaning\.\*\*/, `${code}: meaning`);
      assert.match(body, /\*\*What to do\.\*\*/, `${code}: what to do`);
    }
  });

  test('docs/errors.md summary table agrees with the error table', () => {
    for (const code of ERROR_CODES) {
      const row = ERROR_TABLE[code];
      const line = `| [${code}](#${code.toLowerCase()}) | ${row.http} | ${row.grpc} ${GRPC_NAMES[row.grpc]} | ${row.ws} |`;
      assert.ok(docs.includes(line), `docs/errors.md summary table should have: ${line}`);
    }
  });

  test('docs/errors.md documents no unknown codes', () => {
    const sections = [...docs.matchAll(/^## ([A-Z_]+)$/gm)].map((m) => m[1]);
    assert.deepEqual(sections.filter((c) => !(ERROR_CODES as readonly string[]).includes(c as string)), []);
    assert.equal(new Set(sections).size, sections.length, 'a code has two sections');
  });

  test('openapi.yaml ErrorCode enum lists exactly the codes', () => {
    const enumCodes = components.schemas.ErrorCode?.enum as string[];
    assert.deepEqual([...enumCodes].sort(), [...ERROR_CODES].sort());
  });

  test("openapi.yaml documents each code in the problem response for its HTTP status", () => {
    const byStatus = problemCodesByStatus();
    for (const code of ERROR_CODES) {
      const http = ERROR_TABLE[code].http;
      assert.ok(byStatus.get(http)?.has(code), `no openapi.yaml problem response with status ${http} allows code ${code}`);
    }
    for (const [status, codes] of byStatus) {
      for (const code of codes) {
        assert.equal(ERROR_TABLE[code as keyof typeof ERROR_TABLE]?.http, status, `openapi.yaml lists ${code} under ${status}`);
      }
    }
  });
});
