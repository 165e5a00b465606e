/** The logger core writes to: pino's, or a silent one in tests. Secrets are never passed in. */
import { pino, type Logger } from 'pino';

export type { Logger };

/** A structured JSON logger on stdout at `level`. */
export function createLogger(level: string): Logger {
  return pino({ level, base: { service: 'zkgate' }, timestamp: pino.stdTimeFunctions.isoTime });
}

/** A logger that drops everything. */
export const silentLogger: Logger = pino({ level: 'silent' });
