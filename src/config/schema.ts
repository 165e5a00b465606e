/**
 * The configuration type, its defaults and its validation (zod). Every error names the field.
 */
import { z } from 'zod';
import { pathProblem } from '../zk/index.js';

const chroot = z
  .string()
  .refine((p) => pathProblem(p) === null, { message: 'must be a valid ZooKeeper path such as /tenants/acme' });

const limitsSchema = z
  .object({
    /** Largest znode payload accepted, bytes; ZooKeeper's jute.maxbuffer is 1 MiB per packet. */
    maxDataBytes: z.number().int().min(0).max(1_048_576).default(1_046_528),
    /** Largest HTTP request body, bytes (base64 inflates data by 4/3). */
    maxBodyBytes: z.number().int().min(1024).default(1_500_000),
    /** Largest subtree a recursive delete removes; larger ones are refused before any delete. */
    maxRecursiveDeleteNodes: z.number().int().min(1).default(1000),
  })
  .strict();

const tenantSchema = z
  .object({
    name: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'lowercase letters, digits, - and _ (max 63)'),
    /** ZooKeeper connect string; defaults to the top-level `zookeeper.connect`. */
    connect: z.string().min(1).optional(),
    chroot: chroot.default('/'),
    sessionTimeoutMs: z.number().int().min(1000).max(120_000).default(10_000),
    /** ZooKeeper digest credentials added to every session of this tenant. */
    digest: z.object({ user: z.string().min(1), password: z.string().min(1) }).strict().optional(),
  })
  .strict();

export const configSchema = z
  .object({
    http: z
      .object({
        port: z.number().int().min(0).max(65535).default(8080),
        bind: z.string().min(1).default('127.0.0.1'),
      })
      .strict()
      .default({ port: 8080, bind: '127.0.0.1' }),
    grpc: z
      .object({ port: z.number().int().min(0).max(65535).default(9090) })
      .strict()
      .default({ port: 9090 }),
    zookeeper: z
      .object({
        /** `host:port,…`; absent means: start the embedded local ZooKeeper. */
        connect: z.string().min(1).optional(),
      })
      .strict()
      .default({}),
    embedded: z
      .object({
        dataDir: z.string().min(1).default('.zkgate/zookeeper'),
        port: z.number().int().min(0).max(65535).default(0),
      })
      .strict()
      .default({ dataDir: '.zkgate/zookeeper', port: 0 }),
    tenants: z
      .array(tenantSchema)
      .min(1)
      .default([{ name: 'default', chroot: '/', sessionTimeoutMs: 10_000 }])
      .refine((ts) => new Set(ts.map((t) => t.name)).size === ts.length, { message: 'tenant names must be unique' }),
    limits: limitsSchema.default({ maxDataBytes: 1_046_528, maxBodyBytes: 1_500_000, maxRecursiveDeleteNodes: 1000 }),
    /** Prefix of every lease id, so a balancer can route a lease back to its instance. */
    instanceId: z
      .string()
      .regex(/^[A-Za-z0-9-]{1,40}$/, 'letters, digits and - (max 40)')
      .optional(),
    leases: z
      .object({
        minTtlMs: z.number().int().min(100).default(1000),
        maxTtlMs: z.number().int().min(1000).default(3_600_000),
      })
      .strict()
      .default({ minTtlMs: 1000, maxTtlMs: 3_600_000 }),
    log: z
      .object({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') })
      .strict()
      .default({ level: 'info' }),
  })
  .strict();

export type Config = z.infer<typeof configSchema>;
export type TenantConfig = z.infer<typeof tenantSchema>;
export type Limits = z.infer<typeof limitsSchema>;

/** Invalid configuration; the message lists every bad field as `path.to.field: problem`. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** Validates raw input (parsed file + env overrides) and fills defaults. @throws ConfigError */
export function validateConfig(raw: unknown): Config {
  const result = configSchema.safeParse(raw ?? {});
  if (result.success) return result.data;
  const lines = result.error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`);
  throw new ConfigError(`invalid configuration:\n  ${lines.join('\n  ')}`);
}
