/** The server's root logger: pino JSON lines on stdout; components take child loggers. */
import { type Logger, pino } from 'pino';

import type { LogLevel } from './config.js';

export function createLogger(level: LogLevel): Logger {
  return pino({ level, base: { service: 'fetchback-server' } });
}
