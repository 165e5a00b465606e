#!/usr/bin/env node
/** The `zkgate` command: `serve` starts the gateway; `--help` lists flags and their env twins. */
import { Command, InvalidArgumentError } from 'commander';
import { loadConfig, type ConfigOverrides } from '../config/load.js';
import { ConfigError } from '../config/schema.js';
import { createLogger } from '../core/index.js';
import { startGateway } from '../main.js';
import { EmbeddedUnavailableError } from '../zk/index.js';

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
}

async function serve(flags: ServeFlags): Promise<void> {
  const overrides: ConfigOverrides = { ...flags };
  const config = loadConfig(overrides);
  const logger = createLogger(config.log.level);
  const running = await startGateway(config, logger);
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    void running.close().then(() => process.exit(0));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

const program = new Command('zkgate')
  .description('Coordination gateway in front of Apache ZooKeeper: znodes, leases, locks, elections and watches over REST, gRPC and WebSocket');

program
  .command('serve')
  .description('start the gateway (with an embedded local ZooKeeper when none is configured)')
  .option('--config <file>', 'YAML or JSON config file (env ZKGATE_CONFIG)')
  .option('--zookeeper <connect>', 'ZooKeeper connect string host:port,... (env ZKGATE_ZOOKEEPER); absent: embedded local server')
  .option('--http-port <n>', 'REST/WebSocket port, 0 = free port (env ZKGATE_HTTP_PORT)', port)
  .option('--grpc-port <n>', 'gRPC port, 0 = free port (env ZKGATE_GRPC_PORT)', port)
  .option('--bind <addr>', 'listen address (env ZKGATE_BIND)')
  .option('--log-level <level>', 'fatal|error|warn|info|debug|trace|silent (env ZKGATE_LOG_LEVEL)')
  .action(async (flags: ServeFlags) => {
    try {
      await serve(flags);
    } catch (err) {
      if (err instanceof ConfigError || err instanceof EmbeddedUnavailableError) {
        process.stderr.write(`${err.message}\n`);
        process.exit(2);
      }
      throw err;
    }
  });

await program.parseAsync(process.argv);
