/**
 * Fuzzing the gateway with fast-check: thousands of generated malformed and hostile requests
 * (odd methods, path tricks, encoded slashes and look-alikes, NUL, huge paths, bad query values,
 * wrong or missing keys, mismatched content types, broken and oversize bodies) sent one at a
 * time over raw HTTP. Every answer must be a success or a 4xx problem — never a 5xx, a dropped
 * connection or a hang — and a refused request must change nothing in ZooKeeper. The whole tree
 * (read as ZooKeeper's super user, so ACLs set by the fuzz hide nothing) is kept as a snapshot
 * at a known zxid; after each request the server's last zxid is read (`srvr`): unchanged means
 * nothing was written anywhere; changed after a refusal (ZooKeeper also spends a zxid on a
 * failed write) means the tree is read again and must equal the snapshot. Every 20th refusal
 * the tree is read anyway. Only tenant A's keys are used, so tenant B's subtree must come out
 * unchanged.
 *
 * Runs against a ZooKeeper started by this file whose container/TTL sweep is an hour apart
 * (60 s by default), so nothing but the gateway writes during the run: on a slow machine the
 * runs' fewest requests took them past the first sweep, which deleted an empty container the
 * fuzz had made and read as a refused request that changed the tree.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { connect as netConnect } from 'node:net';
import fc from 'fast-check';
import { startGateway, type RunningGateway } from '../../src/main.js';
import { validateConfig } from '../../src/config/schema.js';
import { generateApiKey, hashApiKey, silentLogger } from '../../src/core/index.js';
import type { NativeZkClient } from '../../src/zk/index.js';
import { fourLetter, startZkServer, type ZkStandalone } from '../support/zk-server.js';
import { connectRaw, walkTree } from '../support/zk-tree.js';
import { grpcClient, type GrpcTestClient } from '../support/grpc-client.js';
import { eventually } from '../support/test-gateway.js';
import { Metadata, status as grpcStatus, type Client, type ServiceError } from '@grpc/grpc-js';
import WebSocket from 'ws';
import { ERROR_TABLE } from '../../src/api/error-table.js';
import type { ErrorCode } from '../../src/core/index.js';

const KEYS = { admin: generateApiKey(), read: generateApiKey(), scoped: generateApiKey(), b: generateApiKey() };
const REST_BUDGET_MS = 15_000;
const GRPC_BUDGET_MS = 10_000;
const WS_BUDGET_MS = 12_000;
/** At most ~150 requests a second per transport. */
const MIN_INTERVAL_MS = 6.5;
/** Fewest requests a run makes per transport, however slow the machine. */
const MIN_REQUESTS = 500;
/** How often this file's ZooKeeper deletes empty containers and expired TTL nodes: not during the runs. */
const SWEEP_INTERVAL_MS = 3_600_000;
const SUPER_PASSWORD = `super-${Date.now()}`;
const REQUEST_TIMEOUT_MS = 5000;

let zk: ZkStandalone;
let gw: RunningGateway;
let raw: NativeZkClient;
let leaseId = '';
let grpc: GrpcTestClient;

before(async () => {
  const superDigest = createHash('sha1').update(`super:${SUPER_PASSWORD}`).digest('base64');
  // zoo.cfg keys become zookeeper.* system properties: this one makes `super` see every node.
  zk = await startZkServer({
    extraConfig: { 'DigestAuthenticationProvider.superDigest': `super:${superDigest}` },
    systemProperties: { 'znode.container.checkIntervalMs': SWEEP_INTERVAL_MS },
  });
  gw = await startGateway(
    validateConfig({
      zookeeper: { connect: zk.connectString },
      http: { port: 0 },
      log: { level: 'silent' },
      limits: { wsMaxMessageBytes: 4096, maxBodyBytes: 4096, maxDataBytes: 512, maxChildrenPerListing: 20, maxLeasesPerTenant: 8, maxPathBytes: 256, maxPathDepth: 8, maxRecursiveDeleteNodes: 50 },
      tenants: [
        {
          name: 'fz-a',
          chroot: '/fz/a',
          apiKeys: [
            { sha256: hashApiKey(KEYS.admin), role: 'admin' },
            { sha256: hashApiKey(KEYS.read), role: 'read' },
            { sha256: hashApiKey(KEYS.scoped), role: 'write', prefixes: ['/app'] },
          ],
        },
        { name: 'fz-b', chroot: '/fz/b', apiKeys: [{ sha256: hashApiKey(KEYS.b), role: 'admin' }] },
      ],
    }),
    silentLogger,
  );
  raw = await connectRaw(zk.connectString, [{ scheme: 'digest', credential: `super:${SUPER_PASSWORD}` }]);
  // Some state to aim at: nodes in both tenants and a long-lived lease of tenant A.
  for (const p of ['/fz/a/app', '/fz/a/app/x', '/fz/a/a', '/fz/b/secret', '/fz/b/app']) await raw.create(p, Buffer.from('seed'), 'persistent');
  const res = await send({ method: 'POST', path: '/v1/leases', headers: { authorization: `Bearer ${KEYS.admin}`, 'content-type': 'application/json' }, body: '{"ttlMs":3600000}' });
  leaseId = (JSON.parse(res.body.toString()) as { id: string }).id;
  grpc = grpcClient(gw.grpcPort);
});

after(async () => {
  grpc?.close();
  raw?.close();
  await gw?.close();
  await zk?.close();
});

interface Req {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: Buffer | string;
}
interface Res {
  status: number;
  body: Buffer;
  contentType: string;
}

/** One request over a fresh connection; rejects on a dropped connection or after the timeout. */
function send(r: Req): Promise<Res> {
  return new Promise((resolve, reject) => {
    const headers = { ...r.headers, connection: 'close' } as Record<string, string>;
    if (r.body !== undefined) headers['content-length'] = String(Buffer.byteLength(r.body));
    const req = httpRequest({ host: '127.0.0.1', port: gw.httpPort, method: r.method, path: r.path, headers, timeout: REQUEST_TIMEOUT_MS }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), contentType: String(res.headers['content-type'] ?? '') }));
    });
    req.on('timeout', () => req.destroy(new Error('hang: no answer in time')));
    req.on('error', reject);
    req.end(r.body);
  });
}

async function lastZxid(): Promise<string> {
  const m = /Zxid: (0x[0-9a-f]+)/.exec(await fourLetter(zk.clientPort, 'srvr'));
  assert.ok(m, 'srvr reports the last zxid');
  return m[1] as string;
}

// ------------------------------------------------------------------------------------------
// Generators
// ------------------------------------------------------------------------------------------

const enc = (s: string): string => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
const hostileSegment = fc.oneof(
  { weight: 14, arbitrary: fc.constantFrom('a', 'app', 'x', 'secret', 'fz', 'b', 'zookeeper', 'tenants', 'n-', 'q') },
  {
    weight: 6,
    arbitrary: fc.constantFrom(
      '..', '.', '', '%2F', '%2f', '%252F', '%2E%2E', '%2e', '%00', '%0A', '%0D%0A', '%E2%88%95', '%EF%BC%8F', '%C0%AF', '%C0%AE%C0%AE',
      '%ZZ', '%', '%E2%88', '..%2F..%2Ffz%2Fb', '%2E%2E%2F%2E%2E', ';', '%3B', '%3F', '%23', '~', '%7F', '%C2%85', '%F0%9F%98%80', '%ED%A0%80',
      'x'.repeat(300), `${'%41'.repeat(100)}`, '%EF%BF%BF', 'con', '*',
    ),
  },
  { weight: 3, arbitrary: fc.string({ maxLength: 12 }).map(enc) },
);
const route = fc.constantFrom(
  '/v1/nodes', '/v1/children', '/v1/acl', '/v1/sync', '/v1/leases', '/v1/leases/LEASE', '/v1/leases/LEASE/keepalive', '/v1/leases/gw-x.00', '/v1',
  '/v1/nodes/', '/v1//nodes', '/V1/nodes', '/v2/nodes', '/v1/nodes/../leases', '/healthz', '/readyz', '/docs', '/openapi.yaml', '/nope',
  // queue.ts routes
  '/v1/queues', '/v1/queue-take', '/v1/queue-ack', '/v1/queue-release',
  '/v1/semaphores', '/v1/semaphores', '/v1/rwlocks', '/v1/rwlocks',
  '/v1/jobs', '/v1/jobs/fz', '/v1/jobs/fz', '/v1/jobs/fz/runs', '/v1/jobs/fz/runs', '/v1/jobs/fz/runs/t1', '/v1/jobs/fz/runs/t1/complete', '/v1/jobs/fz/runs/t1@0',
  '/v1/jobs/fz/members', '/v1/jobs/fz/members/m1', '/v1/jobs/fz/members/m1/sync', '/v1/jobs/fz/assignment', '/v1/jobs/fz/pause', '/v1/jobs/fz/resume', '/v1/jobs/fz/disable',
  // registry.ts routes (not /watch: an SSE stream never ends, which the runner would count as a hang)
  '/v1/services', '/v1/services/fz', '/v1/services/fz', '/v1/services/fz/instances', '/v1/services/fz/instances', '/v1/services/fz/instances/i1', '/v1/services/fz/pick',
  // barrier.ts routes
  '/v1/barriers', '/v1/double-barriers',
);
/** Routes whose URL remainder is a znode path. */
const PATH_ROUTES = ['/v1/nodes', '/v1/children', '/v1/acl', '/v1/sync', '/v1/queue', '/v1/semaphores', '/v1/rwlocks', '/v1/barriers', '/v1/double-barriers'];
const queryValue = fc.oneof(
  fc.constantFrom('true', 'false', '1', '0', '', '-1', '2147483648', '9'.repeat(30), '1e3', '0x10', 'NaN', 'persistent', 'ephemeral', 'container', 'ttl', 'ttl_sequential',
    'persistent_sequential', 'base64', 'utf8', 'LEASE', '%00', '%2F', '/fz', '%2Ffz', 'round_robin', 'sticky', 'random'),
  fc.string({ maxLength: 10 }).map(enc),
);
const query = fc.array(fc.tuple(fc.constantFrom('recursive', 'version', 'stat', 'encoding', 'mode', 'ttlMs', 'createParents', 'leaseId', 'wait', 'x', 'maxPermits', 'countPath', 'node', 'base', 'strategy', 'caller'), queryValue), { maxLength: 4 });
const authHeader = fc.constantFrom<string | undefined>(
  undefined, `Bearer ${KEYS.admin}`, `Bearer ${KEYS.admin}`, `Bearer ${KEYS.admin}`, `Bearer ${KEYS.admin}`, `Bearer ${KEYS.admin}`, `Bearer ${KEYS.read}`, `Bearer ${KEYS.scoped}`, `Bearer ${KEYS.scoped}`, `Bearer ${generateApiKey()}`, 'Bearer', 'Bearer  ', `Basic ${KEYS.admin}`,
  `bearer ${KEYS.admin}`, `Bearer ${KEYS.admin}x`, `Bearer ${KEYS.admin.toUpperCase()}`, 'Bearer zkg_', `Bearer ${'A'.repeat(2000)}`,
);
const contentType = fc.constantFrom<string | undefined>(
  undefined, 'application/json', 'application/json', 'application/json', 'application/json', 'application/octet-stream', 'text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=utf-16',
  'application/json; charset=latin1', 'application/merge-patch+json', 'multipart/form-data; boundary=x', 'application/octet-stream; q=1', '*/*', '',
);
const acl = fc.array(fc.record({ scheme: fc.constantFrom('world', 'digest', 'auth', 'ip', 'x', ''), id: fc.constantFrom('anyone', '', 'u:p', '127.0.0.1', '1.2.3.4/99'), perms: fc.constantFrom('cdrwa', 'r', '', 'z', 'rr', 'a') }), { maxLength: 3 });
const dataField = fc.oneof(fc.string({ maxLength: 40 }), fc.constant('x'.repeat(600)), fc.constant('!!notbase64'), fc.constant('aGk='), fc.integer(), fc.constant(null));
const versionField = fc.oneof(fc.integer({ min: -3, max: 3 }), fc.constant(2 ** 31), fc.constant('0'));
const maybeExtra = <T extends object>(arb: fc.Arbitrary<T>): fc.Arbitrary<T> =>
  fc.tuple(arb, fc.oneof({ weight: 7, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.anything({ maxDepth: 2 }) })).map(([o, extra]) => (extra === null ? o : { ...o, extra }));
const createBody = fc.record(
  {
    data: dataField,
    encoding: fc.constantFrom('utf8', 'base64', 'hex', 'UTF8', '', 7),
    mode: fc.constantFrom('persistent', 'persistent', 'persistent_sequential', 'ephemeral', 'ephemeral_sequential', 'container', 'ttl', 'ttl_sequential', 'bogus', 3),
    ttlMs: fc.oneof(fc.integer(), fc.constantFrom(0, -1, 1.5, 2 ** 40, 2 ** 53, 3600000)),
    createParents: fc.oneof(fc.boolean(), fc.constant(true), fc.constant('yes')),
    leaseId: fc.constantFrom('LEASE', 'LEASE', 'gw-x.00', '', '../x'),
  },
  { requiredKeys: [] },
);
const setBody = fc.record({ data: dataField, encoding: fc.constantFrom('utf8', 'base64', 'x'), version: versionField }, { requiredKeys: [] });
const aclBody = fc.record({ acl, version: versionField }, { requiredKeys: [] });
// Waits stay short: a take that long-polls past the request timeout would count as a hang.
const queueBody = fc.record(
  {
    data: dataField,
    encoding: fc.constantFrom('utf8', 'base64', 'hex', 7),
    mode: fc.constantFrom('at_most_once', 'claim', 'claim', 'exactly_once', '', 2),
    leaseId: fc.constantFrom('LEASE', 'LEASE', 'gw-x.00', '', '../x'),
    waitMs: fc.constantFrom(0, 0, 50, -1, 1.5, 600_001, '10'),
    item: fc.constantFrom('qn-0000000000', 'qn-0000000001', '/q/qn-0000000000', 'claims', '', '../qn-0000000000', 'x'),
    // barrier.ts (a double-barrier enter waits only when members > 1, and then briefly)
    members: fc.constantFrom(1, 1, 2, 0, -1, 10_001, 1.5, 'x'),
    node: fc.constantFrom('ready', 'x', '', '/q/x', '../x'),
  },
  { requiredKeys: [] },
);
const grantBody = fc.record({ ttlMs: fc.oneof(fc.integer(), fc.constantFrom(0, 999, 1000, 3600000, 3600001, 1.5)) }, { requiredKeys: [] });
/**
 * Semaphore acquires: valid ones never wait or miss (waitMs absent or 0, N of a million or more,
 * the only valid countPath /fz/sem-count seeded as large), so a refusal is bad input, which must
 * change nothing (no count seeded, no container created).
 */
const semaphoreBody = fc.record(
  {
    leaseId: fc.constantFrom('LEASE', 'LEASE', 'gw-x.00', ''),
    permits: fc.constantFrom(1, 1, 2, 0, -1, 1001, 1.5, 'x', 2 ** 31),
    maxPermits: fc.constantFrom(1_000_000, 2 ** 31 - 1, 0, -3, 2 ** 31, 1.5, 'x', null),
    countPath: fc.constantFrom('/fz/sem-count', 'relative', '', '/', '/a/../b', '/a/\u0000', 'x'.repeat(300)),
    waitMs: fc.constantFrom(0, -1, 1.5, 600_001, 'x'),
    data: fc.string({ maxLength: 10 }),
    mode: fc.constantFrom('read', 'bogus'),
  },
  { requiredKeys: [] },
);
/**
 * Read-write lock acquires never wait (waitMs absent or 0). A valid read on a free path holds;
 * a valid try that misses is a 409 on a lock someone holds, whose parent exists already.
 */
const rwBody = fc.record(
  {
    leaseId: fc.constantFrom('LEASE', 'LEASE', 'gw-x.00', ''),
    mode: fc.constantFrom('read', 'read', 'write', 'READ', 'upgrade', '', 1, null),
    waitMs: fc.constantFrom(0, -1, 1.5, 600_001, 'x'),
    data: fc.string({ maxLength: 10 }),
    node: fc.constantFrom('x', '/a/x'),
  },
  { requiredKeys: [] },
);
// Job bodies: every field of every jobs route, valid or not. Retention stays far above the run
// (a shorter one would prune records in the background, a write the tree snapshot cannot expect).
const jobBody = fc.record(
  {
    trigger: fc.constantFrom<unknown>('t1', 't1', '2026-11-30T02:00Z', '', 'a/b', '..', 'x'.repeat(200), 7, null),
    leaseId: fc.constantFrom('LEASE', 'LEASE', 'gw-x.00', '', '../x'),
    claimer: fc.constantFrom<unknown>('host', '', '\n', 'x'.repeat(300), 5),
    shard: fc.constantFrom<unknown>(0, 1, -1, 9999, 1.5, '0'),
    shardCount: fc.constantFrom<unknown>(0, 3, 3, -1, 1025, 1.5, '3'),
    retentionMs: fc.constantFrom<unknown>(0, 999, 604_800_000, 2 ** 40, 'x'),
    memberId: fc.constantFrom<unknown>('m1', '', 'a/b', '..', 3),
    outcome: fc.constantFrom<unknown>('succeeded', 'failed', 'maybe', ''),
    message: fc.string({ maxLength: 20 }),
    version: versionField,
  },
  { requiredKeys: [] },
);
// Registry bodies: every field of register and update, valid or not. Never `replace: true`: the
// only lease is the fuzz's own, so a take-over would only ever update its own instance anyway.
const registryBody = fc.record(
  {
    leaseId: fc.constantFrom('LEASE', 'LEASE', 'gw-x.00', '', '../x'),
    id: fc.constantFrom<unknown>('i1', 'i1', 'i2', '', 'a/b', '..', '.', 'zookeeper', 'x'.repeat(300), 7),
    address: fc.constantFrom<unknown>('10.0.0.1', 'host', '', ' ', 'x'.repeat(2000), 5, null),
    port: fc.constantFrom<unknown>(80, 0, 65535, 65536, -1, 1.5, '80', null),
    sslPort: fc.constantFrom<unknown>(443, -1, 70000, 'x', null),
    payload: fc.oneof(fc.constantFrom<unknown>(null, [1, 2], { '@class': 'java.util.HashMap', k: 'v' }, 'text', 3, { big: 'x'.repeat(2000) }), fc.json({ maxDepth: 2 }).map((j) => JSON.parse(j) as unknown)),
    uriSpec: fc.constantFrom<unknown>('{scheme}://{address}:{port}', '{x', 'x}', '{a{b}}', { parts: [] }, { parts: [{ value: 1 }] }, null, 3),
    enabled: fc.constantFrom<unknown>(true, false, 'yes'),
    replace: fc.constantFrom<unknown>(false, 'yes', 1),
    serviceType: fc.constantFrom<unknown>('DYNAMIC', 'STATIC', ''),
  },
  { requiredKeys: [] },
);
const body = fc.oneof(
  { weight: 3, arbitrary: maybeExtra(registryBody).map((b) => JSON.stringify(b)) },
  { weight: 3, arbitrary: fc.constant<string | Buffer | undefined>(undefined) },
  { weight: 2, arbitrary: semaphoreBody.map((b) => JSON.stringify(b)) },
  { weight: 2, arbitrary: rwBody.map((b) => JSON.stringify(b)) },
  { weight: 3, arbitrary: maybeExtra(jobBody).map((b) => JSON.stringify(b)) },
  { weight: 8, arbitrary: maybeExtra(createBody).map((b) => JSON.stringify(b)) },
  { weight: 3, arbitrary: maybeExtra(setBody).map((b) => JSON.stringify(b)) },
  { weight: 2, arbitrary: maybeExtra(aclBody).map((b) => JSON.stringify(b)) },
  { weight: 1, arbitrary: grantBody.map((b) => JSON.stringify(b)) },
  { weight: 2, arbitrary: maybeExtra(queueBody).map((b) => JSON.stringify(b)) },
  { weight: 1, arbitrary: fc.json({ maxDepth: 3 }) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)) },
  { weight: 1, arbitrary: fc.constantFrom('{', '{"data":', '[]', 'null', '"x"', '{"data":"\\ud800"}', '['.repeat(5000), 'x'.repeat(5000), '{"__proto__":{"admin":true}}') },
);

const hostileRequest = fc
  .record({
    method: fc.constantFrom('GET', 'GET', 'HEAD', 'POST', 'POST', 'PUT', 'PUT', 'DELETE', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE', 'PROPFIND'),
    route,
    segments: fc.array(hostileSegment, { maxLength: 5 }),
    trailingSlash: fc.boolean(),
    query,
    auth: authHeader,
    tenant: fc.constantFrom<string | undefined>(undefined, undefined, undefined, undefined, 'fz-a', 'fz-b', 'nope', '..'),
    contentType,
    accept: fc.constantFrom<string | undefined>(undefined, 'application/json', 'application/octet-stream', 'text/html', '*/*'),
    body,
  })
  .map(({ method, route: r, segments, trailingSlash, query: q, auth, tenant, contentType: ct, accept, body: b }): Req => {
    const base = r.replace('LEASE', leaseId);
    const rest = segments.length ? `/${segments.join('/')}${trailingSlash ? '/' : ''}` : '';
    const qs = q.map(([k, v]) => `${k}=${v.replace('LEASE', leaseId)}`).join('&');
    const headers: Record<string, string> = {};
    if (auth !== undefined) headers.authorization = auth;
    if (tenant !== undefined) headers['zkgate-tenant'] = tenant;
    if (ct !== undefined) headers['content-type'] = ct;
    if (accept !== undefined) headers.accept = accept;
    // A member joined with the long-lived lease would outlive a revoke of it only as a background
    // rebalance, which the tree snapshot cannot expect: members join with unknown leases only.
    const payload = typeof b === 'string' && !base.includes('/members') ? b.replace('LEASE', leaseId) : b;
    const withSegments = PATH_ROUTES.some((p) => base.startsWith(p)) || base === '/v1/jobs';
    return { method, path: `${withSegments ? base + rest : base}${qs ? `?${qs}` : ''}`, headers, body: payload };
  });

/** Mostly well-formed requests, so the tree grows and refusals are checked against real state. */
const plausibleRequest = fc
  .record({
    method: fc.constantFrom('GET', 'POST', 'POST', 'PUT', 'DELETE', 'HEAD'),
    route: fc.constantFrom('/v1/nodes', '/v1/nodes', '/v1/nodes', '/v1/children', '/v1/acl', '/v1/sync'),
    segments: fc.array(fc.constantFrom('a', 'app', 'x', 'q', 'n-', 'deep'), { minLength: 1, maxLength: 3 }),
    key: fc.constantFrom(KEYS.admin, KEYS.admin, KEYS.scoped, KEYS.read),
    recursive: fc.boolean(),
    create: fc.constantFrom(
      { mode: 'persistent' },
      { mode: 'persistent' },
      { mode: 'persistent_sequential' },
      { mode: 'container' },
      { mode: 'ephemeral', leaseId: 'LEASE' },
      { mode: 'ephemeral_sequential', leaseId: 'LEASE' },
      { mode: 'ttl', ttlMs: 600_000 },
    ).chain((m) => fc.record({ data: fc.string({ maxLength: 20 }) }).map((d) => ({ ...m, ...d, createParents: true }))),
    set: setBody,
    acl: aclBody,
  })
  .map(({ method, route: r, segments, key, recursive, create, set, acl: a }): Req => {
    const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
    const path = `${r}/${segments.join('/')}`;
    if (method === 'POST' && r === '/v1/nodes') return { method, path, headers, body: JSON.stringify(create).replace('LEASE', leaseId) };
    if (method === 'PUT') return { method, path: r === '/v1/acl' ? path : `/v1/nodes/${segments.join('/')}`, headers, body: JSON.stringify(r === '/v1/acl' ? a : set) };
    if (method === 'DELETE') return { method, path: `/v1/nodes/${segments.join('/')}${recursive ? '?recursive=true' : ''}`, headers };
    return { method: method === 'POST' ? 'GET' : method, path, headers };
  });

/** Well-formed queue calls (queue.ts), so items exist and claims, acks and takes succeed too. */
const plausibleQueueRequest = fc
  .record({
    route: fc.constantFrom('/v1/queues', '/v1/queues', '/v1/queue-take', '/v1/queue-take', '/v1/queue-ack', '/v1/queue-release'),
    queue: fc.constantFrom('/q', '/app/q', '/a'),
    key: fc.constantFrom(KEYS.admin, KEYS.admin, KEYS.scoped, KEYS.read),
    data: fc.string({ maxLength: 20 }),
    claim: fc.boolean(),
    item: fc.integer({ min: 0, max: 5 }),
    get: fc.boolean(),
  })
  .map(({ route: r, queue, key, data, claim, item, get }): Req => {
    const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
    const path = `${r}${queue}`;
    if (r === '/v1/queues') return get ? { method: 'GET', path, headers } : { method: 'POST', path, headers, body: JSON.stringify({ data }) };
    if (r === '/v1/queue-take') return { method: 'POST', path, headers, body: JSON.stringify(claim ? { mode: 'claim', leaseId } : {}) };
    return { method: 'POST', path, headers, body: JSON.stringify({ leaseId, item: `qn-${String(item).padStart(10, '0')}` }) };
  });

const request = fc.oneof({ weight: 3, arbitrary: hostileRequest }, { weight: 2, arbitrary: plausibleRequest }, { weight: 1, arbitrary: plausibleQueueRequest });

// ------------------------------------------------------------------------------------------
// The runner both transports share
// ------------------------------------------------------------------------------------------

/** How one request was answered. */
/** The codes of a wait that ended without its goal (docs/errors): the request was valid. */
const WAIT_RAN_OUT = new Set(['LOCK_NOT_ACQUIRED', 'PERMITS_NOT_ACQUIRED', 'NOT_ELECTED', 'QUEUE_EMPTY', 'BARRIER_TIMEOUT']);
/** walkTree's `mzxid cversion aversion dataLength`, without the cversion. */
const withoutCversion = (tree: Map<string, string>): Map<string, string> => new Map([...tree].map(([k, v]) => [k, v.replace(/^(\S+) \S+ /, '$1 ')]));

interface Answer {
  /** `ok` (2xx/3xx, gRPC OK), `refused` (4xx-class), `server` (5xx-class: a failure of the fuzz). */
  readonly kind: 'ok' | 'refused' | 'server';
  /** HTTP status or gRPC status name, for the counts. */
  readonly status: string;
  readonly detail: string;
  /** zkgate's error code of a refusal, when the answer carries one. */
  readonly code?: string;
}

/**
 * Sends generated requests one at a time (within the time budget) and checks each answer: no
 * server-class answer, no dropped connection, no hang, and a refused request left the tree as
 * it was. Resolves with the counts line for the report.
 */
async function fuzz<R>(t: { diagnostic(msg: string): void }, transport: string, arb: fc.Arbitrary<R>, sendOne: (r: R) => Promise<Answer>, budgetMs: number): Promise<string> {
  const bBefore = await walkTree(raw, '/fz/b');
  const counts = { requests: 0, ok: 0, refused: 0, server: 0, crashes: 0, hangs: 0, treeReads: 0 };
  const byStatus = new Map<string, number>();
  const reasons = new Map<string, number>();
  const started = Date.now();
  /** The tree at a known zxid (no other writer runs, so it stays valid until the zxid moves). */
  const snapshot = async (): Promise<{ zxid: string; tree: Map<string, string> }> => {
    const zxid = await lastZxid();
    const tree = await walkTree(raw);
    assert.equal(await lastZxid(), zxid, 'nothing else writes during the run');
    counts.treeReads++;
    return { zxid, tree };
  };
  let snap = await snapshot();
  let lastStart = 0;
  const check = async (r: R): Promise<void> => {
    // Paced, so the run stays light on a shared 2-core machine (other test files run beside it).
    const wait = lastStart + MIN_INTERVAL_MS - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    lastStart = Date.now();
    counts.requests++;
    let a: Answer;
    try {
      a = await sendOne(r);
    } catch (err) {
      if (/hang/.test((err as Error).message)) counts.hangs++;
      else counts.crashes++;
      throw new Error(`${JSON.stringify(r)}: ${(err as Error).message}`);
    }
    byStatus.set(a.status, (byStatus.get(a.status) ?? 0) + 1);
    if (process.env.FUZZ_DEBUG) reasons.set(`${a.status} ${a.detail.slice(0, 50)}`, (reasons.get(`${a.status} ${a.detail.slice(0, 50)}`) ?? 0) + 1);
    const now = await lastZxid();
    if (a.kind === 'server') {
      counts.server++;
      assert.fail(`${JSON.stringify(r)} → ${a.status} ${a.detail}`);
    }
    if (a.kind === 'refused') {
      counts.refused++;
      // ZooKeeper spends a zxid on a failed write too, so a moved zxid means: read the tree.
      if (now !== snap.zxid || counts.refused % 20 === 0) {
        const next = await snapshot();
        // A valid call whose wait ran out may have made its own node and removed it again, as
        // Curator's recipes do (a parent's cversion moves); it must leave nothing else changed.
        const timedOut = a.code !== undefined && WAIT_RAN_OUT.has(a.code);
        assert.deepEqual(timedOut ? withoutCversion(next.tree) : next.tree, timedOut ? withoutCversion(snap.tree) : snap.tree, `refused ${JSON.stringify(r)} → ${a.status} ${a.detail} changed the tree`);
        snap = next;
      }
    } else {
      counts.ok++;
      if (now !== snap.zxid) snap = await snapshot();
    }
  };
  const property = fc.asyncProperty(arb, async (r) => {
    try {
      await check(r);
    } catch (err) {
      t.diagnostic(`failure: ${(err as Error).message}`);
      throw err;
    }
  });
  // FUZZ_SEED=<seed a failure printed> replays that run's requests.
  await fc.assert(property, { numRuns: 4000, interruptAfterTimeLimit: budgetMs, markInterruptAsFailure: false, endOnFailure: true, ...(process.env.FUZZ_SEED ? { seed: Number(process.env.FUZZ_SEED) } : {}) });
  // The budget keeps the run short on a quiet machine; on a loaded one it goes on (up to a
  // minute more) until MIN_REQUESTS ran, so the coverage asserted below never depends on speed.
  if (counts.requests < MIN_REQUESTS) {
    await fc.assert(property, { numRuns: MIN_REQUESTS - counts.requests, interruptAfterTimeLimit: 60_000, markInterruptAsFailure: false, endOnFailure: true });
  }
  assert.deepEqual(await walkTree(raw, '/fz/b'), bBefore, "tenant B's subtree is untouched by tenant A's requests");
  const statuses = [...byStatus].sort().map(([s, n]) => `${s}×${n}`).join(' ');
  const line =
    `fuzz ${transport}: requests=${counts.requests} ok=${counts.ok} 4xx=${counts.refused} 5xx=${counts.server} crashes=${counts.crashes} hangs=${counts.hangs} ` +
    `refused-and-unchanged=${counts.refused} (tree read ${counts.treeReads} times) in ${Date.now() - started} ms; ${statuses}`;
  t.diagnostic(line);
  if (process.env.FUZZ_DEBUG) t.diagnostic([...reasons].sort((a, b) => b[1] - a[1]).slice(0, 12).map(([r, n]) => `${n} ${r}`).join(' | '));
  assert.ok(counts.requests >= MIN_REQUESTS, `enough requests ran (${counts.requests})`);
  assert.equal(counts.server + counts.crashes + counts.hangs, 0);
  return line;
}

function httpAnswer(res: Res, r: Req): Answer {
  const detail = res.body.toString('utf8').slice(0, 300);
  if (res.status >= 500 || res.status < 200) return { kind: 'server', status: String(res.status), detail };
  if (res.status < 400) return { kind: 'ok', status: String(res.status), detail };
  if (r.method !== 'HEAD' && res.body.length > 0) {
    assert.match(res.contentType, /^application\/problem\+json/, `${r.method} ${r.path} → ${res.status} ${res.contentType}`);
  }
  return { kind: 'refused', status: String(res.status), detail };
}

/** The bytes of `r` as sent on the wire. */
function wire(r: Req): Buffer {
  const headers = { host: '127.0.0.1', ...r.headers, ...(r.body !== undefined ? { 'content-length': String(Buffer.byteLength(r.body)) } : {}) };
  const head = `${r.method} ${r.path} HTTP/1.1\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), Buffer.from(r.body ?? '')]);
}

/**
 * Sends `r` cut at a fraction `at` (< 1) of its bytes, then resets the connection (SO_LINGER 0):
 * the request never arrives whole, so it must change nothing; the gateway must not crash.
 */
function sendCut(r: Req, at: number): Promise<Answer> {
  const bytes = wire(r);
  const cut = Math.floor(at * bytes.length);
  const stage = cut < bytes.indexOf('\r\n\r\n') + 4 ? 'reset-in-head' : 'reset-in-body';
  return new Promise((resolve, reject) => {
    const s = netConnect({ host: '127.0.0.1', port: gw.httpPort }, () => {
      s.write(bytes.subarray(0, cut), () => setTimeout(() => s.resetAndDestroy(), cut % 3)); // sometimes before the gateway read it
    });
    s.on('error', () => undefined);
    s.on('close', () => resolve({ kind: 'refused', status: stage, detail: `${cut} of ${bytes.length} bytes` }));
    setTimeout(() => reject(new Error('hang: the reset connection never closed')), REQUEST_TIMEOUT_MS).unref();
  });
}

/** A REST request, sent whole or cut by a reset. */
const restCase = fc.oneof(
  { weight: 4, arbitrary: request.map((req) => ({ req, resetAt: undefined as number | undefined })) },
  { weight: 1, arbitrary: fc.record({ req: request, resetAt: fc.double({ min: 0, max: 0.999, noNaN: true }) }) },
);

test('fuzz › thousands of hostile REST requests, some cut by a TCP reset: only 2xx/3xx/4xx, no crash or hang, refused or cut ones change nothing', async (t) => {
  await fuzz(t, 'REST', restCase, async ({ req, resetAt }) => (resetAt === undefined ? httpAnswer(await send(req), req) : sendCut(req, resetAt)), REST_BUDGET_MS);
  await eventually(() => gw.connections().http === 0, 10_000, 'every connection, reset ones included, closed on the gateway side');
  assert.equal((await send({ method: 'GET', path: '/healthz', headers: {} })).status, 200);
  assert.equal((await send({ method: 'GET', path: '/readyz', headers: {} })).status, 200);
});

// ------------------------------------------------------------------------------------------
// gRPC
// ------------------------------------------------------------------------------------------

/** gRPC statuses that are the client's fault (the 4xx class); anything else fails the run. */
const CLIENT_STATUSES = new Set<number>([
  grpcStatus.INVALID_ARGUMENT, grpcStatus.NOT_FOUND, grpcStatus.ALREADY_EXISTS, grpcStatus.PERMISSION_DENIED, grpcStatus.RESOURCE_EXHAUSTED,
  grpcStatus.FAILED_PRECONDITION, grpcStatus.ABORTED, grpcStatus.OUT_OF_RANGE, grpcStatus.UNAUTHENTICATED,
]);

interface GrpcReq {
  service: 'Znodes' | 'Leases' | 'Queues' | 'Semaphores' | 'Jobs' | 'Registry' | 'ReadWriteLocks' | 'Barriers';
  method: string;
  req: Record<string, unknown>;
  auth?: string;
  tenant?: string;
  /** Raw bytes sent instead of an encoded message (a malformed protobuf). */
  garbage?: Uint8Array;
}

const grpcPathArb = fc.oneof(
  { weight: 4, arbitrary: fc.array(fc.constantFrom('a', 'app', 'x', 'q', 'n-', 'deep'), { minLength: 1, maxLength: 3 }).map((segs) => `/${segs.join('/')}`) },
  fc.constantFrom('/', '/a', '/app', '/app/x', '/q', '/fz/b', '/../fz/b/secret', '..', '', 'a', '//a', '/a/', '/a\u0000b', '/a\u2215..\u2215b', '/a\uff0fb',
    '/\u{1F600}', '/zookeeper', '/app/', `/${'x'.repeat(300)}`, '/a/./b', '/\ud800', '/%2F', '/a/b/c/d/e/f/g/h/i/j'),
  fc.array(fc.constantFrom('a', 'app', 'x', 'q', 'n-', '..', '.', ''), { minLength: 1, maxLength: 4 }).map((segs) => `/${segs.join('/')}`),
  fc.string({ maxLength: 20 }),
);
const int32 = fc.oneof(fc.integer({ min: -3, max: 3 }), fc.constantFrom(-(2 ** 31), 2 ** 31 - 1));
const grpcReqArb: fc.Arbitrary<GrpcReq> = fc
  .record({
    call: fc.constantFrom(
      ['Znodes', 'Get'], ['Znodes', 'Exists'], ['Znodes', 'Children'], ['Znodes', 'Create'], ['Znodes', 'Create'], ['Znodes', 'Create'], ['Znodes', 'Set'],
      ['Znodes', 'Delete'], ['Znodes', 'GetAcl'], ['Znodes', 'SetAcl'], ['Znodes', 'Sync'], ['Leases', 'Grant'], ['Leases', 'Revoke'], ['Leases', 'TimeToLive'],
      ['Queues', 'Put'], ['Queues', 'Take'], ['Queues', 'Ack'], ['Queues', 'Release'], ['Queues', 'Inspect'],
      ['Semaphores', 'Acquire'], ['Semaphores', 'Acquire'], ['Semaphores', 'Release'], ['Semaphores', 'Inspect'],
      ['ReadWriteLocks', 'Acquire'], ['ReadWriteLocks', 'Acquire'], ['ReadWriteLocks', 'Release'], ['ReadWriteLocks', 'Inspect'],
      ['Jobs', 'Put'], ['Jobs', 'ClaimRun'], ['Jobs', 'ClaimRun'], ['Jobs', 'CompleteRun'], ['Jobs', 'GetRun'], ['Jobs', 'ListRuns'], ['Jobs', 'SetState'],
      ['Jobs', 'Join'], ['Jobs', 'Sync'], ['Jobs', 'GetAssignment'],
      ['Registry', 'Register'], ['Registry', 'Register'], ['Registry', 'Update'], ['Registry', 'Deregister'], ['Registry', 'ListServices'],
      ['Registry', 'ListInstances'], ['Registry', 'GetInstance'], ['Registry', 'Pick'],
      ['Barriers', 'Set'], ['Barriers', 'Remove'], ['Barriers', 'Wait'], ['Barriers', 'Enter'], ['Barriers', 'Leave'], ['Barriers', 'InspectDouble'],
    ),
    members: fc.constantFrom(1, 1, 2, 0, -1, 10_001),
    deliveryMode: fc.oneof(fc.constantFrom('DELIVERY_MODE_AT_MOST_ONCE', 'DELIVERY_MODE_CLAIM', 'DELIVERY_MODE_CLAIM', 'DELIVERY_MODE_UNSPECIFIED'), fc.integer({ min: -1, max: 5 })),
    waitMs: fc.option(fc.record({ value: fc.constantFrom(0, 0, 30, -1, 600_001) }), { freq: 1 }),
    item: fc.constantFrom('qn-0000000000', 'qn-0000000001', 'claims', '', '/q/qn-0000000000', '../x'),
    permits: fc.option(fc.record({ value: fc.constantFrom(1, 2, 0, -1, 1001, 2 ** 31 - 1) }), { freq: 3 }),
    maxPermits: fc.option(fc.record({ value: fc.constantFrom(1_000_000, 2 ** 31 - 1, 0, -5) }), { freq: 4 }),
    countPath: fc.constantFrom('', '', '', '/fz/sem-count', 'relative', '/', '/a/../b'),
    rwMode: fc.oneof(fc.constantFrom('RW_LOCK_MODE_READ', 'RW_LOCK_MODE_READ', 'RW_LOCK_MODE_WRITE', 'RW_LOCK_MODE_UNSPECIFIED'), fc.integer({ min: -1, max: 4 })),
    job: fc.constantFrom('fz', 'fz', 'fz2', '', '..', 'a/b', 'x'.repeat(120)),
    trigger: fc.constantFrom('t1', 't1', '', 'a/b', 'x'.repeat(120)),
    jobState: fc.constantFrom('active', 'paused', 'disabled', '', 'nope'),
    shard: fc.option(fc.record({ value: int32 }), { freq: 2 }),
    path: grpcPathArb,
    data: fc.uint8Array({ maxLength: 600 }),
    mode: fc.oneof(
      fc.constantFrom('CREATE_MODE_PERSISTENT', 'CREATE_MODE_PERSISTENT', 'CREATE_MODE_PERSISTENT_SEQUENTIAL', 'CREATE_MODE_EPHEMERAL', 'CREATE_MODE_EPHEMERAL_SEQUENTIAL',
        'CREATE_MODE_CONTAINER', 'CREATE_MODE_TTL', 'CREATE_MODE_TTL_SEQUENTIAL', 'CREATE_MODE_UNSPECIFIED'),
      fc.integer({ min: -2, max: 12 }),
    ),
    ttlMs: fc.option(fc.record({ value: fc.oneof(fc.integer(), fc.constantFrom(0, -1, 2 ** 40, 2 ** 53 - 1, 600_000, 600_000, 600_000)) }), { freq: 2 }),
    createParents: fc.boolean(),
    leaseId: fc.constantFrom('LEASE', 'LEASE', 'LEASE', '', 'gw-x.00', '../x'),
    plainLeaseId: fc.constantFrom('', '', '', '', 'LEASE'),
    plainTtl: fc.boolean(),
    version: fc.option(fc.record({ value: int32 }), { freq: 2 }),
    recursive: fc.boolean(),
    withStats: fc.boolean(),
    acl: fc.array(fc.record({ scheme: fc.constantFrom('world', 'digest', 'auth', 'ip', ''), id: fc.constantFrom('anyone', '', 'u:p', '1.2.3.4/99'), perms: fc.constantFrom('cdrwa', 'r', '', 'z') }), { maxLength: 3 }),
    grantTtl: fc.oneof(fc.integer({ min: -5, max: 4_000_000 }), fc.constantFrom(1000, 60_000, 2 ** 53 - 1)),
    auth: fc.oneof({ weight: 2, arbitrary: fc.constant(`Bearer ${KEYS.admin}`) }, { weight: 3, arbitrary: authHeader }),
    tenant: fc.constantFrom<string | undefined>(undefined, undefined, undefined, undefined, undefined, undefined, 'fz-a', 'fz-b', 'nope'),
    garbage: fc.oneof({ weight: 11, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 40 }) }),
  })
  .map((g): GrpcReq => {
    const [service, method] = g.call as ['Znodes' | 'Leases' | 'Queues' | 'Semaphores' | 'Jobs' | 'Registry' | 'ReadWriteLocks' | 'Barriers', string];
    const mode = String(g.mode);
    // Mostly the fields a mode wants, so creates also succeed; sometimes the wrong ones.
    const lease = (mode.includes('EPHEMERAL') || method !== 'Create' ? g.leaseId : g.plainLeaseId).replace('LEASE', leaseId);
    const ttlMs = mode.includes('TTL') ? (g.ttlMs ?? { value: 600_000 }) : g.plainTtl ? g.ttlMs : null;
    const reqs: Record<string, Record<string, unknown>> = {
      Get: { path: g.path },
      Exists: { path: g.path },
      Children: { path: g.path, withStats: g.withStats },
      Create: { path: g.path, data: Buffer.from(g.data), mode: g.mode, createParents: g.createParents, leaseId: lease, ...(ttlMs ? { ttlMs } : {}) },
      Set: { path: g.path, data: Buffer.from(g.data), ...(g.version ? { version: g.version } : {}) },
      Delete: { path: g.path, recursive: g.recursive, ...(g.version ? { version: g.version } : {}) },
      GetAcl: { path: g.path },
      SetAcl: { path: g.path, acl: g.acl, ...(g.version ? { version: g.version } : {}) },
      Sync: { path: g.path },
      Grant: { ttlMs: g.grantTtl },
      Revoke: { id: lease },
      TimeToLive: { id: lease },
    };
    // Short waits only (a take without wait_ms would wait until the call deadline: a hang).
    const queue: Record<string, Record<string, unknown>> = {
      Put: { path: g.path, data: Buffer.from(g.data) },
      Take: { path: g.path, mode: g.deliveryMode, leaseId: String(g.deliveryMode).includes('CLAIM') ? g.leaseId.replace('LEASE', leaseId) : g.plainLeaseId, waitMs: g.waitMs ?? { value: 0 } },
      Ack: { path: g.path, leaseId: lease, item: g.item },
      Release: { path: g.path, leaseId: lease, item: g.item },
      Inspect: { path: g.path },
    };
    // Never a wait (wait_ms 0): a valid acquire either holds at once or misses.
    const semaphore: Record<string, Record<string, unknown>> = {
      Acquire: { path: g.path, leaseId: g.leaseId.replace('LEASE', leaseId), permits: g.permits, maxPermits: g.maxPermits, countPath: g.countPath, waitMs: { value: 0 }, data: Buffer.from(g.data.slice(0, 20)) },
      Release: { path: g.path, leaseId: g.leaseId.replace('LEASE', leaseId), node: '' },
      Inspect: { path: g.path, maxPermits: g.maxPermits, countPath: g.countPath },
    };
    // Members join with unknown leases only (see the REST job bodies).
    const jobReqs: Record<string, Record<string, unknown>> = {
      Put: { name: g.job, ...(g.version ? { shardCount: g.version } : {}) },
      ClaimRun: { job: g.job, trigger: g.trigger, leaseId: lease, claimer: 'h', ...(g.shard ? { shard: g.shard } : {}) },
      CompleteRun: { job: g.job, runId: g.trigger, leaseId: lease, outcome: g.jobState === 'active' ? 'succeeded' : g.jobState },
      GetRun: { job: g.job, runId: g.trigger },
      ListRuns: { job: g.job, limit: g.version?.value ?? 0 },
      SetState: { name: g.job, state: g.jobState },
      Join: { job: g.job, memberId: g.trigger, leaseId: g.leaseId === 'LEASE' ? 'gw-x.00' : g.leaseId },
      Sync: { job: g.job, memberId: g.trigger, leaseId: lease },
      GetAssignment: { job: g.job },
    };
    // The registry: the path's segments as base, service and id; the payload as JSON text or not.
    const segs = g.path.split('/');
    const svc = { base: segs.slice(0, -1).join('/') || g.path, service: segs.at(-1) ?? '', id: g.trigger };
    const port = g.version ?? undefined;
    const regReqs: Record<string, Record<string, unknown>> = {
      Register: { ...svc, leaseId: lease, address: g.job, ...(port ? { port } : {}), payloadJson: g.countPath === '' ? '' : g.countPath === '/' ? '[1]' : '{"a":1}', uriSpec: g.item, replace: false },
      Update: { ...svc, leaseId: lease, ...(port ? { sslPort: port } : {}), ...(g.shard ? { payloadJson: { value: g.job } } : {}) },
      Deregister: { ...svc, leaseId: lease },
      ListServices: { base: g.path },
      ListInstances: svc,
      GetInstance: svc,
      Pick: { ...svc, strategy: g.jobState === 'active' ? 'random' : g.jobState, caller: g.trigger },
    };
    const rw: Record<string, Record<string, unknown>> = {
      Acquire: { path: g.path, leaseId: g.leaseId.replace('LEASE', leaseId), mode: g.rwMode, waitMs: { value: 0 }, data: Buffer.from(g.data.slice(0, 20)) },
      Release: { path: g.path, leaseId: g.leaseId.replace('LEASE', leaseId), node: g.item },
      Inspect: { path: g.path },
    };
    const barrier: Record<string, Record<string, unknown>> = {
      Set: { path: g.path },
      Remove: { path: g.path },
      Wait: { path: g.path, waitMs: g.waitMs ?? { value: 0 } },
      Enter: { path: g.path, leaseId: lease, members: g.members, waitMs: g.waitMs ?? { value: 0 } },
      Leave: { path: g.path, leaseId: lease, node: g.item, waitMs: g.waitMs ?? { value: 0 } },
      InspectDouble: { path: g.path },
    };
    const req =
      service === 'Registry'
        ? regReqs[method]
        : service === 'Semaphores'
          ? semaphore[method]
          : service === 'ReadWriteLocks'
            ? rw[method]
            : service === 'Barriers'
              ? barrier[method]
              : service === 'Queues'
              ? queue[method]
              : service === 'Jobs'
                ? jobReqs[method]
                : reqs[method];
    return { service, method, req: req ?? {}, auth: g.auth, tenant: g.tenant, ...(g.garbage ? { garbage: g.garbage } : {}) };
  });

type UnaryFn = (req: unknown, md: Metadata, opts: { deadline: number }, cb: (err: ServiceError | null, res: unknown) => void) => unknown;

function sendGrpc(r: GrpcReq): Promise<Answer> {
  const md = new Metadata();
  if (r.auth !== undefined) md.set('authorization', r.auth);
  if (r.tenant !== undefined) md.set('zkgate-tenant', r.tenant);
  const client = grpc.services[r.service] as Client & Record<string, UnaryFn>;
  const opts = { deadline: Date.now() + REQUEST_TIMEOUT_MS };
  return new Promise((resolve, reject) => {
    const done = (err: ServiceError | null): void => {
      if (!err) return resolve({ kind: 'ok', status: 'OK', detail: '' });
      const name = grpcStatus[err.code] ?? String(err.code);
      if (err.code === grpcStatus.DEADLINE_EXCEEDED) return reject(new Error(`hang: ${r.service}.${r.method} ${err.details}`));
      if (err.code === grpcStatus.UNAVAILABLE && /No connection|Connection dropped|ECONNRESET/.test(err.details)) return reject(new Error(`crash: ${err.details}`));
      resolve({ kind: CLIENT_STATUSES.has(err.code) ? 'refused' : 'server', status: name, detail: err.details, code: err.metadata?.get('zkgate-error-code')[0]?.toString() });
    };
    if (r.garbage) {
      const id = (x: Buffer): Buffer => x;
      client.makeUnaryRequest(`/zkgate.v1.${r.service}/${r.method}`, id, id, Buffer.from(r.garbage), md, opts, done);
      return;
    }
    (client[r.method] as UnaryFn).call(client, r.req, md, opts, done);
  });
}

test('fuzz › thousands of hostile gRPC calls: only OK or client-error statuses, no crash or hang, refused ones change nothing', async (t) => {
  await fuzz(t, 'gRPC', grpcReqArb, sendGrpc, GRPC_BUDGET_MS);
  assert.equal((await send({ method: 'GET', path: '/readyz', headers: {} })).status, 200);
});

test('grpc › a non-ASCII path in an error, an undecodable message: client errors, not a crash or INTERNAL', async () => {
  const admin = `Bearer ${KEYS.admin}`;
  const notFound = await sendGrpc({ service: 'Znodes', method: 'Get', req: { path: '/m\u00fc\u2215ller' }, auth: admin });
  assert.deepEqual([notFound.kind, notFound.status], ['refused', 'NOT_FOUND']);
  const garbage = await sendGrpc({ service: 'Znodes', method: 'GetAcl', req: {}, auth: admin, garbage: new Uint8Array([250, 5, 255, 254, 23, 5, 0, 8]) });
  assert.deepEqual([garbage.kind, garbage.status], ['refused', 'INVALID_ARGUMENT']);
  assert.match(garbage.detail, /not valid protobuf/);
});

// ------------------------------------------------------------------------------------------
// WebSocket
// ------------------------------------------------------------------------------------------

interface WsCase {
  headers: Record<string, string>;
  frames: { data: string | Buffer; binary: boolean }[];
}

const wsId = fc.oneof({ weight: 4, arbitrary: fc.constantFrom('a', 'b', 's1', 's2') }, fc.constantFrom('', 'x'.repeat(200), 7, null), fc.string({ maxLength: 8 }));
const wsOp = fc.oneof(
  fc.record({ op: fc.constant('subscribe'), id: wsId, path: grpcPathArb, kind: fc.constantFrom('data', 'children', 'subtree', 'bogus', undefined), encoding: fc.constantFrom('utf8', 'base64', 'hex', undefined) }, { requiredKeys: ['op', 'id', 'path'] }),
  fc.record({ op: fc.constant('unsubscribe'), id: wsId }),
  fc.record({ op: fc.constant('observe'), id: wsId, path: grpcPathArb }),
  fc.record({ op: fc.constant('lease_grant'), ttlMs: fc.oneof(fc.integer(), fc.constantFrom(1000, 60_000, 1.5, -1)) }),
  fc.record({ op: fc.constant('lease_attach'), leaseId: fc.constantFrom('LEASE', 'gw-x.00', '', 'x'.repeat(300)) }),
  fc.record({ op: fc.constant('ping'), data: fc.anything({ maxDepth: 2 }) }, { requiredKeys: ['op'] }),
  fc.record({
    op: fc.constant('call'),
    id: wsId,
    method: fc.constantFrom('Semaphores.Acquire', 'Semaphores.Acquire', 'Semaphores.Release', 'Semaphores.Inspect', 'Semaphores.Bogus'),
    params: fc.tuple(grpcPathArb, semaphoreBody).map(([path, b]) => ({ path, ...b })),
  }),
  fc.record({
    op: fc.constant('call'),
    id: wsId,
    method: fc.constantFrom('ReadWriteLocks.Acquire', 'ReadWriteLocks.Acquire', 'ReadWriteLocks.Release', 'ReadWriteLocks.Inspect'),
    params: fc.tuple(grpcPathArb, rwBody).map(([path, b]) => ({ path, ...b })),
  }),
  fc.record({ op: fc.constantFrom('PING', 'bogus', '', 'subscribe '), extra: fc.anything({ maxDepth: 1 }) }, { requiredKeys: [] }),
);
const wsFrame = fc.oneof(
  { weight: 8, arbitrary: fc.tuple(wsOp, fc.oneof({ weight: 6, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.anything({ maxDepth: 1 }) })).map(([o, extra]) => ({ data: JSON.stringify(extra === undefined ? o : { ...o, junk: extra }).replace('LEASE', leaseId), binary: false })) },
  { weight: 1, arbitrary: fc.constantFrom('{', '', 'null', '[]', '"x"', '{"op":', 'x'.repeat(5000), '['.repeat(3000)).map((data) => ({ data, binary: false })) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map((a) => ({ data: Buffer.from(a), binary: true })) },
  { weight: 1, arbitrary: fc.constant({ data: 'y'.repeat(4096 * 16 + 10), binary: false }) },
);
const wsCaseArb: fc.Arbitrary<WsCase> = fc
  .record({ auth: fc.oneof({ weight: 3, arbitrary: fc.constant(`Bearer ${KEYS.admin}`) }, { weight: 2, arbitrary: authHeader }), tenant: fc.constantFrom(undefined, undefined, undefined, 'fz-a', 'fz-b'), frames: fc.array(wsFrame, { minLength: 1, maxLength: 3 }) })
  .map(({ auth, tenant, frames }) => ({ headers: { ...(auth ? { authorization: auth } : {}), ...(tenant ? { 'zkgate-tenant': tenant } : {}) }, frames }));

/** A text frame the gateway takes as a `call`: it answers it once, with `result` or an `error` of op `call`. */
function isCall(f: { data: string | Buffer; binary: boolean }): boolean {
  if (f.binary || typeof f.data !== 'string') return false;
  try {
    const m = JSON.parse(f.data) as unknown;
    return typeof m === 'object' && m !== null && (m as { op?: unknown }).op === 'call';
  } catch {
    return false;
  }
}

/** Close codes that mean "the client did something wrong" (or a normal end). */
const okClose = (code: number): boolean => code === 1000 || code === 1003 || code === 1008 || code === 1009 || (code >= 4400 && code < 4500);

/**
 * Opens a socket, sends the frames and a ping barrier, and classifies everything the server
 * said until the barrier's pong or a close: any error reply or refusal makes the case `refused`;
 * an error whose code maps to a 5xx, an unknown code, a close like 1011 or an abnormal close is
 * `server`.
 */
function sendWs(c: WsCase): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${gw.httpPort}/v1/ws`, { headers: c.headers });
    let settled = false;
    const seen: string[] = [];
    let refused = false;
    /** Resolves the wait for the answer of the call just sent. */
    let callAnswered: (() => void) | undefined;
    const finish = (a: Answer | Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      callAnswered?.(); // a close ends the wait for a call's answer too
      if (ws.readyState === WebSocket.OPEN) ws.close(1000);
      if (a instanceof Error) reject(a);
      else resolve(a);
    };
    const timer = setTimeout(() => {
      ws.terminate();
      finish(new Error(`hang: no pong or close within ${REQUEST_TIMEOUT_MS} ms; seen ${seen.join(' ')}`));
    }, REQUEST_TIMEOUT_MS);
    ws.on('unexpected-response', (_req, res) => {
      res.resume();
      const st = res.statusCode ?? 0;
      finish({ kind: st >= 500 ? 'server' : 'refused', status: `upgrade-${st}`, detail: '' });
    });
    ws.on('error', (err) => finish(new Error(`crash: ${err.message}`)));
    // Calls run concurrently on the gateway and the ping is answered at once: a call still
    // running at the barrier's pong went on writing (or, cut by the close, deleting its node)
    // into the next request's check. So each call's answer is awaited before the next frame.
    const sendFrames = async (): Promise<void> => {
      for (const f of c.frames) {
        if (settled || ws.readyState !== WebSocket.OPEN) return;
        const answered = isCall(f) ? new Promise<void>((resolve) => (callAnswered = resolve)) : undefined;
        ws.send(f.data, { binary: f.binary });
        await answered;
      }
      if (!settled && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ op: 'ping', data: 'barrier' }));
    };
    ws.on('open', () => void sendFrames());
    ws.on('message', (data) => {
      const m = JSON.parse(data.toString()) as { type: string; op?: string; code?: ErrorCode; data?: unknown; message?: string };
      if (m.type === 'result' || (m.type === 'error' && m.op === 'call')) callAnswered?.();
      if (m.type === 'error') {
        const row = m.code ? ERROR_TABLE[m.code] : undefined;
        seen.push(`error:${m.code}`);
        if (!row || row.http >= 500) return finish({ kind: 'server', status: `error-${m.code}`, detail: m.message ?? '' });
        refused = true;
      }
      if (m.type === 'pong' && m.data === 'barrier') finish({ kind: refused ? 'refused' : 'ok', status: refused ? 'error-reply' : 'ok', detail: seen.join(' ') });
    });
    ws.on('close', (code, reason) => {
      if (okClose(code)) finish({ kind: 'refused', status: `close-${code}`, detail: reason.toString() });
      else finish({ kind: 'server', status: `close-${code}`, detail: reason.toString() });
    });
  });
}

test('fuzz › thousands of hostile WebSocket frames: only success or client-error replies and closes, no crash or hang, nothing changed', async (t) => {
  await fuzz(t, 'WebSocket', wsCaseArb, sendWs, WS_BUDGET_MS);
  assert.equal((await send({ method: 'GET', path: '/readyz', headers: {} })).status, 200);
});
