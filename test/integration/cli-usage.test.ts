/** The `zkgate` command as a new user meets it: --version, and serve --help naming every default. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { projectFile } from '../../src/project-files.js';

const run = promisify(execFile);
const CLI = projectFile('dist/src/cli/index.js');

test('zkgate --version prints the package version', async () => {
  const { version } = JSON.parse(readFileSync(projectFile('package.json'), 'utf8')) as { version: string };
  for (const flag of ['--version', '-V']) {
    const { stdout } = await run(process.execPath, [CLI, flag]);
    assert.equal(stdout.trim(), version);
  }
});

test('zkgate serve --help names each flag with its environment variable and its default', async () => {
  const { stdout } = await run(process.execPath, [CLI, 'serve', '--help']);
  const help = stdout.replace(/\s+/g, ' ');
  for (const [flag, env, dflt] of [
    ['--http-port', 'ZKGATE_HTTP_PORT', 'default: 8080'],
    ['--grpc-port', 'ZKGATE_GRPC_PORT', 'default: 9090'],
    ['--bind', 'ZKGATE_BIND', 'default: 127.0.0.1'],
    ['--log-level', 'ZKGATE_LOG_LEVEL', 'default: info'],
    ['--zookeeper', 'ZKGATE_ZOOKEEPER', 'default: an embedded local server'],
    ['--config', 'ZKGATE_CONFIG', 'default: none'],
    ['--allow-unauthenticated-public-bind', 'ZKGATE_ALLOW_UNAUTHENTICATED_PUBLIC_BIND', 'default: off'],
  ]) {
    const at = help.indexOf(flag as string);
    assert.ok(at >= 0, `${flag} in:\n${stdout}`);
    const line = help.slice(at, help.indexOf(' --', at + 2) === -1 ? undefined : help.indexOf(' --', at + 2));
    assert.ok(line.includes(env as string) && line.includes(dflt as string), `${flag}: ${line}`);
  }
});
