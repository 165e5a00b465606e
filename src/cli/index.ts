#!/usr/bin/env node
/** The `zkgate` command: `serve` starts the gateway; `--help` lists flags and their env twins. */
import { Command, InvalidArgumentError, Option } from 'commander';
import { loadConfig, type ConfigOverrides } from '../config/load.js';
import { readFileSync } from 'node:fs';
import { ConfigError, validateConfig } from '../config/schema.js';
import { projectFile } from '../project-files.js';
import { ROLES, createLogger, flushLogs, type Role } from '../core/index.js';
import { pathProblem } from '../zk/index.js';
import { keygen } from './keygen.js';
import { registerClientCommands } from './client/commands.js';
import { StartupError, startGateway, type RunningGateway } from '../main.js';
import { DuplicateInstanceError, EmbeddedUnavailableError } from '../zk/index.js';

function port(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) > 65535) throw new InvalidArgumentError('must be a port number (0 picks a free one)');
  return Number(value);
}

interface ServeFlags {
  config?: string;
  zookeeper?: string;
  httpPort?: number;
  grpcPort?: number;
  bind?: string;
  logLevel?: string;
  tlsCert?: string;
  tlsKey?: string;
  allowUnauthenticatedPublicBind?: boolean;
}

/** Conventional exit status of a process ended by `signal` (128 + its number). */
function signalExitCode(signal: NodeJS.Signals): number {
  return 128 + (signal === 'SIGINT' ? 2 : 15);
}

async function serve(flags: ServeFlags): Promise<void> {
  const overrides: ConfigOverrides = { ...flags };
  const config = loadConfig(overrides);
  const logger = createLogger(config.log.level);
  let running: RunningGateway | undefined;
  let first: NodeJS.Signals | undefined;
  const exit = (code: number): void => {
    void flushLogs(logger, 500).then(() => process.exit(code));
  };
  // Installed before start-up so that a signal during it still stops the embedded ZooKeeper.
  const onSignal = (signal: NodeJS.Signals): void => {
    if (first !== undefined) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(signalExitCode(signal));
    }
    first = signal;
    if (!running) {
      logger.info({ signal }, 'signal during start-up: exiting');
      process.exit(signalExitCode(signal)); // the embedded ZooKeeper is killed by its exit hook
    }
    const { drainTimeoutMs, exitTimeoutMs } = config.shutdown;
    logger.info({ signal, drainTimeoutMs, exitTimeoutMs }, 'shutting down: no new connections or calls; running requests may finish');
    // Whatever hangs (a ZooKeeper that does not answer the close, a stuck listener) must not keep the process.
    setTimeout(() => {
      logger.error({ exitTimeoutMs }, 'shutdown did not finish in time (shutdown.exitTimeoutMs): exiting anyway');
      exit(1);
    }, exitTimeoutMs).unref();
    running.shutdown().then(
      () => {
        logger.info('shut down');
        exit(0);
      },
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  running = await startGateway(config, logger);
}

const { version } = JSON.parse(readFileSync(projectFile('package.json'), 'utf8')) as { version: string };
/** What the gateway uses when neither a flag, the environment nor a config file says otherwise. */
const DEFAULTS = validateConfig({});

const program = new Command('zkgate')
  .description('Coordination gateway in front of Apache ZooKeeper: znodes, leases, locks, elections and watches over REST, gRPC and WebSocket')
  .version(version, '-V, --version', 'print the zkgate version');

program
  .command('serve')
  .description('start the gateway (with an embedded local ZooKeeper when none is configured)')
  .option('--config <file>', 'YAML or JSON config file (env ZKGATE_CONFIG; default: none, built-in defaults)')
  .option('--zookeeper <connect>', `ZooKeeper connect string host:port,... (env ZKGATE_ZOOKEEPER; default: an embedded local server, data in ${DEFAULTS.embedded.dataDir})`)
  .option('--http-port <n>', `REST/WebSocket port, 0 = free port (env ZKGATE_HTTP_PORT; default: ${DEFAULTS.http.port})`, port)
  .option('--grpc-port <n>', `gRPC port, 0 = free port (env ZKGATE_GRPC_PORT; default: ${DEFAULTS.grpc.port}, or 0 when the HTTP port is 0)`, port)
  .option('--bind <addr>', `listen address (env ZKGATE_BIND; default: ${DEFAULTS.http.bind})`)
  .option('--log-level <level>', `fatal|error|warn|info|debug|trace|silent (env ZKGATE_LOG_LEVEL; default: ${DEFAULTS.log.level})`)
  .option('--tls-cert <file>', 'PEM certificate: serve HTTPS/WSS and gRPC over TLS (env ZKGATE_TLS_CERT; default: none, plain HTTP and gRPC)')
  .option('--tls-key <file>', 'PEM private key for --tls-cert (env ZKGATE_TLS_KEY)')
  .option(
    '--allow-unauthenticated-public-bind',
    'start on a non-loopback address with no API key configured (env ZKGATE_ALLOW_UNAUTHENTICATED_PUBLIC_BIND=1; default: off); anyone reaching the port is admin',
  )
  .action(async (flags: ServeFlags) => {
    try {
      await serve(flags);
    } catch (err) {
      if (err instanceof ConfigError || err instanceof EmbeddedUnavailableError || err instanceof StartupError || err instanceof DuplicateInstanceError) {
        process.stderr.write(`${err.message}\n`);
        process.exit(2);
      }
      throw err;
    }
  });

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
  .action((flags: { tenant: string; role: Role; prefix?: string[]; name?: string }) => {
    process.stdout.write(keygen({ tenant: flags.tenant, role: flags.role, prefixes: flags.prefix, name: flags.name }).text);
  });

// Program options (--version) only before the command: `zkgate set PATH DATA --version 3` is the
// set's compare-and-set version, not a request for zkgate's.
program.enablePositionalOptions();
registerClientCommands(program);

await program.parseAsync(process.argv);
