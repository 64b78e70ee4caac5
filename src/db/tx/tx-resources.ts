import type { Metrics } from '../../observability/metrics.js';
import type { TracingOptions } from '../../observability/tracing.js';
import type { ReplicaRouter } from '../replicas/replica-router.js';

/** What a database lends every `TxManager` built on it (`new TxManager(db, ...)`). */
export interface TxResources {
  metrics: Metrics;
  replicas: ReplicaRouter | undefined;
  tracing: TracingOptions | undefined;
}

/** The key under which a database exposes its `TxResources` (not enumerable, not public API). */
export const TX_RESOURCES: unique symbol = Symbol('pg-data-layer.txResources');

/** The resources `db` lends its transaction managers, when it lends any (a `PostgresDatabase`). */
export function sharedTxResources(db: object): TxResources | undefined {
  return (db as { [TX_RESOURCES]?: TxResources })[TX_RESOURCES];
}
