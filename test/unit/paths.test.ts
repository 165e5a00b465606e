import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ancestorsOf, joinPath, nameOf, parentOf, pathProblem, sequenceOf } from '../../src/zk/paths.js';
import { znodePathFromUrl } from '../../src/api/rest/znode-path.js';
import { ZkgateError } from '../../src/core/index.js';

describe('paths › ZooKeeper rules', () => {
  test('accepts ordinary paths', () => {
    for (const p of ['/', '/a', '/a/b', '/a-b_c.d', '/x/…/y', '/zookeeper', '/a/.b', '/a/..b']) assert.equal(pathProblem(p), null, p);
  });
  test('rejects what ZooKeeper rejects', () => {
    for (const p of ['', 'a', '/a/', '//a', '/a//b', '/a/./b', '/a/../b', '/.', '/..', '/a\u0000', '/a\u0001', '/a\u007f', '/a\ud800', '/a\uffff', '/a/\u{1F600}', '/\u{10000}']) {
      assert.notEqual(pathProblem(p), null, JSON.stringify(p));
    }
  });
  test('a trailing slash is allowed only for sequential creates', () => {
    assert.notEqual(pathProblem('/tasks/'), null);
    assert.equal(pathProblem('/tasks/', { sequential: true }), null);
    assert.notEqual(pathProblem('/tasks//', { sequential: true }), null);
  });
  test('parent, name, join and ancestors', () => {
    assert.equal(parentOf('/a/b/c'), '/a/b');
    assert.equal(parentOf('/a'), '/');
    assert.equal(nameOf('/a/b'), 'b');
    assert.equal(joinPath('/', 'a'), '/a');
    assert.equal(joinPath('/a', 'b'), '/a/b');
    assert.deepEqual(ancestorsOf('/a/b/c'), ['/a', '/a/b']);
    assert.deepEqual(ancestorsOf('/a'), []);
  });
  test('sequence suffix', () => {
    assert.equal(sequenceOf('task-0000000042'), 42);
    assert.equal(sequenceOf('task-42'), null);
  });
});

describe('paths › URL to znode path', () => {
  test('decodes percent-escapes per segment', () => {
    assert.equal(znodePathFromUrl('/a/b%20c'), '/a/b c');
    assert.equal(znodePathFromUrl('/'), '/');
    assert.equal(znodePathFromUrl(''), '/');
    assert.equal(znodePathFromUrl('/tasks/'), '/tasks/');
  });
  test('refuses an encoded slash and malformed escapes', () => {
    for (const bad of ['/a%2Fb', '/a%2fb', '/a%E0%A4%A']) {
      assert.throws(() => znodePathFromUrl(bad), (e: unknown) => e instanceof ZkgateError && e.code === 'INVALID_PATH', bad);
    }
  });
});

describe('spawnClean', () => {
  test('the child keeps stdout and stderr but inherits no other fd', async () => {
    const { spawnClean } = await import('../../src/zk/spawn-clean.js');
    const { openSync, closeSync } = await import('node:fs');
    const extra = openSync('/dev/null', 'r');
    try {
      const child = spawnClean('/bin/sh', ['-c', 'ls /proc/self/fd; echo err >&2'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
      await new Promise((r) => child.once('close', r));
      assert.equal(err, 'err\n');
      const fds = out.split('\n').filter(Boolean).map(Number);
      assert.ok(!fds.includes(extra), `fd ${extra} leaked: ${fds.join(' ')}`);
    } finally {
      closeSync(extra);
    }
  });
});
