/** Pure auth logic: key shape and hash, roles, path scopes, the bind policy, config rules and keygen. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { parse as parseYaml } from 'yaml';
import { validateConfig } from '../../src/config/schema.js';
import { Authenticator, TenantRegistry, ZkgateError, exposureCheck, generateApiKey, hashApiKey, isApiKeyShaped, isLoopback, roleAllows, silentLogger } from '../../src/core/index.js';
import { keygen } from '../../src/cli/keygen.js';

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ZkgateError, String(err));
    return err.code;
  }
  return 'OK';
}

describe('api keys', () => {
  test('keys › a generated key has 256 random bits, a fixed shape, and its SHA-256 is what the config stores', () => {
    const k = generateApiKey();
    assert.match(k, /^zkg_[A-Za-z0-9_-]{43}$/);
    assert.equal(Buffer.from(k.slice(4), 'base64url').length, 32);
    assert.notEqual(generateApiKey(), k);
    assert.equal(hashApiKey(k), createHash('sha256').update(k).digest('hex'));
    assert.equal(isApiKeyShaped(k), true);
    assert.equal(isApiKeyShaped(`${k}x`), false);
  });

  test('keygen › prints the key once and a config entry that validates and authenticates it', () => {
    const { key, sha256, text } = keygen({ tenant: 'acme', role: 'write', prefixes: ['/app'] });
    assert.equal(text.split(key).length, 2, 'the key appears exactly once');
    const yaml = text.slice(text.indexOf('tenants:'));
    const cfg = parseYaml(yaml) as { tenants: { name: string; apiKeys: { name: string; sha256: string; role: string; prefixes: string[] }[] }[] };
    const { name, ...entry } = cfg.tenants[0]?.apiKeys[0] ?? { name: '' };
    assert.match(name, /^acme-write-[0-9a-f]{6}$/);
    assert.deepEqual(entry, { sha256, role: 'write', prefixes: ['/app'] });
    const config = validateConfig({ tenants: [{ chroot: '/acme', ...cfg.tenants[0] }] });
    const auth = new Authenticator(config, new TenantRegistry(config, '127.0.0.1:1', silentLogger));
    const p = auth.authenticate({ authorization: `Bearer ${key}` });
    assert.equal(p.tenant.name, 'acme');
    assert.equal(p.role, 'write');
    assert.deepEqual(p.prefixes, ['/app']);
  });
});

describe('authorization', () => {
  const keys = { r: generateApiKey(), w: generateApiKey(), a: generateApiKey(), s: generateApiKey(), o: generateApiKey() };
  const config = validateConfig({
    tenants: [
      {
        name: 'one',
        chroot: '/t/one',
        limits: { maxPathBytes: 32, maxPathDepth: 3 },
        apiKeys: [
          { sha256: hashApiKey(keys.r), role: 'read' },
          { sha256: hashApiKey(keys.w), role: 'write' },
          { sha256: hashApiKey(keys.a), role: 'admin' },
          { sha256: hashApiKey(keys.s), role: 'admin', prefixes: ['/app', '/jobs/x'] },
        ],
      },
      { name: 'two', chroot: '/t/two', apiKeys: [{ sha256: hashApiKey(keys.o), role: 'admin' }] },
    ],
  });
  const auth = new Authenticator(config, new TenantRegistry(config, '127.0.0.1:1', silentLogger));
  const who = (k: string) => auth.authenticate({ authorization: `Bearer ${k}` });

  test('roles › read < write < admin over every action', () => {
    assert.equal(roleAllows('read', 'node.read'), true);
    assert.equal(roleAllows('read', 'node.write'), false);
    assert.equal(roleAllows('write', 'node.write'), true);
    assert.equal(roleAllows('write', 'acl.write'), false);
    assert.equal(roleAllows('write', 'node.delete_recursive'), false);
    assert.equal(roleAllows('write', 'lease.admin'), false);
    assert.equal(roleAllows('admin', 'lease.admin'), true);
  });

  test('authenticate › missing, malformed, unknown; header may only repeat the key tenant', () => {
    assert.equal(codeOf(() => auth.authenticate({})), 'UNAUTHENTICATED');
    assert.equal(codeOf(() => auth.authenticate({ authorization: keys.r })), 'UNAUTHENTICATED');
    assert.equal(codeOf(() => auth.authenticate({ authorization: `Bearer ${generateApiKey()}` })), 'UNAUTHENTICATED');
    assert.equal(codeOf(() => auth.authenticate({ authorization: `bearer  ${keys.r}` })), 'OK');
    assert.equal(codeOf(() => auth.authenticate({ authorization: `Bearer ${keys.r}`, tenant: 'two' })), 'PERMISSION_DENIED');
    assert.equal(codeOf(() => auth.authenticate({ authorization: `Bearer ${keys.r}`, tenant: 'one' })), 'OK');
    assert.equal(who(keys.o).tenant.name, 'two');
  });

  test('scopes › prefixes match whole segments; sequential creates must land strictly inside', () => {
    const s = who(keys.s);
    for (const p of ['/app', '/app/x', '/jobs/x', '/jobs/x/y']) assert.equal(codeOf(() => auth.authorize(s, 'node.write', p)), 'OK', p);
    for (const p of ['/', '/apple', '/ap', '/jobs', '/jobs/xy', '/app\u2215x']) assert.equal(codeOf(() => auth.authorize(s, 'node.write', p)), 'PERMISSION_DENIED', p);
    assert.equal(codeOf(() => auth.authorize(s, 'node.write', '/app', { sequential: true })), 'PERMISSION_DENIED');
    assert.equal(codeOf(() => auth.authorize(s, 'node.write', '/app/', { sequential: true })), 'OK');
    assert.equal(codeOf(() => auth.authorize(s, 'node.write', '/app/q-', { sequential: true })), 'OK');
  });

  test('scopes › paths are validated before the scope check, so tricks are INVALID_PATH', () => {
    const s = who(keys.s);
    for (const p of ['/app/..', '/app/../x', '/app//x', '/app/', 'app', '/app/\u0000', '/app/.']) {
      assert.equal(codeOf(() => auth.authorize(s, 'node.read', p)), 'INVALID_PATH', JSON.stringify(p));
    }
    assert.equal(codeOf(() => auth.authorize(who(keys.a), 'node.read', `/${'x'.repeat(40)}`)), 'INVALID_PATH');
    assert.equal(codeOf(() => auth.authorize(who(keys.a), 'node.read', '/a/b/c/d')), 'INVALID_PATH');
    assert.equal(codeOf(() => auth.authorize(who(keys.a), 'node.read', '/a/b/c')), 'OK');
  });

  test('no keys › every caller is an admin of the tenant it names (or the default)', () => {
    const open = validateConfig({ tenants: [{ name: 'default' }, { name: 'x', chroot: '/x' }] });
    const a = new Authenticator(open, new TenantRegistry(open, '127.0.0.1:1', silentLogger));
    assert.equal(a.required, false);
    assert.equal(a.authenticate({}).tenant.name, 'default');
    assert.equal(a.authenticate({ tenant: 'x' }).role, 'admin');
    assert.equal(codeOf(() => a.authenticate({ tenant: 'nope' })), 'NOT_FOUND');
  });
});

describe('bind policy and config', () => {
  test('exposure › loopback without keys warns; public without keys refuses unless allowed; keys make it silent', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', '::1', 'localhost', '[::1]', '::ffff:127.0.0.1']) assert.equal(isLoopback(h), true, h);
    for (const h of ['0.0.0.0', '::', '10.0.0.1', '192.168.1.1', 'example.com']) assert.equal(isLoopback(h), false, h);
    assert.match(exposureCheck(['127.0.0.1'], false, false).warn ?? '', /NO API KEYS/);
    assert.match(exposureCheck(['0.0.0.0'], false, false).refuse ?? '', /refusing to listen on 0\.0\.0\.0/);
    assert.match(exposureCheck(['0.0.0.0'], false, true).warn ?? '', /ANYONE/);
    assert.deepEqual(exposureCheck(['0.0.0.0'], true, false), {});
  });

  test('config › key hashes are validated and unique; nested chroots are refused once keys exist', () => {
    const k = { sha256: hashApiKey(generateApiKey()), role: 'read' };
    assert.throws(() => validateConfig({ tenants: [{ name: 'a', apiKeys: [{ sha256: 'abc', role: 'read' }] }] }), /tenants\.0\.apiKeys\.0\.sha256/);
    assert.throws(() => validateConfig({ tenants: [{ name: 'a', apiKeys: [{ ...k, role: 'root' }] }] }), /role/);
    assert.throws(() => validateConfig({ tenants: [{ name: 'a', chroot: '/a', apiKeys: [k] }, { name: 'b', chroot: '/b', apiKeys: [k] }] }), /one tenant only/);
    assert.throws(() => validateConfig({ tenants: [{ name: 'a', chroot: '/t', apiKeys: [k] }, { name: 'b', chroot: '/t/b' }] }), /disjoint/);
    assert.doesNotThrow(() => validateConfig({ tenants: [{ name: 'a', chroot: '/t', apiKeys: [k] }, { name: 'b', chroot: '/t/b', connect: 'other:2181' }] }));
    assert.doesNotThrow(() => validateConfig({ tenants: [{ name: 'a' }, { name: 'b', chroot: '/b' }] }), 'without keys nesting is allowed');
    assert.throws(() => validateConfig({ tenants: [{ name: 'a', nodeAcl: [{ scheme: 'auth', id: '', perms: 'cdrwa' }] }] }), /digest/);
    assert.throws(() => validateConfig({ tls: { certFile: 'c.pem' } }), /tls\.keyFile/);
  });
});
