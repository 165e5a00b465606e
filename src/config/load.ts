/**
 * Where configuration comes from, in rising priority: a YAML or JSON file, environment
 * variables, command-line flags. This is the only module that reads config I/O.
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { ConfigError, validateConfig, type Config } from './schema.js';

/** Overrides from the CLI or the environment; unset fields leave the file's value. */
export interface ConfigOverrides {
  readonly config?: string;
  readonly zookeeper?: string;
  readonly httpPort?: number;
  readonly grpcPort?: number;
  readonly bind?: string;
  readonly logLevel?: string;
  readonly tlsCert?: string;
  readonly tlsKey?: string;
  /** Allow a non-loopback bind without API keys (see README, Security). */
  readonly allowUnauthenticatedPublicBind?: boolean;
}

function intEnv(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const v = env[name];
  if (v === undefined || v === '') return undefined;
  if (!/^\d+$/.test(v)) throw new ConfigError(`invalid configuration:\n  ${name}: must be a whole number, got "${v}"`);
  return Number(v);
}

function boolEnv(env: NodeJS.ProcessEnv, name: string): boolean | undefined {
  const v = env[name];
  if (v === undefined || v === '') return undefined;
  if (v === '1' || v === 'true') return true;
  if (v === '0' || v === 'false') return false;
  throw new ConfigError(`invalid configuration:\n  ${name}: must be 1/true or 0/false, got "${v}"`);
}

/** Reads the overrides the environment carries (ZKGATE_*). */
export function envOverrides(env: NodeJS.ProcessEnv = process.env): ConfigOverrides {
  return {
    config: env.ZKGATE_CONFIG || undefined,
    zookeeper: env.ZKGATE_ZOOKEEPER || undefined,
    httpPort: intEnv(env, 'ZKGATE_HTTP_PORT'),
    grpcPort: intEnv(env, 'ZKGATE_GRPC_PORT'),
    bind: env.ZKGATE_BIND || undefined,
    logLevel: env.ZKGATE_LOG_LEVEL || undefined,
    tlsCert: env.ZKGATE_TLS_CERT || undefined,
    tlsKey: env.ZKGATE_TLS_KEY || undefined,
    allowUnauthenticatedPublicBind: boolEnv(env, 'ZKGATE_ALLOW_UNAUTHENTICATED_PUBLIC_BIND'),
  };
}

function readFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${file}: ${(err as Error).message}`);
  }
  try {
    const parsed: unknown = file.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
    if (parsed === null || parsed === undefined) return {};
    if (typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('top level must be a mapping');
    return parsed as Record<string, unknown>;
  } catch (err) {
    throw new ConfigError(`cannot parse config file ${file}: ${(err as Error).message}`);
  }
}

function section(raw: Record<string, unknown>, key: string): Record<string, unknown> {
  const v = raw[key];
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? { ...(v as Record<string, unknown>) } : {};
}

/**
 * Builds the validated configuration. Flags win over the environment, which wins over the file.
 * @throws ConfigError naming the bad field or file.
 */
export function loadConfig(flags: ConfigOverrides = {}, env: NodeJS.ProcessEnv = process.env): Config {
  const fromEnv = envOverrides(env);
  const pick = <K extends keyof ConfigOverrides>(k: K): ConfigOverrides[K] => flags[k] ?? fromEnv[k];
  const file = pick('config');
  const raw: Record<string, unknown> = file ? readFile(file) : {};
  const http = section(raw, 'http');
  const grpc = section(raw, 'grpc');
  const zookeeper = section(raw, 'zookeeper');
  const log = section(raw, 'log');
  const security = section(raw, 'security');
  const tls = section(raw, 'tls');
  if (pick('httpPort') !== undefined) http.port = pick('httpPort');
  if (pick('bind') !== undefined) http.bind = pick('bind');
  if (pick('grpcPort') !== undefined) grpc.port = pick('grpcPort');
  if (pick('zookeeper') !== undefined) zookeeper.connect = pick('zookeeper');
  if (pick('logLevel') !== undefined) log.level = pick('logLevel');
  if (pick('tlsCert') !== undefined) tls.certFile = pick('tlsCert');
  if (pick('tlsKey') !== undefined) tls.keyFile = pick('tlsKey');
  if (pick('allowUnauthenticatedPublicBind') !== undefined) security.allowUnauthenticatedPublicBind = pick('allowUnauthenticatedPublicBind');
  const cluster = section(raw, 'cluster');
  // The cluster secret comes from the environment only (never a flag: argv is visible to every user).
  if (env.ZKGATE_CLUSTER_SECRET) cluster.secret = env.ZKGATE_CLUSTER_SECRET;
  if (env.ZKGATE_INSTANCE_ID) raw.instanceId = env.ZKGATE_INSTANCE_ID;
  if (intEnv(env, 'ZKGATE_CLUSTER_PORT') !== undefined) cluster.port = intEnv(env, 'ZKGATE_CLUSTER_PORT');
  if (env.ZKGATE_CLUSTER_ADVERTISE) cluster.advertise = env.ZKGATE_CLUSTER_ADVERTISE;
  if (env.ZKGATE_CLUSTER_LEASE_PLACEMENT) cluster.leasePlacement = env.ZKGATE_CLUSTER_LEASE_PLACEMENT;
  return validateConfig({ ...raw, http, grpc, zookeeper, log, security, cluster, ...(Object.keys(tls).length > 0 ? { tls } : {}) });
}
