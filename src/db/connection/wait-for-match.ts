import { setTimeout as delay } from 'node:timers/promises';
import type { TargetSessionAttrs } from '../../config/app-config.js';
import type { Logger } from '../../observability/logger.js';

/** First wait between two passes over the hosts, ms; doubled each pass. */
const FIRST_WAIT_MS = 25;
/** Cap on one wait, ms: a new primary is found at most this long after it is writable. */
const MAX_WAIT_MS = 250;
/**
 * No pass starts within this share of `timeoutMs` of its end: the pool's own create and
 * acquire timeouts are `timeoutMs` too, and the caller should hear which hosts were tried
 * (NO_MATCHING_HOST), not the pool's generic timeout.
 */
const END_MARGIN = 0.1;

/** The targets a failover or a switchover satisfies again within seconds: worth waiting for. */
export function waitsForMatch(attrs: TargetSessionAttrs): boolean {
  return attrs === 'read-write' || attrs === 'primary';
}

/**
 * Runs `pass` (one try of every host, bounded by the ms it is given) until it returns, for up
 * to `timeoutMs` in all, while it fails with NO_MATCHING_HOST: some host answered, none is the
 * writable primary yet. That is a failover or a planned switchover in progress (Patroni takes
 * 1-3 s to promote), and an instant "no writable host" answer retried a fixed number of times
 * would spend a caller's attempts in a second while its deadline has time left. Waits 25 ms,
 * doubling, at most 250 ms between passes. Any other failure (every host refused, a bad
 * password) ends the wait at once with that error.
 * @throws the last pass's error.
 */
export async function untilMatched<T>(
  pass: (timeoutMs: number) => Promise<T>,
  opts: { timeoutMs: number; attrs: TargetSessionAttrs; logger: Logger },
): Promise<T> {
  const started = performance.now();
  const end = started + opts.timeoutMs * (1 - END_MARGIN);
  for (let n = 0; ; n++) {
    try {
      return await pass(Math.max(1, Math.round(started + opts.timeoutMs - performance.now())));
    } catch (err) {
      const wait = Math.min(MAX_WAIT_MS, FIRST_WAIT_MS * 2 ** n);
      if ((err as { code?: unknown }).code !== 'NO_MATCHING_HOST' || performance.now() + wait >= end)
        throw err;
      if (n === 0)
        opts.logger.info(
          { targetSessionAttrs: opts.attrs, waitMs: opts.timeoutMs },
          'no host matches targetSessionAttrs yet (a failover or switchover in progress?); waiting for one',
        );
      await delay(wait);
    }
  }
}
