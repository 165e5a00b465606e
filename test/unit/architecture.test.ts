import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { projectFile } from '../../src/project-files.js';

/** Every .ts file under src, as [relative path, source]. */
function sources(dir = projectFile('src')): [string, string][] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return sources(p);
    return p.endsWith('.ts') ? [[relative(projectFile('.'), p), readFileSync(p, 'utf8')] as [string, string]] : [];
  });
}

function imports(src: string): string[] {
  return [...src.matchAll(/(?:from\s+|import\s*\(\s*|require\(\s*)['"]([^'"]+)['"]/g)].map((m) => m[1] as string);
}

describe('architecture › imports flow api → core → zk', () => {
  const files = sources();

  test('only src/zk/native-client.ts loads the zookeeper package', () => {
    const offenders = files.filter(([f, s]) => f !== 'src/zk/native-client.ts' && imports(s).includes('zookeeper')).map(([f]) => f);
    assert.deepEqual(offenders, []);
    assert.ok(imports(readFileSync(projectFile('src/zk/native-client.ts'), 'utf8')).length > 0);
    assert.match(readFileSync(projectFile('src/zk/native-client.ts'), 'utf8'), /require\('zookeeper'\)/);
  });

  test('src/zk imports nothing from core or the transports', () => {
    const offenders = files.filter(([f, s]) => f.startsWith('src/zk/') && imports(s).some((i) => /\/(core|api)\//.test(i) || i.startsWith('../core') || i.startsWith('../api')));
    assert.deepEqual(offenders.map(([f]) => f), []);
  });

  /** Files under `dir` importing a module whose path matches `forbidden`, as "file: import". */
  const reaching = (dir: string, forbidden: RegExp): string[] =>
    files.filter(([f]) => f.startsWith(dir)).flatMap(([f, s]) => imports(s).filter((i) => forbidden.test(i)).map((i) => `${f}: ${i}`));

  test('src/core imports nothing from the transports, config, main or cli (zk <- core <- api <- main/cli)', () => {
    assert.deepEqual(reaching('src/core/', /(^|\/)(api|config|cli)\/|(^|\/)main\.js$/), []);
  });

  test('src/zk imports nothing from config, main or cli', () => {
    assert.deepEqual(reaching('src/zk/', /(^|\/)(config|cli)\/|(^|\/)main\.js$/), []);
  });

  test('src/api imports nothing from zk, config, main or cli: core is its only way down', () => {
    assert.deepEqual(reaching('src/api/', /(^|\/)(zk|config|cli)\/|(^|\/)main\.js$/), []);
  });

  test('the gRPC and WebSocket adapters import nothing from the REST adapter (shared JSON lives in src/api/json.ts)', () => {
    assert.deepEqual([...reaching('src/api/grpc/', /(^|\/)rest\//), ...reaching('src/api/ws/', /(^|\/)rest\//)], []);
  });

  test('src/api reaches core only through the principal-scoped facade', () => {
    // Raw services and the authenticator stay in core: adapters get gw.authenticate / gw.as(principal).
    const rawServices = ['Authenticator', 'NodeService', 'LeaseManager', 'LockService', 'ElectionService', 'WatchHub', 'WatchGroup', 'SequentialQueue', 'TenantQuotas', 'TenantRegistry', 'Tenant', 'blockingRead', 'keepAliveWhileOpen'];
    const offenders: string[] = [];
    for (const [f, s] of files.filter(([f]) => f.startsWith('src/api/'))) {
      for (const m of s.matchAll(/import\s+(?:type\s+)?\{([^}]*)\}\s+from\s+['"]([^'"]+)['"]/g)) {
        if (!/(^|\/)core\//.test(m[2] as string)) continue;
        const names = (m[1] as string).split(',').map((n) => n.trim().replace(/^type\s+/, '').split(/\s+as\s+/)[0]);
        for (const n of names) if (rawServices.includes(n as string)) offenders.push(`${f}: imports ${n}`);
      }
      for (const m of s.matchAll(/\b(?:gw|gateway)\.(auth|leases|locks|elections|watches|tenants|tenant|nodes|services)\b/g)) offenders.push(`${f}: uses gateway.${m[1]}`);
      for (const m of s.matchAll(/\.authorize\w*\(|quotas\.take\(|\.client\(\)/g)) offenders.push(`${f}: calls ${m[0]}`);
    }
    assert.deepEqual(offenders, []);
  });
});
