/** `zkgate keygen`: a new API key, shown once, and the config snippet holding only its hash. */
import { stringify } from 'yaml';
import { generateApiKey, hashApiKey, keyIdOf, type Role } from '../core/index.js';

export interface KeygenOptions {
  readonly tenant: string;
  readonly role: Role;
  readonly prefixes?: readonly string[];
  readonly name?: string;
}

/** The key and the text to print: the key once, then the YAML to add to the tenant. */
export function keygen(opts: KeygenOptions): { key: string; sha256: string; text: string } {
  const key = generateApiKey();
  const sha256 = hashApiKey(key);
  const entry = {
    name: opts.name ?? `${opts.tenant}-${opts.role}-${keyIdOf(sha256).slice(0, 6)}`,
    sha256,
    role: opts.role,
    ...(opts.prefixes?.length ? { prefixes: [...opts.prefixes] } : {}),
  };
  const snippet = stringify({ tenants: [{ name: opts.tenant, apiKeys: [entry] }] });
  const text =
    `# API key for tenant ${opts.tenant}, role ${opts.role}. It is shown only now: keep it secret.\n` +
    `# Clients send it as "Authorization: Bearer <key>" (REST, WebSocket) or gRPC metadata "authorization".\n` +
    `${key}\n\n` +
    `# Add this entry to the tenant's apiKeys in the config (only the hash is stored):\n${snippet}`;
  return { key, sha256, text };
}
