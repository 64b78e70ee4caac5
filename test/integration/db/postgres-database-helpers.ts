import { Writable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import pino from 'pino';
import type { Logger } from '../../../src/observability/logger.js';
import type { Metrics } from '../../../src/observability/metrics.js';

/** A logger whose JSON lines are kept for assertions. */
export interface CapturedLogger {
  logger: Logger;
  /** Parsed log lines so far. */
  lines(): Array<Record<string, unknown> & { level: number; msg: string }>;
  /** Every line, raw, joined (to search for secrets). */
  text(): string;
}

export function captureLogger(): CapturedLogger {
  const raw: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      raw.push(chunk.toString());
      done();
    },
  });
  const logger = pino({ level: 'debug' }, stream);
  return {
    logger,
    lines: () => raw.map((l) => JSON.parse(l) as Record<string, unknown> & { level: number; msg: string }),
    text: () => raw.join(''),
  };
}

/** pino's numeric level of warn. */
export const WARN = 40;

/** The value of `db_connect_attempts_total{result}`. */
export async function connectAttempts(
  metrics: Metrics,
  result: 'success' | 'retry' | 'failure',
): Promise<number> {
  const { values } = await metrics.connectAttempts.get();
  return values.find((v) => v.labels.result === result)?.value ?? 0;
}

/** Polls `check` every 20 ms until it is true; throws after `timeoutMs`. */
export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`condition not met within ${timeoutMs} ms`);
    await delay(20);
  }
}
