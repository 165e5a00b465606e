/**
 * Contract: the service registry — register, update, deregister, list, get, pick, the watch of
 * the instance set, its error codes and roles — behaves the same over REST, gRPC
 * (zkgate.v1.Registry) and WebSocket (`call` methods `Registry.*`, op `instances`). The caller
 * below maps each transport onto REST's shapes.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { Metadata, credentials, loadPackageDefinition, type Client, type ClientReadableStream, type GrpcObject, type ServiceClientConstructor, type ServiceError } from '@grpc/grpc-js';
import { loadContract } from '../../src/api/grpc/server.js';
import { restClient } from '../support/openapi.js';
import { WsTestClient, type Json } from '../support/ws-client.js';
import { CallError, type Transport } from './clients.js';
import { KEYS, contractGateway, forEachTransport, rejectsWith, type KeyName } from './harness.js';

type Obj = Record<string, any>;
/** A Registry method by its gRPC name, with REST-shaped params and result. */
type RegistryCall = (method: string, params: Obj) => Promise<Obj>;
/** The instance sets a watch delivers, in order. */
interface SetStream {
  next(): Promise<Obj>;
  close(): void;
}

const { env, client } = contractGateway();
const closers: (() => void)[] = [];
after(() => closers.forEach((c) => c()));

const q = (p: Obj): Record<string, string> =>
  Object.fromEntries(
    Object.entries({ base: p.base, leaseId: p.leaseId, strategy: p.strategy, caller: p.caller, sync: p.sync === undefined ? undefined : String(p.sync), cache: p.cache === undefined ? undefined : String(p.cache) }).filter(
      ([, v]) => v !== undefined,
    ),
  ) as Record<string, string>;
const FIELDS = ['address', 'port', 'sslPort', 'payload', 'uriSpec', 'enabled'];
const pickFields = (p: Obj, extra: string[]): Obj => Object.fromEntries(Object.entries(p).filter(([k, v]) => v !== undefined && [...FIELDS, ...extra].includes(k)));

const REST_ROUTES: Record<string, (p: Obj) => [string, string, Obj | undefined, Record<string, string>]> = {
  Register: (p) => ['POST', `/v1/services/${p.service}/instances`, pickFields(p, ['leaseId', 'id', 'replace']), q({ base: p.base })],
  Update: (p) => ['PUT', `/v1/services/${p.service}/instances/${p.id}`, pickFields(p, ['leaseId']), q({ base: p.base })],
  Deregister: (p) => ['DELETE', `/v1/services/${p.service}/instances/${p.id}`, undefined, q(p)],
  ListServices: (p) => ['GET', '/v1/services', undefined, q(p)],
  ListInstances: (p) => ['GET', `/v1/services/${p.service}`, undefined, { ...q(p), ...(p.wait ? { wait: String(p.wait), index: String(p.index) } : {}) }],
  GetInstance: (p) => ['GET', `/v1/services/${p.service}/instances/${p.id}`, undefined, q(p)],
  Pick: (p) => ['GET', `/v1/services/${p.service}/pick`, undefined, q(p)],
};

/** A gRPC instance in REST's shape. */
function instanceFromGrpc(i: Obj): Obj {
  const { payloadJson, registrationTimeUtc, strategy, ...rest } = i;
  const out: Obj = {
    ...rest,
    address: i.address?.value ?? null,
    port: i.port?.value ?? null,
    sslPort: i.sslPort?.value ?? null,
    payload: JSON.parse(payloadJson as string),
    registrationTimeUTC: Number(registrationTimeUtc),
    uri: i.uri === '' ? null : i.uri,
    uriSpec: i.uriSpec ?? null,
  };
  if (strategy) out.strategy = strategy;
  return out;
}

function fromGrpc(method: string, r: Obj): Obj {
  if (method === 'Register' || method === 'Update') return { ...r, instance: instanceFromGrpc(r.instance as Obj), leaseState: String(r.leaseState).replace('LEASE_STATE_', '').toLowerCase() };
  if (method === 'GetInstance' || method === 'Pick') return instanceFromGrpc(r);
  if (method === 'ListInstances') return { ...r, instances: (r.instances as Obj[]).map(instanceFromGrpc) };
  return r;
}

/** REST-shaped params in gRPC's: wrappers, JSON text. */
function toGrpc(method: string, p: Obj): Obj {
  const w = (v: unknown): Obj | undefined => (v === undefined ? undefined : { value: v });
  const out: Obj = { ...p, port: w(p.port), sslPort: w(p.sslPort), enabled: w(p.enabled) };
  delete out.payload;
  // REST's and WebSocket's `cache: false` is gRPC's `no_cache`.
  delete out.cache;
  if (p.cache === false) out.noCache = true;
  if (method === 'Register') {
    if (p.payload !== undefined) out.payloadJson = JSON.stringify(p.payload);
  } else {
    out.address = w(p.address);
    out.uriSpec = w(p.uriSpec);
    if (p.payload !== undefined) out.payloadJson = { value: JSON.stringify(p.payload) };
    // REST's and WebSocket's JSON null is gRPC's `clear` (a wrapper cannot hold null).
    const clear = p.clear === undefined ? [] : [...(p.clear as string[])];
    for (const [field, name] of [['port', 'port'], ['sslPort', 'ssl_port'], ['uriSpec', 'uri_spec'], ['payload', 'payload_json']] as const) {
      if (p[field] !== null) continue;
      delete out[field];
      if (field === 'payload') delete out.payloadJson;
      clear.push(name);
    }
    if (clear.length) out.clear = clear;
  }
  return out;
}

async function registryCaller(t: Transport, key: KeyName): Promise<{ call: RegistryCall; watch(p: Obj): Promise<SetStream> }> {
  const apiKey = KEYS[key];
  if (t === 'rest') {
    const rest = restClient(`http://127.0.0.1:${env.gw.httpPort}`);
    const call: RegistryCall = async (method, p) => {
      const [verb, url, body, query] = REST_ROUTES[method]!(p);
      const res = await rest.json(verb, url, body, { headers: { authorization: `Bearer ${apiKey}` }, query });
      const b = (res.body ?? {}) as Obj;
      if (res.status >= 400) throw new CallError(b.code, b.details ?? {}, b.detail ?? '');
      // Where a listing or pick came from: a header in REST, a field in gRPC and WebSocket.
      const source = res.headers.get('x-zkgate-source');
      return source === null ? b : { ...b, source };
    };
    // REST's stream for curl and PHP: the long-poll, each answer's index sent back.
    const watch = async (p: Obj): Promise<SetStream> => {
      let index: string | undefined;
      return {
        next: async () => {
          const set = index === undefined ? await call('ListInstances', p) : await call('ListInstances', { ...p, wait: 20_000, index });
          index = set.index as string;
          return set;
        },
        close: () => undefined,
      };
    };
    return { call, watch };
  }
  if (t === 'grpc') {
    const v1 = (loadPackageDefinition(loadContract()).zkgate as GrpcObject).v1 as GrpcObject;
    const reg = new (v1.Registry as ServiceClientConstructor)(`127.0.0.1:${env.gw.grpcPort}`, credentials.createInsecure()) as Client & Record<string, Function>;
    closers.push(() => reg.close());
    const md = (): Metadata => {
      const m = new Metadata();
      m.set('authorization', `Bearer ${apiKey}`);
      return m;
    };
    const call: RegistryCall = (method, p) =>
      new Promise((resolve, reject) => {
        reg[method]!.call(reg, toGrpc(method, p), md(), (err: ServiceError | null, res: Obj) => {
          if (!err) return resolve(fromGrpc(method, res));
          const code = err.metadata.get('zkgate-error-code')[0];
          const details = err.metadata.get('zkgate-error-details')[0];
          reject(new CallError(String(code), details ? (JSON.parse(String(details)) as Obj) : {}, err.details));
        });
      });
    const watch = async (p: Obj): Promise<SetStream> => {
      const stream = reg.Watch!.call(reg, p, md()) as ClientReadableStream<Obj>;
      const queue: Obj[] = [];
      const waiters: ((v: Obj) => void)[] = [];
      stream.on('data', (d: Obj) => {
        const set = fromGrpc('ListInstances', d);
        const w = waiters.shift();
        if (w) w(set);
        else queue.push(set);
      });
      stream.on('error', () => undefined);
      return { next: () => (queue.length ? Promise.resolve(queue.shift()!) : new Promise((r) => waiters.push(r))), close: () => stream.cancel() };
    };
    return { call, watch };
  }
  const ws = await WsTestClient.open(`ws://127.0.0.1:${env.gw.httpPort}/v1/ws`, { authorization: `Bearer ${apiKey}` });
  closers.push(() => ws.close());
  let seq = 0;
  const call: RegistryCall = async (method, p) => {
    const id = `r${++seq}`;
    ws.send({ op: 'call', id, method: `Registry.${method}`, params: p });
    const m: Json = await ws.take((x) => x.id === id && (x.type === 'result' || x.type === 'error'), 30_000);
    if (m.type === 'error') throw new CallError(m.code as string, (m.details ?? {}) as Obj, m.message as string);
    return m.result as Obj;
  };
  const watch = async (p: Obj): Promise<SetStream> => {
    const id = `w${++seq}`;
    ws.send({ op: 'instances', id, service: p.service, base: p.base });
    return {
      next: async () => ((await ws.take((x) => x.id === id && x.type === 'instances', 20_000)) as Obj).set as Obj,
      close: () => ws.send({ op: 'unsubscribe', id }),
    };
  };
  return { call, watch };
}

forEachTransport((t) => {
  const base = (what: string): string => `/c-${t}-${what}-${Math.random().toString(36).slice(2, 8)}`;

  test('registry › register, get, list, update, pick and deregister answer alike', async () => {
    const c = await client(t);
    const { call } = await registryCaller(t, 'admin');
    const b = base('crud');
    const l = await c.grant(30_000);
    const r = await call('Register', { base: b, service: 'svc', leaseId: l.id, id: 'a', address: '10.0.0.1', port: 80, payload: { zone: 'x' }, uriSpec: '{scheme}://{address}:{port}' });
    assert.deepEqual([r.instance.path, r.instance.uri, r.instance.serviceType, r.instance.payload, r.leaseState], [`${b}/svc/a`, 'http://10.0.0.1:80', 'DYNAMIC', { zone: 'x' }, 'active']);
    await call('Register', { base: b, service: 'svc', leaseId: l.id, id: 'b', address: '10.0.0.2', sslPort: 443 });
    assert.deepEqual((await call('ListServices', { base: b })).services, ['svc']);
    const set = await call('ListInstances', { base: b, service: 'svc' });
    assert.deepEqual(set.instances.map((i: Obj) => [i.id, i.port, i.sslPort]), [['a', 80, null], ['b', null, 443]]);
    assert.equal((await call('GetInstance', { base: b, service: 'svc', id: 'b' })).address, '10.0.0.2');
    const up = await call('Update', { base: b, service: 'svc', id: 'a', leaseId: l.id, enabled: false });
    assert.deepEqual([up.instance.enabled, up.instance.version, up.instance.port], [false, 1, 80]);
    // JSON null removes a field (gRPC: `clear`); the others stay.
    const cleared = await call('Update', { base: b, service: 'svc', id: 'a', leaseId: l.id, port: null, uriSpec: null, payload: null, sslPort: 8443 });
    assert.deepEqual([cleared.instance.port, cleared.instance.sslPort, cleared.instance.uriSpec, cleared.instance.uri, cleared.instance.payload, cleared.instance.address, cleared.instance.enabled], [null, 8443, null, null, null, '10.0.0.1', false]);
    for (let i = 0; i < 2; i++) assert.equal((await call('Pick', { base: b, service: 'svc', caller: 'me' })).id, 'b', 'the disabled one is never picked');
    assert.deepEqual(await call('Deregister', { base: b, service: 'svc', id: 'b', leaseId: l.id }), { deregistered: true, reason: 'deleted', path: `${b}/svc/b` });
    assert.deepEqual(await call('Deregister', { base: b, service: 'svc', id: 'b', leaseId: l.id }), { deregistered: false, reason: 'not_registered', path: `${b}/svc/b` });
    const none = await rejectsWith(call('Pick', { base: b, service: 'svc' }), 'NO_INSTANCES');
    assert.equal(none.details.registered, 1);
    await c.revoke(l.id);
    assert.deepEqual((await call('ListInstances', { base: b, service: 'svc' })).instances, []);
  });

  test('registry › bad input, someone else\'s id and the roles are refused alike, changing nothing', async () => {
    const c = await client(t);
    const { call } = await registryCaller(t, 'admin');
    const b = base('err');
    const [l1, l2] = [await c.grant(30_000), await c.grant(30_000)];
    for (const [params, field] of [
      [{ address: 'h', port: 70000 }, 'port'],
      [{ address: 'h', payload: [1] }, 'payload'],
      [{ address: 'h', uriSpec: '{x' }, 'uriSpec'],
      [{ port: 1 }, 'address'],
      [{ address: 'h', id: 'a/b' }, 'id'],
    ] as [Obj, string][]) {
      const e = await rejectsWith(call('Register', { base: b, service: 'svc', leaseId: l1.id, ...params }), 'INVALID_ARGUMENT');
      assert.equal(e.details.field, field, JSON.stringify(params));
    }
    await rejectsWith(call('ListInstances', { base: 'rel', service: 'svc' }), 'INVALID_PATH');
    await rejectsWith(call('Pick', { base: b, service: 'svc', strategy: 'fastest' }), 'INVALID_ARGUMENT');
    assert.deepEqual((await call('ListServices', { base: b })).services, [], 'nothing was created');
    await call('Register', { base: b, service: 'svc', leaseId: l1.id, id: 'x', address: 'one' });
    await rejectsWith(call('Register', { base: b, service: 'svc', leaseId: l2.id, id: 'x', address: 'two' }), 'NODE_EXISTS');
    await rejectsWith(call('Update', { base: b, service: 'svc', id: 'x', leaseId: l2.id, port: 1 }), 'INSTANCE_NOT_OWNED');
    if (t === 'grpc') {
      // gRPC's `clear`: only fields that may be null, never one also given.
      for (const params of [{ clear: ['address'] }, { clear: ['enabled'] }, { clear: ['sslPort'] }, { clear: ['port'], port: 2 }]) {
        const e = await rejectsWith(call('Update', { base: b, service: 'svc', id: 'x', leaseId: l1.id, ...params }), 'INVALID_ARGUMENT');
        assert.equal(e.details.field, 'clear', JSON.stringify(params));
      }
    }
    await rejectsWith(call('Deregister', { base: b, service: 'svc', id: 'x', leaseId: l2.id }), 'INSTANCE_NOT_OWNED');
    await rejectsWith(call('GetInstance', { base: b, service: 'svc', id: 'nope' }), 'NO_NODE');
    const reader = (await registryCaller(t, 'read')).call;
    assert.equal((await reader('GetInstance', { base: b, service: 'svc', id: 'x' })).address, 'one', 'a reader reads');
    await rejectsWith(reader('Register', { base: b, service: 'svc', leaseId: l1.id, address: 'h' }), 'PERMISSION_DENIED');
    const scoped = (await registryCaller(t, 'scoped')).call;
    await rejectsWith(scoped('ListInstances', { base: b, service: 'svc' }), 'PERMISSION_DENIED');
    assert.equal((await call('GetInstance', { base: b, service: 'svc', id: 'x' })).address, 'one', 'nothing changed');
    await c.revoke(l1.id);
    await c.revoke(l2.id);
  });

  test('registry › a repeated pick is answered from memory and says so; sync reads ZooKeeper', async () => {
    const c = await client(t);
    const { call } = await registryCaller(t, 'admin');
    const b = base('cache');
    const l = await c.grant(30_000);
    await call('Register', { base: b, service: 'svc', leaseId: l.id, id: 'a', address: 'a' });
    assert.equal((await call('ListInstances', { base: b, service: 'svc' })).source, 'zookeeper');
    const sources: string[] = [];
    for (let i = 0; i < 40 && !sources.includes('cache'); i++) {
      const p = await call('Pick', { base: b, service: 'svc', caller: 'me' });
      assert.equal(p.id, 'a');
      sources.push(p.source as string);
      if (p.source !== 'cache') await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(sources.includes('cache'), `pick sources: ${sources.join()}`);
    assert.equal((await call('Pick', { base: b, service: 'svc', sync: true })).source, 'zookeeper');
    const listed = await call('ListInstances', { base: b, service: 'svc', sync: true });
    assert.deepEqual([listed.source, listed.instances.map((i: Obj) => i.id)], ['zookeeper', ['a']]);
    await c.revoke(l.id);
  });

  test('registry › with cache=false every pick and listing reads ZooKeeper, even of a set memory vouches for, and follows nothing', async () => {
    const c = await client(t);
    const { call } = await registryCaller(t, 'admin');
    const b = base('nocache');
    const l = await c.grant(30_000);
    await call('Register', { base: b, service: 'svc', leaseId: l.id, id: 'a', address: 'a' });
    // Followed and vouched for: a plain pick is answered from memory…
    let source = '';
    for (let i = 0; i < 40 && source !== 'cache'; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 50));
      source = (await call('Pick', { base: b, service: 'svc', caller: 'me' })).source as string;
    }
    assert.equal(source, 'cache');
    // …and one with cache=false still reads ZooKeeper.
    for (let i = 0; i < 3; i++) {
      const p = await call('Pick', { base: b, service: 'svc', caller: 'me', cache: false });
      assert.deepEqual([p.id, p.source], ['a', 'zookeeper'], `pick ${i}`);
    }
    const listed = await call('ListInstances', { base: b, service: 'svc', cache: false });
    assert.deepEqual([listed.source, listed.instances.map((i: Obj) => i.id)], ['zookeeper', ['a']]);
    // A service only read with cache=false is not followed: the first plain pick reads ZooKeeper.
    await call('Register', { base: b, service: 'other', leaseId: l.id, id: 'b', address: 'b' });
    assert.equal((await call('Pick', { base: b, service: 'other', caller: 'me', cache: false })).source, 'zookeeper');
    assert.equal((await call('Pick', { base: b, service: 'other', caller: 'me' })).source, 'zookeeper');
    await c.revoke(l.id);
  });

  test('registry › the watch sends the instance set now, then after each change', async () => {
    const c = await client(t);
    const { call, watch } = await registryCaller(t, 'admin');
    const b = base('watch');
    const l = await c.grant(30_000);
    await call('Register', { base: b, service: 'svc', leaseId: l.id, id: 'a', address: 'a' });
    const w = await watch({ base: b, service: 'svc' });
    assert.deepEqual((await w.next()).instances.map((i: Obj) => i.id), ['a']);
    await call('Register', { base: b, service: 'svc', leaseId: l.id, id: 'b', address: 'b' });
    let set = await w.next();
    while (set.instances.length !== 2) set = await w.next();
    assert.deepEqual(set.instances.map((i: Obj) => i.id), ['a', 'b']);
    await c.revoke(l.id);
    set = await w.next();
    while (set.instances.length !== 0) set = await w.next();
    w.close();
  });
});
