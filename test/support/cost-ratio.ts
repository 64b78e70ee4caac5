import { performance } from 'node:perf_hooks';

/**
 * How many times longer `run(hostile)` takes than `run(benign)`, on this machine in this run:
 * the fastest of `samples` timings of each, interleaved, so a pause (GC, another process) has
 * to hit every sample of one side to move the ratio. Compare the result with a generous factor:
 * a linear cost gives about 1, a quadratic one hundreds or more on inputs of a few KiB. A hostile
 * sample slower than `giveUpAfterMs` ends the measurement at once (a quadratic cost would
 * otherwise keep the test busy for minutes), returning the ratio seen so far.
 */
export async function costRatio<T>(
  run: (input: T) => unknown,
  hostile: T,
  benign: T,
  { samples = 7, giveUpAfterMs = 2_000 }: { samples?: number; giveUpAfterMs?: number } = {},
): Promise<number> {
  let bestHostile = Infinity;
  let bestBenign = Infinity;
  for (let i = 0; i < samples; i++) {
    bestBenign = Math.min(bestBenign, await timed(() => run(benign)));
    const h = await timed(() => run(hostile));
    bestHostile = Math.min(bestHostile, h);
    if (h > giveUpAfterMs) break;
  }
  return bestHostile / Math.max(bestBenign, 0.001);
}

async function timed(fn: () => unknown): Promise<number> {
  const started = performance.now();
  await fn();
  return performance.now() - started;
}
