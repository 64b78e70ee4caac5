/**
 * The process entry point (`npm start`): loads the configuration, starts the service
 * (see `startService` in `app.ts`) and owns the process concerns: signals and exit codes.
 *
 * - SIGTERM / SIGINT: graceful shutdown (readiness 503 at once, in-flight requests finish
 *   up to `server.shutdownTimeout`, the database drains, an embedded server we started
 *   stops), then exit 0. A second signal while shutting down exits 1 at once.
 * - A failure to start (bad config, database unreachable after retries) exits 1 with the
 *   reason logged; no password is ever printed.
 */
import { startService, type RunningService } from './app.js';
import { loadConfig } from './config/index.js';
import { createLogger, type Logger } from './observability/logger.js';

async function main(): Promise<void> {
  let cfg;
  try {
    cfg = loadConfig();
  } catch (err) {
    // The config error lists every problem by key path and never carries a secret.
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  }
  const logger = createLogger(cfg.log);
  let service: RunningService | undefined;
  let signalled = false;

  const onSignal = (signal: NodeJS.Signals): void => {
    if (signalled) {
      logger.warn({ signal }, 'second signal during shutdown: exiting now');
      exit(logger, 1);
      return;
    }
    signalled = true;
    logger.info({ signal }, 'signal received: shutting down gracefully');
    if (!service) return; // still starting: the start-up path below sees `signalled`
    service.stop().then(
      () => exit(logger, 0),
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        exit(logger, 1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  try {
    service = await startService(cfg, { logger });
  } catch (err) {
    logger.fatal({ err }, 'service failed to start');
    exit(logger, 1);
    return;
  }
  if (signalled) {
    await service.stop();
    exit(logger, 0);
  }
}

function exit(logger: Logger, code: number): void {
  logger.flush();
  process.exit(code);
}

await main();
