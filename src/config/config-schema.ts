import { z } from 'zod';
import {
  AUTH_MODES,
  FOREIGN_CONNECTION_GUARD_MODES,
  LOG_LEVELS,
  POOLER_MODES,
  SSL_MODES,
  CHANNEL_BINDING_MODES,
  TARGET_SESSION_ATTRS,
  type AppConfig,
} from './app-config.js';
import { parseDuration } from './parse-duration.js';

/** An integer in [min, max]; the message names the whole range so one issue says it all. */
function int(min: number, max = Number.MAX_SAFE_INTEGER): z.ZodInt {
  const error =
    max === Number.MAX_SAFE_INTEGER ? `must be at least ${min}` : `must be between ${min} and ${max}`;
  return z.int({ error: 'expected an integer' }).min(min, { error }).max(max, { error });
}

/** A duration: Go-style string or number of milliseconds in, whole milliseconds out. */
const duration = z.unknown().transform((value, ctx): number => {
  const parsed = parseDuration(value);
  if ('ms' in parsed) return parsed.ms;
  ctx.issues.push({ code: 'custom', message: parsed.error, input: value });
  return z.NEVER;
});

const str = z.string({ error: 'expected a string' });
const bool = z.boolean({ error: 'expected true or false' });
/** `host:port` (`[v6]:port` for IPv6); the port is required, so a list never mixes defaults silently. */
const hostPort = str.regex(/^(\[[0-9A-Fa-f:.]+\]|[^\s:,/[\]]+):([1-9]\d{0,4})$/, {
  error: 'expected host:port (e.g. db1.internal:5432, [::1]:5432)',
});
const hostList = z.array(hostPort, { error: 'expected a list of host:port' });

/**
 * The validation schema of everything but `profile` (set by the loader). Objects are strict, so
 * an unknown key is an issue. Cross-field rules (maxIdleConns <= maxOpenConns, ...) live in
 * `crossFieldIssues()`: zod skips an object's refinements once one of its fields is invalid,
 * and every problem must be reported at once.
 */
export const configSchema = z.strictObject({
  server: z.strictObject({
    host: str,
    port: int(1, 65535),
    shutdownTimeout: duration,
    bodyLimit: int(1),
    requestTimeout: duration,
    headersTimeout: duration,
    keepAliveTimeout: duration,
    bodyTimeout: duration,
    healthCacheTtl: duration,
    readiness: z.strictObject({
      poolSaturatedFor: duration,
    }),
    cursorSecret: str.refine((v) => v === '' || v.length >= 32, {
      error: 'must be at least 32 characters (e.g. `openssl rand -base64 32`)',
    }),
    import: z.strictObject({
      timeout: duration,
      minBytesPerSecond: int(0),
      minRateGracePeriod: duration,
      maxConcurrent: int(1, 10_000),
      maxPerClient: int(0, 10_000),
      maxRows: int(0),
      maxBytes: int(0),
    }),
    auth: z.strictObject({
      mode: z.enum(AUTH_MODES),
      jwt: z.strictObject({
        publicKey: str,
        jwksUrl: str,
        issuer: str,
        audience: str,
        clockTolerance: duration,
      }),
    }),
    admin: z.strictObject({
      port: int(0, 65535),
      host: str.min(1, { error: 'must not be empty' }),
    }),
  }),
  log: z.strictObject({
    level: z.enum(LOG_LEVELS),
    pretty: bool,
    queryBindings: bool,
    slowQueryThreshold: duration,
  }),
  observability: z.strictObject({
    tracing: bool,
  }),
  database: z.strictObject({
    postgres: z.strictObject({
      host: str,
      port: int(1, 65535),
      name: str.min(1, { error: 'must not be empty' }),
      username: str.min(1, { error: 'must not be empty' }),
      password: str,
      sslMode: z.enum(SSL_MODES),
      sslRootCert: str,
      channelBinding: z.enum(CHANNEL_BINDING_MODES),
      allowInsecurePasswordAuth: bool,
      maxOpenConns: int(1, 10_000),
      maxIdleConns: int(0, 10_000),
      connMaxLifetime: duration,
      connMaxIdleTime: duration,
      timeout: duration,
      statementTimeout: duration,
      lockTimeout: duration,
      idleInTransactionSessionTimeout: duration,
      maxRetries: int(0, 1_000),
      retryDelay: duration,
      maxRetryDelay: duration,
      healthCheckInterval: duration,
      healthCheckTimeout: duration,
      drainTimeout: duration,
      applicationName: str.max(63, { error: 'must be at most 63 characters (PostgreSQL truncates longer)' }),
      preparedStatements: bool,
      poolerMode: z.enum(POOLER_MODES),
      leakDetectionThreshold: duration,
      hosts: hostList,
      targetSessionAttrs: z.enum(TARGET_SESSION_ATTRS),
      replicas: hostList,
      replicaWaitTimeout: duration,
    }),
    transactions: z.strictObject({
      maxAttempts: int(1, 100),
      baseDelay: duration,
      maxDelay: duration,
      defaultTimeout: duration,
      foreignConnectionGuard: z.enum(FOREIGN_CONNECTION_GUARD_MODES),
      resolveLostCommit: bool,
      resolveAcrossFailover: bool,
      retryBudget: z.strictObject({
        ratio: z
          .number({ error: 'expected a number' })
          .min(0, { error: 'must be between 0 and 1' })
          .max(1, { error: 'must be between 0 and 1' }),
        burst: int(1, 1_000_000),
      }),
    }),
    embedded: z.strictObject({
      dataDir: str.min(1, { error: 'must not be empty' }),
    }),
    migrations: z.strictObject({
      username: str,
      password: str,
      lockTimeout: duration,
    }),
    breaker: z.strictObject({
      threshold: int(1, 1_000),
      halfOpenAfter: duration,
    }),
    migrateOnStart: bool,
  }),
});

type Parsed = z.output<typeof configSchema>;
type Expected = Omit<AppConfig, 'profile'>;
/**
 * Compile-time proof that the schema's output is exactly the documented `AppConfig` shape
 * (less `profile`): `true` when they match, `never` (a type error below) when they drift apart.
 */
type SchemaMatchesAppConfig = [Parsed, Expected] extends [Expected, Parsed] ? true : never;
const _schemaMatches: SchemaMatchesAppConfig = true;
void _schemaMatches;
