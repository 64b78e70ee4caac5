import { Writable } from 'node:stream';
import { createServiceLogger, startService, type RunningService } from '../../src/app.js';
import type { AppConfig } from '../../src/config/app-config.js';
import { loadConfig } from '../../src/config/index.js';
import { Metrics } from '../../src/observability/metrics.js';
import type { LogLine } from './capture-logger.js';
import type { TestDatabase } from './test-database.js';

/** Deep-partial overrides of an AppConfig. */
export type ConfigOverrides = {
  [K in keyof Omit<AppConfig, 'profile'>]?: {
    [P in keyof AppConfig[K]]?: Partial<AppConfig[K][P]> | AppConfig[K][P];
  };
};

/**
 * The test profile's configuration pointing at `databaseUrl`, listening on a free port
 * (0) on loopback, with `overrides` merged one level deep per section.
 */
export function testConfig(databaseUrl: string, overrides: ConfigOverrides = {}): AppConfig {
  const base = loadConfig({ env: { APP_ENV: 'test', DATABASE_URL: databaseUrl }, profile: 'test' });
  const merged = structuredClone<AppConfig>({ ...base });
  // loadConfig hides passwords as non-enumerable properties; structuredClone drops them.
  merged.database.postgres.password = base.database.postgres.password;
  merged.database.migrations.password = base.database.migrations.password;
  merged.server.port = 0;
  merged.server.host = '127.0.0.1';
  for (const [section, values] of Object.entries(overrides)) {
    const target = merged[section as keyof typeof overrides] as unknown as Record<string, unknown>;
    for (const [key, value] of Object.entries(values ?? {})) {
      const current = target[key];
      target[key] =
        current && typeof current === 'object' && value && typeof value === 'object'
          ? { ...current, ...value }
          : value;
    }
  }
  return merged;
}

/** A service started in this process, with its log lines captured. */
export interface TestService {
  service: RunningService;
  url: string;
  logs: LogLine[];
  stop(): Promise<void>;
}

/**
 * Starts the whole service in-process (`startService`) with the service's logger (`createServiceLogger`)
 * capturing JSON lines (level `LOG_LEVEL` or info; lines are also echoed to stderr when `TEST_LOG=1`).
 */
export async function startTestService(cfg: AppConfig): Promise<TestService> {
  const logs: LogLine[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (!line) continue;
        logs.push(JSON.parse(line) as LogLine);
        if (process.env.TEST_LOG === '1') process.stderr.write(line + '\n');
      }
      done();
    },
  });
  const level = (process.env.LOG_LEVEL ?? 'info') as AppConfig['log']['level'];
  const logger = createServiceLogger({ ...cfg.log, level, pretty: false }, sink);
  const service = await startService(cfg, { logger, metrics: new Metrics({ defaultMetrics: true }) });
  return { service, url: service.url, logs, stop: () => service.stop() };
}

/**
 * Mocha helper: one in-process service for the enclosing `describe`, on the suite's database
 * (`testConfig(db().url, overrides)`), started before its tests and stopped after them.
 */
export function useTestService(db: () => TestDatabase, overrides: ConfigOverrides = {}): () => TestService {
  let svc: TestService | undefined;
  before(async () => {
    svc = await startTestService(testConfig(db().url, overrides));
  });
  after(async () => {
    await svc?.stop();
  });
  return () => {
    if (!svc) throw new Error('useTestService(): the service exists only inside hooks and tests');
    return svc;
  };
}

/** Polls `probe` every 25 ms until it returns true or `timeoutMs` passes; returns the time taken, ms. */
export async function waitFor(
  probe: () => Promise<boolean>,
  timeoutMs: number,
  what: string,
): Promise<number> {
  const started = Date.now();
  for (;;) {
    if (await probe().catch(() => false)) return Date.now() - started;
    if (Date.now() - started > timeoutMs)
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
