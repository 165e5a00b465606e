/** The coverage table names every error code, and every test file it names asserts the code. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ERROR_CODES } from '../../src/core/index.js';
import { projectFile } from '../../src/project-files.js';
import { TRANSPORTS } from './clients.js';
import { ERROR_COVERAGE } from './error-coverage.js';

test('coverage › every code of src/core/errors.ts has a row, and nothing else does', () => {
  assert.deepEqual(Object.keys(ERROR_COVERAGE).sort(), [...ERROR_CODES].sort());
});

test('coverage › each transport of each row names a contract file that asserts the code, or why the code cannot arise there', (ctx) => {
  let proven = 0;
  for (const code of ERROR_CODES) {
    for (const t of TRANSPORTS) {
      const proof = ERROR_COVERAGE[code][t];
      if ('todo' in proof) {
        ctx.diagnostic(`${code} on ${t}: not proven yet (${proof.todo})`);
        continue;
      }
      if ('never' in proof) {
        assert.ok(proof.never.length > 20, `${code} on ${t}: say why it cannot arise`);
        continue;
      }
      const source = readFileSync(projectFile(`test/contract/${proof.in}`), 'utf8');
      assert.ok(source.includes(`'${code}'`), `${proof.in} does not assert ${code} (claimed for ${t})`);
      proven++;
    }
  }
  assert.ok(proven >= 90, `only ${proven} (code, transport) pairs proven`);
});
