/**
 * `zkgate serve`: loads the config, starts the gateway and stops it on SIGTERM / SIGINT. Loaded
 * only by that command (src/cli/index.ts), so the client commands start without the gateway.
 */
import { loadConfig, type ConfigOverrides } from '../config/load.js';
import { ConfigError } from '../config/schema.js';
import { createLogger, flushLogs } from '../core/index.js';
import { StartupError, startGateway, type RunningGateway } from '../main.js';
import { DuplicateInstanceError, EmbeddedUnavailableError } from '../zk/index.js';

export interface ServeFlags {
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

/** Runs `serve`; a bad config or a failed start prints its message and exits 2. */
export async function serveCommand(flags: ServeFlags): Promise<void> {
  try {
    await serve(flags);
  } catch (err) {
    if (err instanceof ConfigError || err instanceof EmbeddedUnavailableError || err instanceof StartupError || err instanceof DuplicateInstanceError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
}
