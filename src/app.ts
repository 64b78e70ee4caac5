import type { FastifyInstance } from 'fastify';
import knexFactory from 'knex';
import type { AppConfig } from './config/app-config.js';
import { ConfigError } from './config/config-error.js';
import {
  CircuitBreaker,
  EmbeddedServer,
  PostgresDatabase,
  knexMigrationConfig,
  namedStatementsAllowed,
  prepareMigrationTarget,
  type Database,
} from './db/index.js';
import { HealthLoop } from './health/health-loop.js';
import { HealthRepository } from './health/health-repository.js';
import { HealthService } from './health/health-service.js';
import { buildAdminServer } from './http/admin-server.js';
import { createJwtVerifier } from './http/auth/jwt-verifier.js';
import { currentRequestFields } from './http/request-context.js';
import { buildServer } from './http/server.js';
import { resolveCursorSecret } from './config/cursor-secret.js';
import { type Logger } from './observability/logger.js';
export { createServiceLogger } from './http/service-logger.js';
import { Metrics } from './observability/metrics.js';
import { tracerOf } from './observability/tracing.js';
import { AuditRepository } from './audit/audit-repository.js';
import { UserRepository } from './users/user-repository.js';
import { registerUserRoutes } from './users/user-routes.js';
import { UserService } from './users/user-service.js';

/** Optional collaborators of {@link startService}; tests pass their own. */
export interface StartOptions {
  /** Every component logs through a child of it; make it with `createServiceLogger` so lines carry request ids. */
  logger: Logger;
  /** Default: a fresh `Metrics` with the process default metrics. */
  metrics?: Metrics;
}

/** A started service: where it listens, its parts, and how to stop it. */
export interface RunningService {
  /** `http://host:port` the server listens on (the real port when configured as 0). */
  url: string;
  app: FastifyInstance;
  /** `http://host:port` of the admin listener (`/metrics`, `/health`), when `server.admin.port` is set. */
  adminUrl: string | undefined;
  admin: FastifyInstance | undefined;
  db: PostgresDatabase;
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
   * stops if this service started it. The admin listener closes with the public one.
   * Idempotent (later calls return the same promise).
   */
  stop(): Promise<void>;
}

/**
 * The composition root without process concerns (signals, exit codes): config -> database
 * (embedded when no host) -> migrations -> services -> HTTP, listening when it resolves.
 * On a start-up failure everything already started is stopped again before it rejects.
 *
 * @throws ConfigError before anything starts, listing each problem: `server.auth.mode` is `jwt`
 *   and no usable key is configured (`SERVER_AUTH_JWT_PUBLIC_KEY` / `SERVER_AUTH_JWT_JWKS_URL`);
 *   production without `server.cursorSecret`.
 */
export async function startService(cfg: AppConfig, opts: StartOptions): Promise<RunningService> {
  const logger = opts.logger;
  const metrics = opts.metrics ?? new Metrics({ defaultMetrics: true });
  const cleanups: Array<() => Promise<void>> = [];
  // Before anything starts (nor migrates, nor connects): a service that cannot check tokens,
  // or production without a cursor key, refuses at once, with every such problem together.
  const auth = cfg.server.auth;
  const issues: string[] = [];
  const verifier = configIssues(issues, () =>
    auth.mode === 'jwt' ? createJwtVerifier(auth.jwt) : undefined,
  );
  const cursors = configIssues(issues, () => resolveCursorSecret(cfg));
  if (issues.length > 0 || !cursors) throw new ConfigError(issues);
  if (cursors.generated) {
    logger.info('server.cursorSecret is not set: list cursors are signed with a random key of this process');
  }
  try {
    const target = await prepareMigrationTarget(cfg, { logger });
    const { config: effective, embedded } = target;
    cleanups.unshift(() => target.stop());
    const pgCfg = effective.database.postgres;
    if (cfg.database.migrateOnStart) await migrate(effective, logger);

    const breaker = new CircuitBreaker(cfg.database.breaker, logger, metrics);
    const tracing = cfg.observability.tracing;
    const db = new PostgresDatabase(pgCfg, logger, {
      metrics,
      transactions: cfg.database.transactions,
      // The development default runs as the embedded superuser: say so at start (not in tests).
      warnIfSuperuser: cfg.profile !== 'test',
      breaker,
      tracing,
      // The request id also comes from the logger's mixin (createServiceLogger); passing it here
      // keeps query lines tagged when the caller built its logger otherwise.
      queryLog: { ...cfg.log, context: currentRequestFields },
    });
    cleanups.unshift(() => db.close());
    await db.connect();
    const tx = db.txManager;
    const users = new UserService({
      users: new UserRepository(db.driver(), {
        preparedStatements: namedStatementsAllowed(pgCfg),
        cursorSecret: cursors.secret,
      }),
      tx,
      breaker,
      transactions: cfg.database.transactions,
      logger: logger.child({ component: 'users' }),
      audit: new AuditRepository(db.driver()),
    });

    const healthLoop = new HealthLoop(db, {
      intervalMs: cfg.database.postgres.healthCheckInterval,
      logger,
      breaker,
    });
    const healthRepository = new HealthRepository(db);
    const health = new HealthService({
      db,
      loop: healthLoop,
      breaker,
      migrationStatus: () => healthRepository.migrationStatus(),
      reportCacheTtlMs: cfg.server.healthCacheTtl,
      poolStats: () => db.getConnectionStats(),
      poolSaturatedForMs: cfg.server.readiness.poolSaturatedFor,
    });
    await healthLoop.checkNow();
    healthLoop.start();
    cleanups.unshift(() => healthLoop.stop());

    const app = await buildServer({
      server: cfg.server,
      logger,
      db,
      health,
      metrics,
      tracer: tracerOf(tracing),
      auth: { config: auth, profile: cfg.profile, verifier },
      adminListener: cfg.server.admin.port !== 0,
      routes: [
        (a) =>
          registerUserRoutes(a, users, {
            maxImportRowBytes: cfg.server.bodyLimit,
            importLimits: { ...cfg.server.import, bodyTimeout: cfg.server.bodyTimeout },
          }),
      ],
    });
    const admin =
      cfg.server.admin.port === 0 ? undefined : await buildAdminServer({ db, logger, health, metrics });
    cleanups.unshift(async () => {
      await app.close();
      await admin?.close();
    });
    await app.listen({ host: cfg.server.host, port: cfg.server.port });
    const url = serverUrl(app);
    logger.info({ url }, `listening on ${url}`);
    await admin?.listen({ host: cfg.server.admin.host, port: cfg.server.admin.port });
    const adminUrl = admin && serverUrl(admin);
    if (adminUrl) logger.info({ adminUrl }, `admin listener (/metrics, /health) on ${adminUrl}`);

    let stopping: Promise<void> | undefined;
    const stop = (): Promise<void> =>
      (stopping ??= shutdown({ cfg, logger, app, admin, health, healthLoop, db, embedded }));
    return { url, app, adminUrl, admin, db, health, healthLoop, breaker, metrics, embedded, stop };
  } catch (err) {
    for (const cleanup of cleanups) await cleanup().catch(() => undefined);
    throw err;
  }
}

/** `fn()`, or undefined with its `ConfigError`'s issues added to `issues` (other errors propagate). */
function configIssues<T>(issues: string[], fn: () => T): T | undefined {
  try {
    return fn();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    issues.push(...err.issues);
    return undefined;
  }
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
  admin: FastifyInstance | undefined;
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
  // server.close() closes the connections idle at that moment only; close each one that goes
  // idle later (its in-flight request done) too, or a kept-alive client holds shutdown open.
  const idleSweep = setInterval(() => p.app.server.closeIdleConnections(), 100);
  if ((await Promise.race([closed, deadline])) === 'timeout') {
    log.warn('in-flight requests outlived the shutdown timeout; closing their connections');
    p.app.server.closeAllConnections();
    await closed;
  }
  clearTimeout(timer);
  clearInterval(idleSweep);
  // Scrapes are short: the admin listener closes after the public one, so metrics are served until then.
  await p.admin?.close();
  await p.healthLoop.stop();
  await p.db.disconnect();
  await p.embedded?.stop();
  log.info({ durationMs: Date.now() - started }, 'shutdown complete');
}
