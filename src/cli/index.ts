#!/usr/bin/env node
/**
 * The `zkgate` command: `serve` starts the gateway; `--help` lists flags and their env twins.
 * Only what every command needs is imported here: `serve` and `keygen` load their modules when
 * they run, so `zkgate lock …` in a crontab starts without the gateway, zod or the ZooKeeper
 * addon (2.3 s before, most of it loading them).
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { readFileSync } from 'node:fs';
import { SERVE_DEFAULTS } from '../config/defaults.js';
import { projectFile } from '../project-files.js';
import { ROLES, type Role } from '../core/auth/roles.js';
import { pathProblem } from '../zk/paths.js';
import { registerClientCommands } from './client/commands.js';
import type { ServeFlags } from './serve.js';

function port(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) > 65535) throw new InvalidArgumentError('must be a port number (0 picks a free one)');
  return Number(value);
}

const { version } = JSON.parse(readFileSync(projectFile('package.json'), 'utf8')) as { version: string };

const program = new Command('zkgate')
  .description('Coordination gateway in front of Apache ZooKeeper: znodes, leases, locks, elections and watches over REST, gRPC and WebSocket')
  .version(version, '-V, --version', 'print the zkgate version');

program
  .command('serve')
  .description('start the gateway (with an embedded local ZooKeeper when none is configured)')
  .option('--config <file>', 'YAML or JSON config file (env ZKGATE_CONFIG; default: none, built-in defaults)')
  .option('--zookeeper <connect>', `ZooKeeper connect string host:port,... (env ZKGATE_ZOOKEEPER; default: an embedded local server, data in ${SERVE_DEFAULTS.embeddedDataDir})`)
  .option('--http-port <n>', `REST/WebSocket port, 0 = free port (env ZKGATE_HTTP_PORT; default: ${SERVE_DEFAULTS.httpPort})`, port)
  .option('--grpc-port <n>', `gRPC port, 0 = free port (env ZKGATE_GRPC_PORT; default: ${SERVE_DEFAULTS.grpcPort}, or 0 when the HTTP port is 0)`, port)
  .option('--bind <addr>', `listen address (env ZKGATE_BIND; default: ${SERVE_DEFAULTS.bind})`)
  .option('--log-level <level>', `fatal|error|warn|info|debug|trace|silent (env ZKGATE_LOG_LEVEL; default: ${SERVE_DEFAULTS.logLevel})`)
  .option('--tls-cert <file>', 'PEM certificate: serve HTTPS/WSS and gRPC over TLS (env ZKGATE_TLS_CERT; default: none, plain HTTP and gRPC)')
  .option('--tls-key <file>', 'PEM private key for --tls-cert (env ZKGATE_TLS_KEY)')
  .option(
    '--allow-unauthenticated-public-bind',
    'start on a non-loopback address with no API key configured (env ZKGATE_ALLOW_UNAUTHENTICATED_PUBLIC_BIND=1; default: off); anyone reaching the port is admin',
  )
  .action(async (flags: ServeFlags) => (await import('./serve.js')).serveCommand(flags));

function prefix(value: string, previous: string[] = []): string[] {
  const problem = pathProblem(value);
  if (problem) throw new InvalidArgumentError(`${problem} (a znode path inside the tenant's chroot, such as /app)`);
  return [...previous, value];
}

program
  .command('keygen')
  .description("print a new API key for a tenant and the config entry holding only its SHA-256")
  .requiredOption('--tenant <name>', 'the tenant the key selects')
  .addOption(new Option('--role <role>', 'what the key may do').choices(ROLES).makeOptionMandatory())
  .option('--prefix <path>', 'limit the key to this path prefix inside the chroot (repeatable)', prefix)
  .option('--name <label>', 'a label for logs (never the key)')
  .action(async (flags: { tenant: string; role: Role; prefix?: string[]; name?: string }) => {
    const { keygen } = await import('./keygen.js');
    process.stdout.write(keygen({ tenant: flags.tenant, role: flags.role, prefixes: flags.prefix, name: flags.name }).text);
  });

// Program options (--version) only before the command: `zkgate set PATH DATA --version 3` is the
// set's compare-and-set version, not a request for zkgate's.
program.enablePositionalOptions();
registerClientCommands(program);

await program.parseAsync(process.argv);
