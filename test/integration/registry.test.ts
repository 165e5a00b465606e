import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { eventually, leasePool, uniquePath, zkAndGateway, type Problem } from '../support/test-gateway.js';
import { checkResponse, contract, restClient } from '../support/openapi.js';
import { readSse } from '../support/sse.js';

interface Instance {
  name: string;
  id: string;
  address: string | null;
  port: number | null;
  sslPort: number | null;
  payload: unknown;
  registrationTimeUTC: number;
  serviceType: string;
  uriSpec: { parts: { value: string; variable: boolean }[] } | null;
  enabled: boolean;
  path: string;
  uri: string | null;
  version: number;
}
interface InstanceSet {
  base: string;
  service: string;
  index: string;
  instances: Instance[];
  invalid: string[];
  unchanged?: boolean;
}

/** Responses of every registry route these tests produced, checked against openapi.yaml. */
const coverage = new Set<string>();

describe('service registry over REST (Curator x-discovery layout)', () => {
  const env = zkAndGateway();
  let client: ReturnType<typeof restClient> | undefined;
  const rest = () => (client ??= restClient(env.g.base, { coverage }));
  // The first grant may meet the tenant's session still connecting (503): retry until it is up.
  const lease = (ttlMs = 30_000): Promise<string> =>
    eventually(async () => ((await rest().json('POST', '/v1/leases', { ttlMs })).body as { id?: string }).id, 20_000, 'a lease');
  const q = (base: string, extra: Record<string, string | number> = {}) => ({ query: { base, ...extra } });
  const register = (base: string, service: string, body: Record<string, unknown>) => rest().json('POST', `/v1/services/${service}/instances`, body, q(base));
  const list = async (base: string, service: string, extra: Record<string, string | number> = {}): Promise<InstanceSet> => {
    const r = await rest().json('GET', `/v1/services/${service}`, undefined, q(base, extra));
    assert.equal(r.status, 200);
    return r.body as InstanceSet;
  };

  test('registry › an instance is an ephemeral node holding the JSON document Curator writes, in its field order', async () => {
    const base = uniquePath('reg');
    const l = await lease();
    const r = await register(base, 'orders', { leaseId: l, id: 'i-1', address: '10.0.0.7', port: 8080, payload: { zone: 'a' }, uriSpec: '{scheme}://{address}:{port}/api' });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const inst = (r.body as { instance: Instance }).instance;
    assert.equal(inst.path, `${base}/orders/i-1`);
    assert.equal(inst.uri, 'http://10.0.0.7:8080/api');
    const node = await rest().json('GET', `/v1/nodes${base}/orders/i-1`);
    assert.equal(node.status, 200);
    const body = node.body as { data: string; stat: { ephemeralOwner: string } };
    assert.notEqual(body.stat.ephemeralOwner, '0', 'the instance node is ephemeral');
    const doc = JSON.parse(body.data) as Record<string, unknown>;
    assert.deepEqual(Object.keys(doc), ['name', 'id', 'address', 'port', 'sslPort', 'payload', 'registrationTimeUTC', 'serviceType', 'uriSpec']);
    assert.equal(doc.serviceType, 'DYNAMIC');
    assert.deepEqual(doc.uriSpec, {
      parts: [
        { value: 'scheme', variable: true },
        { value: '://', variable: false },
        { value: 'address', variable: true },
        { value: ':', variable: false },
        { value: 'port', variable: true },
        { value: '/api', variable: false },
      ],
    });
    assert.equal(doc.sslPort, null);
    assert.ok(Math.abs((doc.registrationTimeUTC as number) - Date.now()) < 60_000);

    const names = await rest().json('GET', '/v1/services', undefined, q(base));
    assert.deepEqual(names.body, { base, services: ['orders'] });
    const set = await list(base, 'orders');
    assert.deepEqual(set.instances.map((i) => i.id), ['i-1']);
    const one = await rest().json('GET', `/v1/services/orders/instances/i-1`, undefined, q(base));
    assert.equal((one.body as Instance).address, '10.0.0.7');

    const up = await rest().json('PUT', `/v1/services/orders/instances/i-1`, { leaseId: l, port: 9090, enabled: false }, q(base));
    assert.equal(up.status, 200);
    const updated = (up.body as { instance: Instance }).instance;
    assert.equal(updated.port, 9090);
    assert.equal(updated.enabled, false);
    assert.equal(updated.registrationTimeUTC, inst.registrationTimeUTC, 'registration time never changes');
    assert.equal(updated.version, 1);

    const del = await rest().json('DELETE', `/v1/services/orders/instances/i-1`, undefined, q(base, { leaseId: l }));
    assert.deepEqual(del.body, { deregistered: true, reason: 'deleted', path: `${base}/orders/i-1` });
    const again = await rest().json('DELETE', `/v1/services/orders/instances/i-1`, undefined, q(base, { leaseId: l }));
    assert.deepEqual(again.body, { deregistered: false, reason: 'not_registered', path: `${base}/orders/i-1` });
    assert.equal((await list(base, 'orders')).instances.length, 0);
  });

  test('registry › bad input is refused naming the field, and nothing is created', async () => {
    const base = uniquePath('reg-bad');
    const l = await lease();
    const cases: [Record<string, unknown>, string][] = [
      [{ address: 'h', port: 70000 }, 'port'],
      [{ address: 'h', port: '80' }, 'port'],
      [{ address: 'h', sslPort: -1 }, 'sslPort'],
      [{ address: '' }, 'address'],
      [{ port: 80 }, 'address'],
      [{ address: 'h', payload: [1, 2] }, 'payload'],
      [{ address: 'h', uriSpec: '{scheme://x' }, 'uriSpec'],
      [{ address: 'h', uriSpec: 'x}' }, 'uriSpec'],
      [{ address: 'h', uriSpec: { parts: [{ value: 1, variable: true }] } }, 'uriSpec.parts.0'],
      [{ address: 'h', enabled: 'yes' }, 'enabled'],
      [{ address: 'h', id: 'a/b' }, 'id'],
      [{ address: 'h', id: '..' }, 'id'],
      [{ address: 'h', serviceType: 'STATIC' }, 'serviceType'],
      [{ address: 'h', color: 'red' }, ''],
    ];
    for (const [body, field] of cases) {
      const r = await register(base, 'svc', { leaseId: l, ...body });
      assert.equal(r.status, 400, JSON.stringify(body));
      const p = r.body as Problem;
      assert.equal(p.code, 'INVALID_ARGUMENT', JSON.stringify(body));
      if (field) assert.equal(p.details?.field, field, JSON.stringify(body));
    }
    const noLease = await register(base, 'svc', { address: 'h' });
    assert.equal(noLease.status, 400);
    const unknownLease = await register(base, 'svc', { leaseId: 'nope', address: 'h' });
    assert.equal(unknownLease.status, 404);
    assert.equal((unknownLease.body as Problem).code, 'LEASE_NOT_FOUND');
    const badBase = await register('relative', 'svc', { leaseId: l, address: 'h' });
    assert.equal((badBase.body as Problem).code, 'INVALID_PATH');
    const badStrategy = await rest().json('GET', '/v1/services/svc/pick', undefined, q(base, { strategy: 'fastest' }));
    assert.equal((badStrategy.body as Problem).code, 'INVALID_ARGUMENT');
    assert.equal((await rest().json('GET', `/v1/nodes${base}`)).status, 404, 'nothing was created, not even the base');
  });

  test('registry › an id owned by another lease is NODE_EXISTS unless replaced; others cannot update or deregister it', async () => {
    const base = uniquePath('reg-own');
    const a = await lease();
    const b = await lease();
    assert.equal((await register(base, 'svc', { leaseId: a, id: 'x', address: 'host-a' })).status, 201);
    const taken = await register(base, 'svc', { leaseId: b, id: 'x', address: 'host-b' });
    assert.equal(taken.status, 409);
    assert.equal((taken.body as Problem).code, 'NODE_EXISTS');
    const up = await rest().json('PUT', '/v1/services/svc/instances/x', { leaseId: b, port: 1 }, q(base));
    assert.equal(up.status, 409);
    assert.equal((up.body as Problem).code, 'INSTANCE_NOT_OWNED');
    const del = await rest().json('DELETE', '/v1/services/svc/instances/x', undefined, q(base, { leaseId: b }));
    assert.equal((del.body as Problem).code, 'INSTANCE_NOT_OWNED');
    assert.equal((await list(base, 'svc')).instances[0]?.address, 'host-a', 'nothing changed');
    const again = await register(base, 'svc', { leaseId: a, id: 'x', address: 'host-a2' });
    assert.equal(again.status, 201, 'the owning lease registers again: an update');
    assert.equal((again.body as { instance: Instance }).instance.version, 1);
    const replaced = await register(base, 'svc', { leaseId: b, id: 'x', address: 'host-b', replace: true });
    assert.equal(replaced.status, 201);
    // The previous owner hears its instance was taken (its watch on the node fires).
    await eventually(async () => ((await rest().json('GET', `/v1/leases/${a}`)).body as { state: string }).state === 'lost', 10_000, 'lease a lost');
    assert.equal((await list(base, 'svc')).instances[0]?.address, 'host-b');
  });

  test('registry › revoking the lease removes its instances', async () => {
    const base = uniquePath('reg-rev');
    const l = await lease();
    for (const id of ['a', 'b']) await register(base, 'svc', { leaseId: l, id, address: id });
    assert.equal((await list(base, 'svc')).instances.length, 2);
    await rest().json('DELETE', `/v1/leases/${l}`);
    assert.equal((await list(base, 'svc')).instances.length, 0);
  });

  test('registry › pick: round robin per caller, sticky keeps its instance, disabled ones are skipped, none is NO_INSTANCES', async () => {
    const base = uniquePath('reg-pick');
    const pool = leasePool(rest());
    const l = await pool.grant();
    const none = await rest().json('GET', '/v1/services/svc/pick', undefined, q(base));
    assert.equal(none.status, 404);
    assert.equal((none.body as Problem).code, 'NO_INSTANCES');
    for (const id of ['a', 'b', 'c']) await register(base, 'svc', { leaseId: l, id, address: `host-${id}` });
    const pick = async (extra: Record<string, string>): Promise<string> =>
      ((await rest().json('GET', '/v1/services/svc/pick', undefined, q(base, extra))).body as Instance).id;
    const rr1 = [];
    for (let i = 0; i < 6; i++) rr1.push(await pick({ caller: 'one' }));
    assert.deepEqual(rr1, ['a', 'b', 'c', 'a', 'b', 'c']);
    assert.equal(await pick({ caller: 'two' }), 'a', 'each caller has its own counter');
    const sticky = await pick({ strategy: 'sticky', caller: 's' });
    for (let i = 0; i < 3; i++) assert.equal(await pick({ strategy: 'sticky', caller: 's' }), sticky);
    await rest().json('PUT', `/v1/services/svc/instances/${sticky}`, { leaseId: l, enabled: false }, q(base));
    const moved = await pick({ strategy: 'sticky', caller: 's' });
    assert.notEqual(moved, sticky, 'a disabled instance is no longer offered');
    const random = new Set<string>();
    for (let i = 0; i < 12; i++) random.add(await pick({ strategy: 'random' }));
    assert.ok(![...random].includes(sticky) && random.size >= 1);
    for (const id of ['a', 'b', 'c']) await rest().json('PUT', `/v1/services/svc/instances/${id}`, { leaseId: l, enabled: false }, q(base));
    const disabled = await rest().json('GET', '/v1/services/svc/pick', undefined, q(base));
    assert.equal((disabled.body as Problem).code, 'NO_INSTANCES');
    assert.equal((disabled.body as Problem).details?.registered, 3);
    await pool.revokeAll();
  });

  test('registry › long-poll answers at the next change with a new index, else unchanged', async () => {
    const base = uniquePath('reg-poll');
    const l = await lease();
    await register(base, 'svc', { leaseId: l, id: 'a', address: 'a' });
    const first = await list(base, 'svc');
    const quiet = await list(base, 'svc', { wait: 300, index: first.index });
    assert.equal(quiet.unchanged, true);
    assert.equal(quiet.index, first.index);
    const waiting = list(base, 'svc', { wait: 20_000, index: first.index });
    await new Promise((r) => setTimeout(r, 200));
    await register(base, 'svc', { leaseId: l, id: 'b', address: 'b' });
    const changed = await waiting;
    assert.equal(changed.unchanged, false);
    assert.notEqual(changed.index, first.index);
    assert.deepEqual(changed.instances.map((i) => i.id), ['a', 'b']);
  });

  test('registry › the SSE stream sends the set now, then every change', async () => {
    const base = uniquePath('reg-sse');
    const l = await lease();
    const ac = new AbortController();
    const url = `${env.g.base}/v1/services/svc/watch?base=${encodeURIComponent(base)}`;
    const res = await fetch(url, { signal: ac.signal });
    assert.equal(res.status, 200);
    coverage.add(checkResponse('GET', url, { status: res.status, headers: res.headers, body: '' }).key);
    assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
    const sets: InstanceSet[] = [];
    const reader = readSse(res, (event, data) => {
      if (event === 'instances') sets.push(JSON.parse(data) as InstanceSet);
    }).catch(() => undefined);
    await eventually(() => sets.length >= 1, 10_000, 'the current set');
    assert.deepEqual(sets[0]?.instances, []);
    await register(base, 'svc', { leaseId: l, id: 'a', address: 'a' });
    await eventually(() => sets.at(-1)?.instances.length === 1, 10_000, 'the registration');
    await rest().json('DELETE', `/v1/leases/${l}`);
    await eventually(() => sets.at(-1)?.instances.length === 0, 10_000, 'the lease end');
    ac.abort();
    await reader;
  });
});

describe('service registry over REST: limits, errors and coverage', () => {
  const env = zkAndGateway({ tenants: [{ name: 'default', sessionTimeoutMs: 4000, limits: { maxChildrenPerListing: 2, maxDataBytes: 300, maxSubscriptionsPerTenant: 1 } }] });
  const api = () => restClient(env.g.base, { coverage });
  const problem = (r: { status: number; body: unknown }, status: number, code: string): Problem => {
    assert.equal(r.status, status, JSON.stringify(r.body));
    assert.equal((r.body as Problem).code, code);
    return r.body as Problem;
  };

  test('registry › limits: listing size, document size, subscriptions; ended leases, bad media and methods', async () => {
    const c = api();
    const base = uniquePath('reg-lim');
    const q = `?base=${encodeURIComponent(base)}`;
    const l = await eventually(async () => ((await c.json('POST', '/v1/leases', { ttlMs: 30_000 })).body as { id?: string }).id, 20_000, 'a lease');
    problem(await c.json('POST', `/v1/services/svc/instances${q}`, { leaseId: l, address: 'h', payload: { text: 'x'.repeat(400) } }), 413, 'DATA_TOO_LARGE');
    for (const id of ['a', 'b', 'c']) assert.equal((await c.json('POST', `/v1/services/svc/instances${q}`, { leaseId: l, id, address: id })).status, 201);
    assert.equal(problem(await c.json('GET', `/v1/services/svc${q}`), 409, 'TOO_MANY_CHILDREN').details?.max, 2);
    problem(await c.json('GET', `/v1/services/svc/pick${q}`), 409, 'TOO_MANY_CHILDREN');
    assert.equal((await c.json('GET', `/v1/services${q}`)).status, 200);
    problem(await c.json('GET', `/v1/services/svc/instances/zz${q}`), 404, 'NO_NODE');
    problem(await c.request('POST', `/v1/services/svc/instances${q}`, { body: 'address=h', headers: { 'content-type': 'text/plain' } }), 415, 'UNSUPPORTED_MEDIA_TYPE');
    problem(await c.request('PUT', `/v1/services/svc/instances/a${q}`, { body: 'address=h', headers: { 'content-type': 'text/plain' } }), 415, 'UNSUPPORTED_MEDIA_TYPE');
    problem(await c.json('PUT', `/v1/services/svc/instances/a${q}`, { leaseId: l, payload: { text: 'x'.repeat(400) } }), 413, 'DATA_TOO_LARGE');
    problem(await c.json('PUT', `/v1/services/svc/instances/a${q}`, { leaseId: l, port: -5 }), 400, 'INVALID_ARGUMENT');
    problem(await c.json('PUT', `/v1/services/svc/instances/zz${q}`, { leaseId: l, port: 5 }), 404, 'NO_NODE');
    problem(await c.json('DELETE', `/v1/services/svc/instances/a${q}`), 400, 'INVALID_ARGUMENT');
    problem(await c.json('DELETE', `/v1/services/svc/instances/a${q}&leaseId=nope`), 404, 'LEASE_NOT_FOUND');
    problem(await c.json('GET', `/v1/services/svc/instances/a?base=rel`), 400, 'INVALID_PATH');
    problem(await c.json('GET', `/v1/services?base=rel`), 400, 'INVALID_PATH');
    problem(await c.json('GET', `/v1/services/svc/watch?base=rel`), 400, 'INVALID_PATH');
    problem(await c.json('GET', `/v1/services/svc/watch?base=${encodeURIComponent(base)}&base=x`), 400, 'INVALID_ARGUMENT');
    problem(await c.json('GET', `/v1/services/svc${q}&index=1`), 400, 'INVALID_ARGUMENT');
    problem(await c.json('GET', `/v1/services/svc${q}&wait=-1&index=1`), 400, 'INVALID_ARGUMENT');
    // One subscription for the tenant: a waiting long-poll holds it; other long-polls and the SSE stream are refused.
    const other = encodeURIComponent(uniquePath('reg-lim2'));
    const first = await c.json('GET', `/v1/services/x?base=${other}`);
    const held = c.json('GET', `/v1/services/x?base=${other}&wait=30000&index=${(first.body as InstanceSet).index}`);
    const refused = await eventually(async () => {
      const r = await c.json('GET', `/v1/services/x?base=${other}&wait=0&index=1`);
      return r.status === 429 ? r : undefined;
    }, 20_000, 'the long-poll to hold the only subscription');
    problem(refused, 429, 'LIMIT_EXCEEDED');
    problem(await c.json('GET', `/v1/services/x/watch?base=${other}`), 429, 'LIMIT_EXCEEDED');
    await c.json('POST', `/v1/services/x/instances?base=${other}`, { leaseId: l, address: 'h' });
    // It answers the first change: the service node's creation, or the instance too.
    assert.equal(((await held).body as InstanceSet).unchanged, false, 'the held long-poll answers the registration');
    // An ended lease: 410 for register and update.
    await c.json('DELETE', `/v1/leases/${l}`);
    problem(await c.json('POST', `/v1/services/svc/instances${q}`, { leaseId: l, address: 'h' }), 410, 'LEASE_REVOKED');
    const l2 = ((await c.json('POST', '/v1/leases', { ttlMs: 30_000 })).body as { id: string }).id;
    await c.json('POST', `/v1/services/svc/instances${q}`, { leaseId: l2, id: 'k', address: 'k' });
    await c.json('DELETE', `/v1/leases/${l2}`);
    problem(await c.json('PUT', `/v1/services/svc/instances/k${q}`, { leaseId: l2, port: 1 }), 410, 'LEASE_REVOKED');
    assert.deepEqual((await c.json('DELETE', `/v1/services/svc/instances/k${q}&leaseId=${l2}`)).body, { deregistered: false, reason: 'lease_ended', path: `${base}/svc/k` });
    const unknownTenant = { headers: { 'zkgate-tenant': 'nope' } };
    for (const url of ['/v1/services', '/v1/services/svc', '/v1/services/svc/watch', '/v1/services/svc/pick', '/v1/services/svc/instances/a']) {
      problem(await c.json('GET', url, undefined, unknownTenant), 404, 'NOT_FOUND');
    }
    for (const [method, url] of [
      ['PUT', '/v1/services'],
      ['POST', '/v1/services/svc'],
      ['GET', '/v1/services/svc/instances'],
      ['POST', '/v1/services/svc/instances/a'],
      ['POST', '/v1/services/svc/pick'],
      ['POST', '/v1/services/svc/watch'],
    ] as const) {
      const r = await c.json(method, url, method === 'GET' ? undefined : {});
      problem(r, 405, 'METHOD_NOT_ALLOWED');
      assert.ok(r.headers.get('allow'));
    }
  });

  test('registry › every documented registry response that can be produced was produced and checked', () => {
    const mine = contract()
      .documented()
      .filter((k) => /^\S+ \/v1\/services[ /]/.test(k))
      // 500 needs a bug, 503 a ZooKeeper outage, 499 a client leaving mid-request; 401/403 are security.test.ts's.
      .filter((k) => !/ (500|503|499|401|403)$/.test(k));
    const missing = mine.filter((k) => !coverage.has(k));
    assert.deepEqual(missing, []);
  });
});
