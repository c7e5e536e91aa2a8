import { pino, type Logger } from 'pino';

export type { Logger };

/** Structured JSON logs on stderr, so stdout stays free for command output. */
export function createLogger(level: string, name = 'farad'): Logger {
  return pino({ name, level, base: { pid: process.pid } }, pino.destination(2));
}
