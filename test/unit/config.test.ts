import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, validateConfig } from '../../src/config/schema.js';
import { loadConfig } from '../../src/config/load.js';

describe('config', () => {
  test('no config at all gives one default tenant at / and the embedded ZooKeeper', () => {
    const c = validateConfig(undefined);
    assert.equal(c.zookeeper.connect, undefined);
    assert.deepEqual(c.tenants.map((t) => [t.name, t.chroot]), [['default', '/']]);
    assert.equal(c.http.port, 8080);
    assert.equal(c.http.bind, '127.0.0.1');
    assert.equal(c.grpc.port, 9090);
  });
  test('gRPC picks a free port when HTTP does, unless its port is set; its limits have defaults', () => {
    assert.equal(validateConfig({ http: { port: 0 } }).grpc.port, 0);
    assert.equal(validateConfig({ http: { port: 0 }, grpc: { port: 9999 } }).grpc.port, 9999);
    assert.equal(validateConfig({ http: { port: 8081 } }).grpc.port, 9090);
    const g = validateConfig({}).grpc;
    assert.deepEqual([g.maxMessageBytes, g.maxConcurrentStreams], [4 * 1_048_576, 1000]);
    assert.throws(() => validateConfig({ grpc: { maxConcurrentStreams: 0 } }), /grpc\.maxConcurrentStreams/);
  });
  test('errors name the bad field', () => {
    assert.throws(() => validateConfig({ http: { port: 'x' } }), (e: unknown) => e instanceof ConfigError && /http\.port/.test(e.message));
    assert.throws(() => validateConfig({ tenants: [{ name: 'a', chroot: 'rel' }] }), (e: unknown) => e instanceof ConfigError && /tenants\.0\.chroot/.test(e.message));
    assert.throws(() => validateConfig({ tenants: [{ name: 'a' }, { name: 'a' }] }), /unique/);
    assert.throws(() => validateConfig({ htp: {} }), (e: unknown) => e instanceof ConfigError && /htp|unrecognized/i.test(e.message));
    assert.throws(() => validateConfig({ limits: { maxDataBytes: 5_000_000 } }), /limits\.maxDataBytes/);
  });
  test('the registry keeps following 100 services per tenant for 5 min by default; 0 turns it off, bad values name the key', () => {
    const w = validateConfig({}).watch;
    assert.deepEqual([w.maxCachedServices, w.cachedServiceIdleMs], [100, 300_000]);
    assert.equal(validateConfig({ watch: { maxCachedServices: 0 } }).watch.maxCachedServices, 0);
    assert.throws(() => validateConfig({ watch: { maxCachedServices: -1 } }), /watch\.maxCachedServices/);
    assert.throws(() => validateConfig({ watch: { maxCachedServices: 1.5 } }), /watch\.maxCachedServices/);
    assert.throws(() => validateConfig({ watch: { cachedServiceIdleMs: 10 } }), /watch\.cachedServiceIdleMs/);
  });
  test('YAML file, environment and flags merge in that priority', () => {
    const dir = mkdtempSync(join(tmpdir(), 'zkgate-cfg-'));
    const file = join(dir, 'zkgate.yaml');
    writeFileSync(file, 'http:\n  port: 1000\n  bind: 0.0.0.0\nzookeeper:\n  connect: zk1:2181\ntenants:\n  - name: acme\n    chroot: /tenants/acme\n');
    const env = { ZKGATE_CONFIG: file, ZKGATE_HTTP_PORT: '2000', ZKGATE_ZOOKEEPER: 'zk2:2181' };
    const fromEnv = loadConfig({}, env);
    assert.equal(fromEnv.http.port, 2000);
    assert.equal(fromEnv.http.bind, '0.0.0.0');
    assert.equal(fromEnv.zookeeper.connect, 'zk2:2181');
    assert.equal(fromEnv.tenants[0]?.chroot, '/tenants/acme');
    const fromFlags = loadConfig({ httpPort: 3000, zookeeper: 'zk3:2181' }, env);
    assert.equal(fromFlags.http.port, 3000);
    assert.equal(fromFlags.zookeeper.connect, 'zk3:2181');
  });
  test('JSON config and bad files give clear errors', () => {
    const dir = mkdtempSync(join(tmpdir(), 'zkgate-cfg-'));
    const json = join(dir, 'c.json');
    writeFileSync(json, JSON.stringify({ grpc: { port: 0 } }));
    assert.equal(loadConfig({ config: json }, {}).grpc.port, 0);
    const broken = join(dir, 'broken.yaml');
    writeFileSync(broken, 'http: [');
    assert.throws(() => loadConfig({ config: broken }, {}), /cannot parse config file/);
    assert.throws(() => loadConfig({ config: join(dir, 'missing.yaml') }, {}), /cannot read config file/);
    assert.throws(() => loadConfig({}, { ZKGATE_HTTP_PORT: 'eighty' }), /ZKGATE_HTTP_PORT/);
  });
  test("a tenant's limits keep the global value of every limit they do not name (no defaults filled in over them)", () => {
    const c = validateConfig({ limits: { maxBodyBytes: 4096, wsMessagesPerSecond: 7 }, tenants: [{ name: 'b', limits: { maxDataBytes: 16 } }] });
    assert.deepEqual(c.tenants[0]?.limits, { maxDataBytes: 16 });
    assert.throws(() => validateConfig({ tenants: [{ name: 'b', limits: { maxDataBytes: -1 } }] }), /tenants\.0\.limits\.maxDataBytes/);
    assert.throws(() => validateConfig({ tenants: [{ name: 'b', limits: { nope: 1 } }] }), ConfigError);
  });
});
