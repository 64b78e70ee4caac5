/** What `metricValue` reads: any prom-client counter, gauge or histogram. */
export interface ReadableMetric {
  get(): Promise<{ values: Array<{ value: number; labels: object }> }>;
}

/**
 * The sum of a metric's series whose labels include every pair of `labels` (every series
 * when `labels` is empty); 0 when none matches.
 */
export async function metricValue(
  metric: ReadableMetric,
  labels: Record<string, unknown> = {},
): Promise<number> {
  const { values } = await metric.get();
  return values
    .filter((v) =>
      Object.entries(labels).every(([k, want]) => (v.labels as Record<string, unknown>)[k] === want),
    )
    .reduce((sum, v) => sum + v.value, 0);
}
