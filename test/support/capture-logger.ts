import pino from 'pino';
import type { Logger } from '../../src/observability/logger.js';

/** One parsed JSON log line. */
export type LogLine = Record<string, unknown> & { level: number; msg: string };

/** A logger whose JSON lines are kept for assertions. */
export interface CapturedLogger {
  logger: Logger;
  /** The parsed lines so far; the same array grows as lines are written. */
  lines: LogLine[];
  /** Every line, raw, joined (to search for secrets). */
  text(): string;
}

/** pino's numeric level of warn. */
export const WARN = 40;

/** pino's numeric level of error. */
export const ERROR = 50;

/** A plain pino logger (no redaction of its own) at `level` (default debug) that keeps its lines. */
export function captureLogger(level: pino.Level = 'debug'): CapturedLogger {
  const raw: string[] = [];
  const lines: LogLine[] = [];
  const logger = pino(
    { level },
    {
      write: (line: string) => {
        raw.push(line);
        lines.push(JSON.parse(line) as LogLine);
      },
    },
  );
  return { logger, lines, text: () => raw.join('') };
}
