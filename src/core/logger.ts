/**
 * The logger core writes to: pino's, or a silent one in tests. Secrets are never passed in.
 *
 * The destination is a SonicBoom on stdout built here rather than pino's default, because the
 * default registers a `process.exit` hook that flushes synchronously and retries a failed write
 * forever: with stdout a closed pipe (EPIPE) that hook spun and the process never exited. Here
 * nothing runs at exit; `flushLogs` gives pending lines a bounded time instead, a broken stdout
 * stops logging, and a reader that stops reading costs at most `MAX_BUFFERED_BYTES` of memory
 * (later lines are dropped) instead of stalling the gateway.
 */
import { pino, type Logger } from 'pino';
import { createRequire } from 'node:module';
import type { SonicBoom as SonicBoomClass } from 'sonic-boom';

// A CommonJS module whose ESM view has no named export: take the class the way it is exported.
const { SonicBoom } = createRequire(import.meta.url)('sonic-boom') as { SonicBoom: typeof SonicBoomClass };
type SonicBoom = SonicBoomClass;

export type { Logger };

/** Log bytes kept while stdout does not take them; past it lines are dropped. */
const MAX_BUFFERED_BYTES = 16 * 1024 * 1024;

const destinations = new WeakMap<Logger, SonicBoom>();

/** A structured JSON logger on stdout at `level`. */
export function createLogger(level: string): Logger {
  const dest = new SonicBoom({ fd: 1, sync: false, maxLength: MAX_BUFFERED_BYTES });
  dest.on('error', (err: NodeJS.ErrnoException) => {
    // Nobody reads stdout any more (EPIPE) or it is gone: stop writing, never throw.
    dest.write = () => true;
    if (err.code !== 'EPIPE') process.stderr.write(`zkgate: logging to stdout stopped: ${err.message}\n`, () => undefined);
  });
  const logger = pino({ level, base: { service: 'zkgate' }, timestamp: pino.stdTimeFunctions.isoTime }, dest);
  destinations.set(logger, dest);
  return logger;
}

/**
 * Resolves once the lines `logger` has buffered are written, or after `timeoutMs` (a stalled
 * or closed stdout never holds up an exit).
 */
export function flushLogs(logger: Logger, timeoutMs = 1000): Promise<void> {
  const dest = destinations.get(logger);
  if (!dest) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(resolve, timeoutMs);
    try {
      dest.flush(() => {
        clearTimeout(t);
        resolve();
      });
    } catch {
      clearTimeout(t);
      resolve();
    }
  });
}

/** A logger that drops everything. */
export const silentLogger: Logger = pino({ level: 'silent' }, { write: () => undefined });
