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

  test('src/core imports nothing from the transports', () => {
    const offenders = files.filter(([f, s]) => f.startsWith('src/core/') && imports(s).some((i) => /(^|\/)api\//.test(i)));
    assert.deepEqual(offenders.map(([f]) => f), []);
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
