/**
 * gRPC `zkgate.v1.Registry`: each RPC makes one call on the caller's scope (which authorizes)
 * and maps the answer; Watch streams the core's observation of the instance set.
 */
import type { ServerWritableStream, UntypedServiceImplementation } from '@grpc/grpc-js';
import { invalidArgument, type Gateway, type Instance, type InstanceSet, type Registration, type ScopedConnection } from '../../core/index.js';
import { callSignal, failStream, scopeOf, unaryWith, writeWhenReady } from './call-context.js';
import { checkDecoded } from './malformed.js';
import { optionalString, toEnum, unwrap, type Wrapped } from './proto-values.js';

interface ServiceRequest {
  base: string;
  service: string;
  /** ListInstances and Pick: sync, then read ZooKeeper. */
  sync?: boolean;
  /** ListInstances and Pick: read ZooKeeper, not memory. */
  noCache?: boolean;
}
interface InstanceRequest extends ServiceRequest {
  id: string;
  leaseId: string;
}
interface RegisterRequest extends ServiceRequest {
  leaseId: string;
  id: string;
  replace: boolean;
  address: string;
  port: Wrapped<number>;
  sslPort: Wrapped<number>;
  payloadJson: string;
  uriSpec: string;
  enabled: Wrapped<boolean>;
}
interface UpdateRequest extends InstanceRequest {
  address: Wrapped<string>;
  port: Wrapped<number>;
  sslPort: Wrapped<number>;
  payloadJson: Wrapped<string>;
  uriSpec: Wrapped<string>;
  enabled: Wrapped<boolean>;
  clear: string[];
}
interface PickRequest extends ServiceRequest {
  strategy: string;
  caller: string;
}

const wrap = <T>(v: T | null): { value: T } | null => (v === null ? null : { value: v });

/** The proto form of an instance. */
export function instanceMessage(i: Instance & { strategy?: string; source?: string }): Record<string, unknown> {
  return {
    name: i.name,
    id: i.id,
    address: wrap(i.address),
    port: wrap(i.port),
    sslPort: wrap(i.sslPort),
    payloadJson: JSON.stringify(i.payload),
    registrationTimeUtc: i.registrationTimeUTC,
    serviceType: i.serviceType,
    uriSpec: i.uriSpec,
    enabled: i.enabled,
    path: i.path,
    uri: i.uri ?? '',
    version: i.version,
    ephemeralOwner: i.ephemeralOwner,
    strategy: i.strategy ?? '',
    source: i.source ?? '',
  };
}

function setMessage(s: InstanceSet & { source?: string }): Record<string, unknown> {
  return { base: s.base, service: s.service, index: s.index, instances: s.instances.map(instanceMessage), invalid: s.invalid, source: s.source ?? '' };
}

function registrationMessage(r: Registration): Record<string, unknown> {
  return { instance: instanceMessage(r.instance), leaseId: r.leaseId, leaseState: toEnum('LEASE_STATE', r.leaseState), trustMs: r.trustMs };
}

/** JSON text to a value. @throws INVALID_ARGUMENT naming payload_json */
function payloadOf(json: string): unknown {
  try {
    return JSON.parse(json) as unknown;
  } catch {
    throw invalidArgument('payloadJson', 'must be JSON text');
  }
}

/** The fields a request sets, in the core's (REST) names. */
function fieldsOf(r: Partial<Omit<UpdateRequest, 'address'>> & { address?: string | Wrapped<string> }): Record<string, unknown> {
  const address = typeof r.address === 'string' ? optionalString(r.address) : unwrap(r.address);
  const payload = unwrap(r.payloadJson);
  const out: Record<string, unknown> = { address, port: unwrap(r.port), sslPort: unwrap(r.sslPort), uriSpec: unwrap(r.uriSpec), enabled: unwrap(r.enabled) };
  if (payload !== undefined) out.payload = payloadOf(payload);
  return out;
}

/** `UpdateInstanceRequest.clear`'s names and the fields they set to null (proto3 wrappers cannot say null). */
const CLEARABLE: Readonly<Record<string, string>> = { port: 'port', ssl_port: 'sslPort', uri_spec: 'uriSpec', payload_json: 'payload' };

/** An update's fields with `clear`'s set to null. @throws INVALID_ARGUMENT (clear) */
function updateFieldsOf(r: UpdateRequest): Record<string, unknown> {
  const out = fieldsOf(r);
  for (const name of r.clear ?? []) {
    const field = Object.hasOwn(CLEARABLE, name) ? CLEARABLE[name] : undefined;
    if (field === undefined) throw invalidArgument('clear', `${JSON.stringify(name)} cannot be cleared: name port, ssl_port, uri_spec or payload_json`);
    if (out[field] !== undefined) throw invalidArgument('clear', `${name} is both given and cleared`);
    out[field] = null;
  }
  return out;
}

const base = (r: ServiceRequest): string | undefined => optionalString(r.base);

/** The Registry service implementation over `gw`. */
export function registryService(gw: Gateway): UntypedServiceImplementation {
  const unary = unaryWith(gw.logger);
  return {
    Register: unary(async (r: RegisterRequest, call) => {
      const fields = fieldsOf({ ...r, payloadJson: r.payloadJson === '' ? null : { value: r.payloadJson }, uriSpec: r.uriSpec === '' ? null : { value: r.uriSpec } });
      const out = await scopeOf(gw, call).registry.register(base(r), r.service, { leaseId: r.leaseId, id: optionalString(r.id), replace: r.replace, fields, signal: callSignal(call) });
      return registrationMessage(out);
    }),
    Update: unary(async (r: UpdateRequest, call) => registrationMessage(await scopeOf(gw, call).registry.update(base(r), r.service, r.id, r.leaseId, updateFieldsOf(r)))),
    Deregister: unary(async (r: InstanceRequest, call) => scopeOf(gw, call).registry.deregister(base(r), r.service, r.id, r.leaseId)),
    ListServices: unary(async (r: { base: string }, call) => scopeOf(gw, call).registry.services(optionalString(r.base))),
    ListInstances: unary(async (r: ServiceRequest, call) => setMessage(await scopeOf(gw, call).registry.instances(base(r), r.service, { sync: r.sync, cache: !r.noCache }))),
    GetInstance: unary(async (r: InstanceRequest, call) => instanceMessage(await scopeOf(gw, call).registry.instance(base(r), r.service, r.id))),
    Pick: unary(async (r: PickRequest, call) =>
      instanceMessage(await scopeOf(gw, call).registry.pick(base(r), r.service, optionalString(r.strategy), optionalString(r.caller), { sync: r.sync, cache: !r.noCache })),
    ),
    Watch: (call: ServerWritableStream<ServiceRequest, Record<string, unknown>>) => {
      void (async () => {
        // A streaming connection (a unit of the tenant's connections) holding one subscription.
        let conn: ScopedConnection | undefined;
        try {
          const r = checkDecoded(call.request);
          conn = scopeOf(gw, call).connect();
          for await (const set of conn.instances(base(r), r.service, { signal: callSignal(call) })) {
            await writeWhenReady(call, setMessage(set));
          }
          call.end();
        } catch (err) {
          failStream(call, err, gw.logger);
        } finally {
          conn?.close();
        }
      })();
    },
  };
}
