/**
 * Names and shapes of the registry: where a service lives (`<base>/<service>`, Curator's
 * `ZKPaths.makePath(basePath, name)`), an instance as answers show it, and a service's
 * instance set with its index.
 */
import { joinPath, type Stat } from '../../zk/index.js';
import { ZkgateError, invalidArgument } from '../errors.js';
import { checkPath } from '../paths.js';
import type { WatchEvent } from '../watch/types.js';
import { buildUri, deserialize, type InstanceDocument } from './instance.js';

/** The base path used when a request names none (a common Curator `basePath`). */
export const DEFAULT_BASE = '/services';

/** A service: its base path, name and node path. */
export interface ServiceRef {
  readonly base: string;
  readonly service: string;
  /** `<base>/<service>` */
  readonly path: string;
}

/**
 * Checks a service name or instance id: one path segment (Curator joins it under the base).
 * @throws INVALID_ARGUMENT naming `field`
 */
export function checkSegment(field: string, value: unknown): string {
  if (typeof value !== 'string' || value === '') throw invalidArgument(field, 'is required');
  if (value.includes('/')) throw invalidArgument(field, 'must be one path segment (no "/")');
  if (value === '.' || value === '..' || value === 'zookeeper') throw invalidArgument(field, `cannot be "${value}"`);
  if (value.length > 255) throw invalidArgument(field, 'must be at most 255 characters');
  return value;
}

/**
 * The service at `base` (default `/services`) named `service`.
 * @throws INVALID_PATH (base), INVALID_ARGUMENT (service)
 */
export function serviceRef(base: string | undefined, service: unknown): ServiceRef {
  const b = checkPath(base ?? DEFAULT_BASE);
  const name = checkSegment('service', service);
  const path = checkPath(joinPath(b, name));
  return { base: b, service: name, path };
}

/** The node of instance `id` of the service. @throws INVALID_ARGUMENT, INVALID_PATH */
export function instancePath(ref: ServiceRef, id: unknown): string {
  return checkPath(joinPath(ref.path, checkSegment('id', id)));
}

/** NO_NODE for instance `id` of the service (INVALID_ARGUMENT when `id` is no valid segment). */
export function notRegistered(ref: ServiceRef, id: string, path: string): ZkgateError {
  checkSegment('id', id);
  return new ZkgateError('NO_NODE', `registry: instance ${id} of service ${ref.service} is not registered`, { path, id });
}

/** An instance as the API answers it: Curator's document plus where it lives and its URI. */
export interface Instance extends InstanceDocument {
  /** The instance's node. */
  readonly path: string;
  /** The URI its uriSpec builds (Curator's `buildUriSpec()`), or null without a uriSpec. */
  readonly uri: string | null;
  /** The node's data version: rises with every update. */
  readonly version: number;
  /** The session owning the node (hex, `0x…`), "0" for a persistent one. */
  readonly ephemeralOwner: string;
}

/** A service's instances at one moment. */
export interface InstanceSet {
  readonly base: string;
  readonly service: string;
  /**
   * A zxid (decimal) that changes whenever an instance comes, goes or is updated: the largest
   * of the service node's pzxid and the instances' mzxids ("0": no such service). Long-poll
   * clients send it back as `index`.
   */
  readonly index: string;
  /** Sorted by id. */
  readonly instances: readonly Instance[];
  /** Ids of children whose data is no instance document (skipped, as Curator would fail on them). */
  readonly invalid: readonly string[];
}

/** The API view of an instance node; a string when its data is no instance document. */
export function instanceOf(ref: ServiceRef, id: string, data: Buffer, stat: Pick<Stat, 'version' | 'ephemeralOwner'>): Instance | string {
  const doc = deserialize(data, ref.service, id);
  if (typeof doc === 'string') return doc;
  return { ...doc, path: joinPath(ref.path, id), uri: buildUri(doc), version: stat.version, ephemeralOwner: stat.ephemeralOwner };
}

const maxZxid = (a: string, b: string): string => (BigInt(a) >= BigInt(b) ? a : b);

/** Builds the set from the service node's pzxid and each listed child's latest data event. */
export function instanceSetOf(ref: ServiceRef, pzxid: string, nodes: readonly { id: string; event: Pick<WatchEvent, 'stat' | 'data'> }[]): InstanceSet {
  let index = pzxid;
  const instances: Instance[] = [];
  const invalid: string[] = [];
  for (const { id, event } of [...nodes].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))) {
    if (!event.stat) continue; // deleted; the children listing catches up
    index = maxZxid(index, event.stat.mzxid);
    const inst = instanceOf(ref, id, event.data ?? Buffer.alloc(0), event.stat);
    if (typeof inst === 'string') invalid.push(id);
    else instances.push(inst);
  }
  return { base: ref.base, service: ref.service, index, instances, invalid };
}
