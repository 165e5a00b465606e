/**
 * The defaults `zkgate serve --help` names. The config schema (schema.ts) uses these same
 * constants; they live apart from it so that the CLI prints its help and runs its client
 * commands without loading zod and the gateway (about 2 s of start-up before: docs/cli.md).
 */
export const SERVE_DEFAULTS = {
  httpPort: 8080,
  /** Or 0 (a free port) when the HTTP port is 0. */
  grpcPort: 9090,
  bind: '127.0.0.1',
  logLevel: 'info',
  embeddedDataDir: '.zkgate/zookeeper',
} as const;
