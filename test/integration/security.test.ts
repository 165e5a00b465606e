/**
 * Security over REST against a real ZooKeeper: API keys and roles, path-prefix scopes, two
 * tenants with chroots on one server kept apart under path tricks, ZooKeeper digest auth and the
 * ACL given to created nodes, per-tenant limits, and secrets kept out of logs and errors.
 * TLS, the CLI (keygen, bind policy) and the fuzz run have their own files.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { request as httpRequest } from 'node:http';
import { pino } from 'pino';
import { startGateway, type RunningGateway } from '../../src/main.js';
import { validateConfig } from '../../src/config/schema.js';
import { generateApiKey, hashApiKey } from '../../src/core/index.js';
import type { NativeZkClient } from '../../src/zk/index.js';
import { expireSession, startZkServer, type ZkStandalone } from '../support/zk-server.js';
import { contract, restClient, type RestClient, type RestResponse } from '../support/openapi.js';
import { connectRaw, walkTree } from '../support/zk-tree.js';
import { eventually } from '../support/test-gateway.js';
import { grpcClient } from '../support/grpc-client.js';
import { WsTestClient } from '../support/ws-client.js';

interface Problem {
  code: string;
  status: number;
  detail: string;
  details?: Record<string, string | number | boolean>;
}

const enc = (path: string): string => (path === '/' ? '' : path.split('/').map(encodeURIComponent).join('/'));
const nodeUrl = (p: string): string => `/v1/nodes${enc(p)}`;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function problem(res: RestResponse, status: number, code: string): Problem {
  assert.equal(res.status, status, `expected ${status} ${code}, got ${res.status} ${JSON.stringify(res.body)}`);
  const p = res.body as Problem;
  if (res.body !== undefined) assert.equal(p.code, code, JSON.stringify(p));
  return p;
}

// Keys: tenant alpha has one of each role, a scoped writer and a second writer; beta one admin.
const KEYS = {
  aRead: generateApiKey(),
  aWrite: generateApiKey(),
  aWrite2: generateApiKey(),
  aAdmin: generateApiKey(),
  aScoped: generateApiKey(),
  aDeepScoped: generateApiKey(),
  bAdmin: generateApiKey(),
};
const DIGEST = { alpha: { user: 'alpha', password: `pw-${randomBytes(12).toString('hex')}` }, beta: { user: 'beta', password: `pw-${randomBytes(12).toString('hex')}` } };
const bearer = (key: string): { headers: Record<string, string> } => ({ headers: { authorization: `Bearer ${key}` } });

const logLines: string[] = [];
const coverage = new Set<string>();
let zk: ZkStandalone;
let gw: RunningGateway;
let api: RestClient;
let root: NativeZkClient;

before(async () => {
  zk = await startZkServer();
  const logger = pino(
    { level: 'trace' },
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        logLines.push(chunk.toString('utf8'));
        cb();
      },
    }),
  );
  gw = await startGateway(
    validateConfig({
      zookeeper: { connect: zk.connectString },
      http: { port: 0 },
      limits: { maxBodyBytes: 4096 },
      tenants: [
        {
          name: 'alpha',
          chroot: '/tenants/alpha',
          sessionTimeoutMs: 6000,
          digest: DIGEST.alpha,
          nodeAcl: [{ scheme: 'auth', id: '', perms: 'cdrwa' }],
          apiKeys: [
            { sha256: hashApiKey(KEYS.aRead), role: 'read' },
            { sha256: hashApiKey(KEYS.aWrite), role: 'write' },
            { sha256: hashApiKey(KEYS.aWrite2), role: 'write' },
            { sha256: hashApiKey(KEYS.aAdmin), role: 'admin' },
            { sha256: hashApiKey(KEYS.aScoped), role: 'write', prefixes: ['/app'] },
            { sha256: hashApiKey(KEYS.aDeepScoped), role: 'write', prefixes: ['/jobs/team'] },
          ],
        },
        {
          name: 'beta',
          chroot: '/tenants/beta',
          digest: DIGEST.beta,
          apiKeys: [{ sha256: hashApiKey(KEYS.bAdmin), role: 'admin' }],
          limits: { maxLeasesPerTenant: 2, maxLocksPerTenant: 1, maxSubscriptionsPerTenant: 1, maxChildrenPerListing: 3, maxPathBytes: 64, maxPathDepth: 4, maxDataBytes: 16 },
        },
      ],
    }),
    logger,
  );
  api = restClient(`http://127.0.0.1:${gw.httpPort}`, { coverage });
  root = await connectRaw(zk.connectString);
});

after(async () => {
  root?.close();
  await gw?.close();
  await zk?.close();
});

describe('authentication', () => {
  test('auth › a request without, with a malformed or with an unknown key is 401 with WWW-Authenticate', async () => {
    for (const headers of [{}, { authorization: 'Basic dXNlcjpwYXNz' }, { authorization: `Bearer ${generateApiKey()}` }, { authorization: 'Bearer short' }] as Record<string, string>[]) {
      const res = await api.json('GET', '/v1/nodes', undefined, { headers });
      problem(res, 401, 'UNAUTHENTICATED');
      assert.equal(res.headers.get('www-authenticate'), 'Bearer realm="zkgate"');
    }
    // Health and docs stay open for probes.
    assert.equal((await api.json('GET', '/healthz')).status, 200);
  });

  test('auth › the key selects the tenant; Zkgate-Tenant naming another tenant is refused', async () => {
    assert.equal((await api.json('GET', '/v1/nodes', undefined, bearer(KEYS.aRead))).status, 200);
    problem(await api.json('GET', '/v1/nodes', undefined, { headers: { ...bearer(KEYS.aRead).headers, 'zkgate-tenant': 'beta' } }), 403, 'PERMISSION_DENIED');
    const same = await api.json('GET', '/v1/nodes', undefined, { headers: { ...bearer(KEYS.aRead).headers, 'zkgate-tenant': 'alpha' } });
    assert.equal(same.status, 200);
  });

  test('auth › an unauthenticated request never has its body read', async () => {
    // Larger than maxBodyBytes: refused as 401, not 413, so nothing was parsed; the connection
    // is closed after the answer, so the unread body cannot linger in it.
    const res = await new Promise<{ status: number; connection: string }>((resolve, reject) => {
      const body = JSON.stringify({ data: 'x'.repeat(10_000) });
      const req = httpRequest(
        { host: '127.0.0.1', port: gw.httpPort, method: 'POST', path: nodeUrl('/big'), headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }, timeout: 10_000 },
        (r) => {
          r.resume();
          r.on('end', () => resolve({ status: r.statusCode ?? 0, connection: String(r.headers.connection) }));
        },
      );
      req.on('timeout', () => req.destroy(new Error('no answer within 10 s')));
      req.on('error', reject);
      req.end(body);
    });
    assert.deepEqual(res, { status: 401, connection: 'close' });
  });
});

/** One request per /v1 route: [method, url, JSON body]. */
function routes(P: string, leaseId: string): [string, string, unknown][] {
  return [
    ['GET', nodeUrl(P), undefined],
    ['HEAD', nodeUrl(P), undefined],
    ['POST', nodeUrl(`${P}/n`), {}],
    ['PUT', nodeUrl(P), { data: 'x' }],
    ['DELETE', nodeUrl(P), undefined],
    ['GET', `/v1/children${enc(P)}`, undefined],
    ['GET', `/v1/acl${enc(P)}`, undefined],
    ['PUT', `/v1/acl${enc(P)}`, { acl: [{ scheme: 'world', id: 'anyone', perms: 'r' }] }],
    ['POST', `/v1/sync${enc(P)}`, undefined],
    ['GET', '/v1/nodes', undefined],
    ['HEAD', '/v1/nodes', undefined],
    ['PUT', '/v1/nodes', { data: '' }],
    ['POST', '/v1/nodes', {}],
    ['DELETE', '/v1/nodes', undefined],
    ['GET', '/v1/children', undefined],
    ['GET', '/v1/acl', undefined],
    ['PUT', '/v1/acl', { acl: [{ scheme: 'world', id: 'anyone', perms: 'r' }] }],
    ['POST', '/v1/sync', undefined],
    ['GET', `/v1/tree${enc(P)}`, undefined],
    ['GET', '/v1/tree', undefined],
    ['GET', `/v1/recipes/locks${enc(P)}`, undefined],
    ['GET', '/v1/recipes/locks', undefined],
    ['GET', `/v1/recipes/elections${enc(P)}`, undefined],
    ['GET', '/v1/recipes/elections', undefined],
    ['POST', '/v1/leases', { ttlMs: 5000 }],
    ['GET', '/v1/leases', undefined],
    ['GET', `/v1/leases/${leaseId}`, undefined],
    ['POST', `/v1/leases/${leaseId}/keepalive`, undefined],
    ['DELETE', `/v1/leases/${leaseId}`, undefined],
  ];
}

describe('every route', () => {
  test('routes › every /v1 route is 401 without a key and 403 outside the key scope, changing nothing', async () => {
    const lease = (await api.json('POST', '/v1/leases', { ttlMs: 30_000 }, bearer(KEYS.aWrite))).body as { id: string };
    const before = await walkTree(root);
    for (const [method, url, body] of routes('/outside', lease.id)) {
      problem(await api.json(method, url, body), 401, 'UNAUTHENTICATED');
      // The scoped key is refused outside /app and on another key's lease; a reader cannot grant.
      const key = url === '/v1/leases' ? KEYS.aRead : KEYS.aScoped;
      // Any key may list leases (its own): the listing is refused only for another tenant.
      const opts = method === 'GET' && url === '/v1/leases' ? { headers: { ...bearer(key).headers, 'zkgate-tenant': 'beta' } } : bearer(key);
      problem(await api.json(method, url, body, opts), 403, 'PERMISSION_DENIED');
    }
    assert.deepEqual(await walkTree(root), before);
    assert.equal((await api.json('DELETE', `/v1/leases/${lease.id}`, undefined, bearer(KEYS.aWrite))).status, 200);
  });
});

describe('roles', () => {
  test('roles › read reads; write writes; only admin changes ACLs and deletes recursively', async () => {
    const P = `/roles-${randomBytes(3).toString('hex')}`;
    const [r, w, a] = [bearer(KEYS.aRead), bearer(KEYS.aWrite), bearer(KEYS.aAdmin)];
    problem(await api.json('POST', nodeUrl(P), { data: 'x' }, r), 403, 'PERMISSION_DENIED');
    assert.equal((await api.json('POST', nodeUrl(P), { data: 'x' }, w)).status, 201);
    assert.equal((await api.json('POST', nodeUrl(`${P}/c`), {}, w)).status, 201);
    for (const [method, url] of [['GET', nodeUrl(P)], ['HEAD', nodeUrl(P)], ['GET', `/v1/children${enc(P)}`], ['GET', `/v1/acl${enc(P)}`], ['POST', `/v1/sync${enc(P)}`]] as const) {
      assert.equal((await api.json(method, url, undefined, r)).status, 200, `${method} ${url} as read`);
    }
    problem(await api.json('PUT', nodeUrl(P), { data: 'y' }, r), 403, 'PERMISSION_DENIED');
    assert.equal((await api.json('PUT', nodeUrl(P), { data: 'y' }, w)).status, 200);
    const acl = { acl: [{ scheme: 'world', id: 'anyone', perms: 'cdrwa' }] };
    const denied = problem(await api.json('PUT', `/v1/acl${enc(P)}`, acl, w), 403, 'PERMISSION_DENIED');
    assert.deepEqual(denied.details, { action: 'acl.write', role: 'write', required: 'admin' });
    assert.equal((await api.json('PUT', `/v1/acl${enc(P)}`, acl, a)).status, 200);
    problem(await api.json('DELETE', nodeUrl(P), undefined, { ...w, query: { recursive: true } }), 403, 'PERMISSION_DENIED');
    problem(await api.json('DELETE', nodeUrl(`${P}/c`), undefined, r), 403, 'PERMISSION_DENIED');
    assert.equal((await api.json('DELETE', nodeUrl(`${P}/c`), undefined, w)).status, 204);
    assert.equal((await api.json('DELETE', nodeUrl(P), undefined, { ...a, query: { recursive: true } })).status, 204);
    assert.equal(await root.exists(`/tenants/alpha${P}`), null);
  });

  test('roles › a key scoped to /app works inside it only, on validated paths', async () => {
    const s = bearer(KEYS.aScoped);
    await api.json('POST', nodeUrl('/app'), {}, bearer(KEYS.aWrite)); // 201, or 409 when it exists
    const child = `/app/s-${randomBytes(3).toString('hex')}`;
    assert.equal((await api.json('POST', nodeUrl(child), { data: 'in scope' }, s)).status, 201);
    assert.equal((await api.json('GET', nodeUrl('/app'), undefined, s)).status, 200);
    assert.equal((await api.json('POST', nodeUrl('/app/q-'), { mode: 'persistent_sequential' }, s)).status, 201);
    assert.equal((await api.json('POST', '/v1/nodes/app/', { mode: 'persistent_sequential' }, s)).status, 201);
    // `/app` + sequential suffix would be a sibling of /app, outside the scope.
    problem(await api.json('POST', nodeUrl('/app'), { mode: 'persistent_sequential' }, s), 403, 'PERMISSION_DENIED');
    for (const p of ['/', '/apple', '/other', '/ap']) problem(await api.json('GET', nodeUrl(p), undefined, s), 403, 'PERMISSION_DENIED');
    problem(await api.json('GET', '/v1/children', undefined, s), 403, 'PERMISSION_DENIED');
    // Tricks never reach a path outside the scope: invalid paths are 400 before the scope check.
    for (const raw of ['/v1/nodes/app/../other', '/v1/nodes/app/%2E%2E/other', '/v1/nodes/app/..%2Fother', '/v1/nodes/app//x', '/v1/nodes/app/x/']) {
      const res = await api.json('GET', raw, undefined, { ...s, exactPath: true });
      assert.ok(res.status === 400 || res.status === 403, `${raw}: ${res.status}`);
    }
    // createParents never creates above the prefix: /jobs is missing, so /jobs/team cannot be made.
    const deep = bearer(KEYS.aDeepScoped);
    problem(await api.json('POST', nodeUrl('/jobs/team/x'), { createParents: true }, deep), 404, 'NO_NODE');
    assert.equal(await root.exists('/tenants/alpha/jobs'), null, 'nothing was created above the prefix');
    await api.json('POST', nodeUrl('/jobs'), {}, bearer(KEYS.aWrite));
    assert.equal((await api.json('POST', nodeUrl('/jobs/team/x/y'), { createParents: true }, deep)).status, 201, 'inside the prefix it creates parents');
    // Look-alike slashes are ordinary characters: one segment, outside /app.
    problem(await api.json('GET', nodeUrl('/app\u2215..\u2215other'), undefined, s), 403, 'PERMISSION_DENIED');
  });
});

describe('tenant isolation', () => {
  test('isolation › tenant alpha cannot read, write, list, lease or learn about beta nodes under path tricks', async () => {
    const b = bearer(KEYS.bAdmin);
    const a = bearer(KEYS.aAdmin);
    assert.equal((await api.json('POST', nodeUrl('/secret'), { data: 'beta only' }, b)).status, 201);
    const betaLease = (await api.json('POST', '/v1/leases', { ttlMs: 30_000 }, b)).body as { id: string };
    const before = await walkTree(root);

    // Each trick is tried against beta's existing node and a missing one: the answers must match.
    const tricks = (name: string): string[] => [
      `/v1/nodes/../beta/${name}`,
      `/v1/nodes/..%2Fbeta%2F${name}`,
      `/v1/nodes/%2E%2E/beta/${name}`,
      `/v1/nodes/..%252Fbeta%252F${name}`,
      `/v1/nodes/%252E%252E/beta/${name}`,
      `/v1/nodes/..\u2215beta\u2215${name}`.replace(/[^\x20-\x7e]/g, encodeURIComponent),
      `/v1/nodes/..\uff0fbeta\uff0f${name}`.replace(/[^\x20-\x7e]/g, encodeURIComponent),
      `/v1/nodes//tenants/beta/${name}`,
      `/v1/nodes/tenants/beta/${name}`,
      `/v1/nodes/tenants/beta/${name}/`,
      `/v1/nodes/tenants%2Fbeta%2F${name}`,
      `/v1/nodes/%00/../beta/${name}`,
      `/v1/nodes/${'../'.repeat(200)}tenants/beta/${name}`,
      `/v1/nodes/${'x/'.repeat(3000)}${name}`,
      `/v1/children/..`,
      `/v1/children/../beta`,
      `/v1/acl/../beta/${name}`,
    ];
    const answers = async (name: string): Promise<string[]> => {
      const out: string[] = [];
      for (const url of tricks(name)) {
        for (const method of ['GET', 'PUT', 'DELETE', 'POST']) {
          const res = await api.json(method, url, method === 'PUT' || method === 'POST' ? { data: 'pwned' } : undefined, { ...a, exactPath: true });
          assert.ok(res.status < 500, `${method} ${url}: ${res.status}`);
          assert.ok(!res.bytes.toString('utf8').includes('beta only'), `${method} ${url} leaked beta's data`);
          out.push(`${method} ${url.replace(name, 'NAME')} ${res.status} ${(res.body as Problem | undefined)?.code ?? ''}`);
        }
      }
      return out;
    };
    assert.deepEqual(await answers('secret'), await answers('missing'), "the answers do not depend on beta's nodes");

    // Beta's lease is unknown to alpha, exactly like a lease that never existed.
    problem(await api.json('GET', `/v1/leases/${betaLease.id}`, undefined, a), 404, 'LEASE_NOT_FOUND');
    problem(await api.json('POST', nodeUrl('/e'), { mode: 'ephemeral', leaseId: betaLease.id }, a), 404, 'LEASE_NOT_FOUND');
    // Alpha's root listing is alpha's chroot only.
    const listing = (await api.json('GET', '/v1/children', undefined, a)).body as { children: { name: string }[] };
    assert.ok(!listing.children.some((c) => c.name === 'secret' || c.name === 'tenants'));

    // Nothing outside alpha's chroot changed (tricks that are plain names, such as a node
    // called `..%2Fbeta%2Fsecret`, were created inside it).
    const afterWalk = await walkTree(root);
    const outside = (m: Map<string, string>): string[] =>
      [...m].filter(([p]) => p !== '/tenants/alpha' && !p.startsWith('/tenants/alpha/')).map((e) => e.join(' '));
    assert.deepEqual(outside(afterWalk), outside(before));
    assert.equal((await root.get('/tenants/beta/secret')).data.toString(), 'beta only');
  });
});

describe('tenant isolation over gRPC and WebSocket', () => {
  test('isolation › the same path tricks over gRPC and WebSocket never reach beta, and answer alike for existing and missing nodes', async () => {
    await api.json('POST', nodeUrl('/secret'), { data: 'beta only' }, bearer(KEYS.bAdmin)); // 201, or 409 when the REST test made it
    const tricks = (name: string): string[] => [
      `/../beta/${name}`, `/tenants/beta/${name}`, `//beta/${name}`, `/..\u2215beta\u2215${name}`, `/..\uff0fbeta\uff0f${name}`, `/./${name}`, `/${name}/`, `/a\u0000/../${name}`,
    ];
    const g = grpcClient(gw.grpcPort, { apiKey: KEYS.aAdmin });
    const ws = await WsTestClient.open(`ws://127.0.0.1:${gw.httpPort}/v1/ws`, { authorization: `Bearer ${KEYS.aAdmin}` });
    try {
      const answers = async (name: string): Promise<string[]> => {
        const out: string[] = [];
        for (const [i, path] of tricks(name).entries()) {
          const got = await g.unary<{ data?: Buffer }>('Znodes', 'Get', { path }).then(
            (r) => `OK ${Buffer.from(r.data ?? []).toString()}`,
            (e: { code: number }) => `status ${e.code}`,
          );
          out.push(`grpc ${path.replace(name, 'NAME')} ${got}`);
          const id = `${name}-${i}`;
          ws.send({ op: 'subscribe', id, path });
          const reply = await ws.take((m) => m.id === id);
          out.push(`ws ${path.replace(name, 'NAME')} ${reply.type} ${String(reply.code ?? '')}`);
          if (reply.type === 'subscribed') {
            ws.send({ op: 'unsubscribe', id });
            await ws.take((m) => m.type === 'unsubscribed' && m.id === id);
          }
        }
        return out;
      };
      const existing = await answers('secret');
      assert.deepEqual(existing, await answers('missing'), "gRPC and WebSocket answers do not depend on beta's nodes");
      assert.ok(existing.every((a) => !a.includes('beta only')));
      assert.ok(!JSON.stringify(ws.all).includes('beta only'), 'no WebSocket message carried beta data');
    } finally {
      g.close();
      ws.close();
    }
  });
});

describe('zookeeper credentials and ACLs', () => {
  test('acl › nodes the gateway creates get the tenant ACL (digest identity), also after session expiry', async () => {
    const a = bearer(KEYS.aWrite);
    const P = `/acl-${randomBytes(3).toString('hex')}`;
    assert.equal((await api.json('POST', nodeUrl(`${P}/deep/leaf`), { data: 'guarded', createParents: true }, a)).status, 201);
    const lease = (await api.json('POST', '/v1/leases', { ttlMs: 10_000 }, a)).body as { id: string };
    const eph = (await api.json('POST', nodeUrl(`${P}/e-`), { mode: 'ephemeral_sequential', leaseId: lease.id }, a)).body as { path: string };
    const id = `alpha:${createHash('sha1').update(`alpha:${DIGEST.alpha.password}`).digest('base64')}`;
    const expected = [{ scheme: 'digest', id, perms: 31 }];
    for (const p of [P, `${P}/deep`, `${P}/deep/leaf`, eph.path, '']) {
      const { acl } = await root.getAcl(`/tenants/alpha${p}`).catch(async () => {
        const c = await connectRaw(zk.connectString, [{ scheme: 'digest', credential: `alpha:${DIGEST.alpha.password}` }]);
        try {
          return await c.getAcl(`/tenants/alpha${p}`);
        } finally {
          c.close();
        }
      });
      assert.deepEqual(acl, expected, `ACL of ${p || 'the chroot'}`);
    }
    // A client without alpha's digest is refused by ZooKeeper itself.
    await assert.rejects(root.get(`/tenants/alpha${P}/deep/leaf`), (e: { code?: string }) => e.code === 'NO_AUTH');

    // A new session after expiry authenticates again before serving.
    const tenant = gw.gateway.tenants.get('alpha');
    const oldId = tenant.session.sessionId;
    await expireSession(zk.connectString, oldId, tenant.session.sessionPassword);
    const until = Date.now() + 15_000;
    while ((tenant.session.sessionId === oldId || !tenant.ready) && Date.now() < until) await sleep(50);
    const res = await api.json('GET', nodeUrl(`${P}/deep/leaf`), undefined, bearer(KEYS.aRead));
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal((res.body as { data: string }).data, 'guarded');
  });
});

describe('limits', () => {
  test('limits › held and waiting locks and candidacies count against maxLocksPerTenant', async () => {
    const b = bearer(KEYS.bAdmin);
    const lease = (await api.json('POST', '/v1/leases', { ttlMs: 30_000 }, b)).body as { id: string };
    const first = await api.json('POST', '/v1/locks/q/l1', { leaseId: lease.id, waitMs: 0 }, b);
    assert.equal(first.status, 200, JSON.stringify(first.body));
    const refused = problem(await api.json('POST', '/v1/locks/q/l2', { leaseId: lease.id, waitMs: 0 }, b), 429, 'LIMIT_EXCEEDED');
    assert.deepEqual(refused.details, { limit: 'maxLocksPerTenant', max: 1 });
    problem(await api.json('POST', '/v1/elections/q/e', { leaseId: lease.id, waitMs: 0 }, b), 429, 'LIMIT_EXCEEDED');
    assert.equal(await root.exists('/tenants/beta/q/l2'), null, 'nothing was created for the refused lock');
    // Releasing gives the unit back.
    const node = (first.body as { node: string }).node;
    assert.equal((await api.json('DELETE', `/v1/locks/q/l1?leaseId=${lease.id}&node=${encodeURIComponent(node)}`, undefined, b)).status, 200);
    assert.equal((await api.json('POST', '/v1/locks/q/l2', { leaseId: lease.id, waitMs: 0 }, b)).status, 200);
    assert.equal((await api.json('DELETE', `/v1/leases/${lease.id}`, undefined, b)).status, 200);
    const metrics = (await api.request('GET', '/metrics')).body as string;
    assert.match(metrics, /zkgate_limit_rejections_total\{limit="maxLocksPerTenant",transport="rest"\} 2/);
    assert.match(metrics, /zkgate_tenant_quota_used\{tenant="beta",kind="locks"\} 0/, 'the lease end released its lock');
  });

  test('limits › leases, listing size, path length and depth, data and body size are refused with their limit named', async () => {
    const b = bearer(KEYS.bAdmin);
    const P = '/lim';
    // beta already holds one lease (isolation test) or none: fill up to 2, then one more.
    const held: string[] = [];
    let refused: RestResponse | undefined;
    for (let i = 0; i < 3 && !refused; i++) {
      const res = await api.json('POST', '/v1/leases', { ttlMs: 30_000 }, b);
      if (res.status === 201) held.push((res.body as { id: string }).id);
      else refused = res;
    }
    assert.ok(refused, 'a third lease is refused');
    const p = problem(refused, 429, 'LIMIT_EXCEEDED');
    assert.deepEqual(p.details, { limit: 'maxLeasesPerTenant', max: 2 });
    // Revoking gives the unit back.
    assert.equal((await api.json('DELETE', `/v1/leases/${held[0]}`, undefined, b)).status, 200);
    assert.equal((await api.json('POST', '/v1/leases', { ttlMs: 30_000 }, b)).status, 201);

    for (const n of ['a', 'b', 'c', 'd']) assert.equal((await api.json('POST', nodeUrl(`${P}/${n}`), { createParents: true }, b)).status, 201);
    // More children than maxChildrenPerListing (3): answered in pages, never refused.
    const first = (await api.json('GET', `/v1/children${P}`, undefined, b)).body as { children: { name: string }[]; total: number; nextCursor?: string };
    assert.deepEqual([first.children.map((c) => c.name), first.total], [['a', 'b', 'c'], 4]);
    const rest = (await api.json('GET', `/v1/children${P}?cursor=${first.nextCursor}`, undefined, b)).body as { children: { name: string }[]; nextCursor?: string };
    assert.deepEqual([rest.children.map((c) => c.name), rest.nextCursor], [['d'], undefined]);
    assert.equal(problem(await api.json('GET', `/v1/children${P}?limit=4`, undefined, b), 400, 'INVALID_ARGUMENT').details?.field, 'limit');
    assert.equal((await api.json('GET', `/v1/nodes${P}/a`, undefined, b)).status, 200, 'the nodes themselves stay readable');

    const long = `/${'x'.repeat(70)}`;
    assert.equal(problem(await api.json('POST', nodeUrl(long), {}, b), 400, 'INVALID_PATH').details?.limit, 'maxPathBytes');
    assert.equal(problem(await api.json('POST', nodeUrl('/a/b/c/d/e'), { createParents: true }, b), 400, 'INVALID_PATH').details?.limit, 'maxPathDepth');
    problem(await api.json('POST', nodeUrl(`${P}/big`), { data: 'x'.repeat(17) }, b), 413, 'DATA_TOO_LARGE');
    problem(await api.json('POST', nodeUrl(`${P}/huge`), { data: 'x'.repeat(5000) }, b), 413, 'PAYLOAD_TOO_LARGE');
    assert.equal(await root.exists('/tenants/beta/lim/big'), null);

    const metrics = (await api.request('GET', '/metrics')).body as string;
    for (const limit of ['maxLeasesPerTenant', 'maxPathBytes', 'maxPathDepth', 'maxDataBytes', 'maxBodyBytes']) {
      assert.match(metrics, new RegExp(`zkgate_limit_rejections_total\\{limit="${limit}",transport="rest"\\} [1-9]`), limit);
    }
    assert.match(metrics, /zkgate_tenant_quota_used\{tenant="beta",kind="leases"\} 2/);
    assert.match(metrics, /zkgate_tenant_quota_max\{tenant="beta",kind="leases"\} 2/);
  });
});

describe('secrets', () => {
  test('secrets › keys, digest passwords and session passwords appear in no log line and no error body', async () => {
    // Provoke errors that carry text: bad keys (a real-looking one too), a bad path, a 404.
    const fake = generateApiKey();
    const bodies: string[] = [];
    for (const headers of [{ authorization: `Bearer ${fake}` }, { authorization: `Bearer ${KEYS.aRead}x` }, { authorization: `Token ${KEYS.aAdmin}` }]) {
      bodies.push((await api.json('GET', '/v1/nodes', undefined, { headers })).bytes.toString('utf8'));
    }
    bodies.push((await api.json('GET', nodeUrl('/nope'), undefined, bearer(KEYS.aAdmin))).bytes.toString('utf8'));
    bodies.push((await api.json('GET', '/readyz')).bytes.toString('utf8'));
    const sessionPasswords = gw.gateway.tenants.all().map((t) => t.session.sessionPassword);
    const secrets = [...Object.values(KEYS), fake, DIGEST.alpha.password, DIGEST.beta.password, ...sessionPasswords].filter((s) => s.length > 0);
    assert.ok(logLines.length > 10, `captured ${logLines.length} log lines`);
    const text = logLines.join('') + bodies.join('\n');
    for (const s of secrets) assert.ok(!text.includes(s), 'a secret appeared in the logs or an error body');
  });
});

describe('whoami', () => {
  test('auth › whoami is 401 without a key and tells a key its tenant, role and prefixes, never the key', async () => {
    problem(await api.json('GET', '/v1/whoami'), 401, 'UNAUTHENTICATED');
    const res = await api.json('GET', '/v1/whoami', undefined, bearer(KEYS.aScoped));
    assert.equal(res.status, 200);
    const who = res.body as { tenant: string; role: string; prefixes: string[]; keyId: string; authRequired: boolean };
    assert.deepEqual([who.tenant, who.role, who.prefixes, who.authRequired], ['alpha', 'write', ['/app'], true]);
    assert.ok(!JSON.stringify(who).includes(KEYS.aScoped.slice(4)), 'the key is never echoed');
    // With keys the key selects the tenant: a tenant header naming another one is refused.
    problem(await api.json('GET', '/v1/whoami', undefined, { headers: { ...bearer(KEYS.aScoped).headers, 'zkgate-tenant': 'beta' } }), 403, 'PERMISSION_DENIED');
  });
});

describe('locks and elections', () => {
  test('auth › lock and election routes need a key, the role, the path scope and the lease owner', async () => {
    const lease = (await api.json('POST', '/v1/leases', { ttlMs: 30_000 }, bearer(KEYS.aWrite))).body as { id: string };
    const routes: [string, string, unknown][] = [
      ['POST', '/v1/locks/app/l', { leaseId: lease.id }],
      ['DELETE', `/v1/locks/app/l?leaseId=${lease.id}&node=x`, undefined],
      ['GET', '/v1/locks/app/l', undefined],
      ['POST', '/v1/elections/app/e', { leaseId: lease.id }],
      ['GET', '/v1/elections/app/e', undefined],
      ['PUT', '/v1/elections/app/e', { leaseId: lease.id, node: 'x', value: 'v' }],
      ['DELETE', `/v1/elections/app/e?leaseId=${lease.id}&node=x`, undefined],
    ];
    for (const [method, url, body] of routes) {
      problem(await api.json(method, url, body), 401, 'UNAUTHENTICATED');
      problem(await api.json(method, url.replace('/app/', '/other/'), body, bearer(KEYS.aScoped)), 403, 'PERMISSION_DENIED');
    }
    problem(await api.json('POST', '/v1/locks/app/l', { leaseId: lease.id }, bearer(KEYS.aRead)), 403, 'PERMISSION_DENIED');
    assert.equal((await api.json('GET', '/v1/locks/app/l', undefined, bearer(KEYS.aRead))).status, 200, 'read may inspect');
    problem(await api.json('POST', '/v1/locks/app/l', { leaseId: lease.id }, bearer(KEYS.aWrite2)), 403, 'PERMISSION_DENIED');
    const held = await api.json('POST', '/v1/locks/app/l', { leaseId: lease.id }, bearer(KEYS.aWrite));
    assert.equal(held.status, 200, "the lease owner's key may lock");
  });
});

describe('service registry', () => {
  test('auth › registry routes need a key, the role, the path scope (of base/service/id) and the lease owner', async () => {
    const lease = { id: await eventually(async () => ((await api.json('POST', '/v1/leases', { ttlMs: 30_000 }, bearer(KEYS.aScoped))).body as { id?: string }).id) };
    const routes: [string, string, unknown][] = [
      ['GET', '/v1/services?base=/app', undefined],
      ['GET', '/v1/services/svc?base=/app', undefined],
      ['POST', '/v1/services/svc/instances?base=/app', { leaseId: lease.id, id: 'i', address: 'h' }],
      ['GET', '/v1/services/svc/instances/i?base=/app', undefined],
      ['PUT', '/v1/services/svc/instances/i?base=/app', { leaseId: lease.id, port: 1 }],
      ['DELETE', `/v1/services/svc/instances/i?base=/app&leaseId=${lease.id}`, undefined],
      ['GET', '/v1/services/svc/pick?base=/app', undefined],
      ['GET', '/v1/services/svc/watch?base=/app', undefined],
    ];
    for (const [method, url, body] of routes) {
      problem(await api.json(method, url, body), 401, 'UNAUTHENTICATED');
      problem(await api.json(method, url.replace('base=/app', 'base=/other'), body, bearer(KEYS.aScoped)), 403, 'PERMISSION_DENIED');
    }
    const register = (key: string, base = '/app') => api.json('POST', `/v1/services/svc/instances?base=${base}`, { leaseId: lease.id, id: 'i', address: 'h' }, bearer(key));
    problem(await register(KEYS.aRead), 403, 'PERMISSION_DENIED');
    problem(await register(KEYS.aWrite2), 403, 'PERMISSION_DENIED');
    assert.equal((await register(KEYS.aScoped)).status, 201, "the lease owner's key registers inside its prefix (parents created there)");
    assert.equal((await api.json('GET', '/v1/services/svc?base=/app', undefined, bearer(KEYS.aRead))).status, 200, 'read may list');
    problem(await api.json('GET', '/v1/services?base=/', undefined, bearer(KEYS.aScoped)), 403, 'PERMISSION_DENIED');
    assert.equal(await root.exists('/tenants/alpha/app/svc/i').then((s) => s !== null), true);
  });
});

describe('recipes, queues, barriers and jobs', () => {
  test('auth › every route needs a key (401) and the path scope (403), changing nothing', async () => {
    const lease = (await api.json('POST', '/v1/leases', { ttlMs: 30_000 }, bearer(KEYS.aWrite))).body as { id: string };
    const routes: [string, string, unknown][] = [
      ['GET', '/v1/semaphores/app/s?maxPermits=2', undefined],
      ['POST', '/v1/semaphores/app/s', { leaseId: lease.id, maxPermits: 2, waitMs: 0 }],
      ['DELETE', `/v1/semaphores/app/s?leaseId=${lease.id}&node=x`, undefined],
      ['GET', '/v1/rwlocks/app/rw', undefined],
      ['POST', '/v1/rwlocks/app/rw', { leaseId: lease.id, mode: 'read', waitMs: 0 }],
      ['DELETE', `/v1/rwlocks/app/rw?leaseId=${lease.id}&node=x`, undefined],
      ['GET', '/v1/queues/app/q', undefined],
      ['POST', '/v1/queues/app/q', { data: 'x' }],
      ['POST', '/v1/queue-take/app/q', { waitMs: 0 }],
      ['POST', '/v1/queue-ack/app/q', { leaseId: lease.id, item: 'qn-0000000000' }],
      ['POST', '/v1/queue-release/app/q', { leaseId: lease.id, item: 'qn-0000000000' }],
      ['GET', '/v1/barriers/app/b', undefined],
      ['PUT', '/v1/barriers/app/b', undefined],
      ['DELETE', '/v1/barriers/app/b', undefined],
      ['GET', '/v1/double-barriers/app/d', undefined],
      ['POST', '/v1/double-barriers/app/d', { leaseId: lease.id, members: 2, waitMs: 0 }],
      ['DELETE', `/v1/double-barriers/app/d?leaseId=${lease.id}&node=x`, undefined],
    ];
    // Jobs live under /zkgate/jobs, outside every key prefix: a key scoped to /app reaches none.
    const jobs: [string, string, unknown][] = [
      ['GET', '/v1/jobs', undefined],
      ['GET', '/v1/jobs/j', undefined],
      ['PUT', '/v1/jobs/j', { shardCount: 2 }],
      ['POST', '/v1/jobs/j/pause', undefined],
      ['POST', '/v1/jobs/j/resume', undefined],
      ['POST', '/v1/jobs/j/disable', undefined],
      ['GET', '/v1/jobs/j/runs', undefined],
      ['POST', '/v1/jobs/j/runs', { trigger: '2026-11-30T00:00:00Z', leaseId: lease.id }],
      ['GET', '/v1/jobs/j/runs/r', undefined],
      ['POST', '/v1/jobs/j/runs/r/complete', { leaseId: lease.id, outcome: 'succeeded' }],
      ['POST', '/v1/jobs/j/members', { memberId: 'm', leaseId: lease.id }],
      ['DELETE', `/v1/jobs/j/members/m?leaseId=${lease.id}`, undefined],
      ['POST', '/v1/jobs/j/members/m/sync', { leaseId: lease.id }],
      ['GET', '/v1/jobs/j/assignment', undefined],
      ['DELETE', '/v1/jobs/j', undefined],
    ];
    const before = await walkTree(root);
    for (const [method, url, body] of [...routes, ...jobs]) {
      problem(await api.json(method, url, body), 401, 'UNAUTHENTICATED');
      const outside = routes.some(([, u]) => u === url) ? url.replace('/app/', '/other/') : url;
      // The job list is filtered to what the key may see; naming another tenant is what it refuses.
      const opts = url === '/v1/jobs' ? { headers: { ...bearer(KEYS.aScoped).headers, 'zkgate-tenant': 'beta' } } : bearer(KEYS.aScoped);
      problem(await api.json(method, outside, body, opts), 403, 'PERMISSION_DENIED');
    }
    assert.deepEqual(await walkTree(root), before);
    assert.equal((await api.json('DELETE', `/v1/leases/${lease.id}`, undefined, bearer(KEYS.aWrite))).status, 200);
  });

  test('limits › grants count against maxLocksPerTenant and waits against maxSubscriptionsPerTenant, nothing created', async () => {
    const b = bearer(KEYS.bAdmin);
    // Earlier tests may have left beta at its lease limit: start from none.
    for (const l of ((await api.json('GET', '/v1/leases', undefined, b)).body as { leases: { id: string }[] }).leases) {
      await api.json('DELETE', `/v1/leases/${l.id}`, undefined, b);
    }
    const lease = (await api.json('POST', '/v1/leases', { ttlMs: 30_000 }, b)).body as { id: string };
    const held = await api.json('POST', '/v1/locks/r/l', { leaseId: lease.id, waitMs: 0 }, b);
    assert.equal(held.status, 200, JSON.stringify(held.body));
    // A claim takes its unit once there is an item to claim.
    assert.equal((await api.json('POST', '/v1/queues/r/q', { data: 'item' }, b)).status, 200);
    const before = await walkTree(root);
    for (const [url, body] of [
      ['/v1/semaphores/r/s', { leaseId: lease.id, maxPermits: 2, waitMs: 0 }],
      ['/v1/rwlocks/r/rw', { leaseId: lease.id, mode: 'write', waitMs: 0 }],
      ['/v1/queue-take/r/q', { mode: 'claim', leaseId: lease.id, waitMs: 0 }],
      ['/v1/double-barriers/r/d', { leaseId: lease.id, members: 2, waitMs: 0 }],
    ] as const) {
      assert.deepEqual(problem(await api.json('POST', url, body, b), 429, 'LIMIT_EXCEEDED').details, { limit: 'maxLocksPerTenant', max: 1 }, url);
    }
    // One wait in flight holds beta's only subscription; every other wait is refused meanwhile.
    assert.equal((await api.json('PUT', '/v1/barriers/r/held', undefined, b)).status, 200);
    const first = api.json('GET', '/v1/barriers/r/held?wait=3000', undefined, b);
    await eventually(async () => /zkgate_tenant_quota_used\{tenant="beta",kind="subscriptions"\} 1/.test((await api.request('GET', '/metrics')).body as string), 5000, 'the first wait');
    for (const [method, url, body] of [
      ['GET', '/v1/barriers/r/other?wait=1000', undefined],
      ['GET', '/v1/jobs/j/assignment?after=0&wait=1000', undefined],
      ['POST', '/v1/queue-take/r/q', { waitMs: 1000 }],
    ] as const) {
      assert.deepEqual(problem(await api.json(method, url, body, b), 429, 'LIMIT_EXCEEDED').details?.limit, 'maxSubscriptionsPerTenant', url);
    }
    await first;
    assert.equal((await api.json('DELETE', '/v1/barriers/r/held', undefined, b)).status, 200);
    assert.equal((await api.json('DELETE', `/v1/leases/${lease.id}`, undefined, b)).status, 200);
    const created = [...(await walkTree(root)).keys()].filter((p) => !before.has(p) && !p.includes('/r/held'));
    assert.deepEqual(created, [], 'the refused calls created nothing');
  });
});

describe('coverage', () => {
  test('every documented 401, 403, 429 and listing 409 was produced and checked', (t) => {
    const wanted = contract()
      .documented()
      .filter((k) => / 40[13]$| 429$/.test(k) || /^GET \/v1\/children.* 409$/.test(k))
      .filter((k) => !/^GET \/v1\/acl.* 403$/.test(k) || coverage.has(k))
      // Watch streams and long-poll quotas are produced and checked by watch-http.test.ts, the
      // election long-poll's by stream-quotas.test.ts.
      .filter((k) => !/^GET \/v1\/watch\//.test(k) && !/^GET \/v1\/(nodes|children|elections)(\/\{path\})? 429$/.test(k))
      // The registry's long-poll and SSE quotas: registry.test.ts.
      .filter((k) => !/^GET \/v1\/services\/\{service\}(\/watch)? 429$/.test(k))
      // The roots of the recipe routes and of the watch stream: rest-4xx-documented.test.ts.
      .filter((k) => !/^\S+ \/v1\/(locks|semaphores|rwlocks|elections|queues|queue-take|queue-ack|queue-release|barriers|double-barriers|watch) /.test(k));
    t.diagnostic(`security responses covered: ${wanted.filter((k) => coverage.has(k)).length} of ${wanted.length}`);
    assert.deepEqual(wanted.filter((k) => !coverage.has(k)), []);
  });
});
