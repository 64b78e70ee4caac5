import type { FastifyInstance } from 'fastify';
import knexFactory from 'knex';
import type { AppConfig, PostgresConfig } from './config/app-config.js';
import { CircuitBreaker } from './db/circuit-breaker.js';
import { EmbeddedServer, PostgresDatabase, TxManager, type Database } from './db/index.js';
import { knexMigrationConfig, migratorConfig } from './db/migrations-config.js';
import { attachQueryLogger } from './db/query-logger.js';
import { HealthLoop } from './health/health-loop.js';
import { HealthService } from './health/health-service.js';
import { buildServer } from './http/server.js';
import type { Logger } from './observability/logger.js';
import { Metrics } from './observability/metrics.js';
import { UserRepository } from './users/user-repository.js';
import { registerUserRoutes } from './users/user-routes.js';
import { UserService } from './users/user-service.js';

/** Optional collaborators of {@link startService}; tests pass their own. */
export interface StartOptions {
  logger: Logger;
  /** Default: a fresh `Metrics` with the process default metrics. */
  metrics?: Metrics;
}

/** A started service: where it listens, its parts, and how to stop it. */
export interface RunningService {
  /** `http://host:port` the server listens on (the real port when configured as 0). */
  url: string;
  app: FastifyInstance;
  db: Database;
  health: HealthService;
  healthLoop: HealthLoop;
  breaker: CircuitBreaker;
  metrics: Metrics;
  /** The embedded server, when no database host was configured. */
  embedded: EmbeddedServer | undefined;
  /**
   * Graceful shutdown, in order: readiness turns 503 at once; the server stops accepting;
   * in-flight requests finish (up to `server.shutdownTimeout`, then their connections are
   * cut); the health loop stops; the database drains (`disconnect()`); the embedded server
   * stops if this service started it. Idempotent (later calls return the same promise).
   */
  stop(): Promise<void>;
}

/**
 * The composition root without process concerns (signals, exit codes): config -> database
 * (embedded when no host) -> migrations -> services -> HTTP, listening when it resolves.
 * On a start-up failure everything already started is stopped again before it rejects.
 */
export async function startService(cfg: AppConfig, opts: StartOptions): Promise<RunningService> {
  const logger = opts.logger;
  const metrics = opts.metrics ?? new Metrics({ defaultMetrics: true });
  const cleanups: Array<() => Promise<void>> = [];
  try {
    const embedded = await startEmbedded(cfg, logger);
    if (embedded) cleanups.unshift(() => embedded.stop());
    const pgCfg: PostgresConfig = embedded
      ? withHost(cfg.database.postgres, '127.0.0.1')
      : cfg.database.postgres;
    if (cfg.database.migrateOnStart) await migrate(cfg, logger);

    const breaker = new CircuitBreaker(cfg.database.breaker, logger, metrics);
    const db = new PostgresDatabase(pgCfg, logger, {
      metrics,
      transactions: cfg.database.transactions,
      breaker,
    });
    cleanups.unshift(() => db.close());
    attachQueryLogger(db.driver(), logger, cfg.log, metrics);
    await db.connect();
    const tx = new TxManager(db, logger, { transactions: cfg.database.transactions, metrics });
    const users = new UserService({
      users: new UserRepository(db.driver(), { preparedStatements: pgCfg.preparedStatements }),
      tx,
      breaker,
    });

    const healthLoop = new HealthLoop(db, {
      intervalMs: cfg.database.postgres.healthCheckInterval,
      logger,
      breaker,
    });
    const health = new HealthService({
      db,
      loop: healthLoop,
      breaker,
      migrationStatus: () => migrationStatus(db),
    });
    await healthLoop.checkNow();
    healthLoop.start();
    cleanups.unshift(() => healthLoop.stop());

    const app = buildServer({
      server: cfg.server,
      logger,
      health,
      metrics,
      routes: [(a) => registerUserRoutes(a, users, { maxImportRowBytes: cfg.server.bodyLimit })],
    });
    await app.listen({ host: cfg.server.host, port: cfg.server.port });
    const url = serverUrl(app);
    logger.info({ url }, `listening on ${url}`);

    let stopping: Promise<void> | undefined;
    const stop = (): Promise<void> =>
      (stopping ??= shutdown({ cfg, logger, app, health, healthLoop, db, embedded }));
    return { url, app, db, health, healthLoop, breaker, metrics, embedded, stop };
  } catch (err) {
    for (const cleanup of cleanups) await cleanup().catch(() => undefined);
    throw err;
  }
}

async function startEmbedded(cfg: AppConfig, logger: Logger): Promise<EmbeddedServer | undefined> {
  const pg = cfg.database.postgres;
  if (pg.host) return undefined;
  const server = new EmbeddedServer({
    dataDir: cfg.database.embedded.dataDir,
    port: pg.port,
    username: pg.username,
    password: pg.password,
    logger,
  });
  await server.start();
  return server;
}

/** A copy of `pg` with another host; keeps the password (non-enumerable on loaded configs). */
function withHost(pg: PostgresConfig, host: string): PostgresConfig {
  const copy = { ...pg, host };
  Object.defineProperty(copy, 'password', { value: pg.password, enumerable: false });
  return copy;
}

/** Runs pending migrations with the migration credentials and lock_timeout, then closes. */
async function migrate(cfg: AppConfig, logger: Logger): Promise<void> {
  const log = logger.child({ component: 'migrations' });
  const knex = knexFactory(knexMigrationConfig(cfg));
  try {
    const [batch, applied] = (await knex.migrate.latest()) as [number, string[]];
    if (applied.length) log.info({ batch, applied }, 'migrations applied');
    else log.info('schema is up to date');
  } finally {
    await knex.destroy();
  }
}

/** Applied and pending migrations, from knex's bookkeeping table and the migrations directory. */
async function migrationStatus(db: Database): Promise<unknown> {
  const [completed, pending] = (await db.driver().migrate.list(migratorConfig())) as [
    Array<{ name: string }>,
    Array<{ file: string }>,
  ];
  return {
    applied: completed.length,
    pending: pending.length,
    latest: completed.at(-1)?.name ?? null,
    pendingNames: pending.map((p) => p.file),
  };
}

function serverUrl(app: FastifyInstance): string {
  const address = app.server.address();
  if (!address || typeof address === 'string') return String(address);
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `http://${host}:${address.port}`;
}

interface ShutdownParts {
  cfg: AppConfig;
  logger: Logger;
  app: FastifyInstance;
  health: HealthService;
  healthLoop: HealthLoop;
  db: Database;
  embedded: EmbeddedServer | undefined;
}

async function shutdown(p: ShutdownParts): Promise<void> {
  const log = p.logger.child({ component: 'shutdown' });
  const started = Date.now();
  p.health.startDraining();
  log.info(
    { shutdownTimeoutMs: p.cfg.server.shutdownTimeout },
    'shutting down: readiness off, draining requests',
  );
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), p.cfg.server.shutdownTimeout);
  });
  const closed = p.app.close().then(() => 'closed' as const);
  if ((await Promise.race([closed, deadline])) === 'timeout') {
    log.warn('in-flight requests outlived the shutdown timeout; closing their connections');
    p.app.server.closeAllConnections();
    await closed;
  }
  clearTimeout(timer);
  await p.healthLoop.stop();
  await p.db.disconnect();
  await p.embedded?.stop();
  log.info({ durationMs: Date.now() - started }, 'shutdown complete');
}
