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
