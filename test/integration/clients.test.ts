/**
 * The packaged clients (clients/php, clients/python) run their own test scripts against a real
 * gateway and ZooKeeper: PHP with php-cli + php-curl only, Python with the standard library only.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { projectFile } from '../../src/project-files.js';
import { zkAndGateway } from '../support/test-gateway.js';

const run = promisify(execFile);

describe('client libraries against a real gateway', () => {
  const env = zkAndGateway({ tenants: [{ name: 'default', sessionTimeoutMs: 10_000 }] });
  const childEnv = (): NodeJS.ProcessEnv => ({ ...process.env, ZKGATE_URL: env.g.base, ZKGATE_API_KEY: '', PYTHONDONTWRITEBYTECODE: '1' });

  test('clients/php: znodes, leases with keepAliveIfDue, locks, elections, watch long-poll', async (t) => {
    const { stdout } = await run('php', [projectFile('clients/php/tests/run.php')], { env: childEnv(), timeout: 60_000 }).catch((e: { stdout?: string }) => {
      throw new Error(`php client tests failed:\n${e.stdout ?? String(e)}`);
    });
    t.diagnostic(stdout.trim().split('\n').join(' | '));
    assert.match(stdout, /# all passed/);
    assert.equal(stdout.match(/^ok - /gm)?.length, 5);
  });

  test('clients/python: the same over urllib, with a keepalive thread', async (t) => {
    const { stderr } = await run('/usr/bin/python3', ['-m', 'unittest', 'discover', '-v', '-s', projectFile('clients/python/tests')], {
      env: childEnv(),
      timeout: 60_000,
    }).catch((e: { stderr?: string }) => {
      throw new Error(`python client tests failed:\n${e.stderr ?? String(e)}`);
    });
    t.diagnostic(stderr.trim().split('\n').slice(-3).join(' | '));
    assert.match(stderr, /Ran 5 tests[\s\S]*\nOK\n?$/);
  });
});
