import { setTimeout as delay } from 'node:timers/promises';
import type { Metrics } from '../../../src/observability/metrics.js';
import { metricValue } from '../../support/metric-value.js';

/** The value of `db_connect_attempts_total{result}`. */
export async function connectAttempts(
  metrics: Metrics,
  result: 'success' | 'retry' | 'failure',
): Promise<number> {
  return metricValue(metrics.connectAttempts, { result });
}

/** Polls `check` every 20 ms until it is true; throws after `timeoutMs`. */
export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`condition not met within ${timeoutMs} ms`);
    await delay(20);
  }
}
