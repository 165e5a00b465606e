/**
 * The limits table of docs/security.md cannot drift from the code: every bound of the config
 * schema (limits, listeners, watch, leases) has a row with the schema's default, every row names
 * a real key, and every metric the table points to exists.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { validateConfig } from '../../src/config/schema.js';
import { registry } from '../../src/api/metrics.js';
import { projectFile } from '../../src/project-files.js';

/** Config sections whose every key is a bound, and the keys there that are not (addresses). */
const SECTIONS = ['limits', 'http', 'grpc', 'cluster', 'watch', 'leases'] as const;
// cluster.forwardTimeoutMs is the gateway's own deadline on calls it forwards, not a bound a client pushes against.
const NOT_BOUNDS = new Set(['http.port', 'http.bind', 'grpc.port', 'cluster.port', 'cluster.forwardTimeoutMs']);

/** Every bound of the schema with its default: `http.headersTimeoutMs` → 10000. */
function schemaBounds(): Map<string, number> {
  const defaults = validateConfig({});
  const out = new Map<string, number>();
  for (const section of SECTIONS) {
    for (const [key, value] of Object.entries(defaults[section])) {
      // Numbers are bounds; switches (http.fastPath) are not.
      if (typeof value === 'number' && !NOT_BOUNDS.has(`${section}.${key}`)) out.set(`${section}.${key}`, value);
    }
  }
  return out;
}

/** The table's rows: config key → the default cell's number and the metric cell. */
function tableRows(): Map<string, { defaultValue: number; metrics: string }> {
  const doc = readFileSync(projectFile('docs/security.md'), 'utf8');
  const section = doc.slice(doc.indexOf('### Limits'), doc.indexOf('\n### ', doc.indexOf('### Limits') + 1));
  const rows = new Map<string, { defaultValue: number; metrics: string }>();
  for (const line of section.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| bound '))) {
    const cells = line.split(' | ').map((c) => c.replace(/^\| |\|$/g, '').trim());
    const key = /^`([^`]+)`$/.exec(cells[1] ?? '')?.[1];
    const value = /^`(\d+)`/.exec(cells[2] ?? '')?.[1];
    assert.ok(key && value !== undefined, `a row without one config key and a default in backticks: ${line}`);
    assert.ok(!rows.has(key), `${key} has two rows`);
    rows.set(key, { defaultValue: Number(value), metrics: cells[4] ?? '' });
  }
  return rows;
}

test('limits table › every bound of the config schema has a row with the schema default', () => {
  const rows = tableRows();
  for (const [key, def] of schemaBounds()) {
    assert.ok(rows.has(key), `${key} is missing from docs/security.md › Limits`);
    assert.equal(rows.get(key)?.defaultValue, def, `${key}: the table says ${rows.get(key)?.defaultValue}, the schema ${def}`);
  }
});

test('limits table › every row names a key of the schema', () => {
  const bounds = schemaBounds();
  for (const key of tableRows().keys()) assert.ok(bounds.has(key), `${key} is not a bound of the config schema`);
});

test('limits table › every metric it names exists', async () => {
  const known = new Set((await registry.getMetricsAsJSON()).map((m) => m.name));
  const named = [...tableRows().values()].flatMap((r) => r.metrics.match(/zkgate_[a-z_]+/g) ?? []);
  assert.ok(named.length >= 20, `only ${named.length} metrics named`);
  for (const name of named) assert.ok(known.has(name), `${name} is not a metric`);
});
